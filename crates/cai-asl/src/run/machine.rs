//! The state loop: enter a state, run it, follow its transition.

use std::time::SystemTime;

use serde_json::Value;

use super::{map, simple, task, Exec, Halt};
use crate::context::StateCtx;
use crate::definition::{State, StateKind, StateMachine, Transition};
use crate::{timestamp, Event};

/// Where a state sends the execution next.
pub(crate) enum Step<'s> {
    Next(&'s str, Value),
    End(Value),
}

/// Follows a state's own Next/End with `output`.
pub(crate) fn follow(state: &State, output: Value) -> Step<'_> {
    match &state.transition {
        Transition::Next(n) => Step::Next(n, output),
        _ => Step::End(output),
    }
}

/// The state being run and the execution it belongs to.
pub(crate) struct At<'a> {
    pub ex: &'a Exec<'a>,
    pub name: &'a str,
    pub entered: String,
    /// Innermost enclosing Map item.
    pub item: Option<usize>,
}

impl At<'_> {
    /// The `$$` facts for this state at the given retry count.
    pub(crate) fn ctx(&self, retry_count: u32) -> StateCtx<'_> {
        StateCtx {
            exec: &self.ex.info,
            state_name: self.name,
            entered_time: &self.entered,
            retry_count,
            item: None,
        }
    }

    pub(crate) fn event(&self, e: &Event<'_>) {
        self.ex.shared.observer.event(e);
    }
}

/// Runs one `States` scope from its StartAt to an end, within execution `ex`.
pub(crate) fn run(
    ex: &Exec<'_>,
    sm: &StateMachine,
    input: Value,
    item: Option<usize>,
) -> Result<Value, Halt> {
    let mut name: &str = &sm.start_at;
    let mut input = input;
    loop {
        ex.check_deadline()?;
        let (name_ref, state) = sm
            .states
            .get_key_value(name)
            .expect("transitions are validated at parse time");
        ex.count_transition();
        ex.shared.observer.event(&Event::StateEntered {
            state: name_ref,
            map_item_index: item,
        });
        let at = At {
            ex,
            name: name_ref,
            entered: timestamp::format(SystemTime::now()),
            item,
        };
        let step = match &state.kind {
            StateKind::Task(t) => task::run(&at, state, t, input)?,
            StateKind::Map(m) => map::run(&at, state, m, input)?,
            StateKind::Pass(p) => simple::pass(&at, state, p, input)?,
            StateKind::Choice(c) => simple::choice(&at, state, c, input)?,
            StateKind::Succeed => simple::succeed(state, input)?,
            StateKind::Fail(f) => return Err(simple::fail(&at, f, &input)),
        };
        let output = match &step {
            Step::Next(_, output) | Step::End(output) => output,
        };
        ex.check_size(output, || format!("The output of state `{name_ref}`"))?;
        match step {
            Step::Next(next, output) => {
                name = next;
                input = output;
            }
            Step::End(output) => return Ok(output),
        }
    }
}
