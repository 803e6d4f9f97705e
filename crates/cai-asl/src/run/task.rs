//! Task states: InputPath → Parameters → invoke → ResultSelector → ResultPath →
//! OutputPath, wrapped in Retry/Catch.

use std::time::Duration;

use serde_json::Value;

use super::machine::{At, Step};
use super::{io, recover, Halt};
use crate::context::LazyContext;
use crate::definition::{State, TaskState};
use crate::TaskCall;

pub(crate) fn run<'s>(
    at: &At<'_>,
    state: &'s State,
    t: &'s TaskState,
    raw: Value,
) -> Result<Step<'s>, Halt> {
    let effective = io::select(&state.input_path, &raw, "InputPath")?;
    let shared = at.ex.shared;
    let handled = recover::attempts(at, &t.retry, &t.catch, &raw, |retry_count| {
        let ctx = LazyContext::new(at.ctx(retry_count));
        let input = match &t.parameters {
            Some(p) => io::template(p, &effective, &ctx, "Parameters")?,
            None => effective.clone(),
        };
        at.ex.check_size(&input, || {
            format!("The input of Task state `{}` after Parameters", at.name)
        })?;
        let timeout = match (
            t.timeout_seconds.map(Duration::from_secs),
            at.ex.remaining(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let result = shared.invoker.invoke(TaskCall {
            resource: &t.resource,
            input,
            timeout,
            state_name: at.name,
            retry_count,
            map_item_index: at.item,
        });
        at.ex.check_deadline()?;
        let result = result.map_err(Halt::Failed)?;
        at.ex.check_size(&result, || {
            format!("The result of Task state `{}`", at.name)
        })?;
        let result = match &t.result_selector {
            Some(s) => io::template(s, &result, &ctx, "ResultSelector")?,
            None => result,
        };
        let output = io::apply_result_path(&t.result_path, raw.clone(), result)?;
        io::select_owned(&state.output_path, output, "OutputPath")
    })?;
    Ok(handled.into_step(state))
}
