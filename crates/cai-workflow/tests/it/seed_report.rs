//! The seed report's three payloads, verbatim: the first and third plan as the report's logs
//! show; the second (malformed in the report: a trailing comma, then a brace closes the
//! object early) is refused with its line and column.

use cai_workflow::order::FileOrder;
use cai_workflow::plan::make_plan;
use cai_workflow::{DataPath, Payload, PayloadError};

const FIRST: &str = r#"{
  "bucket": "cosmicai-data",
  "file_limit": "11",
  "batch_size": 512,
  "object_type": "folder",
  "S3_object_name": "Anomaly Detection",
  "script": "/tmp/Anomaly Detection/Inference/inference.py",
  "result_path": "result-partition-100MB/1GB/1",
  "data_bucket": "cosmicai-data",
  "data_prefix": "100MB"
}"#;

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

const THIRD: &str = r#"{"bucket": "cosmicai-data",  
 "file_limit": "100",  
 "batch_size": 512,  
 "object_type": "folder",  
 "S3_object_name": "Anomaly Detection",  
 "script": "/tmp/Anomaly Detection/Inference/inference.py",  
 "result_path": "result-partition-100MB/1GB/3",  
 "data_bucket": "cosmicai-data",  
 "data_prefix": "100MB"}"#;

/// `100MB/1.pt` .. `100MB/130.pt`, as a listing returns them.
fn listing() -> Vec<String> {
    (1..=130).map(|i| format!("100MB/{i}.pt")).collect()
}

fn lexicographic(text: &str) -> Payload {
    let mut p = Payload::parse(text).expect("payload parses");
    p.settings.file_order = FileOrder::Lexicographic;
    p
}

fn rank_path(p: &Payload, rank: usize) -> DataPath {
    let plan = make_plan(p, &listing()).expect("plan");
    plan.rank(rank as u64).data_path.clone()
}

#[test]
fn first_payload_parses_with_numbers_as_strings() {
    let p = Payload::parse(FIRST).unwrap();
    assert_eq!(p.file_limit, Some(11));
    assert_eq!(p.batch_size, 512);
    assert_eq!(p.data_prefix, "100MB");
    assert_eq!(p.result_path, "result-partition-100MB/1GB/1");
    assert_eq!(
        p.settings.model.to_string(),
        "cosmicai-data/Anomaly Detection/Fine_Tune_Model/Mixed_Inception_z_VITAE_Base_Img_Full_New_Full.pt"
    );
    assert_eq!(p.settings.file_order, FileOrder::Natural);
}

#[test]
fn second_payload_is_refused_with_line_and_column() {
    let err = Payload::parse(SECOND).unwrap_err();
    match &err {
        PayloadError::Syntax { line, column, .. } => {
            assert_eq!((*line, *column), (10, 1), "{err}");
        }
        other => panic!("expected a syntax error, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("line 10, column 1"), "{msg}");
    assert!(msg.contains("trailing comma"), "{msg}");
}

#[test]
fn world_11_matches_the_reports_log() {
    let p = lexicographic(FIRST);
    let plan = make_plan(&p, &listing()).unwrap();
    assert_eq!(plan.world_size as usize, 11);
    assert_eq!(rank_path(&p, 9), DataPath::One("100MB/107.pt".into()));
    assert_eq!(rank_path(&p, 10), DataPath::One("100MB/108.pt".into()));
    // The whole rank 10 payload, key for key and type for type, as the report's log shows.
    let got = serde_json::to_value(plan.rank(10)).unwrap();
    let want: serde_json::Value = serde_json::from_str(
        r#"{
          "S3_BUCKET": "cosmicai-data",
          "S3_OBJECT_NAME": "Anomaly Detection",
          "SCRIPT": "/tmp/Anomaly Detection/Inference/inference.py",
          "S3_OBJECT_TYPE": "folder",
          "WORLD_SIZE": "11",
          "RANK": "10",
          "DATA_BUCKET": "cosmicai-data",
          "DATA_PREFIX": "100MB",
          "DATA_PATH": "100MB/108.pt",
          "RESULT_PATH": "result-partition-100MB/1GB/1",
          "BATCH_SIZE": 512
        }"#,
    )
    .unwrap();
    assert_eq!(got, want);
    let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "S3_BUCKET",
            "S3_OBJECT_NAME",
            "SCRIPT",
            "S3_OBJECT_TYPE",
            "WORLD_SIZE",
            "RANK",
            "DATA_BUCKET",
            "DATA_PREFIX",
            "DATA_PATH",
            "RESULT_PATH",
            "BATCH_SIZE"
        ]
    );
}

#[test]
fn world_50_matches_the_reports_log() {
    // The report's second payload, with its stray brace fixed as the user evidently did.
    let fixed = SECOND.replace(",\n}\n\"data_prefix\"", ",\n\"data_prefix\"");
    let p = lexicographic(&fixed);
    let plan = make_plan(&p, &listing()).unwrap();
    assert_eq!(plan.world_size as usize, 50);
    assert_eq!(rank_path(&p, 48), DataPath::One("100MB/25.pt".into()));
    assert_eq!(rank_path(&p, 49), DataPath::One("100MB/26.pt".into()));
    assert_eq!(plan.rank(49).world_size, "50");
}

#[test]
fn world_100_matches_the_reports_log() {
    let p = lexicographic(THIRD);
    let plan = make_plan(&p, &listing()).unwrap();
    assert_eq!(plan.world_size as usize, 100);
    assert_eq!(rank_path(&p, 99), DataPath::One("100MB/71.pt".into()));
    assert_eq!(plan.rank(99).rank, "99");
}

#[test]
fn natural_order_is_the_default_and_takes_1_to_11() {
    let p = Payload::parse(FIRST).unwrap();
    let plan = make_plan(&p, &listing()).unwrap();
    let files: Vec<&str> = plan.files.iter().map(String::as_str).collect();
    let want: Vec<String> = (1..=11).map(|i| format!("100MB/{i}.pt")).collect();
    assert_eq!(files, want.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn more_ranks_than_files_get_null_and_lists_when_fewer() {
    let mut p = Payload::parse(FIRST).unwrap();
    p.world_size = Some(13);
    let plan = make_plan(&p, &listing()).unwrap();
    assert_eq!(plan.rank(10).data_path, DataPath::One("100MB/11.pt".into()));
    assert_eq!(plan.rank(11).data_path, DataPath::None);
    assert_eq!(
        serde_json::to_value(plan.rank(12)).unwrap()["DATA_PATH"],
        serde_json::Value::Null
    );
    p.world_size = Some(4);
    let plan = make_plan(&p, &listing()).unwrap();
    assert_eq!(
        serde_json::to_value(plan.rank(0)).unwrap()["DATA_PATH"],
        serde_json::json!(["100MB/1.pt", "100MB/2.pt", "100MB/3.pt"])
    );
}
