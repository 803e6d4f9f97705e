//! Definition errors and the reserved `States.*` error names.

use std::fmt;

/// Why a state machine definition was refused, so the user can fix the exact state
/// and field instead of discovering the problem halfway through a run.
///
/// `path` is the state's full path, e.g. `States.Map.ItemProcessor.States.Infer`, or
/// empty for the definition's top level; `field` is the field inside it, e.g.
/// `Retry[0].BackoffRate`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// The text is not JSON at all; `line` and `column` are 1-based.
    #[error("definition is not valid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// serde_json's description of the problem.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type or out of range.
    #[error("{}, field `{field}`: {message}", Location(path))]
    Invalid {
        /// Full state path, empty for the top level.
        path: String,
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A field (or state type, or feature) that exists in the States Language but that
    /// this local interpreter does not implement.
    #[error(
        "{}, field `{field}`: not supported by the local interpreter: {message}",
        Location(path)
    )]
    Unsupported {
        /// Full state path, empty for the top level.
        path: String,
        /// The unsupported field.
        field: String,
        /// Why, or what to use instead.
        message: String,
    },
    /// A state no transition can ever reach (AWS refuses these too).
    #[error(
        "{}: state can never be reached from its scope's StartAt",
        Location(path)
    )]
    Unreachable {
        /// Full path of the unreachable state.
        path: String,
    },
}

impl DefinitionError {
    /// The state path the error is about (empty for the top level or JSON errors).
    pub fn path(&self) -> &str {
        match self {
            DefinitionError::Json { .. } => "",
            DefinitionError::Invalid { path, .. }
            | DefinitionError::Unsupported { path, .. }
            | DefinitionError::Unreachable { path } => path,
        }
    }

    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            DefinitionError::Invalid { field, .. } | DefinitionError::Unsupported { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}

struct Location<'a>(&'a String);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("top level of the definition")
        } else {
            write!(f, "state `{}`", self.0)
        }
    }
}

/// The error names the States Language reserves, for matching a [`crate::TaskFailure`]
/// without retyping string literals.
pub mod error_names {
    /// Wildcard in Retry/Catch: every error except the terminal ones.
    pub const ALL: &str = "States.ALL";
    /// Wildcard in Retry/Catch: every error except `States.Timeout`.
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// A Task ran past its TimeoutSeconds, or the execution past its own.
    pub const TIMEOUT: &str = "States.Timeout";
    /// Path or payload processing failed; terminal, never retried nor caught.
    pub const RUNTIME: &str = "States.Runtime";
    /// A payload was too large; terminal, never retried nor caught.
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    /// A Choice state had no matching rule and no Default.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// A distributed Map had more failed items than it tolerates.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";

    /// A distributed Map's ItemReader could not read or decode its items.
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    /// A distributed Map's ResultWriter could not export the results.
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";

    /// Every `States.*` name a Retry or Catch may mention.
    pub(crate) const KNOWN: &[&str] = &[
        ALL,
        TASK_FAILED,
        TIMEOUT,
        RUNTIME,
        DATA_LIMIT_EXCEEDED,
        NO_CHOICE_MATCHED,
        EXCEED_TOLERATED_FAILURE_THRESHOLD,
        "States.BranchFailed",
        "States.HeartbeatTimeout",
        "States.Http.Socket",
        "States.IntrinsicFailure",
        ITEM_READER_FAILED,
        "States.ParameterPathFailure",
        "States.Permissions",
        "States.QueryEvaluationError",
        "States.ResultPathMatchFailure",
        RESULT_WRITER_FAILED,
    ];

    /// Errors that always fail the execution: no Retry or Catch applies to them.
    pub(crate) fn is_terminal(name: &str) -> bool {
        name == RUNTIME || name == DATA_LIMIT_EXCEEDED
    }
}
