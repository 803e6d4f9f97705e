//! A local interpreter for the Amazon States Language (JSONPath query language), so
//! `cai` can run its Step Functions workflow — or a user's edited copy of it — on one
//! machine with the same semantics AWS applies.
//!
//! The supported subset is Task, Pass, Map, Choice, Succeed and Fail states with the
//! JSONPath input/output fields, Retry and Catch. Map states run INLINE or DISTRIBUTED;
//! a distributed Map also supports:
//!
//! * `ItemReader` with `arn:aws:states:::s3:getObject` (`ReaderConfig.InputType` JSON,
//!   JSONL or CSV with `CSVHeaderLocation` FIRST_ROW or GIVEN and `CSVDelimiter`) and
//!   `arn:aws:states:::s3:listObjectsV2` (every page), with `MaxItems`/`MaxItemsPath`;
//! * `ItemBatcher` (`MaxItemsPerBatch`, `MaxInputBytesPerBatch`, their `*Path` forms,
//!   `BatchInput`);
//! * `ResultWriter` with `arn:aws:states:::s3:putObject` (`Bucket`, `Prefix`), writing
//!   `manifest.json` and `SUCCEEDED_0.json`/`FAILED_0.json` as AWS does;
//! * `ProcessorConfig.ExecutionType` STANDARD and EXPRESS, whose children's usage is
//!   reported separately in [`Execution`] and EXPRESS children stop after five minutes;
//! * `ToleratedFailureCount`/`ToleratedFailurePercentage`, `Label`, `MaxConcurrency`.
//!
//! S3 is reached through an [`S3Access`] the engine supplies ([`MemoryS3`] for tests
//! and tools). Every state input, output and Task result must fit in the 256 KiB
//! payload quota ([`ExecOptions::max_payload_bytes`]), or the execution fails with
//! `States.DataLimitExceeded`.
//!
//! Anything else — Parallel and Wait states, JSONata, intrinsic functions, manifest and
//! Parquet readers, `WriterConfig`, … — is refused by [`Definition::parse`] with a
//! [`DefinitionError`] that names the state's full path and the offending field,
//! instead of being silently ignored.
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
pub use run::{
    execute, ChildUsage, ExecOptions, Execution, Sleeper, Status, EXPRESS_MAX_DURATION,
    MAX_PAYLOAD_BYTES, UNBOUNDED_MAP_WORKERS,
};
pub use s3::{ListPage, MemoryS3, ObjectEntry, S3Access, S3Failure, ITEM_READER_MAX_BYTES};

/// RFC 3339 UTC text of a time, as `$$.Execution.StartTime` shows it; exported so engines
/// print start and end times the same way.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    timestamp::format(t)
}
