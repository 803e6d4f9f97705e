//! Retry (order, counters, backoff, caps, jitter, wildcards) and Catch.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cai_asl::{error_names, execute, Execution, TaskFailure};
use common::*;
use serde_json::{json, Value};

fn secs(v: &[f64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
}

/// Runs a one-Task machine whose Task fails with the given errors in turn, then
/// succeeds; returns the execution, recorded delays and the number of calls.
fn run_failing(
    task: Value,
    errors: &[&'static str],
    seed: u64,
) -> (Execution, Vec<Duration>, usize) {
    let errors: Vec<&'static str> = errors.to_vec();
    let n = Arc::new(AtomicU32::new(0));
    let counter = n.clone();
    let inv = FakeInvoker::new().on("r", move |_| {
        let i = counter.fetch_add(1, Ordering::SeqCst) as usize;
        match errors.get(i) {
            Some(e) => Err(TaskFailure::new(*e, format!("failure {i}"))),
            None => Ok(json!("done")),
        }
    });
    let (opts, delays) = recording_opts(seed);
    let e = execute(
        &def(one_task(task)),
        json!({"in": 1}),
        &inv,
        &cai_asl::NoopObserver,
        &opts,
    );
    let d = delays.lock().unwrap().clone();
    (e, d, n.load(Ordering::SeqCst) as usize)
}

#[test]
fn backoff_delays_are_exact() {
    let (e, delays, calls) = run_failing(
        json!({"Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxAttempts": 3}]}),
        &["E", "E", "E"],
        0,
    );
    assert_eq!(output(&e), json!("done"));
    assert_eq!(delays, secs(&[2.0, 6.0, 18.0]));
    assert_eq!(calls, 4);
    // One state entry plus one transition per retry.
    assert_eq!(e.transitions, 4);
}

#[test]
fn defaults_are_one_second_three_attempts_rate_two() {
    let (e, delays, calls) = run_failing(json!({"Retry": [{"ErrorEquals": ["E"]}]}), &["E"; 4], 0);
    assert_eq!(error(&e).error, "E");
    assert_eq!(delays, secs(&[1.0, 2.0, 4.0]));
    assert_eq!(calls, 4);
}

#[test]
fn max_delay_caps_the_backoff() {
    let (_, delays, _) = run_failing(
        json!({"Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 3, "BackoffRate": 4.0, "MaxAttempts": 4, "MaxDelaySeconds": 20}]}),
        &["E"; 4],
        0,
    );
    assert_eq!(delays, secs(&[3.0, 12.0, 20.0, 20.0]));
}

#[test]
fn full_jitter_is_bounded_and_seeded() {
    let task = json!({"Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 10, "BackoffRate": 2.0, "MaxAttempts": 5, "JitterStrategy": "FULL"}]});
    let (_, a, _) = run_failing(task.clone(), &["E"; 5], 42);
    let (_, b, _) = run_failing(task.clone(), &["E"; 5], 42);
    let (_, c, _) = run_failing(task, &["E"; 5], 7);
    assert_eq!(a, b, "same seed, same delays");
    assert_ne!(a, c, "different seed, different delays");
    let caps = [10.0, 20.0, 40.0, 80.0, 160.0];
    for (d, cap) in a.iter().zip(caps) {
        assert!(d.as_secs_f64() <= cap, "{d:?} > {cap}");
    }
    assert!(
        a.iter().zip(caps).any(|(d, cap)| d.as_secs_f64() < cap),
        "jitter never applied: {a:?}"
    );
}

#[test]
fn first_matching_retrier_wins_and_counters_are_per_retrier() {
    // A and B alternate; each retrier has its own budget of 2.
    let task = json!({"Retry": [
        {"ErrorEquals": ["A"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0},
        {"ErrorEquals": ["A", "B"], "IntervalSeconds": 5, "MaxAttempts": 2, "BackoffRate": 3.0}
    ]});
    let (e, delays, calls) = run_failing(task.clone(), &["A", "B", "A", "B"], 0);
    assert_eq!(output(&e), json!("done"));
    assert_eq!(delays, secs(&[1.0, 5.0, 2.0, 15.0]));
    assert_eq!(calls, 5);
    // A third A exhausts the first retrier; the second one is not consulted.
    let (e, delays, calls) = run_failing(task, &["A", "A", "A"], 0);
    assert_eq!(error(&e).error, "A");
    assert_eq!(delays, secs(&[1.0, 2.0]));
    assert_eq!(calls, 3);
}

#[test]
fn max_attempts_zero_never_retries() {
    let task = json!({"Retry": [
        {"ErrorEquals": ["E"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}
    ]});
    let (e, delays, calls) = run_failing(task, &["E", "E"], 0);
    assert_eq!(error(&e).error, "E");
    assert!(delays.is_empty());
    assert_eq!(calls, 1);
}

#[test]
fn wildcard_semantics() {
    let all = json!({"Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}]});
    let (e, _, calls) = run_failing(all.clone(), &["States.Timeout"], 0);
    assert_eq!(output(&e), json!("done"));
    assert_eq!(calls, 2);
    let (e, _, calls) = run_failing(all, &["Anything.Else"], 0);
    assert_eq!(output(&e), json!("done"));
    assert_eq!(calls, 2);

    let task_failed = json!({"Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}]});
    let (e, _, calls) = run_failing(task_failed.clone(), &["Lambda.Unknown"], 0);
    assert_eq!(output(&e), json!("done"));
    assert_eq!(calls, 2);
    let (e, delays, calls) = run_failing(task_failed, &["States.Timeout"], 0);
    assert_eq!(error(&e).error, error_names::TIMEOUT);
    assert!(delays.is_empty());
    assert_eq!(calls, 1);

    // An invoker-reported States.Runtime is terminal even when named explicitly.
    let runtime = json!({"Retry": [{"ErrorEquals": ["States.Runtime"], "MaxAttempts": 3}],
                         "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "T"}]});
    let (e, _, calls) = run_failing(runtime, &["States.Runtime"], 0);
    assert_eq!(error(&e).error, error_names::RUNTIME);
    assert_eq!(calls, 1);
}

#[test]
fn retry_events_are_reported() {
    let inv = FakeInvoker::new().on("r", fail("E"));
    let (opts, _) = recording_opts(0);
    let rec = Recorder::default();
    let e = execute(
        &def(one_task(
            json!({"Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 2, "IntervalSeconds": 1}]}),
        )),
        json!({}),
        &inv,
        &rec,
        &opts,
    );
    assert_eq!(error(&e).error, "E");
    let events = rec.events.lock().unwrap().clone();
    assert_eq!(
        events,
        vec!["enter T None", "retry T E #1 1s", "retry T E #2 2s"]
    );
}

fn catch_machine(catch: Value) -> Value {
    let text = catch.to_string();
    let mut m = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "Next": "Ok", "InputPath": "$.sub",
              "Retry": [{"ErrorEquals": ["Retryable"], "MaxAttempts": 1}],
              "Catch": catch},
        "Ok": {"Type": "Pass", "Result": "ok", "End": true}
    }});
    // Only referenced states: unreachable ones are refused.
    if text.contains("Handler") {
        m["States"]["Handler"] = json!({"Type": "Pass", "End": true});
    }
    if text.contains("Other") {
        m["States"]["Other"] = json!({"Type": "Pass", "Result": "other", "End": true});
    }
    m
}

#[test]
fn catch_places_error_at_result_path_of_raw_input_and_transitions() {
    let inv = FakeInvoker::new().on("r", |_| Err(TaskFailure::new("Bad", "it went wrong")));
    let e = run(
        catch_machine(json!([
            {"ErrorEquals": ["Nope"], "Next": "Other"},
            {"ErrorEquals": ["Bad"], "ResultPath": "$.error", "Next": "Handler"}
        ])),
        json!({"sub": {"x": 1}, "keep": 2}),
        &inv,
    );
    assert_eq!(
        output(&e),
        json!({"sub": {"x": 1}, "keep": 2, "error": {"Error": "Bad", "Cause": "it went wrong"}})
    );
    assert_eq!(e.transitions, 2);
    // Default ResultPath `$` replaces the input with the error object.
    let e = run(
        catch_machine(json!([{"ErrorEquals": ["States.ALL"], "Next": "Handler"}])),
        json!({"sub": {}}),
        &inv,
    );
    assert_eq!(
        output(&e),
        json!({"Error": "Bad", "Cause": "it went wrong"})
    );
    // ResultPath null keeps the raw input.
    let e = run(
        catch_machine(
            json!([{"ErrorEquals": ["States.TaskFailed"], "ResultPath": null, "Next": "Handler"}]),
        ),
        json!({"sub": {}, "z": 1}),
        &inv,
    );
    assert_eq!(output(&e), json!({"sub": {}, "z": 1}));
    // Unmatched errors fail the execution.
    let e = run(
        catch_machine(json!([{"ErrorEquals": ["Nope"], "Next": "Other"}])),
        json!({"sub": {}}),
        &inv,
    );
    assert_eq!(error(&e), TaskFailure::new("Bad", "it went wrong"));
}

#[test]
fn catch_applies_after_retries_are_exhausted() {
    let n = Arc::new(AtomicU32::new(0));
    let c = n.clone();
    let inv = FakeInvoker::new().on("r", move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Err(TaskFailure::new("Retryable", "again"))
    });
    let e = run(
        catch_machine(
            json!([{"ErrorEquals": ["Retryable"], "Next": "Handler", "ResultPath": "$.err"}]),
        ),
        json!({"sub": {}}),
        &inv,
    );
    assert_eq!(output(&e)["err"]["Error"], "Retryable");
    assert_eq!(n.load(Ordering::SeqCst), 2);
    // Entering T, one retry, entering Handler.
    assert_eq!(e.transitions, 3);
}

#[test]
fn catch_result_path_on_non_object_input_is_a_runtime_error() {
    let inv = FakeInvoker::new().on("r", fail("Bad"));
    let e = run(
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r", "End": true,
                  "Catch": [{"ErrorEquals": ["Bad"], "ResultPath": "$.e", "Next": "H"}]},
            "H": {"Type": "Succeed"}
        }}),
        json!([1, 2]),
        &inv,
    );
    assert_eq!(error(&e).error, error_names::RUNTIME);
}
