//! Distributed Maps at the workflow's scale: 10,000 rank payloads of ~400 bytes and
//! 100,000 items, read from S3 objects, with a trivial invoker. No timing assertions:
//! these only show the runs complete (see `examples/map_scale.rs` for timings).

use crate::common;

use std::sync::Arc;

use cai_asl::{MemoryS3, TaskFailure};
use common::*;
use serde_json::{json, Value};

fn count(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

fn reader_writer_map(key: &str, input_type: &str, extra: Value) -> Value {
    let mut fields = json!({
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": input_type},
            "Parameters": {"Bucket": "data", "Key": key}
        },
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out", "Prefix": "runs"}}
    });
    for (k, v) in extra.as_object().unwrap() {
        fields[k] = v.clone();
    }
    distributed_map(fields)
}

fn manifest(s3: &MemoryS3, out: &Value) -> Value {
    let key = out["ResultWriterDetails"]["Key"].as_str().unwrap();
    serde_json::from_slice(&s3.object("out", key).unwrap()).unwrap()
}

#[test]
fn ten_thousand_rank_payloads_from_jsonl() {
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let payload = |i: usize| json!({"rank": i, "world": 10_000, "partition": format!("s3://bucket/partitions/{:05}.parquet", i % 128), "model": "s3://bucket/models/astro.pt", "pad": "p".repeat(250)});
    let lines: String = (0..10_000).map(|i| format!("{}\n", payload(i))).collect();
    assert!(lines.len() > 3_700_000, "{}", lines.len());
    s3.insert("data", "ranks.jsonl", lines);
    let inv = FakeInvoker::new().on("work", |c| {
        let rank = c.input["rank"].as_u64().unwrap();
        if rank % 1000 == 7 {
            Err(TaskFailure::new("RankFailed", format!("rank {rank}")))
        } else {
            Ok(json!({"rank": rank, "predictions": 12}))
        }
    });
    let m = reader_writer_map(
        "ranks.jsonl",
        "JSONL",
        json!({"ToleratedFailurePercentage": 1, "MaxConcurrency": 64}),
    );
    let e = run_opts(m, json!({}), &inv, &s3_opts(&s3));
    let out = output(&e);
    let manifest = manifest(&s3, &out);
    let succeeded = s3
        .object(
            "out",
            manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let failed = s3
        .object(
            "out",
            manifest["ResultFiles"]["FAILED"][0]["Key"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(count(&succeeded, "\"Status\":\"SUCCEEDED\""), 9_990);
    assert_eq!(count(&failed, "\"Status\":\"FAILED\""), 10);
    assert_eq!(e.standard_children.executions, 10_000);
    assert_eq!(e.child_transitions, 10_000);
}

#[test]
fn hundred_thousand_items_from_a_json_array_with_a_trivial_invoker() {
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let items: Vec<Value> = (0..100_000).map(|i| json!({"i": i})).collect();
    s3.insert("data", "items.json", serde_json::to_vec(&items).unwrap());
    let inv = |_: cai_asl::TaskCall<'_>| -> Result<Value, TaskFailure> { Ok(json!(1)) };
    let m = reader_writer_map("items.json", "JSON", json!({}));
    let (mut opts, _) = recording_opts(0);
    opts.s3 = Some(s3.clone());
    let e = cai_asl::execute(&def(m), json!({}), &inv, &cai_asl::NoopObserver, &opts);
    let out = output(&e);
    let manifest = manifest(&s3, &out);
    let key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
        .as_str()
        .unwrap();
    let body = s3.object("out", key).unwrap();
    assert_eq!(
        manifest["ResultFiles"]["SUCCEEDED"][0]["Size"],
        json!(body.len())
    );
    assert_eq!(count(&body, "\"Status\":\"SUCCEEDED\""), 100_000);
    assert_eq!(e.standard_children.executions, 100_000);
    assert_eq!(e.total_transitions(), 100_001);
}
