//! A handler's error as Lambda reports it (`errorType`, `errorMessage`), so Retry and Catch
//! in the definition can tell a bad input (never retried) from a transient failure.

use serde::{Deserialize, Serialize};

/// Error types the handlers raise; the definition's Retry lists the permanent ones first.
pub mod kind {
    /// The event or payload is wrong: retrying cannot help.
    pub const INVALID_INPUT: &str = "cai.InvalidInput";
    /// A partition file is unreadable or incompatible: retrying cannot help.
    pub const INVALID_PARTITION: &str = "cai.InvalidPartition";
    /// The weights are missing or unusable: retrying cannot help.
    pub const INVALID_MODEL: &str = "cai.InvalidModel";
    /// The store failed (network, disk): worth a retry.
    pub const STORE: &str = "cai.StoreError";
    /// Anything else: worth a retry.
    pub const INTERNAL: &str = "cai.InternalError";
    /// Another run holds the result path (its lease, `<result_path>/lease.json`): this
    /// execution was refused before it changed anything there.
    pub const RUN_IN_PROGRESS: &str = "cai.RunInProgress";
    /// Raised on purpose by the test-only fault injector.
    pub const INJECTED: &str = "cai.InjectedFault";
    /// Errors that no retry can fix.
    pub const PERMANENT: [&str; 3] = [INVALID_INPUT, INVALID_PARTITION, INVALID_MODEL];
}

/// A handler failure, serialised as Lambda's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error_type}: {error_message}")]
pub struct HandlerError {
    /// Lambda `errorType`; becomes the Step Functions error name.
    #[serde(rename = "errorType")]
    pub error_type: String,
    /// Lambda `errorMessage`; becomes the cause.
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl HandlerError {
    /// An error of the given kind.
    pub fn new(error_type: &str, message: impl Into<String>) -> Self {
        HandlerError {
            error_type: error_type.to_string(),
            error_message: message.into(),
        }
    }

    /// Bad event or payload.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(kind::INVALID_INPUT, message)
    }

    /// Store failure, with the bucket/key context the store error carries.
    pub fn store(e: impl std::fmt::Display) -> Self {
        Self::new(kind::STORE, e.to_string())
    }
}
