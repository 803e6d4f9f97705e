//! Times a distributed Map over N items (default 100,000) read from a JSONL object, with
//! a no-op Task and a ResultWriter, and reports the peak resident memory:
//! `cargo run -p cai-asl --release --example map_scale -- 100000`.

use std::sync::Arc;
use std::time::Instant;

use cai_asl::{execute, Definition, ExecOptions, MemoryS3, NoopObserver, TaskCall, TaskFailure};
use serde_json::{json, Value};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(100_000);
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{}\n",
                json!({"rank": i, "partition": format!("p{:05}", i % 1000)})
            )
        })
        .collect();
    s3.insert("data", "ranks.jsonl", lines);
    let def = Definition::from_value(json!({
        "StartAt": "Map",
        "States": {"Map": {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSONL"},
                "Parameters": {"Bucket": "data", "Key": "ranks.jsonl"}
            },
            "ItemSelector": {"rank.$": "$$.Map.Item.Value.rank", "job.$": "$.job"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "Infer",
                "States": {"Infer": {"Type": "Task", "Resource": "infer", "End": true}}
            },
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "out", "Prefix": "results"}
            },
            "End": true
        }}
    }))
    .expect("valid definition");
    let invoker =
        |c: TaskCall<'_>| -> Result<Value, TaskFailure> { Ok(json!({"rank": c.input["rank"]})) };
    let opts = ExecOptions {
        s3: Some(s3.clone()),
        ..ExecOptions::default()
    };
    let t = Instant::now();
    let e = execute(
        &def,
        json!({"job": "scale"}),
        &invoker,
        &NoopObserver,
        &opts,
    );
    let elapsed = t.elapsed();
    assert!(e.error.is_none(), "{:?}", e.error);
    let manifest_key = e.output.as_ref().expect("output")["ResultWriterDetails"]["Key"]
        .as_str()
        .expect("a manifest key")
        .to_string();
    let manifest: Value =
        serde_json::from_slice(&s3.object("out", &manifest_key).expect("a manifest")).unwrap();
    let bytes = manifest["ResultFiles"]["SUCCEEDED"][0]["Size"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "{n} items: {elapsed:.2?} ({:.1} µs/item), {} child transitions, results {:.1} MB, peak RSS {}",
        elapsed.as_secs_f64() * 1e6 / n as f64,
        e.child_transitions,
        bytes as f64 / 1e6,
        peak_rss()
    );
}

/// VmHWM from /proc/self/status (Linux), or "unknown".
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
