//! ItemReader on a distributed Map: JSON, JSONL and CSV objects, S3 listings across
//! pages, MaxItems, reading failures and refusals.

use crate::common;

use std::sync::Arc;

use cai_asl::{error_names, MemoryS3, Status};
use common::*;
use serde_json::{json, Value};

fn reader(resource: &str, parameters: Value, config: Option<Value>) -> Value {
    let mut r =
        json!({"Resource": format!("arn:aws:states:::s3:{resource}"), "Parameters": parameters});
    if let Some(c) = config {
        r["ReaderConfig"] = c;
    }
    r
}

fn get_object(key: &str, config: Value) -> Value {
    reader(
        "getObject",
        json!({"Bucket": "data", "Key": key}),
        Some(config),
    )
}

/// Runs a distributed Map reading with `item_reader` whose Task echoes its input.
fn read(s3: &Arc<MemoryS3>, item_reader: Value, input: Value) -> cai_asl::Execution {
    let inv = FakeInvoker::new().on("work", echo());
    run_opts(
        distributed_map(json!({"ItemReader": item_reader})),
        input,
        &inv,
        &s3_opts(s3),
    )
}

fn items(s3: &Arc<MemoryS3>, item_reader: Value) -> Value {
    output(&read(s3, item_reader, json!({})))
}

#[test]
fn json_array_items_with_parameter_paths_and_item_selector() {
    let s3 = Arc::new(MemoryS3::new());
    s3.insert(
        "data",
        "in/ranks.json",
        r#"[{"rank": 0}, {"rank": 1}, {"rank": 2}]"#,
    );
    let inv = FakeInvoker::new().on("work", echo());
    let m = distributed_map(json!({
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"}
        },
        "ItemSelector": {"i.$": "$$.Map.Item.Index", "rank.$": "$$.Map.Item.Value.rank", "tag.$": "$.tag"}
    }));
    let e = run_opts(
        m,
        json!({"bucket": "data", "key": "in/ranks.json", "tag": "T"}),
        &inv,
        &s3_opts(&s3),
    );
    assert_eq!(
        output(&e),
        json!([
            {"i": 0, "rank": 0, "tag": "T"},
            {"i": 1, "rank": 1, "tag": "T"},
            {"i": 2, "rank": 2, "tag": "T"}
        ])
    );
    assert_eq!(e.standard_children.executions, 3);
    assert_eq!(e.child_transitions, 3);
}

#[test]
fn jsonl_items_are_one_value_per_non_empty_line() {
    let s3 = Arc::new(MemoryS3::new());
    s3.insert("data", "a.jsonl", "{\"a\": 1}\n\n  [2]  \r\n\"three\"\n4");
    assert_eq!(
        items(&s3, get_object("a.jsonl", json!({"InputType": "JSONL"}))),
        json!([{"a": 1}, [2], "three", 4])
    );
}

#[test]
fn csv_with_the_first_row_as_headers_gives_objects_of_strings() {
    let s3 = Arc::new(MemoryS3::new());
    s3.insert(
        "data",
        "r.csv",
        "rank,name,note\r\n0,\"Smith, J\",\"say \"\"hi\"\"\"\r\n\r\n1,two lines,\"a\nb\"\n2,,\n3,short\n4,\"\",{\"\"k\"\":1}\n",
    );
    let out = items(
        &s3,
        get_object(
            "r.csv",
            json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
        ),
    );
    assert_eq!(
        out,
        json!([
            {"rank": "0", "name": "Smith, J", "note": "say \"hi\""},
            {"rank": "1", "name": "two lines", "note": "a\nb"},
            {"rank": "2", "name": "", "note": ""},
            {"rank": "3", "name": "short", "note": ""},
            {"rank": "4", "name": "", "note": "{\"k\":1}"}
        ])
    );
    // Keys keep the header order.
    let keys: Vec<&String> = out[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["rank", "name", "note"]);
    // CSVHeaderLocation defaults to FIRST_ROW.
    assert_eq!(
        items(&s3, get_object("r.csv", json!({"InputType": "CSV"}))),
        out
    );
    // A UTF-8 byte order mark is not part of the first header.
    s3.insert("data", "bom.csv", "\u{feff}rank\n7\n");
    assert_eq!(
        items(&s3, get_object("bom.csv", json!({"InputType": "CSV"}))),
        json!([{"rank": "7"}])
    );
}

#[test]
fn csv_with_given_headers_and_each_delimiter() {
    let s3 = Arc::new(MemoryS3::new());
    for (delimiter, sep) in [
        ("COMMA", ","),
        ("PIPE", "|"),
        ("SEMICOLON", ";"),
        ("SPACE", " "),
        ("TAB", "\t"),
    ] {
        let key = format!("{delimiter}.csv");
        s3.insert("data", &key, format!("0{sep}a\\{sep}b\n1{sep}c\n"));
        let out = items(
            &s3,
            get_object(
                &key,
                json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["rank", "v"], "CSVDelimiter": delimiter}),
            ),
        );
        assert_eq!(
            out,
            json!([{"rank": "0", "v": format!("a{sep}b")}, {"rank": "1", "v": "c"}]),
            "{delimiter}"
        );
    }
}

#[test]
fn list_objects_v2_follows_every_page() {
    let s3 = Arc::new(MemoryS3::with_page_size(2));
    for i in 0..5 {
        s3.insert("data", &format!("ranks/{i}.json"), vec![b'x'; i + 1]);
    }
    s3.insert("data", "other/x", "y");
    s3.insert("data", "ranks0", "outside the prefix `ranks/`");
    let out = items(
        &s3,
        reader(
            "listObjectsV2",
            json!({"Bucket": "data", "Prefix": "ranks/"}),
            None,
        ),
    );
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), 5);
    for (i, item) in out.iter().enumerate() {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["Etag", "Key", "LastModified", "Size", "StorageClass"]
        );
        assert_eq!(item["Key"], format!("ranks/{i}.json"));
        assert_eq!(item["Size"], json!(i + 1));
        assert_eq!(item["StorageClass"], "STANDARD");
        assert!(item["LastModified"].as_i64().unwrap() > 1_600_000_000);
        let etag = item["Etag"].as_str().unwrap();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    }
}

#[test]
fn list_objects_v2_without_prefix_lists_the_bucket() {
    let s3 = Arc::new(MemoryS3::with_page_size(3));
    for i in 0..7 {
        s3.insert("data", &format!("k{i}"), "v");
    }
    let e = read(
        &s3,
        reader("listObjectsV2", json!({"Bucket.$": "$.b"}), None),
        json!({"b": "data"}),
    );
    assert_eq!(output(&e).as_array().unwrap().len(), 7);
}

#[test]
fn max_items_and_max_items_path_take_the_first_items() {
    let s3 = Arc::new(MemoryS3::with_page_size(2));
    s3.insert("data", "a.json", "[0, 1, 2, 3, 4]");
    s3.insert("data", "a.jsonl", "0\n1\n2\nnot json after the limit");
    s3.insert("data", "a.csv", "n\n0\n1\n2\n3\n");
    for i in 0..5 {
        s3.insert("data", &format!("objs/{i}"), "v");
    }
    assert_eq!(
        items(
            &s3,
            get_object("a.json", json!({"InputType": "JSON", "MaxItems": 2}))
        ),
        json!([0, 1])
    );
    assert_eq!(
        items(
            &s3,
            get_object("a.jsonl", json!({"InputType": "JSONL", "MaxItems": 3}))
        ),
        json!([0, 1, 2])
    );
    assert_eq!(
        items(
            &s3,
            get_object("a.csv", json!({"InputType": "CSV", "MaxItems": 2}))
        ),
        json!([{"n": "0"}, {"n": "1"}])
    );
    let listed = items(
        &s3,
        reader(
            "listObjectsV2",
            json!({"Bucket": "data", "Prefix": "objs/"}),
            Some(json!({"MaxItems": 3})),
        ),
    );
    assert_eq!(listed.as_array().unwrap().len(), 3);
    // 0 means no limit; more than there are is fine.
    assert_eq!(
        items(
            &s3,
            get_object("a.json", json!({"InputType": "JSON", "MaxItems": 0}))
        )
        .as_array()
        .unwrap()
        .len(),
        5
    );
    assert_eq!(
        items(
            &s3,
            get_object("a.json", json!({"InputType": "JSON", "MaxItems": 50}))
        )
        .as_array()
        .unwrap()
        .len(),
        5
    );
    let e = read(
        &s3,
        get_object(
            "a.json",
            json!({"InputType": "JSON", "MaxItemsPath": "$.limit"}),
        ),
        json!({"limit": 4}),
    );
    assert_eq!(output(&e), json!([0, 1, 2, 3]));
    let e = read(
        &s3,
        get_object(
            "a.json",
            json!({"InputType": "JSON", "MaxItemsPath": "$.limit"}),
        ),
        json!({"limit": "four"}),
    );
    let err = error(&e);
    assert_eq!(err.error, error_names::ITEM_READER_FAILED);
    assert!(err.cause.contains("MaxItemsPath"), "{}", err.cause);
}

/// The failure of reading `key` (stored with `body` unless `None`) with `config`.
fn read_failure(body: Option<&str>, config: Value) -> cai_asl::TaskFailure {
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("data");
    if let Some(body) = body {
        s3.insert("data", "in/obj", body);
    }
    let inv = FakeInvoker::new().on("work", echo());
    let e = run_opts(
        distributed_map(json!({"ItemReader": get_object("in/obj", config)})),
        json!({}),
        &inv,
        &s3_opts(&s3),
    );
    assert!(inv.calls().is_empty(), "no child may start");
    let err = error(&e);
    assert_eq!(err.error, error_names::ITEM_READER_FAILED, "{err:?}");
    assert!(err.cause.contains("s3://data/in/obj"), "{}", err.cause);
    assert!(err.cause.contains("`Map`"), "{}", err.cause);
    err
}

#[test]
fn unreadable_objects_fail_with_item_reader_failed() {
    let json_type = json!({"InputType": "JSON"});
    let cause = |body, config: &Value| read_failure(body, config.clone()).cause;
    assert!(cause(Some(r#"{"a": 1}"#), &json_type).contains("not the JSON array"));
    assert!(cause(Some("[1, 2"), &json_type).contains("not valid JSON"));
    assert!(cause(None, &json_type).contains("NoSuchKey"));
    let c = cause(
        Some("1\n{\"ok\": true}\n{oops}\n"),
        &json!({"InputType": "JSONL"}),
    );
    assert!(c.contains("line 3"), "{c}");
    let csv = json!({"InputType": "CSV"});
    assert!(cause(Some("a,b\n1,2,3\n"), &csv).contains("line 2 has 3 fields"));
    assert!(cause(Some("a,a\n1,2\n"), &csv).contains("names `a` twice"));
    assert!(cause(Some("a\n\"open\n"), &csv).contains("never closed"));
    let long_header = format!("{}\n1\n", "h".repeat(10 * 1024 + 1));
    assert!(cause(Some(&long_header), &csv).contains("header row"));
    // A missing bucket.
    let s3 = Arc::new(MemoryS3::new());
    let e = read(
        &s3,
        get_object("x", json!({"InputType": "JSON"})),
        json!({}),
    );
    assert!(error(&e).cause.contains("NoSuchBucket"), "{:?}", e.error);
}

#[test]
fn objects_over_the_read_limit_and_missing_s3_access_fail() {
    let s3 = Arc::new(MemoryS3::new());
    s3.insert("data", "big.json", format!("[{}]", "1,".repeat(100) + "1"));
    let mut opts = s3_opts(&s3);
    opts.item_reader_max_bytes = 100;
    let inv = FakeInvoker::new().on("work", echo());
    let m = distributed_map(
        json!({"ItemReader": get_object("big.json", json!({"InputType": "JSON"}))}),
    );
    let err = error(&run_opts(m.clone(), json!({}), &inv, &opts));
    assert_eq!(err.error, error_names::ITEM_READER_FAILED);
    assert!(
        err.cause.contains("more than the 100 bytes"),
        "{}",
        err.cause
    );
    // No S3 access configured at all.
    let err = error(&run(m, json!({}), &inv));
    assert_eq!(err.error, error_names::ITEM_READER_FAILED);
    assert!(err.cause.contains("no S3 access"), "{}", err.cause);
}

#[test]
fn item_reader_failures_can_be_caught_and_retried() {
    let s3 = Arc::new(MemoryS3::new());
    s3.create_bucket("data");
    let mut m = distributed_map(json!({
        "ItemReader": get_object("missing.json", json!({"InputType": "JSON"})),
        "Retry": [{"ErrorEquals": ["States.ItemReaderFailed"], "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["States.ItemReaderFailed"], "ResultPath": "$.error", "Next": "Handled"}]
    }));
    m["States"]["Handled"] = json!({"Type": "Pass", "End": true});
    let inv = FakeInvoker::new().on("work", echo());
    let e = run_opts(m, json!({"x": 1}), &inv, &s3_opts(&s3));
    assert_eq!(e.status, Status::Succeeded);
    let out = output(&e);
    assert_eq!(out["error"]["Error"], error_names::ITEM_READER_FAILED);
    // Map + 2 retries + Handled.
    assert_eq!(e.transitions, 4);
}

#[test]
fn item_reader_refusals_name_the_field() {
    let with_reader = |r: Value| distributed_map(json!({"ItemReader": r}));
    let json_reader = get_object("k", json!({"InputType": "JSON"}));
    // Inline maps cannot read from S3.
    let mut inline = with_reader(json_reader.clone());
    inline["States"]["Map"]["ItemProcessor"]["ProcessorConfig"] = json!({"Mode": "INLINE"});
    assert_refusal(&refused(inline), "States.Map", "ItemReader", false);
    // ItemsPath only reads the state input.
    let mut both = with_reader(json_reader);
    both["States"]["Map"]["ItemsPath"] = json!("$.items");
    assert_refusal(&refused(both), "States.Map", "ItemsPath", false);
    for (config, field, unsupported) in [
        (json!({"InputType": "PARQUET"}), "InputType", true),
        (json!({"InputType": "MANIFEST"}), "InputType", true),
        (json!({"InputType": "XML"}), "InputType", false),
        (
            json!({"InputType": "JSON", "ItemsPointer": "/items"}),
            "ItemsPointer",
            true,
        ),
        (
            json!({"InputType": "JSON", "Transformation": "LOAD_AND_FLATTEN"}),
            "Transformation",
            true,
        ),
        (
            json!({"InputType": "JSON", "ManifestType": "S3_INVENTORY"}),
            "ManifestType",
            true,
        ),
        (
            json!({"InputType": "JSON", "CSVDelimiter": "PIPE"}),
            "CSVDelimiter",
            false,
        ),
        (
            json!({"InputType": "CSV", "CSVDelimiter": "COLON"}),
            "CSVDelimiter",
            false,
        ),
        (
            json!({"InputType": "CSV", "CSVHeaders": ["a"]}),
            "CSVHeaders",
            false,
        ),
        (
            json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN"}),
            "CSVHeaders",
            false,
        ),
        (
            json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "a"]}),
            "CSVHeaders",
            false,
        ),
        (
            json!({"InputType": "CSV", "CSVHeaderLocation": "LAST_ROW"}),
            "CSVHeaderLocation",
            false,
        ),
        (
            json!({"InputType": "JSON", "MaxItems": 100_000_001u64}),
            "MaxItems",
            false,
        ),
        (
            json!({"InputType": "JSON", "MaxItems": 1, "MaxItemsPath": "$.n"}),
            "MaxItemsPath",
            false,
        ),
        (json!({"InputType": "JSON", "Bogus": 1}), "Bogus", false),
        (json!({"MaxItems": 1}), "InputType", false),
    ] {
        let e = refused(with_reader(get_object("k", config.clone())));
        assert_refusal(
            &e,
            "States.Map",
            &format!("ItemReader.ReaderConfig.{field}"),
            unsupported,
        );
    }
    let e = refused(with_reader(reader(
        "getObject",
        json!({"Bucket": "b", "Key": "k"}),
        None,
    )));
    assert_refusal(&e, "States.Map", "ItemReader.ReaderConfig", false);
    let e = refused(with_reader(reader(
        "getObject",
        json!({"Bucket": "b", "Key": "k", "VersionId": "v1"}),
        Some(json!({"InputType": "JSON"})),
    )));
    assert_refusal(&e, "States.Map", "ItemReader.Parameters.VersionId", true);
    let e = refused(with_reader(reader(
        "getObject",
        json!({"Bucket": "b"}),
        Some(json!({"InputType": "JSON"})),
    )));
    assert_refusal(&e, "States.Map", "ItemReader.Parameters.Key", false);
    let e = refused(with_reader(reader(
        "listObjectsV2",
        json!({"Bucket": "b", "StartAfter": "k"}),
        None,
    )));
    assert_refusal(&e, "States.Map", "ItemReader.Parameters.StartAfter", true);
    let e = refused(with_reader(reader(
        "listObjectsV2",
        json!({"Bucket": "b"}),
        Some(json!({"InputType": "CSV"})),
    )));
    assert_refusal(&e, "States.Map", "ItemReader.ReaderConfig.InputType", false);
    let e = refused(with_reader(reader(
        "headObject",
        json!({"Bucket": "b"}),
        None,
    )));
    assert_refusal(&e, "States.Map", "ItemReader.Resource", true);
    let e = refused(with_reader(
        json!({"Resource": "arn:aws:states:::s3:getObject"}),
    ));
    assert_refusal(&e, "States.Map", "ItemReader.Parameters", false);
}
