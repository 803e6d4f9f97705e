//! Map: inline and distributed, ordering, failure, concurrency, tolerated failures and
//! transition counts.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cai_asl::{error_names, execute, Status, TaskFailure};
use common::*;
use serde_json::{json, Value};

fn map_machine(map_fields: Value, mode: &str) -> Value {
    let mut m = json!({
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": mode},
            "StartAt": "Work",
            "States": {"Work": {"Type": "Task", "Resource": "work", "End": true}}
        },
        "End": true
    });
    if mode == "DISTRIBUTED" {
        m["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = json!("STANDARD");
    }
    for (k, v) in map_fields.as_object().unwrap() {
        m[k] = v.clone();
    }
    json!({"StartAt": "Map", "States": {"Map": m}})
}

fn items(n: usize) -> Value {
    json!({"items": (0..n).collect::<Vec<_>>()})
}

/// Echoes the input after sleeping longer for earlier items, so completion order is
/// the reverse of item order.
fn reverse_sleeper() -> impl Fn(&cai_asl::TaskCall<'_>) -> Result<Value, TaskFailure> + Send + Sync
{
    |c| {
        let i = c.map_item_index.unwrap() as u64;
        std::thread::sleep(Duration::from_millis(40 - 8 * i.min(4)));
        Ok(c.input.clone())
    }
}

#[test]
fn inline_results_keep_item_order_and_item_selector_sees_context() {
    let inv = FakeInvoker::new().on("work", reverse_sleeper());
    let e = run(
        map_machine(
            json!({"ItemSelector": {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value", "tag.$": "$.tag"}}),
            "INLINE",
        ),
        json!({"items": ["a", "b", "c", "d", "e"], "tag": "T"}),
        &inv,
    );
    let expected: Vec<Value> = ["a", "b", "c", "d", "e"]
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"index": i, "value": v, "tag": "T"}))
        .collect();
    assert_eq!(output(&e), Value::Array(expected));
    // Inline iterations count in the parent execution: Map + 5 x Work.
    assert_eq!(e.transitions, 6);
    assert_eq!(e.child_transitions, 0);
    let mut seen: Vec<Option<usize>> = inv.calls().iter().map(|c| c.item).collect();
    seen.sort();
    assert_eq!(seen, (0..5).map(Some).collect::<Vec<_>>());
}

#[test]
fn without_item_selector_the_item_is_the_input_and_legacy_fields_work() {
    let inv = FakeInvoker::new().on("work", |c| Ok(json!(c.input.as_i64().unwrap() * 10)));
    let e = run(map_machine(json!({}), "INLINE"), items(3), &inv);
    assert_eq!(output(&e), json!([0, 10, 20]));
    // Legacy Iterator + Parameters, plus ResultSelector/ResultPath/OutputPath on the Map.
    let legacy = json!({"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "InputPath": "$.job", "ItemsPath": "$.items",
        "Parameters": {"n.$": "$$.Map.Item.Value", "k.$": "$.k"},
        "Iterator": {"StartAt": "W", "States": {"W": {"Type": "Pass", "End": true}}},
        "ResultSelector": {"all.$": "$"},
        "ResultPath": "$.job.out",
        "OutputPath": "$.job",
        "End": true
    }}});
    let e = run(legacy, json!({"job": {"items": [1, 2], "k": "K"}}), &inv);
    assert_eq!(
        output(&e),
        json!({"items": [1, 2], "k": "K", "out": {"all": [{"n": 1, "k": "K"}, {"n": 2, "k": "K"}]}})
    );
}

#[test]
fn items_path_must_select_an_array() {
    let inv = FakeInvoker::new().on("work", echo());
    let err = error(&run(
        map_machine(json!({}), "INLINE"),
        json!({"items": {"a": 1}}),
        &inv,
    ));
    assert_eq!(err.error, error_names::RUNTIME);
    let err = error(&run(map_machine(json!({}), "DISTRIBUTED"), json!({}), &inv));
    assert_eq!(err.error, error_names::RUNTIME);
    // An empty array is fine.
    assert_eq!(
        output(&run(map_machine(json!({}), "INLINE"), items(0), &inv)),
        json!([])
    );
}

#[test]
fn inline_item_failure_fails_the_map_and_map_catch_handles_it() {
    let inv = FakeInvoker::new().on("work", |c| {
        if c.input == json!(2) {
            Err(TaskFailure::new("ItemBroke", "item 2"))
        } else {
            Ok(c.input.clone())
        }
    });
    let err = error(&run(
        map_machine(json!({"MaxConcurrency": 1}), "INLINE"),
        items(5),
        &inv,
    ));
    assert_eq!(err, TaskFailure::new("ItemBroke", "item 2"));
    // Items after the failing one never started (MaxConcurrency 1, stop on failure).
    assert_eq!(inv.calls().len(), 3);

    let mut m = map_machine(
        json!({"Catch": [{"ErrorEquals": ["ItemBroke"], "ResultPath": "$.failure", "Next": "Recovered"}]}),
        "INLINE",
    );
    m["States"]["Recovered"] = json!({"Type": "Pass", "End": true});
    m["States"]["Map"]["ItemProcessor"]["States"]["Work"]["Retry"] =
        json!([{"ErrorEquals": ["Other"]}]);
    let e = run(m, items(4), &inv);
    assert_eq!(
        output(&e)["failure"],
        json!({"Error": "ItemBroke", "Cause": "item 2"})
    );
}

#[test]
fn map_retry_reruns_the_whole_map() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let inv = FakeInvoker::new().on("work", move |c| {
        // Item 1 fails on the first Map attempt only.
        if c.input == json!(1) && a.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(TaskFailure::new("Once", ""))
        } else {
            Ok(c.input.clone())
        }
    });
    let e = run(
        map_machine(
            json!({"MaxConcurrency": 1, "Retry": [{"ErrorEquals": ["Once"], "IntervalSeconds": 3}]}),
            "INLINE",
        ),
        items(3),
        &inv,
    );
    assert_eq!(output(&e), json!([0, 1, 2]));
    assert_eq!(inv.calls().len(), 2 + 3);
}

/// A fake Task that tracks how many invocations overlap.
fn concurrency_probe() -> (FakeInvoker, Arc<AtomicUsize>) {
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (c, p) = (current.clone(), peak.clone());
    let inv = FakeInvoker::new().on("work", move |call| {
        let now = c.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        c.fetch_sub(1, Ordering::SeqCst);
        Ok(call.input.clone())
    });
    (inv, peak)
}

#[test]
fn max_concurrency_bounds_concurrent_invocations() {
    for mode in ["INLINE", "DISTRIBUTED"] {
        for (max, expected) in [(1, 1), (3, 3)] {
            let (inv, peak) = concurrency_probe();
            let e = run(
                map_machine(json!({"MaxConcurrency": max}), mode),
                items(9),
                &inv,
            );
            assert_eq!(output(&e), json!((0..9).collect::<Vec<_>>()));
            assert_eq!(
                peak.load(Ordering::SeqCst),
                expected,
                "{mode} MaxConcurrency {max}"
            );
        }
        // 0 means unlimited: all 6 items overlap.
        let (inv, peak) = concurrency_probe();
        output(&run(
            map_machine(json!({"MaxConcurrency": 0}), mode),
            items(6),
            &inv,
        ));
        assert_eq!(peak.load(Ordering::SeqCst), 6, "{mode} unlimited");
    }
}

/// Items listed in `failing` fail; the rest echo.
fn failing_items(failing: &'static [i64]) -> FakeInvoker {
    FakeInvoker::new().on("work", move |c| {
        let i = c.input.as_i64().unwrap();
        if failing.contains(&i) {
            Err(TaskFailure::new("ItemBroke", format!("item {i}")))
        } else {
            Ok(json!(i))
        }
    })
}

#[test]
fn distributed_tolerated_failure_count() {
    let m = map_machine(json!({"ToleratedFailureCount": 2}), "DISTRIBUTED");
    let e = run(m.clone(), items(10), &failing_items(&[3, 7]));
    let out = output(&e);
    assert_eq!(out[0], json!(0));
    assert_eq!(out[3], json!({"Error": "ItemBroke", "Cause": "item 3"}));
    assert_eq!(out[7], json!({"Error": "ItemBroke", "Cause": "item 7"}));
    assert_eq!(out.as_array().unwrap().len(), 10);
    let err = error(&run(m, items(10), &failing_items(&[1, 3, 7])));
    assert_eq!(err.error, error_names::EXCEED_TOLERATED_FAILURE_THRESHOLD);
}

#[test]
fn distributed_tolerated_failure_percentage() {
    let m = map_machine(json!({"ToleratedFailurePercentage": 20}), "DISTRIBUTED");
    assert_eq!(
        run(m.clone(), items(10), &failing_items(&[0, 9])).status,
        Status::Succeeded
    );
    let err = error(&run(m, items(10), &failing_items(&[0, 5, 9])));
    assert_eq!(err.error, error_names::EXCEED_TOLERATED_FAILURE_THRESHOLD);
    // Fractional percentages: 12.5% of 8 is exactly one item.
    let m = map_machine(json!({"ToleratedFailurePercentage": 12.5}), "DISTRIBUTED");
    assert_eq!(
        run(m.clone(), items(8), &failing_items(&[4])).status,
        Status::Succeeded
    );
    assert_eq!(
        run(m, items(8), &failing_items(&[4, 5])).status,
        Status::Failed
    );
    // Both set: exceeding either one fails.
    let m = map_machine(
        json!({"ToleratedFailurePercentage": 50, "ToleratedFailureCount": 1}),
        "DISTRIBUTED",
    );
    assert_eq!(
        run(m, items(10), &failing_items(&[1, 2])).status,
        Status::Failed
    );
}

#[test]
fn distributed_without_tolerance_fails_on_any_item_and_stops_starting_items() {
    let inv = failing_items(&[0, 1, 2, 3, 4, 5]);
    let err = error(&run(
        map_machine(json!({"MaxConcurrency": 1}), "DISTRIBUTED"),
        items(6),
        &inv,
    ));
    assert_eq!(err.error, error_names::EXCEED_TOLERATED_FAILURE_THRESHOLD);
    assert_eq!(
        inv.calls().len(),
        1,
        "no item starts after the threshold is exceeded"
    );
    // With tolerance 1, the second failure stops the run.
    let inv = failing_items(&[0, 1, 2, 3, 4, 5]);
    let m = map_machine(
        json!({"MaxConcurrency": 1, "ToleratedFailureCount": 1}),
        "DISTRIBUTED",
    );
    assert_eq!(run(m, items(6), &inv).status, Status::Failed);
    assert_eq!(inv.calls().len(), 2);
    // The threshold error can be caught by the Map's Catch.
    let mut m = map_machine(
        json!({"Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "H"}]}),
        "DISTRIBUTED",
    );
    m["States"]["H"] = json!({"Type": "Pass", "Result": "handled", "End": true});
    assert_eq!(
        output(&run(m, items(3), &failing_items(&[1]))),
        json!("handled")
    );
}

#[test]
fn distributed_children_are_separate_executions() {
    let inv = FakeInvoker::new().on("work", echo());
    let mut m = map_machine(json!({"Label": "Ranks"}), "DISTRIBUTED");
    m["States"]["Map"]["ItemProcessor"]["States"]["Work"]["Parameters"] = json!({
        "input.$": "$$.Execution.Input",
        "name.$": "$$.Execution.Name",
        "id.$": "$$.Execution.Id"
    });
    let e = run(m, json!({"items": [{"r": 0}, {"r": 1}]}), &inv);
    let out = output(&e);
    assert_eq!(out[0]["input"], json!({"r": 0}));
    assert_eq!(out[1]["input"], json!({"r": 1}));
    assert_eq!(out[1]["name"], "local/Ranks/1");
    assert!(out[0]["id"].as_str().unwrap().ends_with(":local/Ranks/0"));
    assert_eq!(e.transitions, 1);
    assert_eq!(e.child_transitions, 2);
    let items: Vec<Option<usize>> = {
        let mut v: Vec<_> = inv.calls().iter().map(|c| c.item).collect();
        v.sort();
        v
    };
    assert_eq!(items, vec![Some(0), Some(1)]);
}

#[test]
fn transitions_for_the_workflow_shape_are_n_plus_five() {
    let def = def(json!({
        "StartAt": "Initialize",
        "States": {
            "Initialize": {"Type": "Task", "Resource": "init", "ResultPath": "$.init", "Next": "Map"},
            "Map": {
                "Type": "Map", "ItemsPath": "$.ranks", "MaxConcurrency": 4,
                "ToleratedFailurePercentage": 0,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Infer",
                    "States": {"Infer": {"Type": "Task", "Resource": "infer", "End": true,
                        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Gave up"}]},
                        "Gave up": {"Type": "Fail", "Error": "InferFailed"}}
                },
                "ResultPath": "$.results",
                "Next": "Summarize"
            },
            "Summarize": {"Type": "Task", "Resource": "summarize", "ResultPath": "$.summary", "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.summary.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Failed"},
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail", "Error": "SummaryFailed"}
        }
    }));
    let inv = FakeInvoker::new()
        .on("init", ok(json!({"started": true})))
        .on("infer", |c| Ok(json!({"rank": c.input})))
        .on("summarize", |c| {
            Ok(json!({"ok": c.input["results"].as_array().unwrap().len() == 7}))
        });
    let rec = Recorder::default();
    let (opts, _) = recording_opts(0);
    let e = execute(
        &def,
        json!({"ranks": [0, 1, 2, 3, 4, 5, 6]}),
        &inv,
        &rec,
        &opts,
    );
    assert_eq!(e.status, Status::Succeeded, "{:?}", e.error);
    assert_eq!(e.transitions, 5);
    assert_eq!(e.child_transitions, 7);
    assert_eq!(e.total_transitions(), 7 + 5);
    let events = rec.events.lock().unwrap().clone();
    assert!(events.contains(&"map Map 7".to_string()));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("item-start"))
            .count(),
        7
    );
    assert_eq!(
        events.iter().filter(|e| e.starts_with("item-ok")).count(),
        7
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("enter Infer Some"))
            .count(),
        7
    );
}

#[test]
fn item_failure_events_are_reported() {
    let rec = Recorder::default();
    let (opts, _) = recording_opts(0);
    let def = def(map_machine(
        json!({"ToleratedFailureCount": 5}),
        "DISTRIBUTED",
    ));
    let e = execute(&def, items(3), &failing_items(&[1]), &rec, &opts);
    assert_eq!(e.status, Status::Succeeded);
    let events = rec.events.lock().unwrap().clone();
    assert!(
        events.contains(&"item-fail 1 ItemBroke".to_string()),
        "{events:?}"
    );
}
