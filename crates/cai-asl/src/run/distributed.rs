//! Distributed Map runs: one child execution per item (or per batch), each with its own
//! `$$.Execution` (`Id` = `<parent Id>/<Label or state name>/<index>`, `Name` likewise
//! from the parent's Name, `Input` = the child's input). Their transitions and
//! durations count in [`super::ChildUsage`] for the Map's ExecutionType; EXPRESS
//! children fail with `States.Timeout` past `ExecOptions::express_max_duration`.
//!
//! Without a ResultWriter, a failed child's slot in the result array holds
//! `{"Error", "Cause"}` so the array keeps one entry per child in order. The Map fails
//! with `States.ExceedToleratedFailureThreshold` when failed items (every item of a
//! failed batch) exceed ToleratedFailureCount, or their share of all items exceeds
//! ToleratedFailurePercentage (neither set: any failure); once that happens no new
//! children start and running ones finish. A ResultWriter still exports the results of
//! the children that ran before the Map fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde_json::{json, Map, Value};

use super::batch::Batch;
use super::machine::{self, At};
use super::writer::{self, Record};
use super::{pool, Deadline, Exec, Halt, ARN_PREFIX};
use crate::context::{ExecInfo, LazyContext};
use crate::definition::{ExecutionType, MapState};
use crate::error::error_names;
use crate::{timestamp, Event, TaskFailure};

/// How one child execution ended.
struct ChildRun {
    outcome: Result<Value, TaskFailure>,
    /// Stopped by its own EXPRESS time limit.
    timed_out: bool,
    started: SystemTime,
    stopped: SystemTime,
}

/// Runs the children and returns the Map's result: the array of child outputs, or the
/// ResultWriter's details.
pub(crate) fn run(
    at: &At<'_>,
    m: &MapState,
    effective: &Value,
    ctx: &LazyContext<'_>,
    batches: &[Batch],
    workers: usize,
) -> Result<Value, Halt> {
    let target = match &m.result_writer {
        Some(w) => Some(writer::target(at, w, effective, ctx)?),
        None => None,
    };
    let shared = at.ex.shared;
    let total: usize = batches.iter().map(|(_, n)| n).sum();
    let failed = AtomicUsize::new(0);
    let aborted: Mutex<Option<Halt>> = Mutex::new(None);
    let label = m.label.as_deref().unwrap_or(at.name);
    let usage = match m.execution_type {
        ExecutionType::Standard => &shared.standard,
        ExecutionType::Express => &shared.express,
    };
    let express_cause: Arc<str> = format!(
        "The EXPRESS child execution ran longer than {:?}, the limit on EXPRESS executions",
        shared.express_max_duration
    )
    .into();
    let slots = pool::run(batches.len(), workers, |i| {
        at.event(&Event::MapItemStarted { index: i });
        let (input, items) = &batches[i];
        let started = SystemTime::now();
        let clock = Instant::now();
        let own = match m.execution_type {
            ExecutionType::Express => {
                clock
                    .checked_add(shared.express_max_duration)
                    .map(|at| Deadline {
                        at,
                        cause: express_cause.clone(),
                    })
            }
            ExecutionType::Standard => None,
        };
        let deadline = match (at.ex.deadline.clone(), own) {
            (Some(a), Some(b)) => Some(if a.at <= b.at { a } else { b }),
            (a, b) => a.or(b),
        };
        let child = Exec {
            shared,
            info: child_info(&at.ex.info, label, i, input.clone(), started),
            transitions: &usage.transitions,
            deadline,
        };
        let result = machine::run(&child, &m.processor, input.clone(), Some(i));
        usage.record(clock.elapsed());
        let stopped = SystemTime::now();
        let (outcome, timed_out) = match result {
            Ok(v) => {
                at.event(&Event::MapItemSucceeded { index: i });
                return (
                    ChildRun {
                        outcome: Ok(v),
                        timed_out: false,
                        started,
                        stopped,
                    },
                    false,
                );
            }
            Err(Halt::Failed(f)) => (f, false),
            // The parent's own deadline stops the whole Map; otherwise it was the
            // child's EXPRESS limit, and only the child fails.
            Err(halt @ Halt::Aborted(_)) if at.ex.check_deadline().is_err() => {
                at.event(&Event::MapItemFailed {
                    index: i,
                    error: halt.failure(),
                });
                let f = halt.failure().clone();
                *aborted.lock().unwrap_or_else(|e| e.into_inner()) = Some(halt);
                return (
                    ChildRun {
                        outcome: Err(f),
                        timed_out: false,
                        started,
                        stopped,
                    },
                    true,
                );
            }
            Err(Halt::Aborted(f)) => (f, true),
        };
        at.event(&Event::MapItemFailed {
            index: i,
            error: &outcome,
        });
        let now_failed = failed.fetch_add(*items, Ordering::SeqCst) + items;
        let run = ChildRun {
            outcome: Err(outcome),
            timed_out,
            started,
            stopped,
        };
        (run, exceeds(m, now_failed, total))
    });
    if let Some(halt) = aborted.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(halt);
    }
    let failed = failed.into_inner();
    let threshold = exceeds(m, failed, total).then(|| {
        Halt::Failed(TaskFailure::new(
            error_names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
            format!(
                "Map state `{}` failed because {failed} of {total} items failed, more than it tolerates",
                at.name
            ),
        ))
    });
    if let Some(target) = target {
        let (id, arn) = map_run_arn(&at.ex.info.state_machine_name, label);
        let records = slots.iter().enumerate().filter_map(|(i, s)| {
            s.as_ref()
                .map(|run| record(&at.ex.info, label, i, &batches[i].0, run))
        });
        let result = writer::write(at, &target, &arn, &id, records)?;
        return match threshold {
            Some(halt) => Err(halt),
            None => Ok(result),
        };
    }
    if let Some(halt) = threshold {
        return Err(halt);
    }
    Ok(Value::Array(
        slots
            .into_iter()
            .map(
                |s| match s.expect("every child ran when the threshold holds").outcome {
                    Ok(v) => v,
                    Err(f) => json!({"Error": f.error, "Cause": f.cause}),
                },
            )
            .collect(),
    ))
}

/// Whether `failed` of `total` items is beyond what the Map tolerates.
fn exceeds(m: &MapState, failed: usize, total: usize) -> bool {
    match (m.tolerated_failure_count, m.tolerated_failure_percentage) {
        (None, None) => failed > 0,
        (count, pct) => {
            count.is_some_and(|c| failed as u64 > c)
                || pct.is_some_and(|p| total > 0 && failed as f64 * 100.0 / total as f64 > p)
        }
    }
}

fn child_info(
    parent: &ExecInfo,
    label: &str,
    i: usize,
    input: Value,
    started: SystemTime,
) -> ExecInfo {
    ExecInfo {
        id: format!("{}/{label}/{i}", parent.id),
        name: format!("{}/{label}/{i}", parent.name),
        input,
        start_time: timestamp::format(started),
        state_machine_id: format!("{}/{label}", parent.state_machine_id),
        state_machine_name: format!("{}/{label}", parent.state_machine_name),
    }
}

/// A fresh Map Run id (UUID-shaped) and its ARN:
/// `arn:aws:states:<region>:<account>:mapRun:<state machine>/<label>:<id>`.
fn map_run_arn(state_machine: &str, label: &str) -> (String, String) {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    let arn = format!("{ARN_PREFIX}:mapRun:{state_machine}/{label}:{id}");
    (id, arn)
}

/// The child-execution record ResultWriter exports, with Step Functions' field names
/// (Input and Output are JSON text).
fn record(parent: &ExecInfo, label: &str, i: usize, input: &Value, run: &ChildRun) -> Record {
    let mut r = Map::new();
    let text = |v: &Value| Value::String(v.to_string());
    if let Err(f) = &run.outcome {
        r.insert("Cause".into(), json!(f.cause));
        r.insert("Error".into(), json!(f.error));
    }
    r.insert(
        "ExecutionArn".into(),
        json!(format!("{}/{label}/{i}", parent.id)),
    );
    r.insert("Input".into(), text(input));
    r.insert("InputDetails".into(), json!({"Included": true}));
    r.insert("Name".into(), json!(format!("{}/{label}/{i}", parent.name)));
    if let Ok(output) = &run.outcome {
        r.insert("Output".into(), text(output));
        r.insert("OutputDetails".into(), json!({"Included": true}));
    }
    r.insert("StartDate".into(), json!(timestamp::format(run.started)));
    r.insert(
        "StateMachineArn".into(),
        json!(format!("{}/{label}", parent.state_machine_id)),
    );
    let status = match (&run.outcome, run.timed_out) {
        (Ok(_), _) => "SUCCEEDED",
        (Err(_), true) => "TIMED_OUT",
        (Err(_), false) => "FAILED",
    };
    r.insert("Status".into(), json!(status));
    r.insert("StopDate".into(), json!(timestamp::format(run.stopped)));
    Record {
        succeeded: run.outcome.is_ok(),
        value: Value::Object(r),
    }
}
