//! Resolves the definition's Task resources to cai's handlers and runs each invocation
//! through a [`Backend`] (a child process `cai handler <name>` by default, or a Lambda
//! function behind the Invoke API), at most `slots` at once, recording what every invocation
//! cost.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cai_asl::{TaskCall, TaskFailure, TaskInvoker};
use cai_workflow::cost::{billed_ms, InvocationStat};
use cai_workflow::definition::handler_of_resource;
use cai_workflow::handlers::Handler;
use serde_json::{json, Value};

use crate::capacity::Capacity;
use crate::errors;
pub use crate::errors::failure;
use crate::process::{self, Ending, ProcessSpec};
use crate::progress::Progress;
use crate::throttle::Quota;

/// Step Functions' optimised Lambda integration; accepted in user-edited definitions.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// What one invocation cost, as measured by whoever ran it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Wall seconds.
    pub wall_seconds: f64,
    /// Billed milliseconds.
    pub billed_ms: u64,
    /// CPU seconds (0 when unknown).
    pub cpu_seconds: f64,
    /// Peak memory, MB.
    pub peak_rss_mb: f64,
}

/// One invocation's outcome: the handler's result or the error Step Functions would see,
/// and its cost when the invocation got as far as running.
pub struct Served {
    /// Result or failure.
    pub result: Result<Value, TaskFailure>,
    /// None when it never ran (it could not be started, or was throttled).
    pub cost: Option<Measured>,
    /// The worker (process or container) that served it, when the backend knows.
    pub worker: Option<u64>,
    /// Whether it paid a cold start, when the backend knows.
    pub cold: Option<bool>,
}

impl Served {
    /// An invocation that never ran: no cost, no worker.
    pub fn unstarted(failure: TaskFailure) -> Served {
        Served {
            result: Err(failure),
            cost: None,
            worker: None,
            cold: None,
        }
    }
}

/// Where invocations run. Blocking; called from several Map threads at once.
pub trait Backend: Send + Sync {
    /// Runs `handler` on `input` once, within `timeout`, with `threads` inference threads.
    fn serve(
        &self,
        handler: Handler,
        input: &Value,
        timeout: Option<Duration>,
        threads: usize,
    ) -> Served;
}

/// Each invocation a child process of the `cai` binary, with memory limit and timeout.
pub struct ProcessBackend {
    program: PathBuf,
    env: Vec<(String, String)>,
    memory_mib: u64,
}

impl ProcessBackend {
    /// Runs `program handler <name>` with `env` (the store, for one), each invocation
    /// limited to `memory_mib`.
    pub fn new(program: PathBuf, env: Vec<(String, String)>, memory_mib: u64) -> Self {
        ProcessBackend {
            program,
            env,
            memory_mib,
        }
    }
}

impl Backend for ProcessBackend {
    fn serve(
        &self,
        handler: Handler,
        input: &Value,
        timeout: Option<Duration>,
        threads: usize,
    ) -> Served {
        let env = with_threads(&self.env, threads);
        let spec = ProcessSpec {
            program: self.program.clone(),
            args: vec!["handler".into(), handler.name().into()],
            env,
            memory_mb: self.memory_mib,
            timeout,
        };
        let body = match serde_json::to_vec(input) {
            Ok(b) => b,
            Err(e) => return Served::unstarted(failure("States.Runtime", e.to_string())),
        };
        match process::run(&spec, &body) {
            Err(e) => Served::unstarted(failure(
                "Lambda.ServiceException",
                format!("cannot start {}: {e}", spec.program.display()),
            )),
            Ok(o) => Served {
                result: interpret(&o, self.memory_mib, timeout),
                worker: None,
                cold: Some(true),
                cost: Some(Measured {
                    wall_seconds: o.wall_seconds,
                    billed_ms: billed_ms(o.wall_seconds),
                    cpu_seconds: o.cpu_seconds,
                    peak_rss_mb: o.peak_rss_mib,
                }),
            },
        }
    }
}

/// `env` plus the variables that give an invocation `threads` inference threads.
pub(crate) fn with_threads(env: &[(String, String)], threads: usize) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.push(("CAI_THREADS".into(), threads.to_string()));
    env.push(("RAYON_NUM_THREADS".into(), threads.to_string()));
    env
}

/// Runs Task invocations through a backend, at most `slots` at once.
pub struct Invoker {
    backend: Arc<dyn Backend>,
    started: Instant,
    quota: Quota,
    memory_mib: u64,
    overrides: (Option<usize>, Option<usize>),
    capacity: Mutex<Capacity>,
    slots: Slots,
    records: Mutex<Vec<InvocationStat>>,
    progress: Arc<Progress>,
    world: Mutex<Option<u64>>,
}

impl Invoker {
    /// An invoker over `backend` for invocations of `memory_mib` each. `slots`/`threads`
    /// override the capacity plan.
    pub fn new(
        backend: Arc<dyn Backend>,
        memory_mib: u64,
        slots: Option<usize>,
        threads: Option<usize>,
        progress: Arc<Progress>,
    ) -> Self {
        let capacity = Capacity::plan(usize::MAX, memory_mib, slots, threads);
        Invoker {
            backend,
            started: Instant::now(),
            quota: Quota::from_fault_plan(
                std::env::var(cai_workflow::handlers::fault::ENV)
                    .ok()
                    .as_deref(),
            ),
            memory_mib,
            overrides: (slots, threads),
            capacity: Mutex::new(capacity),
            slots: Slots::new(capacity.slots),
            records: Mutex::new(Vec::new()),
            progress,
            world: Mutex::new(None),
        }
    }

    /// Invocations the concurrency quota (`CAI_FAULT=quota:N`) answered with a throttle.
    pub fn throttled(&self) -> usize {
        self.quota.throttled()
    }

    /// Every invocation so far, in completion order.
    pub fn records(&self) -> Vec<InvocationStat> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Ranks in the plan, once Initialize has returned one.
    pub fn world_size(&self) -> Option<u64> {
        self.world.lock().ok().and_then(|w| *w)
    }

    /// The capacity in force (after Initialize told how many ranks have data).
    pub fn capacity(&self) -> Capacity {
        *self.capacity.lock().expect("capacity lock")
    }

    fn run_handler(
        &self,
        handler: Handler,
        input: &Value,
        call: &TaskCall<'_>,
    ) -> Result<Value, TaskFailure> {
        let rank = (handler == Handler::Infer)
            .then(|| input.pointer("/payload/RANK").or_else(|| input.get("RANK")))
            .flatten()
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<u64>().ok());
        let threads = self.capacity().threads;
        let _slot = self.slots.acquire();
        let _place = match handler {
            Handler::Infer => Some(self.quota.enter()?),
            _ => None,
        };
        if handler == Handler::Infer {
            self.progress.started();
        }
        let started_seconds = self.started.elapsed().as_secs_f64();
        let served = self.backend.serve(handler, input, call.timeout, threads);
        let result = served.result;
        if let Some(m) = served.cost {
            let stat = InvocationStat {
                handler: handler.name().into(),
                rank,
                attempt: call.retry_count + 1,
                outcome: match &result {
                    Ok(_) => "ok".into(),
                    Err(f) => f.error.clone(),
                },
                wall_seconds: m.wall_seconds,
                billed_ms: m.billed_ms,
                cpu_seconds: m.cpu_seconds,
                peak_rss_mb: m.peak_rss_mb,
                started_seconds: Some(started_seconds),
                worker: served.worker,
                cold: served.cold,
            };
            if let Ok(mut r) = self.records.lock() {
                r.push(stat);
            }
        }
        match (handler, &result) {
            (Handler::Init, Ok(v)) => self.after_init(v),
            (Handler::Infer, Ok(v)) => self
                .progress
                .finished(v.get("samples").and_then(Value::as_u64).unwrap_or(0)),
            (Handler::Infer, Err(f)) => self.progress.attempt_failed(rank, &f.error),
            _ => {}
        }
        result
    }

    /// Once the plan is known, size slots and threads to the ranks that have data.
    fn after_init(&self, out: &Value) {
        let (world, ranks) = planned_ranks(out);
        if let (Ok(mut w), Some(world)) = (self.world.lock(), world) {
            *w = Some(world);
        }
        let cap = Capacity::plan(ranks, self.memory_mib, self.overrides.0, self.overrides.1);
        *self.capacity.lock().expect("capacity lock") = cap;
        self.slots.resize(cap.slots);
        self.progress.planned(ranks as u64);
    }
}

/// (ranks, ranks with data) from Initialize's output: its items reference, or the inline
/// `body` of the older definition shape.
fn planned_ranks(out: &Value) -> (Option<u64>, usize) {
    if let Some(items) = out.get("items") {
        let count = items.get("count").and_then(Value::as_u64);
        let with_data = items.get("with_data").and_then(Value::as_u64).unwrap_or(1);
        return (count, with_data as usize);
    }
    let body = out.get("body").and_then(Value::as_array);
    let with_data = body.map_or(1, |b| {
        b.iter()
            .filter(|r| r.get("DATA_PATH").is_some_and(|d| !d.is_null()))
            .count()
    });
    (body.map(|b| b.len() as u64), with_data)
}

impl TaskInvoker for Invoker {
    fn invoke(&self, call: TaskCall<'_>) -> Result<Value, TaskFailure> {
        if call.resource == LAMBDA_INVOKE {
            let name = call
                .input
                .get("FunctionName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    failure(
                        "States.Runtime",
                        format!(
                            "state {}: lambda:invoke needs Parameters.FunctionName",
                            call.state_name
                        ),
                    )
                })?;
            let handler = handler_of_resource(name).ok_or_else(|| unknown(name))?;
            let payload = call.input.get("Payload").cloned().unwrap_or(json!({}));
            let out = self.run_handler(handler, &payload, &call)?;
            return Ok(json!({ "ExecutedVersion": "$LATEST", "Payload": out, "StatusCode": 200 }));
        }
        let handler = handler_of_resource(call.resource).ok_or_else(|| unknown(call.resource))?;
        let input = call.input.clone();
        self.run_handler(handler, &input, &call)
    }
}

fn unknown(resource: &str) -> TaskFailure {
    failure(
        "States.Runtime",
        format!("resource {resource:?} is not one of cai's functions (a Lambda ARN or name ending in -init, -infer, -failure or -summarize)"),
    )
}

/// A counting semaphore whose size can change (after Initialize).
struct Slots {
    state: Mutex<(usize, usize)>, // (in use, max)
    freed: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn new(max: usize) -> Self {
        Slots {
            state: Mutex::new((0, max.max(1))),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self) -> SlotGuard<'_> {
        let mut s = self.state.lock().expect("slots lock");
        while s.0 >= s.1 {
            s = self.freed.wait(s).expect("slots lock");
        }
        s.0 += 1;
        SlotGuard(self)
    }

    fn resize(&self, max: usize) {
        let mut s = self.state.lock().expect("slots lock");
        s.1 = max.max(1);
        self.freed.notify_all();
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().expect("slots lock");
        s.0 -= 1;
        self.0.freed.notify_one();
    }
}

/// Maps a one-shot process's ending to the result or the error Step Functions would see.
pub(crate) fn interpret(
    o: &process::ProcessOutcome,
    memory_mib: u64,
    timeout: Option<Duration>,
) -> Result<Value, TaskFailure> {
    match o.ending {
        Ending::Exited(0) => serde_json::from_slice(&o.stdout).map_err(|e| {
            errors::unknown(
                &format!("the handler's response is not JSON ({e})"),
                &o.stderr_tail,
            )
        }),
        Ending::Exited(1) => match serde_json::from_slice::<Value>(&o.stdout) {
            Ok(body) if body.get("errorType").is_some() => Err(errors::handler_error(&body)),
            _ => Err(errors::exit_error("exit status 1", &o.stderr_tail)),
        },
        Ending::Exited(code) => Err(errors::exit_error(
            &format!("exit status {code}"),
            &o.stderr_tail,
        )),
        Ending::Signaled(sig) => Err(errors::exit_error(&format!("signal {sig}"), &o.stderr_tail)),
        Ending::OutOfMemory => Err(errors::out_of_memory(o.peak_rss_mib, memory_mib)),
        Ending::TimedOut => Err(errors::timed_out(timeout)),
    }
}
