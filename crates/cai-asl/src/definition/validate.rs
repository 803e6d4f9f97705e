//! Whole-scope checks: StartAt and every transition target exist in the same `States`
//! object, and every state is reachable.

use std::collections::BTreeSet;

use super::fields::Fields;
use super::{StateKind, StateMachine, Transition};
use crate::DefinitionError;

pub(super) fn scope(f: &Fields<'_>, prefix: &str, m: &StateMachine) -> Result<(), DefinitionError> {
    if !m.states.contains_key(&m.start_at) {
        return Err(f.invalid(
            "StartAt",
            format!("names state `{}`, which is not in States", m.start_at),
        ));
    }
    for (name, state) in &m.states {
        for (field, target) in targets(&state.kind, &state.transition) {
            if !m.states.contains_key(target) {
                return Err(DefinitionError::Invalid {
                    path: format!("{prefix}States.{name}"),
                    field,
                    message: format!(
                        "names state `{target}`, which does not exist in the same States scope"
                    ),
                });
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![m.start_at.as_str()];
    while let Some(name) = todo.pop() {
        if !seen.insert(name) {
            continue;
        }
        let state = &m.states[name];
        todo.extend(
            targets(&state.kind, &state.transition)
                .into_iter()
                .map(|(_, t)| t),
        );
    }
    if let Some(name) = m.states.keys().find(|n| !seen.contains(n.as_str())) {
        return Err(DefinitionError::Unreachable {
            path: format!("{prefix}States.{name}"),
        });
    }
    Ok(())
}

fn targets<'a>(kind: &'a StateKind, transition: &'a Transition) -> Vec<(String, &'a str)> {
    let mut out = Vec::new();
    if let Transition::Next(n) = transition {
        out.push(("Next".to_string(), n.as_str()));
    }
    let catch = match kind {
        StateKind::Task(t) => &t.catch[..],
        StateKind::Map(m) => &m.catch[..],
        StateKind::Choice(c) => {
            for (i, b) in c.choices.iter().enumerate() {
                out.push((format!("Choices[{i}].Next"), b.next.as_str()));
            }
            if let Some(d) = &c.default {
                out.push(("Default".to_string(), d.as_str()));
            }
            &[]
        }
        _ => &[],
    };
    for (i, c) in catch.iter().enumerate() {
        out.push((format!("Catch[{i}].Next"), c.next.as_str()));
    }
    out
}
