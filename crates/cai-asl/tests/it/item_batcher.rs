//! ItemBatcher on a distributed Map: batches by count and by bytes, BatchInput, the
//! *Path forms, failure tolerance counted in items, and refusals.

use crate::common;

use std::sync::Arc;

use cai_asl::{error_names, execute, MemoryS3, Status, TaskFailure};
use common::*;
use serde_json::{json, Value};

fn batched(batcher: Value, extra: Value) -> Value {
    let mut fields = json!({"ItemsPath": "$.items", "ItemBatcher": batcher});
    for (k, v) in extra.as_object().unwrap() {
        fields[k] = v.clone();
    }
    distributed_map(fields)
}

fn items(n: usize) -> Value {
    json!({"items": (0..n).collect::<Vec<_>>(), "job": "J"})
}

/// Child inputs in item order (children run concurrently).
fn child_inputs(inv: &FakeInvoker) -> Vec<Value> {
    let mut calls = inv.calls();
    calls.sort_by_key(|c| c.item);
    calls.into_iter().map(|c| c.input).collect()
}

#[test]
fn batches_by_count_with_batch_input_after_item_selector() {
    let inv = FakeInvoker::new().on("work", |c| {
        Ok(json!(c.input["Items"].as_array().unwrap().len()))
    });
    let rec = Recorder::default();
    let (opts, _) = recording_opts(0);
    let def = def(batched(
        json!({"MaxItemsPerBatch": 3, "BatchInput": {"job.$": "$.job", "fixed": 1}}),
        json!({"ItemSelector": {"n.$": "$$.Map.Item.Value", "at.$": "$$.Map.Item.Index"}}),
    ));
    let e = execute(&def, items(7), &inv, &rec, &opts);
    assert_eq!(output(&e), json!([3, 3, 1]));
    let inputs = child_inputs(&inv);
    assert_eq!(
        inputs[0],
        json!({"BatchInput": {"job": "J", "fixed": 1}, "Items": [{"n": 0, "at": 0}, {"n": 1, "at": 1}, {"n": 2, "at": 2}]})
    );
    assert_eq!(
        inputs[2],
        json!({"BatchInput": {"job": "J", "fixed": 1}, "Items": [{"n": 6, "at": 6}]})
    );
    // One child execution (and one Map item event) per batch.
    assert_eq!(e.standard_children.executions, 3);
    assert_eq!(e.child_transitions, 3);
    let events = rec.events.lock().unwrap().clone();
    assert!(events.contains(&"map Map 3".to_string()), "{events:?}");
    // Without BatchInput the input is just {"Items": [...]}.
    let inv = FakeInvoker::new().on("work", echo());
    let e = run(
        batched(json!({"MaxItemsPerBatch": 2}), json!({})),
        items(3),
        &inv,
    );
    assert_eq!(output(&e), json!([{"Items": [0, 1]}, {"Items": [2]}]));
}

#[test]
fn batches_by_bytes_stay_within_the_limit() {
    // Items of varying sizes: strings of 10..60 characters.
    let words: Vec<Value> = (0..40)
        .map(|i| json!("x".repeat(10 + i % 6 * 10)))
        .collect();
    let limit = 200;
    let inv = FakeInvoker::new().on("work", echo());
    let e = run(
        batched(
            json!({"MaxInputBytesPerBatch": limit, "BatchInput": {"k": "v"}}),
            json!({}),
        ),
        json!({"items": words}),
        &inv,
    );
    let out = output(&e);
    let batches = out.as_array().unwrap();
    let mut flattened = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let size = serde_json::to_string(b).unwrap().len();
        assert!(size <= limit, "batch {i} is {size} bytes");
        // Greedy: the next batch's first item would not have fitted.
        if let Some(next) = batches.get(i + 1) {
            let first = &next["Items"][0];
            let grown = size + 1 + serde_json::to_string(first).unwrap().len();
            assert!(grown > limit, "batch {i} could have taken one more item");
        }
        assert_eq!(b["BatchInput"], json!({"k": "v"}));
        flattened.extend(b["Items"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(flattened, words, "every item once, in order");
    assert!(batches.len() > 3);
    // Both bounds: whichever is reached first closes the batch.
    let inv = FakeInvoker::new().on("work", echo());
    let e = run(
        batched(
            json!({"MaxItemsPerBatch": 2, "MaxInputBytesPerBatch": 1000}),
            json!({}),
        ),
        json!({"items": words}),
        &inv,
    );
    assert_eq!(output(&e).as_array().unwrap().len(), 20);
}

#[test]
fn path_forms_read_the_map_input() {
    let inv = FakeInvoker::new().on("work", echo());
    let e = run(
        batched(json!({"MaxItemsPerBatchPath": "$.per"}), json!({})),
        json!({"items": [1, 2, 3, 4, 5], "per": 2}),
        &inv,
    );
    assert_eq!(output(&e).as_array().unwrap().len(), 3);
    let e = run(
        batched(json!({"MaxInputBytesPerBatchPath": "$.bytes"}), json!({})),
        json!({"items": [1, 2, 3, 4, 5], "bytes": 16}),
        &inv,
    );
    // {"Items":[1,2,3]} is 17 bytes: at most two one-digit items fit in 16.
    assert_eq!(
        output(&e),
        json!([{"Items": [1, 2]}, {"Items": [3, 4]}, {"Items": [5]}])
    );
    for bad in [json!(0), json!("2"), json!(300_000)] {
        let err = error(&run(
            batched(json!({"MaxInputBytesPerBatchPath": "$.bytes"}), json!({})),
            json!({"items": [1], "bytes": bad}),
            &inv,
        ));
        assert_eq!(err.error, error_names::RUNTIME, "{bad}");
        assert!(
            err.cause.contains("MaxInputBytesPerBatchPath"),
            "{}",
            err.cause
        );
    }
}

#[test]
fn an_item_too_large_for_any_batch_fails_the_map() {
    let inv = FakeInvoker::new().on("work", echo());
    let err = error(&run(
        batched(json!({"MaxInputBytesPerBatch": 20}), json!({})),
        json!({"items": ["short", "far too long to fit in twenty bytes"]}),
        &inv,
    ));
    assert_eq!(err.error, error_names::RUNTIME);
    assert!(err.cause.contains("item 1"), "{}", err.cause);
    assert!(inv.calls().is_empty());
}

/// Fails a batch containing item 3.
fn fails_batch_with_3() -> FakeInvoker {
    FakeInvoker::new().on("work", |c| {
        if c.input["Items"].as_array().unwrap().contains(&json!(3)) {
            Err(TaskFailure::new("BatchBroke", "has 3"))
        } else {
            Ok(json!("ok"))
        }
    })
}

#[test]
fn tolerance_counts_every_item_of_a_failed_batch() {
    // 10 items in batches of 2: the failed batch holds 2 items.
    let m = |tolerance: Value| batched(json!({"MaxItemsPerBatch": 2}), tolerance);
    let e = run(
        m(json!({"ToleratedFailureCount": 2})),
        items(10),
        &fails_batch_with_3(),
    );
    let out = output(&e);
    assert_eq!(out.as_array().unwrap().len(), 5);
    assert_eq!(out[1], json!({"Error": "BatchBroke", "Cause": "has 3"}));
    let err = error(&run(
        m(json!({"ToleratedFailureCount": 1})),
        items(10),
        &fails_batch_with_3(),
    ));
    assert_eq!(err.error, error_names::EXCEED_TOLERATED_FAILURE_THRESHOLD);
    assert!(err.cause.contains("2 of 10 items"), "{}", err.cause);
    // 2 of 10 items is 20%: one failed batch of five is not.
    assert_eq!(
        run(
            m(json!({"ToleratedFailurePercentage": 20})),
            items(10),
            &fails_batch_with_3()
        )
        .status,
        Status::Succeeded
    );
    assert_eq!(
        run(
            m(json!({"ToleratedFailurePercentage": 19.9})),
            items(10),
            &fails_batch_with_3()
        )
        .status,
        Status::Failed
    );
}

#[test]
fn batching_items_from_an_item_reader() {
    let s3 = Arc::new(MemoryS3::new());
    s3.insert(
        "data",
        "ranks.jsonl",
        (0..25)
            .map(|i| format!("{{\"rank\": {i}}}\n"))
            .collect::<String>(),
    );
    let inv = FakeInvoker::new().on("work", |c| {
        Ok(json!(c.input["Items"].as_array().unwrap().len()))
    });
    let m = distributed_map(json!({
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSONL"},
            "Parameters": {"Bucket": "data", "Key": "ranks.jsonl"}
        },
        "ItemBatcher": {"MaxItemsPerBatch": 10}
    }));
    let e = run_opts(m, json!({}), &inv, &s3_opts(&s3));
    assert_eq!(output(&e), json!([10, 10, 5]));
}

#[test]
fn item_batcher_refusals_name_the_field() {
    let m = |b: Value| batched(b, json!({}));
    for (batcher, field) in [
        (json!({}), "ItemBatcher.MaxItemsPerBatch"),
        (
            json!({"MaxItemsPerBatch": 0}),
            "ItemBatcher.MaxItemsPerBatch",
        ),
        (
            json!({"MaxInputBytesPerBatch": 262_145}),
            "ItemBatcher.MaxInputBytesPerBatch",
        ),
        (
            json!({"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}),
            "ItemBatcher.MaxItemsPerBatchPath",
        ),
        (
            json!({"MaxInputBytesPerBatch": 2, "MaxInputBytesPerBatchPath": "$.n"}),
            "ItemBatcher.MaxInputBytesPerBatchPath",
        ),
        (
            json!({"MaxItemsPerBatchPath": "n"}),
            "ItemBatcher.MaxItemsPerBatchPath",
        ),
        (
            json!({"MaxItemsPerBatch": 2, "BatchInput": [1]}),
            "ItemBatcher.BatchInput",
        ),
        (
            json!({"MaxItemsPerBatch": 2, "Bogus": 1}),
            "ItemBatcher.Bogus",
        ),
    ] {
        assert_refusal(&refused(m(batcher.clone())), "States.Map", field, false);
    }
    // BatchInput alone is a valid batcher (batches bounded by the payload quota).
    assert!(cai_asl::Definition::from_value(m(json!({"BatchInput": {"a": 1}}))).is_ok());
    let mut inline = m(json!({"MaxItemsPerBatch": 2}));
    inline["States"]["Map"]["ItemProcessor"]["ProcessorConfig"] = json!({"Mode": "INLINE"});
    assert_refusal(&refused(inline), "States.Map", "ItemBatcher", false);
}
