//! The 256 KiB payload quota: `States.DataLimitExceeded` (never retried nor caught) for
//! the execution input, state outputs, Task inputs and results, Map child inputs and
//! Map results, with a cause naming the state, the payload and its size.

use crate::common;

use std::sync::Arc;

use cai_asl::{error_names, ExecOptions, MemoryS3, Status, MAX_PAYLOAD_BYTES};
use common::*;
use serde_json::{json, Value};

/// A JSON string value whose serialized form is exactly `bytes` long.
fn string_of(bytes: usize) -> Value {
    json!("x".repeat(bytes - 2))
}

fn limited(limit: usize) -> ExecOptions {
    let (mut opts, _) = recording_opts(0);
    opts.max_payload_bytes = limit;
    opts
}

fn assert_exceeded(e: &cai_asl::Execution, names: &[&str]) {
    let err = error(e);
    assert_eq!(err.error, error_names::DATA_LIMIT_EXCEEDED, "{err:?}");
    for n in names {
        assert!(err.cause.contains(n), "`{n}` not in: {}", err.cause);
    }
}

#[test]
fn the_default_limit_is_256_kib_of_json() {
    assert_eq!(MAX_PAYLOAD_BYTES, 262_144);
    let pass = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let inv = FakeInvoker::new();
    let e = run(pass.clone(), string_of(262_144), &inv);
    assert_eq!(e.status, Status::Succeeded);
    let e = run(pass, string_of(262_145), &inv);
    assert_exceeded(&e, &["execution input", "262145 bytes", "262144"]);
    assert_eq!(e.transitions, 0, "no state was entered");
}

#[test]
fn state_outputs_over_the_limit_fail_and_cannot_be_caught() {
    let m = json!({"StartAt": "Big", "States": {
        "Big": {"Type": "Pass", "Result": "x".repeat(200), "ResultPath": "$.big", "Next": "Done"},
        "Done": {"Type": "Succeed"}
    }});
    let inv = FakeInvoker::new();
    let e = run_opts(m, json!({"a": 1}), &inv, &limited(100));
    assert_exceeded(&e, &["output of state `Big`", "bytes"]);
    // A Task whose result is too large: Retry and Catch do not apply.
    let m = one_task(json!({
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "T"}]
    }));
    let inv = FakeInvoker::new().on("r", ok(string_of(101)));
    let e = run_opts(m.clone(), json!({}), &inv, &limited(100));
    assert_exceeded(&e, &["result of Task state `T`", "101 bytes", "100 bytes"]);
    assert_eq!(inv.calls().len(), 1, "never retried");
    // The same result within the limit is fine.
    let inv = FakeInvoker::new().on("r", ok(string_of(100)));
    assert_eq!(
        run_opts(m, json!({}), &inv, &limited(100)).status,
        Status::Succeeded
    );
}

#[test]
fn task_inputs_after_parameters_are_checked() {
    let m =
        one_task(json!({"Parameters": {"a.$": "$$.Execution.Input", "b.$": "$$.Execution.Input"}}));
    let inv = FakeInvoker::new().on("r", ok(json!(1)));
    let e = run_opts(m, string_of(60), &inv, &limited(100));
    assert_exceeded(&e, &["input of Task state `T` after Parameters"]);
    assert!(inv.calls().is_empty());
}

fn reader_map(with_writer: bool) -> Value {
    let mut fields = json!({
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSONL"},
            "Parameters": {"Bucket": "data", "Key": "items.jsonl"}
        }
    });
    if with_writer {
        fields["ResultWriter"] = json!({
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "out", "Prefix": "results"}
        });
    }
    distributed_map(fields)
}

#[test]
fn a_map_result_over_the_limit_needs_a_result_writer() {
    // 2,000 items of 200 bytes: 400 KB of results, over the default 256 KiB.
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let lines: String = (0..2000)
        .map(|i| format!("{}\n", json!({"i": i, "pad": "p".repeat(180)})))
        .collect();
    s3.insert("data", "items.jsonl", lines);
    let inv = FakeInvoker::new().on("work", echo());
    let e = run_opts(reader_map(false), json!({}), &inv, &s3_opts(&s3));
    assert_exceeded(&e, &["result of Map state `Map`"]);
    assert_eq!(inv.calls().len(), 2000, "every child ran");
    let inv = FakeInvoker::new().on("work", echo());
    let e = run_opts(reader_map(true), json!({}), &inv, &s3_opts(&s3));
    let out = output(&e);
    let key = out["ResultWriterDetails"]["Key"].as_str().unwrap();
    assert!(key.starts_with("results/"), "{key}");
    assert_eq!(e.standard_children.executions, 2000);
}

#[test]
fn child_inputs_over_the_limit_fail_the_map_and_child_outputs_fail_the_child() {
    let inv = FakeInvoker::new().on("work", echo());
    let m = distributed_map(json!({
        "ItemsPath": "$.items",
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "all.$": "$.items"}
    }));
    let e = run_opts(
        m,
        json!({"items": ["a".repeat(30), "b"]}),
        &inv,
        &limited(60),
    );
    assert_exceeded(&e, &["input of item 0 of Map state `Map`"]);
    assert!(inv.calls().is_empty());
    // Inside a child, an oversized output fails that child only.
    let inv = FakeInvoker::new().on("work", |c| {
        if c.input == json!(1) {
            Ok(json!("y".repeat(250)))
        } else {
            Ok(c.input.clone())
        }
    });
    let m = distributed_map(json!({"ItemsPath": "$.items", "ToleratedFailureCount": 1}));
    let e = run_opts(m, json!({"items": [0, 1, 2]}), &inv, &limited(200));
    let out = output(&e);
    assert_eq!(out[0], json!(0));
    assert_eq!(out[1]["Error"], error_names::DATA_LIMIT_EXCEEDED);
    assert!(
        out[1]["Cause"]
            .as_str()
            .unwrap()
            .contains("result of Task state `Work`"),
        "{out}"
    );
}
