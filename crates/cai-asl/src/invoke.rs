//! The boundary between the interpreter and whatever actually runs a Task.

use std::time::Duration;

use serde_json::Value;

/// One Task invocation handed to the [`TaskInvoker`], with everything the runner needs
/// to start the work and label its logs.
#[derive(Debug, Clone)]
pub struct TaskCall<'a> {
    /// The Task's `Resource` string, verbatim.
    pub resource: &'a str,
    /// The effective input, after InputPath and Parameters.
    pub input: Value,
    /// From the Task's TimeoutSeconds, shortened to what is left of the execution's
    /// TimeoutSeconds when that is sooner. The invoker enforces it and reports
    /// `States.Timeout`.
    pub timeout: Option<Duration>,
    /// The Task state's name.
    pub state_name: &'a str,
    /// Retries already made for this state entry (0 on the first attempt).
    pub retry_count: u32,
    /// Index of the innermost enclosing Map item, if the Task runs inside a Map.
    pub map_item_index: Option<usize>,
}

/// A failed Task (or state), named the way Retry and Catch match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// The error name, e.g. `States.Timeout` or an application name.
    pub error: String,
    /// Human-readable detail.
    pub cause: String,
}

impl TaskFailure {
    /// Shorthand so invokers and tests can build failures from string literals.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskFailure {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Runs Task states. Called from several threads at once inside Maps, and expected to
/// block until the work finishes.
pub trait TaskInvoker: Send + Sync {
    /// Runs one attempt of a Task and returns its raw result.
    fn invoke(&self, call: TaskCall<'_>) -> Result<Value, TaskFailure>;
}

/// Lets a plain closure serve as an invoker (handy in tests and small tools).
impl<F> TaskInvoker for F
where
    F: Fn(TaskCall<'_>) -> Result<Value, TaskFailure> + Send + Sync,
{
    fn invoke(&self, call: TaskCall<'_>) -> Result<Value, TaskFailure> {
        self(call)
    }
}
