//! ResultWriter on a distributed Map: the files under `<Prefix>/<map run id>/`, the
//! manifest, the Map's output, failures and refusals.

use crate::common;

use std::sync::Arc;

use cai_asl::{error_names, MemoryS3, TaskFailure};
use common::*;
use serde_json::{json, Value};

const ARN_PREFIX: &str = "arn:aws:states:local:000000000000";

fn writing(prefix: Value, extra: Value) -> Value {
    let mut params = json!({"Bucket": "out"});
    match prefix {
        Value::Null => {}
        Value::String(p) if p.starts_with('$') => params["Prefix.$"] = json!(p),
        p => params["Prefix"] = p,
    }
    let mut fields = json!({
        "ItemsPath": "$.items",
        "Label": "Ranks",
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": params}
    });
    for (k, v) in extra.as_object().unwrap() {
        fields[k] = v.clone();
    }
    distributed_map(fields)
}

/// Item 2 fails; the others return `{"done": item}`.
fn item_2_fails() -> FakeInvoker {
    FakeInvoker::new().on("work", |c| {
        if c.input == json!(2) {
            Err(TaskFailure::new("RankFailed", "rank 2 broke"))
        } else {
            Ok(json!({"done": c.input}))
        }
    })
}

fn read_json(s3: &MemoryS3, key: &str) -> Value {
    let body = s3
        .object("out", key)
        .unwrap_or_else(|| panic!("no object {key}: {:?}", s3.keys("out")));
    serde_json::from_slice(&body).unwrap()
}

fn is_timestamp(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 24 && s.ends_with('Z') && &s[10..11] == "T"
}

#[test]
fn writes_results_and_manifest_and_returns_the_details() {
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let m = writing(
        json!("runs/"),
        json!({"ToleratedFailureCount": 1, "ResultPath": "$.written"}),
    );
    let e = run_opts(
        m,
        json!({"items": [0, 1, 2, 3]}),
        &item_2_fails(),
        &s3_opts(&s3),
    );
    let out = output(&e);
    assert_eq!(
        out["items"],
        json!([0, 1, 2, 3]),
        "ResultPath keeps the input"
    );
    let details = &out["written"];
    let arn = details["MapRunArn"].as_str().unwrap();
    let run_id = arn
        .strip_prefix(&format!("{ARN_PREFIX}:mapRun:cai/Ranks:"))
        .unwrap_or_else(|| panic!("{arn}"));
    assert_eq!(run_id.len(), 36, "{run_id}");
    assert_eq!(run_id.matches('-').count(), 4, "{run_id}");
    let manifest_key = format!("runs/{run_id}/manifest.json");
    assert_eq!(
        details["ResultWriterDetails"],
        json!({"Bucket": "out", "Key": manifest_key})
    );
    let mut keys = s3.keys("out");
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("runs/{run_id}/FAILED_0.json"),
            format!("runs/{run_id}/SUCCEEDED_0.json"),
            manifest_key.clone(),
        ]
    );

    let manifest = read_json(&s3, &manifest_key);
    let size = |k: &str| s3.object("out", k).unwrap().len();
    let succeeded_key = format!("runs/{run_id}/SUCCEEDED_0.json");
    let failed_key = format!("runs/{run_id}/FAILED_0.json");
    assert_eq!(
        manifest,
        json!({
            "DestinationBucket": "out",
            "MapRunArn": arn,
            "ResultFiles": {
                "FAILED": [{"Key": failed_key, "Size": size(&failed_key)}],
                "PENDING": [],
                "SUCCEEDED": [{"Key": succeeded_key, "Size": size(&succeeded_key)}]
            }
        })
    );

    let succeeded = read_json(&s3, &succeeded_key);
    let succeeded = succeeded.as_array().unwrap();
    assert_eq!(succeeded.len(), 3);
    for (record, item) in succeeded.iter().zip([0, 1, 3]) {
        let fields: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            [
                "ExecutionArn",
                "Input",
                "InputDetails",
                "Name",
                "Output",
                "OutputDetails",
                "StartDate",
                "StateMachineArn",
                "Status",
                "StopDate"
            ]
        );
        assert_eq!(
            record["ExecutionArn"],
            format!("{ARN_PREFIX}:execution:cai:local/Ranks/{item}")
        );
        assert_eq!(record["Name"], format!("local/Ranks/{item}"));
        assert_eq!(record["Input"], json!(item.to_string()));
        let output: Value = serde_json::from_str(record["Output"].as_str().unwrap()).unwrap();
        assert_eq!(output, json!({"done": item}));
        assert_eq!(record["InputDetails"], json!({"Included": true}));
        assert_eq!(record["OutputDetails"], json!({"Included": true}));
        assert_eq!(record["Status"], "SUCCEEDED");
        assert_eq!(
            record["StateMachineArn"],
            format!("{ARN_PREFIX}:stateMachine:cai/Ranks")
        );
        assert!(is_timestamp(&record["StartDate"]), "{record}");
        assert!(is_timestamp(&record["StopDate"]), "{record}");
    }
    let failed = read_json(&s3, &failed_key);
    let failed = &failed.as_array().unwrap()[0];
    assert_eq!(failed["Status"], "FAILED");
    assert_eq!(failed["Error"], "RankFailed");
    assert_eq!(failed["Cause"], "rank 2 broke");
    assert_eq!(failed["Input"], "2");
    assert!(failed.get("Output").is_none(), "{failed}");
}

#[test]
fn prefixes_are_templates_and_each_map_run_gets_its_own_id() {
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let inv = FakeInvoker::new().on("work", echo());
    let m = writing(
        json!("$.dest"),
        json!({"ResultSelector": {"manifest.$": "$.ResultWriterDetails.Key"}}),
    );
    let first = output(&run_opts(
        m.clone(),
        json!({"items": [1], "dest": "a/b"}),
        &inv,
        &s3_opts(&s3),
    ));
    let second = output(&run_opts(
        m,
        json!({"items": [1], "dest": "a/b"}),
        &inv,
        &s3_opts(&s3),
    ));
    let (k1, k2) = (
        first["manifest"].as_str().unwrap(),
        second["manifest"].as_str().unwrap(),
    );
    assert!(
        k1.starts_with("a/b/") && k1.ends_with("/manifest.json"),
        "{k1}"
    );
    assert_ne!(k1, k2, "a Map run id is unique");
    // No prefix: directly under the run id. An empty map writes only the manifest.
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let out = output(&run_opts(
        writing(Value::Null, json!({})),
        json!({"items": []}),
        &inv,
        &s3_opts(&s3),
    ));
    let key = out["ResultWriterDetails"]["Key"].as_str().unwrap();
    assert_eq!(key.split('/').count(), 2, "{key}");
    assert_eq!(s3.keys("out"), [key]);
    let manifest = read_json(&s3, key);
    assert_eq!(
        manifest["ResultFiles"],
        json!({"FAILED": [], "PENDING": [], "SUCCEEDED": []})
    );
}

#[test]
fn results_are_written_even_when_the_map_fails_its_threshold() {
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("out");
    let mut m = writing(json!("p"), json!({"MaxConcurrency": 1}));
    m["States"]["Map"]["Catch"] =
        json!([{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "Done"}]);
    m["States"]["Done"] = json!({"Type": "Pass", "End": true});
    let e = run_opts(
        m,
        json!({"items": [0, 1, 2, 3]}),
        &item_2_fails(),
        &s3_opts(&s3),
    );
    let out = output(&e);
    assert_eq!(
        out["Error"],
        error_names::EXCEED_TOLERATED_FAILURE_THRESHOLD
    );
    let keys = s3.keys("out");
    assert_eq!(keys.len(), 3, "{keys:?}");
    let manifest_key = keys.iter().find(|k| k.ends_with("manifest.json")).unwrap();
    let manifest = read_json(&s3, manifest_key);
    let succeeded_key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
        .as_str()
        .unwrap();
    // Items 0 and 1 ran before item 2 failed; item 3 never started.
    assert_eq!(read_json(&s3, succeeded_key).as_array().unwrap().len(), 2);
}

#[test]
fn write_failures_fail_with_result_writer_failed() {
    let inv = FakeInvoker::new().on("work", echo());
    // The bucket does not exist.
    let s3 = Arc::new(MemoryS3::new());
    let err = error(&run_opts(
        writing(json!("p"), json!({})),
        json!({"items": [1]}),
        &inv,
        &s3_opts(&s3),
    ));
    assert_eq!(err.error, error_names::RESULT_WRITER_FAILED);
    assert!(err.cause.contains("NoSuchBucket"), "{}", err.cause);
    assert!(err.cause.contains("s3://out/p/"), "{}", err.cause);
    // No S3 access: refused before any child starts.
    let inv = FakeInvoker::new().on("work", echo());
    let err = error(&run(
        writing(json!("p"), json!({})),
        json!({"items": [1]}),
        &inv,
    ));
    assert_eq!(err.error, error_names::RESULT_WRITER_FAILED);
    assert!(err.cause.contains("no S3 access"), "{}", err.cause);
    assert!(inv.calls().is_empty());
    // A Bucket that is not a string.
    let s3 = Arc::new(MemoryS3::new());
    let mut m = writing(json!("p"), json!({}));
    m["States"]["Map"]["ResultWriter"]["Parameters"] = json!({"Bucket.$": "$.items"});
    let err = error(&run_opts(m, json!({"items": [1]}), &inv, &s3_opts(&s3)));
    assert_eq!(err.error, error_names::RESULT_WRITER_FAILED);
    assert!(err.cause.contains("Parameters.Bucket"), "{}", err.cause);
}

#[test]
fn result_writer_refusals_name_the_field() {
    let with_writer = |w: Value| distributed_map(json!({"ResultWriter": w}));
    let ok = json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": "p"}});
    assert!(cai_asl::Definition::from_value(with_writer(ok.clone())).is_ok());
    let mut config = ok.clone();
    config["WriterConfig"] = json!({"OutputType": "JSONL", "Transformation": "COMPACT"});
    assert_refusal(
        &refused(with_writer(config)),
        "States.Map",
        "ResultWriter.WriterConfig",
        true,
    );
    let mut wrong = ok.clone();
    wrong["Resource"] = json!("arn:aws:states:::s3:getObject");
    assert_refusal(
        &refused(with_writer(wrong)),
        "States.Map",
        "ResultWriter.Resource",
        false,
    );
    let mut extra = ok.clone();
    extra["Parameters"]["Tagging"] = json!("x");
    assert_refusal(
        &refused(with_writer(extra)),
        "States.Map",
        "ResultWriter.Parameters.Tagging",
        false,
    );
    let mut no_bucket = ok.clone();
    no_bucket["Parameters"] = json!({"Prefix": "p"});
    assert_refusal(
        &refused(with_writer(no_bucket)),
        "States.Map",
        "ResultWriter.Parameters.Bucket",
        false,
    );
    let mut inline = with_writer(ok);
    inline["States"]["Map"]["ItemProcessor"]["ProcessorConfig"] = json!({"Mode": "INLINE"});
    assert_refusal(&refused(inline), "States.Map", "ResultWriter", false);
}
