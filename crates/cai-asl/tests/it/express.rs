//! ProcessorConfig.ExecutionType: per-type child usage for pricing, and the EXPRESS
//! limit on how long a child execution may run.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use cai_asl::{error_names, MemoryS3, Status, EXPRESS_MAX_DURATION};
use common::*;
use serde_json::{json, Value};

fn typed_map(execution_type: &str, fields: Value) -> Value {
    let mut m = distributed_map(fields);
    m["States"]["Map"]["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = json!(execution_type);
    m
}

#[test]
fn child_usage_is_counted_per_execution_type() {
    let mut m = typed_map("EXPRESS", json!({"ItemsPath": "$.a", "ResultPath": "$.ra"}));
    m["States"]["Map"]["ItemProcessor"]["States"]["Work"]["Next"] = json!("Then");
    m["States"]["Map"]["ItemProcessor"]["States"]["Work"]
        .as_object_mut()
        .unwrap()
        .remove("End");
    m["States"]["Map"]["ItemProcessor"]["States"]["Then"] = json!({"Type": "Pass", "End": true});
    m["States"]["Map"]["Next"] = json!("Standard");
    m["States"]["Map"].as_object_mut().unwrap().remove("End");
    let standard = typed_map(
        "STANDARD",
        json!({"ItemsPath": "$.b", "ResultPath": "$.rb"}),
    );
    m["States"]["Standard"] = standard["States"]["Map"].clone();
    let inv = FakeInvoker::new().on("work", |c| {
        std::thread::sleep(Duration::from_millis(5));
        Ok(c.input.clone())
    });
    let e = run(m, json!({"a": [1, 2, 3, 4], "b": [5, 6, 7]}), &inv);
    assert_eq!(e.status, Status::Succeeded, "{:?}", e.error);
    let x = e.express_children;
    assert_eq!((x.executions, x.transitions), (4, 8));
    assert!(x.duration >= Duration::from_millis(20), "{x:?}");
    assert!(x.billed_duration >= Duration::from_millis(400), "{x:?}");
    assert_eq!(x.billed_duration.as_millis() % 100, 0);
    let s = e.standard_children;
    assert_eq!((s.executions, s.transitions), (3, 3));
    assert!(s.duration >= Duration::from_millis(15), "{s:?}");
    assert_eq!(e.child_transitions, 11);
    assert_eq!(e.transitions, 2);
}

#[test]
fn express_children_time_out_after_the_express_limit() {
    assert_eq!(EXPRESS_MAX_DURATION, Duration::from_secs(300));
    let inv = FakeInvoker::new().on("work", |c| {
        if c.input == json!(1) {
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(c.input.clone())
    });
    let (mut opts, _) = recording_opts(0);
    opts.express_max_duration = Duration::from_millis(100);
    let mut m = typed_map(
        "EXPRESS",
        json!({"ItemsPath": "$.items", "ToleratedFailureCount": 1}),
    );
    // The child's own Retry cannot handle its execution timing out.
    m["States"]["Map"]["ItemProcessor"]["States"]["Work"]["Retry"] =
        json!([{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}]);
    let e = run_opts(m.clone(), json!({"items": [0, 1, 2]}), &inv, &opts);
    let out = output(&e);
    assert_eq!(out[0], json!(0));
    assert_eq!(out[1]["Error"], error_names::TIMEOUT);
    assert!(
        out[1]["Cause"].as_str().unwrap().contains("EXPRESS"),
        "{out}"
    );
    assert_eq!(out[2], json!(2));
    // The invoker was told how long the child had left.
    let timeout = inv
        .calls()
        .iter()
        .find(|c| c.input == json!(1))
        .unwrap()
        .timeout;
    assert!(
        timeout.is_some_and(|t| t <= Duration::from_millis(100)),
        "{timeout:?}"
    );
    // STANDARD children have no such limit.
    let standard = typed_map("STANDARD", json!({"ItemsPath": "$.items"}));
    assert_eq!(
        output(&run_opts(
            standard,
            json!({"items": [0, 1, 2]}),
            &inv,
            &opts
        )),
        json!([0, 1, 2])
    );
    // Without tolerance the timed-out child fails the Map.
    m["States"]["Map"]
        .as_object_mut()
        .unwrap()
        .remove("ToleratedFailureCount");
    let err = error(&run_opts(m, json!({"items": [1]}), &inv, &opts));
    assert_eq!(err.error, error_names::EXCEED_TOLERATED_FAILURE_THRESHOLD);
}

#[test]
fn timed_out_express_children_are_written_as_timed_out() {
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let inv = FakeInvoker::new().on("work", |_| {
        std::thread::sleep(Duration::from_millis(200));
        Ok(json!(1))
    });
    let mut opts = s3_opts(&s3);
    opts.express_max_duration = Duration::from_millis(50);
    let m = typed_map(
        "EXPRESS",
        json!({
            "ItemsPath": "$.items",
            "ToleratedFailurePercentage": 100,
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out"}}
        }),
    );
    let out = output(&run_opts(m, json!({"items": [0]}), &inv, &opts));
    let key = out["ResultWriterDetails"]["Key"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(&s3.object("out", key).unwrap()).unwrap();
    let failed_key = manifest["ResultFiles"]["FAILED"][0]["Key"]
        .as_str()
        .unwrap();
    let failed: Value = serde_json::from_slice(&s3.object("out", failed_key).unwrap()).unwrap();
    assert_eq!(failed[0]["Status"], "TIMED_OUT");
    assert_eq!(failed[0]["Error"], error_names::TIMEOUT);
}
