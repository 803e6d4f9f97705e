//! A local interpreter for the Amazon States Language (JSONPath query language), so
//! `cai` can run its Step Functions workflow — or a user's edited copy of it — on one
//! machine with the same semantics AWS applies.
//!
//! The supported subset is Task, Pass, Map (inline and distributed), Choice, Succeed
//! and Fail states with the JSONPath input/output fields, Retry and Catch. Anything
//! else is refused by [`Definition::parse`] with a [`DefinitionError`] that names the
//! state's full path and the offending field, instead of being silently ignored.
//!
//! [`execute`] runs a parsed [`Definition`]; Task states call a [`TaskInvoker`], and
//! progress is reported to an [`Observer`].

#![warn(missing_docs)]

mod choice;
mod context;
mod definition;
mod error;
mod invoke;
mod observe;
mod path;
mod retry;
mod run;
mod s3;
mod template;
mod timestamp;

pub use definition::Definition;
pub use error::{error_names, DefinitionError};
pub use invoke::{TaskCall, TaskFailure, TaskInvoker};
pub use observe::{Event, NoopObserver, Observer};
pub use run::{execute, ExecOptions, Execution, Sleeper, Status, UNBOUNDED_MAP_WORKERS};
pub use s3::{ListPage, MemoryS3, ObjectEntry, S3Access, S3Failure, ITEM_READER_MAX_BYTES};

/// RFC 3339 UTC text of a time, as `$$.Execution.StartTime` shows it; exported so engines
/// print start and end times the same way.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    timestamp::format(t)
}
