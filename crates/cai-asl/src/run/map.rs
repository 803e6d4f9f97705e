//! Map states, inline and distributed.
//!
//! The items come from ItemsPath or the ItemReader; per item the input is the
//! ItemSelector evaluated against the Map's effective input (with `$$.Map.Item.Index` /
//! `$$.Map.Item.Value`), or the item itself; an ItemBatcher then groups them.
//!
//! * INLINE: iterations run in this execution (their transitions count here); the
//!   first failing item fails the Map with its error, no new items start, and running
//!   ones finish.
//! * DISTRIBUTED: each item (or batch) is a child execution; see [`super::distributed`].
//!
//! Every iteration or child input, and the Map's result, must fit in the payload quota.

use std::sync::Mutex;

use serde_json::Value;

use super::machine::{self, At, Step};
use super::{distributed, io, items, pool, recover, Halt, UNBOUNDED_MAP_WORKERS};
use crate::context::LazyContext;
use crate::definition::{MapMode, MapState, State};
use crate::Event;

pub(crate) fn run<'s>(
    at: &At<'_>,
    state: &'s State,
    m: &'s MapState,
    raw: Value,
) -> Result<Step<'s>, Halt> {
    let effective = io::select(&state.input_path, &raw, "InputPath")?;
    let handled = recover::attempts(at, &m.retry, &m.catch, &raw, |retry_count| {
        let ctx = LazyContext::new(at.ctx(retry_count));
        let inputs = items::inputs(at, m, &effective, &ctx, retry_count)?;
        for (i, (input, _)) in inputs.iter().enumerate() {
            at.ex.check_size(input, || {
                format!("The input of item {i} of Map state `{}`", at.name)
            })?;
        }
        at.event(&Event::MapStarted {
            state: at.name,
            items: inputs.len(),
        });
        let workers = workers(m, inputs.len());
        let result = match m.mode {
            MapMode::Inline => Value::Array(inline(at, m, &inputs, workers)?),
            MapMode::Distributed => distributed::run(at, m, &effective, &ctx, &inputs, workers)?,
        };
        at.ex
            .check_size(&result, || format!("The result of Map state `{}`", at.name))?;
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

fn inline(
    at: &At<'_>,
    m: &MapState,
    inputs: &[(Value, usize)],
    workers: usize,
) -> Result<Vec<Value>, Halt> {
    let first_failure: Mutex<Option<Halt>> = Mutex::new(None);
    let slots = pool::run(inputs.len(), workers, |i| {
        at.event(&Event::MapItemStarted { index: i });
        match machine::run(at.ex, &m.processor, inputs[i].0.clone(), Some(i)) {
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
