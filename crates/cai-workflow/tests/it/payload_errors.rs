//! Every bad payload is refused before any work, with the field named and what was expected;
//! unknown fields are kept; key-bearing fields refuse traversal.

use cai_workflow::{Payload, PayloadError};
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "bucket": "cosmicai-data", "file_limit": "11", "batch_size": 512,
        "object_type": "folder", "S3_object_name": "Anomaly Detection",
        "script": "/tmp/x.py", "result_path": "res/1", "data_bucket": "cosmicai-data",
        "data_prefix": "100MB"
    })
}

fn with(field: &str, v: Value) -> Result<Payload, PayloadError> {
    let mut p = base();
    p[field] = v;
    Payload::from_value(&p)
}

fn without(field: &str) -> Result<Payload, PayloadError> {
    let mut p = base();
    p.as_object_mut().unwrap().remove(field);
    Payload::from_value(&p)
}

fn message(r: Result<Payload, PayloadError>) -> String {
    r.expect_err("must be refused").to_string()
}

#[test]
fn missing_required_fields_are_named() {
    for f in [
        "bucket",
        "batch_size",
        "result_path",
        "data_bucket",
        "data_prefix",
        "S3_object_name",
    ] {
        let m = message(without(f));
        assert!(
            m.contains(&format!("`{f}`")) && m.contains("missing"),
            "{f}: {m}"
        );
    }
}

#[test]
fn wrong_types_and_values_are_named_with_expectation() {
    let cases = [
        ("batch_size", json!("lots"), "whole number"),
        ("batch_size", json!(0), "whole number"),
        ("file_limit", json!(-3), "whole number"),
        ("file_limit", json!(true), "whole number"),
        ("bucket", json!(12), "a string"),
        ("data_bucket", json!("Bad_Bucket"), "bucket"),
        ("memory_mb", json!(64), "from 128 to 10240"),
        ("timeout_seconds", json!(901), "from 1 to 900"),
        ("file_order", json!("random"), "natural"),
        ("tolerated_failure_percentage", json!(150), "percentage"),
        ("model", json!("nonsense"), "seed:N"),
        ("retry", json!(3), "an object"),
        ("architecture", json!("sparc"), "x86_64"),
    ];
    for (field, v, expect) in cases {
        let m = message(with(field, v.clone()));
        assert!(m.contains(&format!("`{field}`")), "{field}={v}: {m}");
        assert!(m.contains(expect), "{field}={v}: {m}");
    }
    let m = message(with("retry", json!({"max_attempts": "x"})));
    assert!(m.contains("retry.max_attempts"), "{m}");
    let m = message(with("retry", json!({"backoff_rate": 0.5})));
    assert!(m.contains("retry.backoff_rate"), "{m}");
    let m = message(with("retry", json!({"colour": 1})));
    assert!(m.contains("retry.colour"), "{m}");
}

#[test]
fn numbers_as_strings_and_unknown_fields_are_fine() {
    let mut p = base();
    p["batch_size"] = json!("256");
    p["comment"] = json!("from the class walkthrough");
    p["retry"] = json!({"max_attempts": "4", "jitter": "NONE"});
    let parsed = Payload::from_value(&p).unwrap();
    assert_eq!(parsed.batch_size, 256);
    assert_eq!(parsed.settings.retry.max_attempts, 4);
    assert!(!parsed.settings.retry.jitter);
    assert_eq!(
        parsed.extra.get("comment"),
        Some(&json!("from the class walkthrough"))
    );
    assert_eq!(
        parsed.to_value()["comment"],
        json!("from the class walkthrough")
    );
}

#[test]
fn traversal_is_refused_in_every_key_bearing_field() {
    let bad = [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a\\..\\b",
        "a\u{0}b",
        "./a",
        "a//b",
    ];
    for field in ["result_path", "data_prefix", "S3_object_name"] {
        for v in bad {
            let m = message(with(field, json!(v)));
            assert!(m.contains(&format!("`{field}`")), "{field}={v:?}: {m}");
        }
    }
    for field in ["bucket", "data_bucket"] {
        for v in ["..", "../etc", "a/b", "/root", "x\u{0}y"] {
            let m = message(with(field, json!(v)));
            assert!(m.contains(&format!("`{field}`")), "{field}={v:?}: {m}");
        }
    }
    for v in [
        "cosmicai-data/../../etc/passwd",
        "cosmicai-data//x",
        "../b/k",
        "/abs/k",
    ] {
        let m = message(with("model", json!(v)));
        assert!(m.contains("`model`"), "model={v:?}: {m}");
    }
}

#[test]
fn malformed_json_gives_line_and_column() {
    let m = Payload::parse("{\n  \"bucket\": \"b\"\n  \"x\": 1\n}")
        .unwrap_err()
        .to_string();
    assert!(m.contains("line 3, column 3"), "{m}");
    let m = Payload::parse("[1, 2]").unwrap_err().to_string();
    assert!(m.contains("JSON object"), "{m}");
}
