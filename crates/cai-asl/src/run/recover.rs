//! The Retry/Catch loop around one state's work (Task or Map).

use serde_json::{json, Value};

use super::machine::{follow, At, Step};
use super::{io, Halt};
use crate::definition::State;
use crate::retry::{matches, Catcher, Retrier};
use crate::Event;

/// How the attempts ended when they did not fail the state.
pub(crate) enum Handled<'s> {
    /// An attempt succeeded with this output.
    Done(Value),
    /// A catcher handled the error: go to its Next with this output.
    Caught(&'s str, Value),
}

impl<'s> Handled<'s> {
    pub(crate) fn into_step(self, state: &'s State) -> Step<'s> {
        match self {
            Handled::Done(out) => follow(state, out),
            Handled::Caught(next, out) => Step::Next(next, out),
        }
    }
}

/// Calls `attempt(retry_count)` until it succeeds, the error has no retries left, or
/// it is not retriable; then applies the first matching catcher to the raw input.
/// Each retrier keeps its own attempt count, and only the first retrier whose
/// ErrorEquals matches is considered, as the States Language specifies.
pub(crate) fn attempts<'s>(
    at: &At<'_>,
    retriers: &'s [Retrier],
    catchers: &'s [Catcher],
    raw: &Value,
    mut attempt: impl FnMut(u32) -> Result<Value, Halt>,
) -> Result<Handled<'s>, Halt> {
    let mut used = vec![0u64; retriers.len()];
    let mut retries = 0u32;
    loop {
        let failure = match attempt(retries) {
            Ok(output) => return Ok(Handled::Done(output)),
            Err(Halt::Failed(f)) => f,
            Err(aborted) => return Err(aborted),
        };
        if let Some(r) = retriers
            .iter()
            .position(|r| matches(&r.errors, &failure.error))
        {
            let retrier = &retriers[r];
            if used[r] < retrier.max_attempts {
                let delay = {
                    let mut rng = at.ex.shared.rng.lock().unwrap_or_else(|e| e.into_inner());
                    retrier.delay(used[r], &mut *rng)
                };
                used[r] += 1;
                retries = retries.saturating_add(1);
                at.event(&Event::TaskRetrying {
                    state: at.name,
                    map_item_index: at.item,
                    error: &failure,
                    attempt: retries,
                    delay,
                });
                at.ex.sleep(delay)?;
                at.ex.count_transition();
                continue;
            }
        }
        if let Some(c) = catchers.iter().find(|c| matches(&c.errors, &failure.error)) {
            let error_output = json!({"Error": failure.error, "Cause": failure.cause});
            let output = io::apply_result_path(&c.result_path, raw.clone(), error_output)?;
            at.event(&Event::Caught {
                state: at.name,
                map_item_index: at.item,
                error: &failure,
                next: &c.next,
            });
            return Ok(Handled::Caught(&c.next, output));
        }
        return Err(Halt::Failed(failure));
    }
}
