//! Executions of a deployed workflow: [`start`] one from a payload (bringing the state
//! machine's definition in line with the payload's settings first), [`follow`] it to the end
//! with the Distributed Map's item counts, and [`fetch`] what it produced: `summary.json`,
//! the REPORT lines Lambda billed, the state transitions, as the same
//! [`cai_local::RunReport`] `cai run` prints.
//!
//! State transitions are counted as Step Functions bills them: one per state entered
//! (`*StateEntered` history events, in the parent and in every Distributed Map child
//! execution) plus one per retry of a Task (a Lambda scheduled again after a failure). The
//! local engine counts states entered only, so on a run without retries both give
//! `ranks + 5`.

mod arn;
mod fetch;
mod follow;
mod history;
mod pricing;
mod start;
#[cfg(test)]
mod tests;

use crate::context::error_text;
use crate::logs::LogsError;
use aws_sdk_sfn::primitives::{DateTime, DateTimeFormat};
use std::time::{Duration, SystemTime};

pub use arn::{new_execution_name, ExecutionArn};
pub use fetch::{fetch, AwsRunReport, FetchOptions};
pub use follow::{describe, follow, map_counts, ExecutionInfo, FollowProgress, MapCounts};
pub use history::{history, invocations_in, transitions_in, HistoryItem};
pub use pricing::{pick_invocations, priced_row, CostSource};
pub use start::{check_scope, definition_changes, fit_concurrency, start, within_quota, Started};

/// How often [`follow`] asks Step Functions about a running execution by default.
pub const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// Transitions of a failed rank's child execution: Infer, RecordFailure, RankFailed (used
/// only when the child executions cannot be listed).
pub(super) const FAILED_CHILD_TRANSITIONS: u64 = 3;

/// Errors of the execution commands; each names the resource or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The payload is not one cai accepts.
    #[error("payload: {0}")]
    Payload(String),
    /// The payload names buckets or prefixes the deployment may not touch.
    #[error("{0}")]
    Scope(String),
    /// The state machine does not exist.
    #[error("not deployed: state machine {state_machine} not found in {region}; run `cai aws deploy --name {name}`")]
    NotDeployed {
        /// The deployment name.
        name: String,
        /// The state machine's ARN.
        state_machine: String,
        /// The region searched.
        region: String,
    },
    /// An AWS call failed.
    #[error("{op} on {resource}: {message}")]
    Aws {
        /// The API call, e.g. `states:StartExecution`.
        op: &'static str,
        /// The resource it was about.
        resource: String,
        /// The service's code and message.
        message: String,
    },
    /// Not an execution ARN.
    #[error("execution ARN {arn:?}: {reason}")]
    Arn {
        /// What was given.
        arn: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store holding the results failed.
    #[error("store: {0}")]
    Store(String),
    /// CloudWatch Logs failed.
    #[error(transparent)]
    Logs(#[from] LogsError),
}

/// Shorthand for an AWS call's error.
pub(super) fn aws_err<E, R>(
    op: &'static str,
    resource: &str,
    e: &aws_sdk_sfn::error::SdkError<E, R>,
) -> ExecutionError
where
    E: std::error::Error + aws_sdk_sfn::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    ExecutionError::Aws {
        op,
        resource: resource.to_string(),
        message: error_text(e),
    }
}

/// Unix milliseconds of an SDK time.
pub(super) fn unix_ms(t: &DateTime) -> i64 {
    t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
}

/// Now, Unix ms.
pub(super) fn now_ms() -> i64 {
    unix_ms(&DateTime::from(SystemTime::now()))
}

/// RFC 3339, as the local engine writes times.
pub(super) fn rfc3339(t: &DateTime) -> String {
    t.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{}s", t.secs()))
}
