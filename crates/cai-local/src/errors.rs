//! How an invocation's ending reads to the state machine: the error names and causes Lambda
//! gives Step Functions (`Runtime.ExitError`, `Runtime.OutOfMemory`, a handler's own
//! `errorType`...), whichever way the invocation ran (a one-shot process or a warm worker).

use std::time::Duration;

use cai_asl::TaskFailure;
use serde_json::{json, Value};

/// A Task failure as Step Functions reports it.
pub fn failure(error: &str, cause: impl Into<String>) -> TaskFailure {
    TaskFailure {
        error: error.into(),
        cause: cause.into(),
    }
}

/// A handler's own error: Lambda's body `{"errorType", "errorMessage"}`, kept whole as cause.
pub fn handler_error(body: &Value) -> TaskFailure {
    failure(
        body.get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("Lambda.Unknown"),
        body.to_string(),
    )
}

/// A response that is not one (not JSON, not Lambda's shape).
pub fn unknown(what: &str, stderr_tail: &str) -> TaskFailure {
    failure(
        "Lambda.Unknown",
        format!("{what}; stderr: {}", last_line(stderr_tail)),
    )
}

/// The runtime died (exit status, signal, panic): `how` says which.
pub fn exit_error(how: &str, stderr_tail: &str) -> TaskFailure {
    let detail = stderr_tail
        .lines()
        .filter(|l| !l.trim().is_empty())
        .find(|l| l.contains("panicked at") || l.contains("error"))
        .unwrap_or_else(|| last_line(stderr_tail))
        .trim()
        .to_string();
    let panic_msg = stderr_tail
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .nth(1)
        .map(str::trim)
        .unwrap_or("");
    failure(
        "Runtime.ExitError",
        json!({
            "errorType": "Runtime.ExitError",
            "errorMessage": format!("Runtime exited with error: {how}: {detail} {panic_msg}").trim().to_string(),
        })
        .to_string(),
    )
}

/// Killed for going over its memory.
pub fn out_of_memory(peak_mib: f64, memory_mib: u64) -> TaskFailure {
    failure(
        "Runtime.OutOfMemory",
        json!({
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": format!(
                "Runtime exited with error: signal: killed (peak RSS {peak_mib:.0} MiB over the {memory_mib} MiB limit; raise memory_mb)"
            ),
        })
        .to_string(),
    )
}

/// Killed at its timeout.
pub fn timed_out(timeout: Option<Duration>) -> TaskFailure {
    failure(
        "States.Timeout",
        format!(
            "the invocation ran past TimeoutSeconds ({} s) and was killed",
            timeout.map_or(0, |t| t.as_secs())
        ),
    )
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}
