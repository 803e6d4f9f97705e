//! Map states, inline and distributed.
//!
//! Per item the child input is the ItemSelector evaluated against the Map's effective
//! input (with `$$.Map.Item.Index` / `$$.Map.Item.Value`), or the item itself.
//!
//! * INLINE: iterations run in this execution (their transitions count here); the
//!   first failing item fails the Map with its error, no new items start, and running
//!   ones finish.
//! * DISTRIBUTED: each item is a child execution with its own `$$.Execution`
//!   (`Id` = `<parent Id>/<Label or state name>/<index>`, `Name` likewise from the
//!   parent's Name, `Input` = the item input); its transitions count as child
//!   transitions. A failed item's slot in the result array holds
//!   `{"Error": …, "Cause": …}` so the array keeps one entry per item in order. The Map
//!   fails with `States.ExceedToleratedFailureThreshold` when failed items exceed
//!   ToleratedFailureCount, or their share of all items exceeds
//!   ToleratedFailurePercentage (neither set: any failure); once that happens no new
//!   items start and running ones finish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::machine::{self, At, Step};
use super::{io, pool, recover, Exec, Halt, UNBOUNDED_MAP_WORKERS};
use crate::context::{ExecInfo, LazyContext, StateCtx};
use crate::definition::{MapMode, MapState, State};
use crate::error::error_names;
use crate::path::Root;
use crate::{timestamp, Event, TaskFailure};

pub(crate) fn run<'s>(
    at: &At<'_>,
    state: &'s State,
    m: &'s MapState,
    raw: Value,
) -> Result<Step<'s>, Halt> {
    let effective = io::select(&state.input_path, &raw, "InputPath")?;
    let handled = recover::attempts(at, &m.retry, &m.catch, &raw, |retry_count| {
        let ctx = LazyContext::new(at.ctx(retry_count));
        let items = match m.items_path.root() {
            Root::Input => m.items_path.get(&effective),
            Root::Context => m.items_path.get(ctx.value()),
        };
        let Some(items) = items else {
            return Err(Halt::runtime(format!(
                "Invalid path `{}` in ItemsPath: it selects nothing",
                m.items_path.text()
            )));
        };
        let Some(items) = items.as_array() else {
            return Err(Halt::runtime(format!(
                "ItemsPath `{}` must select an array",
                m.items_path.text()
            )));
        };
        let inputs = items
            .iter()
            .enumerate()
            .map(|(i, item)| match &m.item_selector {
                Some(selector) => {
                    let item_ctx = LazyContext::new(StateCtx {
                        item: Some((i, item)),
                        ..at.ctx(retry_count)
                    });
                    io::template(selector, &effective, &item_ctx, "ItemSelector")
                }
                None => Ok(item.clone()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        at.event(&Event::MapStarted {
            state: at.name,
            items: inputs.len(),
        });
        let results = match m.mode {
            MapMode::Inline => inline(at, m, &inputs)?,
            MapMode::Distributed => distributed(at, m, &inputs)?,
        };
        let result = Value::Array(results);
        let result = match &m.result_selector {
            Some(s) => io::template(s, &result, &ctx, "ResultSelector")?,
            None => result,
        };
        let output = io::apply_result_path(&m.result_path, raw.clone(), result)?;
        io::select_owned(&state.output_path, output, "OutputPath")
    })?;
    Ok(handled.into_step(state))
}

fn workers(m: &MapState, n: usize) -> usize {
    let limit = match usize::try_from(m.max_concurrency) {
        Ok(0) | Err(_) => UNBOUNDED_MAP_WORKERS,
        Ok(max) => max,
    };
    limit.min(n)
}

fn inline(at: &At<'_>, m: &MapState, inputs: &[Value]) -> Result<Vec<Value>, Halt> {
    let first_failure: Mutex<Option<Halt>> = Mutex::new(None);
    let slots = pool::run(inputs.len(), workers(m, inputs.len()), |i| {
        at.event(&Event::MapItemStarted { index: i });
        match machine::run(at.ex, &m.processor, inputs[i].clone(), Some(i)) {
            Ok(v) => {
                at.event(&Event::MapItemSucceeded { index: i });
                (Some(v), false)
            }
            Err(halt) => {
                at.event(&Event::MapItemFailed {
                    index: i,
                    error: halt.failure(),
                });
                let mut first = first_failure.lock().unwrap_or_else(|e| e.into_inner());
                if first.is_none() || matches!(halt, Halt::Aborted(_)) {
                    *first = Some(halt);
                }
                (None, true)
            }
        }
    });
    if let Some(halt) = first_failure
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
    {
        return Err(halt);
    }
    Ok(slots
        .into_iter()
        .map(|s| s.flatten().expect("every item ran and succeeded"))
        .collect())
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

fn distributed(at: &At<'_>, m: &MapState, inputs: &[Value]) -> Result<Vec<Value>, Halt> {
    let total = inputs.len();
    let failed = AtomicUsize::new(0);
    let aborted: Mutex<Option<Halt>> = Mutex::new(None);
    let label = m.label.as_deref().unwrap_or(at.name);
    let parent = &at.ex.info;
    let slots = pool::run(total, workers(m, total), |i| {
        at.event(&Event::MapItemStarted { index: i });
        let child = Exec {
            shared: at.ex.shared,
            info: ExecInfo {
                id: format!("{}/{label}/{i}", parent.id),
                name: format!("{}/{label}/{i}", parent.name),
                input: inputs[i].clone(),
                start_time: timestamp::format(SystemTime::now()),
                state_machine_id: format!("{}/{label}", parent.state_machine_id),
                state_machine_name: format!("{}/{label}", parent.state_machine_name),
            },
            transitions: &at.ex.shared.child_transitions,
        };
        match machine::run(&child, &m.processor, inputs[i].clone(), Some(i)) {
            Ok(v) => {
                at.event(&Event::MapItemSucceeded { index: i });
                (v, false)
            }
            Err(halt) => {
                at.event(&Event::MapItemFailed {
                    index: i,
                    error: halt.failure(),
                });
                match halt {
                    Halt::Failed(f) => {
                        let now_failed = failed.fetch_add(1, Ordering::SeqCst) + 1;
                        let slot = json!({"Error": f.error, "Cause": f.cause});
                        (slot, exceeds(m, now_failed, total))
                    }
                    Halt::Aborted(_) => {
                        *aborted.lock().unwrap_or_else(|e| e.into_inner()) = Some(halt);
                        (Value::Null, true)
                    }
                }
            }
        }
    });
    if let Some(halt) = aborted.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(halt);
    }
    let failed = failed.into_inner();
    if exceeds(m, failed, total) {
        return Err(Halt::Failed(TaskFailure::new(
            error_names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
            format!(
                "Map state `{}` failed because {failed} of {total} items failed, more than it tolerates",
                at.name
            ),
        )));
    }
    Ok(slots
        .into_iter()
        .map(|s| s.expect("every item ran when the threshold holds"))
        .collect())
}
