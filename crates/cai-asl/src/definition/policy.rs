//! Parsing Retry and Catch arrays.

use serde_json::Value;

use super::fields::Fields;
use super::parse::result_path;
use crate::error::error_names;
use crate::retry::{Catcher, Retrier};
use crate::DefinitionError;

pub(super) fn retriers(f: &Fields<'_>) -> Result<Vec<Retrier>, DefinitionError> {
    let items = array(f, "Retry")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let rf = Fields::new(f.path(), &f.name(&format!("Retry[{i}]")), v)?;
        rf.check_allowed(
            "a retrier",
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
        )?;
        let full_jitter = match rf.str("JitterStrategy")? {
            None | Some("NONE") => false,
            Some("FULL") => true,
            Some(_) => return Err(rf.invalid("JitterStrategy", "must be \"FULL\" or \"NONE\"")),
        };
        out.push(Retrier {
            errors: error_equals(&rf, i + 1 == items.len(), "retrier")?,
            interval_seconds: rf.uint("IntervalSeconds", 1)?.unwrap_or(1),
            max_attempts: rf.uint("MaxAttempts", 0)?.unwrap_or(3),
            backoff_rate: rf.number("BackoffRate", 1.0, f64::INFINITY)?.unwrap_or(2.0),
            max_delay_seconds: rf.uint("MaxDelaySeconds", 1)?,
            full_jitter,
        });
    }
    Ok(out)
}

pub(super) fn catchers(f: &Fields<'_>) -> Result<Vec<Catcher>, DefinitionError> {
    let items = array(f, "Catch")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let cf = Fields::new(f.path(), &f.name(&format!("Catch[{i}]")), v)?;
        cf.check_allowed(
            "a catcher",
            &["ErrorEquals", "Next", "ResultPath", "Comment"],
        )?;
        out.push(Catcher {
            errors: error_equals(&cf, i + 1 == items.len(), "catcher")?,
            next: cf.req_str("Next")?.to_string(),
            result_path: result_path(&cf)?,
        });
    }
    Ok(out)
}

fn array<'a>(f: &Fields<'a>, field: &str) -> Result<&'a [Value], DefinitionError> {
    match f.get(field) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(f.invalid(field, "must be an array")),
    }
}

fn error_equals(f: &Fields<'_>, is_last: bool, what: &str) -> Result<Vec<String>, DefinitionError> {
    let Some(names) = f
        .get("ErrorEquals")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return Err(f.invalid(
            "ErrorEquals",
            "is required and must be a non-empty array of error names",
        ));
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let Some(name) = name.as_str().filter(|s| !s.is_empty()) else {
            return Err(f.invalid("ErrorEquals", "error names must be non-empty strings"));
        };
        if name.starts_with("States.") && !error_names::KNOWN.contains(&name) {
            return Err(f.invalid(
                "ErrorEquals",
                format!("`{name}` is not a predefined States error name"),
            ));
        }
        out.push(name.to_string());
    }
    if out.iter().any(|n| n == error_names::ALL) {
        if out.len() > 1 {
            return Err(f.invalid("ErrorEquals", "States.ALL must appear alone"));
        }
        if !is_last {
            return Err(f.invalid(
                "ErrorEquals",
                format!("a {what} matching States.ALL must be the last one"),
            ));
        }
    }
    Ok(out)
}
