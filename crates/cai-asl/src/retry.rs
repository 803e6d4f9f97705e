//! Retry and Catch policies: which errors they match and how long a retry waits.

use std::time::Duration;

use rand::Rng;

use crate::error::error_names;
use crate::path::Path;

/// One entry of a state's `Retry` array.
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub errors: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub full_jitter: bool,
}

/// Where a Catch puts `{"Error", "Cause"}`: `None` discards it (ResultPath null).
#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub errors: Vec<String>,
    pub next: String,
    pub result_path: Option<Path>,
}

/// Whether an ErrorEquals list matches `error`. `States.ALL` matches everything but
/// the terminal errors (States.Runtime, States.DataLimitExceeded), `States.TaskFailed`
/// everything but those and `States.Timeout`; terminal errors match nothing, not even
/// their own name, because Step Functions never retries or catches them.
pub(crate) fn matches(errors: &[String], error: &str) -> bool {
    if error_names::is_terminal(error) {
        return false;
    }
    errors.iter().any(|e| {
        e == error
            || e == error_names::ALL
            || (e == error_names::TASK_FAILED && error != error_names::TIMEOUT)
    })
}

/// Longest wait the interpreter will compute, so huge backoffs stay representable.
const MAX_DELAY: f64 = 100_000_000.0;

impl Retrier {
    /// Wait before retry number `previous + 1` of this retrier:
    /// `IntervalSeconds * BackoffRate^previous`, capped by MaxDelaySeconds, then drawn
    /// uniformly from `[0, delay]` under FULL jitter.
    pub(crate) fn delay(&self, previous: u64, rng: &mut impl Rng) -> Duration {
        let exp = i32::try_from(previous).unwrap_or(i32::MAX);
        let mut secs = self.interval_seconds as f64 * self.backoff_rate.powi(exp);
        if let Some(max) = self.max_delay_seconds {
            secs = secs.min(max as f64);
        }
        if !secs.is_finite() || secs > MAX_DELAY {
            secs = MAX_DELAY;
        }
        if self.full_jitter {
            secs *= rng.random::<f64>();
        }
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards_follow_step_functions() {
        assert!(matches(&names(&["States.ALL"]), "Boom"));
        assert!(matches(&names(&["States.ALL"]), "States.Timeout"));
        assert!(!matches(&names(&["States.ALL"]), "States.Runtime"));
        assert!(!matches(&names(&["States.Runtime"]), "States.Runtime"));
        assert!(matches(&names(&["States.TaskFailed"]), "Boom"));
        assert!(!matches(&names(&["States.TaskFailed"]), "States.Timeout"));
        assert!(!matches(&names(&["A", "B"]), "C"));
    }
}
