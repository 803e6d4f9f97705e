//! Input/output processing on Task and Pass, the context object, Succeed and Fail.

use crate::common;

use std::time::Duration;

use cai_asl::{error_names, execute, NoopObserver, Status};
use common::*;
use serde_json::json;

#[test]
fn task_applies_fields_in_order() {
    // InputPath narrows to $.job; Parameters sees only that; ResultSelector sees the
    // raw result; ResultPath merges into the *raw* state input; OutputPath selects.
    let inv = FakeInvoker::new().on("r", |c| {
        assert_eq!(c.input, json!({"rank": 3, "fixed": "x"}));
        Ok(json!({"payload": {"sum": 10}, "noise": 1}))
    });
    let e = run(
        one_task(json!({
            "InputPath": "$.job",
            "Parameters": {"rank.$": "$.rank", "fixed": "x"},
            "ResultSelector": {"total.$": "$.payload.sum"},
            "ResultPath": "$.out.result",
            "OutputPath": "$.out"
        })),
        json!({"job": {"rank": 3}, "keep": true}),
        &inv,
    );
    assert_eq!(output(&e), json!({"result": {"total": 10}}));
    assert_eq!(e.status, Status::Succeeded);
    assert_eq!(inv.calls().len(), 1);
}

#[test]
fn result_path_variants() {
    let inv = FakeInvoker::new().on("r", ok(json!(7)));
    // default `$` replaces
    assert_eq!(
        output(&run(one_task(json!({})), json!({"a": 1}), &inv)),
        json!(7)
    );
    // null discards the result and keeps the input
    assert_eq!(
        output(&run(
            one_task(json!({"ResultPath": null})),
            json!({"a": 1}),
            &inv
        )),
        json!({"a": 1})
    );
    // nested creation
    assert_eq!(
        output(&run(
            one_task(json!({"ResultPath": "$.x.y.z"})),
            json!({"a": 1}),
            &inv
        )),
        json!({"a": 1, "x": {"y": {"z": 7}}})
    );
    // overwrite of an existing field
    assert_eq!(
        output(&run(
            one_task(json!({"ResultPath": "$.a"})),
            json!({"a": 1}),
            &inv
        )),
        json!({"a": 7})
    );
    // array element
    assert_eq!(
        output(&run(
            one_task(json!({"ResultPath": "$.l[1]"})),
            json!({"l": [0, 0]}),
            &inv
        )),
        json!({"l": [0, 7]})
    );
    // a non-object input cannot take a field
    let err = error(&run(
        one_task(json!({"ResultPath": "$.x"})),
        json!("text"),
        &inv,
    ));
    assert_eq!(err.error, error_names::RUNTIME);
    let err = error(&run(
        one_task(json!({"ResultPath": "$.a.b"})),
        json!({"a": 5}),
        &inv,
    ));
    assert_eq!(err.error, error_names::RUNTIME);
    assert!(err.cause.contains("$.a"), "{}", err.cause);
}

#[test]
fn paths_that_select_nothing_are_runtime_errors() {
    let inv = FakeInvoker::new().on("r", ok(json!({"v": 1})));
    for fields in [
        json!({"InputPath": "$.missing"}),
        json!({"Parameters": {"x.$": "$.missing"}}),
        json!({"ResultSelector": {"x.$": "$.missing"}}),
        json!({"OutputPath": "$.missing"}),
    ] {
        let err = error(&run(one_task(fields.clone()), json!({"a": 1}), &inv));
        assert_eq!(err.error, error_names::RUNTIME, "{fields}");
    }
    // A runtime error is not caught even by States.ALL.
    let e = run(
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r", "InputPath": "$.missing", "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}]},
            "C": {"Type": "Succeed"}
        }}),
        json!({}),
        &inv,
    );
    assert_eq!(error(&e).error, error_names::RUNTIME);
}

#[test]
fn null_input_and_output_paths_give_empty_objects() {
    let inv = FakeInvoker::new().on("r", echo());
    assert_eq!(
        output(&run(
            one_task(json!({"InputPath": null, "ResultPath": "$.r"})),
            json!({"a": 1}),
            &inv
        )),
        json!({"a": 1, "r": {}})
    );
    assert_eq!(
        output(&run(
            one_task(json!({"OutputPath": null})),
            json!({"a": 1}),
            &inv
        )),
        json!({})
    );
}

#[test]
fn parameters_templates_recurse_and_keep_literals() {
    let inv = FakeInvoker::new().on("r", echo());
    let e = run(
        one_task(json!({"Parameters": {
            "lit": {"n": 1, "s": "$.not-a-path"},
            "nested": {"v.$": "$.a['b c']"},
            "list": [{"i.$": "$.l[1]"}, 5],
            "whole.$": "$"
        }})),
        json!({"a": {"b c": "spaced"}, "l": [10, 20]}),
        &inv,
    );
    assert_eq!(
        output(&e),
        json!({
            "lit": {"n": 1, "s": "$.not-a-path"},
            "nested": {"v": "spaced"},
            "list": [{"i": 20}, 5],
            "whole": {"a": {"b c": "spaced"}, "l": [10, 20]}
        })
    );
}

#[test]
fn pass_state_processing() {
    let inv = FakeInvoker::new();
    let pass = |fields: serde_json::Value| {
        let mut p = json!({"Type": "Pass", "End": true});
        for (k, v) in fields.as_object().unwrap() {
            p[k] = v.clone();
        }
        json!({"StartAt": "P", "States": {"P": p}})
    };
    let input = json!({"a": {"b": 1}, "c": 2});
    assert_eq!(output(&run(pass(json!({})), input.clone(), &inv)), input);
    assert_eq!(
        output(&run(pass(json!({"InputPath": "$.a"})), input.clone(), &inv)),
        json!({"b": 1})
    );
    assert_eq!(
        output(&run(
            pass(json!({"Parameters": {"x.$": "$.c"}, "ResultPath": "$.p"})),
            input.clone(),
            &inv
        )),
        json!({"a": {"b": 1}, "c": 2, "p": {"x": 2}})
    );
    // Result replaces whatever Parameters produced.
    assert_eq!(
        output(&run(
            pass(
                json!({"Parameters": {"x.$": "$.c"}, "Result": {"r": true}, "ResultPath": "$.p", "OutputPath": "$.p"})
            ),
            input.clone(),
            &inv
        )),
        json!({"r": true})
    );
    // ResultPath works on the raw input, not the InputPath selection.
    assert_eq!(
        output(&run(
            pass(json!({"InputPath": "$.a", "ResultPath": "$.sel"})),
            input.clone(),
            &inv
        )),
        json!({"a": {"b": 1}, "c": 2, "sel": {"b": 1}})
    );
    assert_eq!(
        output(&run(
            pass(json!({"Result": 1, "ResultPath": null})),
            input.clone(),
            &inv
        )),
        input
    );
}

#[test]
fn context_object_values() {
    let inv = FakeInvoker::new().on("r", echo());
    let def = def(json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "r", "End": true,
        "Parameters": {
            "id.$": "$$.Execution.Id",
            "name.$": "$$.Execution.Name",
            "input.$": "$$.Execution.Input",
            "start.$": "$$.Execution.StartTime",
            "state.$": "$$.State.Name",
            "entered.$": "$$.State.EnteredTime",
            "retries.$": "$$.State.RetryCount",
            "sm.$": "$$.StateMachine.Name",
            "smid.$": "$$.StateMachine.Id"
        }
    }}}));
    let opts = cai_asl::ExecOptions {
        name: "run-1".into(),
        state_machine_name: "cosmic".into(),
        sleeper: std::sync::Arc::new(|_| {}),
        jitter_seed: 0,
        ..cai_asl::ExecOptions::default()
    };
    let e = execute(&def, json!({"x": 1}), &inv, &NoopObserver, &opts);
    let out = output(&e);
    assert_eq!(out["name"], "run-1");
    assert!(
        out["id"]
            .as_str()
            .unwrap()
            .ends_with(":execution:cosmic:run-1"),
        "{out}"
    );
    assert_eq!(out["input"], json!({"x": 1}));
    assert_eq!(out["state"], "T");
    assert_eq!(out["retries"], 0);
    assert_eq!(out["sm"], "cosmic");
    assert!(out["smid"]
        .as_str()
        .unwrap()
        .ends_with(":stateMachine:cosmic"));
    for field in ["start", "entered"] {
        let s = out[field].as_str().unwrap();
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.ends_with('Z') && s.as_bytes()[10] == b'T', "{s}");
    }
    assert!(out["start"].as_str().unwrap() <= out["entered"].as_str().unwrap());
    assert!(e.started <= e.ended);
}

#[test]
fn retry_count_in_context_and_task_call() {
    let inv = FakeInvoker::new().on("r", |c| {
        if c.retry_count < 2 {
            Err(cai_asl::TaskFailure::new("Flaky", "try again"))
        } else {
            Ok(c.input.clone())
        }
    });
    let e = run(
        one_task(json!({
            "Parameters": {"n.$": "$$.State.RetryCount"},
            "Retry": [{"ErrorEquals": ["Flaky"]}]
        })),
        json!({}),
        &inv,
    );
    assert_eq!(output(&e), json!({"n": 2}));
    let counts: Vec<u32> = inv.calls().iter().map(|c| c.retry_count).collect();
    assert_eq!(counts, vec![0, 1, 2]);
}

#[test]
fn task_timeout_is_passed_to_the_invoker() {
    let inv = FakeInvoker::new().on("r", ok(json!(1)));
    output(&run(
        one_task(json!({"TimeoutSeconds": 90})),
        json!({}),
        &inv,
    ));
    output(&run(one_task(json!({})), json!({}), &inv));
    let calls = inv.calls();
    assert_eq!(calls[0].timeout, Some(Duration::from_secs(90)));
    assert_eq!(calls[1].timeout, None);
    assert_eq!(calls[0].state, "T");
    assert_eq!(calls[0].resource, "r");
    assert_eq!(calls[0].item, None);
}

#[test]
fn execution_timeout_fails_with_states_timeout() {
    let inv = FakeInvoker::new().on("slow", |c| {
        // The remaining execution time is handed down as the task timeout.
        assert!(c.timeout.unwrap() <= Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(1100));
        Ok(json!(1))
    });
    let e = run(
        json!({"TimeoutSeconds": 1, "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "slow", "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}]},
            "C": {"Type": "Succeed"}
        }}),
        json!({}),
        &inv,
    );
    // Not catchable: the whole execution timed out.
    assert_eq!(e.status, Status::Failed);
    assert_eq!(error(&e).error, error_names::TIMEOUT);
}

#[test]
fn succeed_and_fail_states() {
    let inv = FakeInvoker::new();
    let e = run(
        json!({"StartAt": "S", "States": {"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}}}),
        json!({"a": {"b": 3}}),
        &inv,
    );
    assert_eq!(output(&e), json!(3));
    assert_eq!(e.transitions, 1);
    let e = run(
        json!({"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Next": "F"},
            "F": {"Type": "Fail", "Error": "Custom.Error", "Cause": "it broke"}
        }}),
        json!({}),
        &inv,
    );
    assert_eq!(e.status, Status::Failed);
    assert_eq!(
        error(&e),
        cai_asl::TaskFailure::new("Custom.Error", "it broke")
    );
    assert_eq!(e.transitions, 2);
    let e = run(
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$$.State.Name"}}}),
        json!({"e": "FromInput"}),
        &inv,
    );
    assert_eq!(error(&e), cai_asl::TaskFailure::new("FromInput", "F"));
}
