//! States that call nothing: Pass, Choice, Succeed and Fail.

use serde_json::Value;

use super::machine::{follow, At, Step};
use super::{io, Halt};
use crate::context::LazyContext;
use crate::definition::{ChoiceState, FailState, FailText, PassState, State};
use crate::error::error_names;
use crate::path::Root;
use crate::TaskFailure;

/// Pass: InputPath → Parameters → Result (replaces) → ResultPath → OutputPath.
pub(crate) fn pass<'s>(
    at: &At<'_>,
    state: &'s State,
    p: &PassState,
    raw: Value,
) -> Result<Step<'s>, Halt> {
    let effective = io::select(&state.input_path, &raw, "InputPath")?;
    let ctx = LazyContext::new(at.ctx(0));
    let mut result = match &p.parameters {
        Some(t) => io::template(t, &effective, &ctx, "Parameters")?,
        None => effective,
    };
    if let Some(r) = &p.result {
        result = r.clone();
    }
    let output = io::apply_result_path(&p.result_path, raw, result)?;
    Ok(follow(
        state,
        io::select_owned(&state.output_path, output, "OutputPath")?,
    ))
}

/// Choice: the first matching rule's Next, else Default, else States.NoChoiceMatched.
/// The output is the effective input after OutputPath.
pub(crate) fn choice<'s>(
    at: &At<'_>,
    state: &'s State,
    c: &'s ChoiceState,
    raw: Value,
) -> Result<Step<'s>, Halt> {
    let effective = io::select_owned(&state.input_path, raw, "InputPath")?;
    let ctx = LazyContext::new(at.ctx(0));
    let mut next = None;
    for branch in &c.choices {
        if branch.rule.eval(&effective, &ctx).map_err(Halt::runtime)? {
            next = Some(branch.next.as_str());
            break;
        }
    }
    let Some(next) = next.or(c.default.as_deref()) else {
        return Err(Halt::Failed(TaskFailure::new(
            error_names::NO_CHOICE_MATCHED,
            format!(
                "No Choice rule of state `{}` matched and it has no Default",
                at.name
            ),
        )));
    };
    Ok(Step::Next(
        next,
        io::select_owned(&state.output_path, effective, "OutputPath")?,
    ))
}

/// Succeed: InputPath then OutputPath, and the scope ends.
pub(crate) fn succeed(state: &State, raw: Value) -> Result<Step<'_>, Halt> {
    let effective = io::select_owned(&state.input_path, raw, "InputPath")?;
    Ok(Step::End(io::select_owned(
        &state.output_path,
        effective,
        "OutputPath",
    )?))
}

/// Fail: the error and cause, literal or read from the raw input. Missing ones are
/// empty strings.
pub(crate) fn fail(at: &At<'_>, f: &FailState, raw: &Value) -> Halt {
    let ctx = LazyContext::new(at.ctx(0));
    let text = |t: &Option<FailText>, field: &str| -> Result<String, Halt> {
        match t {
            None => Ok(String::new()),
            Some(FailText::Literal(s)) => Ok(s.clone()),
            Some(FailText::Path(p)) => {
                let doc = match p.root() {
                    Root::Input => raw,
                    Root::Context => ctx.value(),
                };
                match p.get(doc) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    _ => Err(Halt::runtime(format!(
                        "{field} `{}` does not select a string",
                        p.text()
                    ))),
                }
            }
        }
    };
    match (text(&f.error, "ErrorPath"), text(&f.cause, "CausePath")) {
        (Ok(error), Ok(cause)) => Halt::Failed(TaskFailure { error, cause }),
        (Err(h), _) | (_, Err(h)) => h,
    }
}
