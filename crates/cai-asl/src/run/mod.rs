//! Executing a [`Definition`]: options, the result, and the state each execution
//! (parent or distributed-Map child) shares.

mod batch;
mod decode;
mod distributed;
mod io;
mod items;
mod limit;
mod machine;
mod map;
mod pool;
mod reader;
mod recover;
mod simple;
mod task;
mod usage;
mod writer;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

use crate::context::ExecInfo;
use crate::error::error_names;
use crate::s3::{S3Access, ITEM_READER_MAX_BYTES};
use crate::{timestamp, Definition, Observer, TaskFailure, TaskInvoker};

pub use limit::MAX_PAYLOAD_BYTES;
pub use usage::ChildUsage;

/// How the interpreter waits between retries; injectable so tests can record the
/// delays instead of sleeping.
pub type Sleeper = Arc<dyn Fn(Duration) + Send + Sync>;

/// Worker threads a Map with `MaxConcurrency` 0 ("unlimited") uses at most, so a
/// 10 000-item distributed Map does not start 10 000 OS threads at once.
pub const UNBOUNDED_MAP_WORKERS: usize = 256;

/// How long AWS lets an EXPRESS execution run; a distributed Map's EXPRESS children are
/// cut off after it with `States.Timeout`.
pub const EXPRESS_MAX_DURATION: Duration = Duration::from_secs(300);

/// Per-execution settings.
#[derive(Clone)]
pub struct ExecOptions {
    /// Execution name (`$$.Execution.Name`, and part of `$$.Execution.Id`).
    pub name: String,
    /// State machine name (`$$.StateMachine.Name`).
    pub state_machine_name: String,
    /// Called for every retry delay; defaults to `std::thread::sleep`.
    pub sleeper: Sleeper,
    /// Seed of the RNG behind `"JitterStrategy": "FULL"`, so runs are reproducible.
    pub jitter_seed: u64,
    /// Where ItemReader reads and ResultWriter writes. `None` (the default): a Map with
    /// either fails with `States.ItemReaderFailed` / `States.ResultWriterFailed`.
    pub s3: Option<Arc<dyn S3Access>>,
    /// The payload quota in bytes of JSON text ([`MAX_PAYLOAD_BYTES`], as AWS): larger
    /// inputs, outputs and results fail with `States.DataLimitExceeded`. Lower it in
    /// tests.
    pub max_payload_bytes: usize,
    /// How long an EXPRESS child execution may run ([`EXPRESS_MAX_DURATION`], as AWS)
    /// before it fails with `States.Timeout`. Lower it in tests.
    pub express_max_duration: Duration,
    /// The largest S3 object an ItemReader reads ([`ITEM_READER_MAX_BYTES`]): the
    /// object is held in memory while its items are decoded.
    pub item_reader_max_bytes: u64,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            name: "local".into(),
            state_machine_name: "cai".into(),
            sleeper: Arc::new(std::thread::sleep),
            jitter_seed: 0,
            s3: None,
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            express_max_duration: EXPRESS_MAX_DURATION,
            item_reader_max_bytes: ITEM_READER_MAX_BYTES,
        }
    }
}

impl fmt::Debug for ExecOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecOptions")
            .field("name", &self.name)
            .field("state_machine_name", &self.state_machine_name)
            .field("jitter_seed", &self.jitter_seed)
            .field("s3", &self.s3.is_some())
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("express_max_duration", &self.express_max_duration)
            .field("item_reader_max_bytes", &self.item_reader_max_bytes)
            .finish_non_exhaustive()
    }
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Reached a Succeed state or an `End`.
    Succeeded,
    /// Failed: a Fail state, an unhandled error, or the execution TimeoutSeconds
    /// (`States.Timeout`).
    Failed,
}

/// The outcome of [`execute`].
#[derive(Debug, Clone)]
pub struct Execution {
    /// Succeeded or Failed.
    pub status: Status,
    /// The final output when succeeded.
    pub output: Option<Value>,
    /// The error when failed.
    pub error: Option<TaskFailure>,
    /// State transitions of the parent execution: one per state entered (inline Map
    /// iterations included) plus one per retry, which is how Step Functions bills them.
    pub transitions: u64,
    /// State transitions of all distributed-Map child executions, counted the same way
    /// (`standard_children.transitions + express_children.transitions`).
    pub child_transitions: u64,
    /// Usage of the child executions of distributed Maps with `"ExecutionType":
    /// "STANDARD"` (or none), billed per state transition.
    pub standard_children: ChildUsage,
    /// Usage of the child executions of distributed Maps with `"ExecutionType":
    /// "EXPRESS"`, billed per execution and per GB-second of duration.
    pub express_children: ChildUsage,
    /// The largest input, output or result any state handled, as UTF-8 JSON bytes: how close
    /// the execution came to the payload limit.
    pub largest_payload_bytes: usize,
    /// When the execution started.
    pub started: SystemTime,
    /// When it ended.
    pub ended: SystemTime,
}

impl Execution {
    /// Parent plus child transitions.
    pub fn total_transitions(&self) -> u64 {
        self.transitions + self.child_transitions
    }
}

/// Why a run of states stopped early.
#[derive(Debug)]
pub(crate) enum Halt {
    /// An error that Retry, Catch and Map tolerance may handle.
    Failed(TaskFailure),
    /// The execution's own deadline passed (TimeoutSeconds, or the EXPRESS limit of a
    /// child): nothing inside it may handle it.
    Aborted(TaskFailure),
}

impl Halt {
    pub(crate) fn runtime(cause: impl Into<String>) -> Halt {
        Halt::Failed(TaskFailure::new(error_names::RUNTIME, cause))
    }

    pub(crate) fn failure(&self) -> &TaskFailure {
        match self {
            Halt::Failed(f) | Halt::Aborted(f) => f,
        }
    }
}

/// What every execution of one [`execute`] call shares.
pub(crate) struct Shared<'a> {
    pub invoker: &'a dyn TaskInvoker,
    pub observer: &'a dyn Observer,
    sleeper: &'a (dyn Fn(Duration) + Send + Sync),
    pub rng: Mutex<StdRng>,
    pub s3: Option<&'a dyn S3Access>,
    pub max_payload_bytes: usize,
    pub express_max_duration: Duration,
    pub item_reader_max_bytes: u64,
    pub standard: usage::UsageCounter,
    pub express: usage::UsageCounter,
    /// The largest payload any check has measured, bytes.
    pub largest_payload: std::sync::atomic::AtomicUsize,
}

/// When an execution must stop, and the cause it then fails with.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    pub at: Instant,
    pub cause: Arc<str>,
}

/// One execution: the parent, or a distributed Map's child.
pub(crate) struct Exec<'a> {
    pub shared: &'a Shared<'a>,
    pub info: ExecInfo,
    /// Where this execution's transitions are counted.
    pub transitions: &'a AtomicU64,
    /// The earliest of its own limit and its parent's.
    pub deadline: Option<Deadline>,
}

impl Exec<'_> {
    pub(crate) fn count_transition(&self) {
        self.transitions.fetch_add(1, Ordering::Relaxed);
    }

    /// Fails with `States.Timeout` once the deadline has passed.
    pub(crate) fn check_deadline(&self) -> Result<(), Halt> {
        match &self.deadline {
            Some(d) if Instant::now() >= d.at => Err(Halt::Aborted(TaskFailure::new(
                error_names::TIMEOUT,
                d.cause.to_string(),
            ))),
            _ => Ok(()),
        }
    }

    /// Time left before the deadline, if there is one.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .as_ref()
            .map(|d| d.at.saturating_duration_since(Instant::now()))
    }

    /// Waits `delay` (never past the deadline), then re-checks the deadline.
    pub(crate) fn sleep(&self, delay: Duration) -> Result<(), Halt> {
        let delay = match self.remaining() {
            Some(left) => delay.min(left),
            None => delay,
        };
        (self.shared.sleeper)(delay);
        self.check_deadline()
    }

    /// Fails with `States.DataLimitExceeded` if `v` is over the payload quota.
    pub(crate) fn check_size(&self, v: &Value, what: impl FnOnce() -> String) -> Result<(), Halt> {
        let size = limit::json_len(v);
        self.shared
            .largest_payload
            .fetch_max(size, Ordering::Relaxed);
        if size <= self.shared.max_payload_bytes {
            return Ok(());
        }
        Err(Halt::Failed(limit::exceeded(
            self.shared.max_payload_bytes,
            size,
            &what(),
        )))
    }
}

pub(crate) const ARN_PREFIX: &str = "arn:aws:states:local:000000000000";

/// Runs `def` on `input` to completion. Never panics on bad input data: path and
/// payload problems become a failed execution with `States.Runtime`, as in AWS.
pub fn execute(
    def: &Definition,
    input: Value,
    invoker: &dyn TaskInvoker,
    observer: &dyn Observer,
    opts: &ExecOptions,
) -> Execution {
    let started = SystemTime::now();
    let deadline = def.timeout_seconds.and_then(|secs| {
        Some(Deadline {
            at: Instant::now().checked_add(Duration::from_secs(secs))?,
            cause: format!("The execution timed out after {secs} seconds (TimeoutSeconds)").into(),
        })
    });
    let shared = Shared {
        invoker,
        observer,
        sleeper: &*opts.sleeper,
        rng: Mutex::new(StdRng::seed_from_u64(opts.jitter_seed)),
        s3: opts.s3.as_deref(),
        max_payload_bytes: opts.max_payload_bytes,
        express_max_duration: opts.express_max_duration,
        item_reader_max_bytes: opts.item_reader_max_bytes,
        standard: usage::UsageCounter::default(),
        express: usage::UsageCounter::default(),
        largest_payload: std::sync::atomic::AtomicUsize::new(0),
    };
    let sm = &opts.state_machine_name;
    let info = ExecInfo {
        id: format!("{ARN_PREFIX}:execution:{sm}:{}", opts.name),
        name: opts.name.clone(),
        input: input.clone(),
        start_time: timestamp::format(started),
        state_machine_id: format!("{ARN_PREFIX}:stateMachine:{sm}"),
        state_machine_name: sm.clone(),
    };
    let transitions = AtomicU64::new(0);
    let exec = Exec {
        shared: &shared,
        info,
        transitions: &transitions,
        deadline,
    };
    let result = exec
        .check_size(&input, || "The execution input".to_string())
        .and_then(|()| machine::run(&exec, &def.machine, input, None));
    let (status, output, error) = match result {
        Ok(v) => (Status::Succeeded, Some(v), None),
        Err(Halt::Failed(f) | Halt::Aborted(f)) => (Status::Failed, None, Some(f)),
    };
    let standard_children = shared.standard.snapshot();
    let express_children = shared.express.snapshot();
    Execution {
        status,
        output,
        error,
        transitions: transitions.into_inner(),
        child_transitions: standard_children.transitions + express_children.transitions,
        standard_children,
        express_children,
        largest_payload_bytes: shared.largest_payload.into_inner(),
        started,
        ended: SystemTime::now(),
    }
}
