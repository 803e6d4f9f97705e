//! Bad payloads and definitions: `cai run` exits 2 before any work, naming what is wrong,
//! and writes nothing (least of all outside the store).

use crate::common_workflow;

use common_workflow::{cai, walk, Env, BUCKET};
use serde_json::json;

/// The seed report's second payload, verbatim: a trailing comma, then a brace closes the
/// object early and the last field dangles on the next line.
const SECOND: &str = r#"{
  "bucket": "cosmicai-data",
  "file_limit": "50",
  "batch_size": 512,
  "object_type": "folder",
  "S3_object_name": "Anomaly Detection",
  "script": "/tmp/Anomaly Detection/Inference/inference.py",
  "result_path": "result-partition-100MB/1GB/2",
  "data_bucket": "cosmicai-data",
}
"data_prefix": "100MB"}"#;

#[test]
fn malformed_seed_payload_names_line_and_column() {
    let env = Env::new(1, 2);
    let path = env.payload_file(SECOND);
    let before = walk(env.dir.path());
    let out = env.run_file(&path, &[], None);
    out.expect_code(2);
    assert!(out.stderr.contains("line 10, column 1"), "{}", out.stderr);
    assert!(out.stderr.contains("trailing comma"), "{}", out.stderr);
    assert!(
        out.stderr.contains(path.to_str().unwrap()),
        "names the file: {}",
        out.stderr
    );
    assert_eq!(walk(env.dir.path()), before, "something was written");
}

#[test]
fn path_traversal_in_any_key_field_is_refused_up_front() {
    let env = Env::new(1, 2);
    // Files anywhere near the store: the temp dir's parent would receive `../` escapes.
    let outer = env.dir.path().parent().unwrap().to_path_buf();
    let marker = format!("escape-{}", std::process::id());
    let cases = [
        ("result_path", json!(format!("../../{marker}"))),
        ("result_path", json!(format!("res/../../../{marker}"))),
        ("result_path", json!(format!("/tmp/{marker}"))),
        ("data_prefix", json!(format!("../{marker}"))),
        ("data_prefix", json!("parts/../../..")),
        ("S3_object_name", json!(format!("../../{marker}"))),
        ("bucket", json!("..")),
        ("bucket", json!(format!("../{marker}"))),
        ("data_bucket", json!("..")),
        ("data_bucket", json!(format!("../{marker}"))),
        ("model", json!(format!("{BUCKET}/../../{marker}.pt"))),
        ("model", json!(format!("../{marker}/w.pt"))),
        ("model", json!(format!("{BUCKET}//etc/passwd"))),
    ];
    let before = walk(env.dir.path());
    for (field, value) in cases {
        let mut extra = json!({});
        extra[field] = value.clone();
        if field == "S3_object_name" {
            // The default model lives under S3_object_name.
            extra["model"] = serde_json::Value::Null;
        }
        let payload = env.payload("res/ok", extra);
        let out = env.run(&payload, &[], None);
        out.expect_code(2);
        assert!(
            out.stderr.contains(&format!("`{field}`")),
            "{field} = {value}: the error does not name the field: {}",
            out.stderr
        );
        let mut after = walk(env.dir.path());
        after.remove(std::path::Path::new("payload.json"));
        let mut want = before.clone();
        want.remove(std::path::Path::new("payload.json"));
        assert_eq!(after, want, "{field} = {value}: files were written");
    }
    for dir in [
        outer.clone(),
        outer.parent().unwrap_or(&outer).to_path_buf(),
    ] {
        let leaked: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(&marker))
            .map(|e| e.path())
            .collect();
        assert!(leaked.is_empty(), "written outside the store: {leaked:?}");
    }
}

/// The generated definition for a payload, as `cai asl` prints it.
fn generated(env: &Env, payload: &serde_json::Value) -> serde_json::Value {
    let p = env.payload_file(&payload.to_string());
    let out = cai(&["asl", p.to_str().unwrap()], &[]);
    out.expect_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn run_with_definition(env: &Env, def: &serde_json::Value) -> common_workflow::Out {
    let path = env.dir.path().join("edited.json");
    std::fs::write(&path, serde_json::to_string_pretty(def).unwrap()).unwrap();
    let payload = env.payload("res/def", json!({}));
    let out = env.run(&payload, &["--definition", path.to_str().unwrap()], None);
    assert!(
        !env.results("res/def").exists(),
        "work was done: {}",
        out.stderr
    );
    out
}

#[test]
fn definition_with_an_unknown_field_is_refused_naming_state_and_field() {
    let env = Env::new(1, 2);
    let payload = env.payload("res/def", json!({}));
    let def = generated(&env, &payload);

    let mut heartbeat = def.clone();
    heartbeat["States"]["Inference"]["ItemProcessor"]["States"]["Infer"]["HeartbeatSeconds"] =
        json!(5);
    let out = run_with_definition(&env, &heartbeat);
    out.expect_code(2);
    assert!(out.stderr.contains("Infer"), "{}", out.stderr);
    assert!(out.stderr.contains("HeartbeatSeconds"), "{}", out.stderr);
    assert!(out.stderr.contains("--definition"), "{}", out.stderr);

    let mut bogus = def.clone();
    bogus["States"]["Summarize"]["Bogus"] = json!(true);
    let out = run_with_definition(&env, &bogus);
    out.expect_code(2);
    assert!(
        out.stderr.contains("Summarize`") && out.stderr.contains("field `Bogus`"),
        "{}",
        out.stderr
    );
}

#[test]
fn definition_with_a_foreign_task_resource_is_refused() {
    let env = Env::new(1, 2);
    let payload = env.payload("res/def", json!({}));
    let mut def = generated(&env, &payload);
    let foreign = "arn:aws:states:::sqs:sendMessage";
    def["States"]["Summarize"]["Resource"] = json!(foreign);
    let out = run_with_definition(&env, &def);
    out.expect_code(2);
    assert!(out.stderr.contains(foreign), "{}", out.stderr);
    assert!(
        out.stderr.contains("not one of cai's functions"),
        "{}",
        out.stderr
    );

    let mut def = generated(&env, &payload);
    def["States"]["Inference"]["ItemProcessor"]["States"]["Infer"]["Resource"] =
        json!("arn:aws:lambda:us-east-1:1:function:someone-elses-thing");
    let out = run_with_definition(&env, &def);
    out.expect_code(2);
    assert!(out.stderr.contains("someone-elses-thing"), "{}", out.stderr);
}
