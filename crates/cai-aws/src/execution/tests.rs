//! Unit tests of the execution commands' pure parts.

use super::*;
use super::{history::*, pricing::*, start::*};
use crate::logs::ReportEvent;
use cai_workflow::cost::gb_second_price;
use cai_workflow::result::RankResult;
use cai_workflow::settings::Architecture;
use cai_workflow::Payload;

#[test]
fn execution_arns_split_and_others_are_refused() {
    let a = ExecutionArn::parse(
        "arn:aws:states:eu-west-1:123456789012:execution:cai-prod:cai-1700000000-ab12",
    )
    .unwrap();
    assert_eq!(a.region, "eu-west-1");
    assert_eq!(a.account, "123456789012");
    assert_eq!(a.state_machine, "cai-prod");
    assert_eq!(a.name, "cai-1700000000-ab12");
    let e = ExecutionArn::parse("arn:aws:states:eu-west-1:1:stateMachine:cai").unwrap_err();
    assert!(e.to_string().contains("not an execution"), "{e}");
    assert!(ExecutionArn::parse("cai-123").is_err());
    assert!(ExecutionArn::parse("arn:aws:lambda:r:1:execution:a:b").is_err());
}

#[test]
fn execution_names_are_unique_and_well_formed() {
    let (a, b) = (new_execution_name(), new_execution_name());
    assert_ne!(a, b);
    let parts: Vec<&str> = a.split('-').collect();
    assert_eq!(parts.len(), 3, "{a}");
    assert_eq!(parts[0], "cai");
    assert!(parts[1].parse::<u64>().is_ok());
    assert_eq!(parts[2].len(), 4);
}

#[test]
fn definition_changes_name_the_settings() {
    let old = serde_json::json!({"States": {"Inference": {"MaxConcurrency": 4, "Retry": [1, 2]}}});
    let new = serde_json::json!({"States": {"Inference": {"MaxConcurrency": 8, "Retry": [1, 3]}}});
    assert_eq!(
        definition_changes(&old, &new),
        vec![
            "States.Inference.MaxConcurrency: 4 -> 8",
            "States.Inference.Retry[1]: 2 -> 3"
        ]
    );
    assert!(definition_changes(&old, &old).is_empty());
}

fn ev(kind: &str, t: i64) -> HistoryItem {
    HistoryItem {
        kind: kind.into(),
        timestamp_ms: t,
        resource: None,
        error: None,
        output: None,
    }
}

fn scheduled(fn_name: &str, t: i64) -> HistoryItem {
    HistoryItem {
        resource: Some(format!("arn:aws:lambda:r:1:function:{fn_name}")),
        ..ev("LambdaFunctionScheduled", t)
    }
}

#[test]
fn transitions_count_states_entered_and_retries() {
    let h = vec![
        ev("ExecutionStarted", 0),
        ev("TaskStateEntered", 1),
        scheduled("cai-init", 1),
        ev("LambdaFunctionStarted", 2),
        HistoryItem {
            error: Some("cai.Store".into()),
            ..ev("LambdaFunctionFailed", 5)
        },
        scheduled("cai-init", 6),
        ev("LambdaFunctionStarted", 7),
        ev("LambdaFunctionSucceeded", 1007),
        ev("TaskStateExited", 1008),
        ev("MapStateEntered", 1009),
        ev("MapStateExited", 1010),
        ev("TaskStateEntered", 1011),
        scheduled("cai-summarize", 1011),
        ev("LambdaFunctionStarted", 1012),
        ev("LambdaFunctionSucceeded", 1212),
        ev("ChoiceStateEntered", 1213),
        ev("SucceedStateEntered", 1214),
    ];
    // 5 states entered + 1 retry of Initialize.
    assert_eq!(transitions_in(&h), 6);
    let inv = invocations_in(&h);
    assert_eq!(inv.len(), 3);
    assert_eq!(
        (
            inv[0].handler.as_str(),
            inv[0].attempt,
            inv[0].outcome.as_str()
        ),
        ("init", 1, "cai.Store")
    );
    assert_eq!(
        (inv[1].handler.as_str(), inv[1].attempt, inv[1].billed_ms),
        ("init", 2, 1000)
    );
    assert_eq!(
        (inv[2].handler.as_str(), inv[2].billed_ms),
        ("summarize", 200)
    );
}

fn rank(r: u64, wall: f64) -> RankResult {
    let v = serde_json::json!({
        "total_cpu_time (seconds)": 2.0, "total_cpu_memory (MB)": 300.0,
        "execution_time (seconds/batch)": 0.1, "num_batches": 1, "batch_size": 8, "device": "cpu",
        "throughput_bps": 1.0, "sample_persec": 1.0, "result_path": "r", "data_path": [],
        "rank": r, "world_size": 2, "samples": 8, "bits": 8, "files": [], "wall_seconds": wall,
        "timings": {"model_load": 0.0, "fetch": 0.0, "inference": 0.0, "write": 0.0}, "peak_rss_mb": 512.5, "threads": 2, "attempts": 1, "model": "seed:0",
        "untrained": true, "predictions": {"bucket": "d", "key": "k", "format": "parquet", "rows": 8, "with_truth": false},
        "errors": [], "cai_version": "0"
    });
    serde_json::from_value(v).expect("a rank result")
}

#[test]
fn reports_win_and_the_fallback_says_so() {
    let line = "REPORT RequestId: a\tDuration: 10.5 ms\tBilled Duration: 11 ms\tMemory Size: 2048 MB\tMax Memory Used: 99 MB";
    let rep = vec![ReportEvent::parse(cai_workflow::handlers::Handler::Infer, line, 0).unwrap()];
    let ranks = vec![rank(0, 1.2345), rank(1, 2.0)];
    let hist = invocations_in(&[scheduled("x-init", 0), ev("LambdaFunctionSucceeded", 50)]);
    let (inv, src) = pick_invocations(&rep, &ranks, &hist);
    assert_eq!(src, CostSource::Reports { lines: 1 });
    assert_eq!(
        (inv.len(), inv[0].billed_ms, inv[0].peak_rss_mb),
        (1, 11, 99.0)
    );
    let (inv, src) = pick_invocations(&[], &ranks, &hist);
    assert_eq!(
        src,
        CostSource::HandlerRecords {
            ranks: 2,
            bookkeeping: 1
        }
    );
    assert_eq!(inv.len(), 3);
    assert_eq!(
        (inv[0].rank, inv[0].billed_ms, inv[0].peak_rss_mb),
        (Some(0), 1235, 512.5)
    );
    assert_eq!((inv[2].handler.as_str(), inv[2].billed_ms), ("init", 50));
    assert!(src.describe().contains("no Lambda REPORT lines"));
}

#[test]
fn mixed_memory_sizes_are_priced_per_invocation() {
    let p = Payload::parse(r#"{"model":"seed:0","batch_size":8,"bucket":"bbb","result_path":"r","data_bucket":"ddd","data_prefix":"p","memory_mb":1024}"#).unwrap();
    let mk = |h, billed: u64, mem: u64| {
        let l = format!("REPORT RequestId: a\tDuration: 1 ms\tBilled Duration: {billed} ms\tMemory Size: {mem} MB\tMax Memory Used: 9 MB");
        ReportEvent::parse(h, &l, 0).unwrap()
    };
    use cai_workflow::handlers::Handler;
    let reps = vec![
        mk(Handler::Init, 1000, 1024),
        mk(Handler::Infer, 2000, 2048),
    ];
    let inv: Vec<_> = reps.iter().map(ReportEvent::invocation_stat).collect();
    let row = priced_row(1, &p, &inv, &reps, Architecture::X86_64, 6);
    assert_eq!(row.memory_gb, 2.0);
    let want = (1.0 * 1.0 + 2.0 * 2.0) * gb_second_price(Architecture::X86_64);
    assert!(
        (row.compute_usd - want).abs() < 1e-12,
        "{}",
        row.compute_usd
    );
    let same = priced_row(1, &p, &inv[1..], &reps[1..], Architecture::X86_64, 6);
    assert!((same.compute_usd - 4.0 * gb_second_price(Architecture::X86_64)).abs() < 1e-12);
}

#[test]
fn max_concurrency_stays_within_the_lambda_quota() {
    assert_eq!(within_quota(50, 1000), (50, None));
    assert_eq!(within_quota(1000, 1000), (1000, None));
    let (n, note) = within_quota(0, 1000);
    assert_eq!(n, 1000);
    assert!(note.unwrap().contains("unlimited"));
    let (n, note) = within_quota(5000, 900);
    assert_eq!(n, 900);
    assert!(note.unwrap().contains("5000 lowered to 900"));
}
