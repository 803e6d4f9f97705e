//! Executing a [`Definition`]: options, the result, and the state each execution
//! (parent or distributed-Map child) shares.

mod io;
mod machine;
mod map;
mod pool;
mod recover;
mod simple;
mod task;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

use crate::context::ExecInfo;
use crate::error::error_names;
use crate::{timestamp, Definition, Observer, TaskFailure, TaskInvoker};

/// How the interpreter waits between retries; injectable so tests can record the
/// delays instead of sleeping.
pub type Sleeper = Arc<dyn Fn(Duration) + Send + Sync>;

/// Worker threads a Map with `MaxConcurrency` 0 ("unlimited") uses at most, so a
/// 10 000-item distributed Map does not start 10 000 OS threads at once.
pub const UNBOUNDED_MAP_WORKERS: usize = 256;

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
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            name: "local".into(),
            state_machine_name: "cai".into(),
            sleeper: Arc::new(std::thread::sleep),
            jitter_seed: 0,
        }
    }
}

impl fmt::Debug for ExecOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecOptions")
            .field("name", &self.name)
            .field("state_machine_name", &self.state_machine_name)
            .field("jitter_seed", &self.jitter_seed)
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
    /// State transitions of all distributed-Map child executions, counted the same way.
    pub child_transitions: u64,
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
    /// The execution's own TimeoutSeconds passed: nothing may handle it.
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
    deadline: Option<(Instant, u64)>,
    pub child_transitions: AtomicU64,
}

impl Shared<'_> {
    /// Fails with `States.Timeout` once the execution's TimeoutSeconds has passed.
    pub(crate) fn check_deadline(&self) -> Result<(), Halt> {
        match self.deadline {
            Some((at, secs)) if Instant::now() >= at => Err(Halt::Aborted(TaskFailure::new(
                error_names::TIMEOUT,
                format!("The execution timed out after {secs} seconds (TimeoutSeconds)"),
            ))),
            _ => Ok(()),
        }
    }

    /// Time left before the execution's TimeoutSeconds, if it has one.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|(at, _)| at.saturating_duration_since(Instant::now()))
    }

    /// Waits `delay` (never past the execution deadline), then re-checks the deadline.
    pub(crate) fn sleep(&self, delay: Duration) -> Result<(), Halt> {
        let delay = match self.remaining() {
            Some(left) => delay.min(left),
            None => delay,
        };
        (self.sleeper)(delay);
        self.check_deadline()
    }
}

/// One execution: the parent, or a distributed Map's child.
pub(crate) struct Exec<'a> {
    pub shared: &'a Shared<'a>,
    pub info: ExecInfo,
    /// Where this execution's transitions are counted.
    pub transitions: &'a AtomicU64,
}

impl Exec<'_> {
    pub(crate) fn count_transition(&self) {
        self.transitions.fetch_add(1, Ordering::Relaxed);
    }
}

const ARN_PREFIX: &str = "arn:aws:states:local:000000000000";

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
        Instant::now()
            .checked_add(Duration::from_secs(secs))
            .map(|at| (at, secs))
    });
    let shared = Shared {
        invoker,
        observer,
        sleeper: &*opts.sleeper,
        rng: Mutex::new(StdRng::seed_from_u64(opts.jitter_seed)),
        deadline,
        child_transitions: AtomicU64::new(0),
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
    };
    let result = machine::run(&exec, &def.machine, input, None);
    let (status, output, error) = match result {
        Ok(v) => (Status::Succeeded, Some(v), None),
        Err(Halt::Failed(f) | Halt::Aborted(f)) => (Status::Failed, None, Some(f)),
    };
    Execution {
        status,
        output,
        error,
        transitions: transitions.into_inner(),
        child_transitions: shared.child_transitions.into_inner(),
        started,
        ended: SystemTime::now(),
    }
}
