//! Resolves the definition's Task resources to cai's handlers and runs each invocation
//! through a [`Backend`] (a child process `cai handler <name>` by default, or a Lambda
//! function behind the Invoke API), at most `slots` at once, recording what every invocation
//! cost.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cai_asl::{TaskCall, TaskFailure, TaskInvoker};
use cai_workflow::cost::{billed_ms, InvocationStat};
use cai_workflow::definition::handler_of_resource;
use cai_workflow::handlers::Handler;
use serde_json::{json, Value};

use crate::capacity::Capacity;
use crate::process::{self, Ending, ProcessSpec};
use crate::progress::Progress;

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
    /// None when it never ran (it could not be started).
    pub cost: Option<Measured>,
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
        let mut env = self.env.clone();
        env.push(("CAI_THREADS".into(), threads.to_string()));
        env.push(("RAYON_NUM_THREADS".into(), threads.to_string()));
        let spec = ProcessSpec {
            program: self.program.clone(),
            args: vec!["handler".into(), handler.name().into()],
            env,
            memory_mb: self.memory_mib,
            timeout,
        };
        let body = match serde_json::to_vec(input) {
            Ok(b) => b,
            Err(e) => {
                return Served {
                    result: Err(failure("States.Runtime", e.to_string())),
                    cost: None,
                }
            }
        };
        match process::run(&spec, &body) {
            Err(e) => Served {
                result: Err(failure(
                    "Lambda.ServiceException",
                    format!("cannot start {}: {e}", spec.program.display()),
                )),
                cost: None,
            },
            Ok(o) => Served {
                result: interpret(&o, self.memory_mib, timeout),
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

/// Runs Task invocations through a backend, at most `slots` at once.
pub struct Invoker {
    backend: Arc<dyn Backend>,
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
            memory_mib,
            overrides: (slots, threads),
            capacity: Mutex::new(capacity),
            slots: Slots::new(capacity.slots),
            records: Mutex::new(Vec::new()),
            progress,
            world: Mutex::new(None),
        }
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
        if handler == Handler::Infer {
            self.progress.started();
        }
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
                started_seconds: None,
                worker: None,
                cold: None,
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
        if let (Ok(mut w), Some(body)) =
            (self.world.lock(), out.get("body").and_then(Value::as_array))
        {
            *w = Some(body.len() as u64);
        }
        let ranks = out
            .get("body")
            .and_then(Value::as_array)
            .map(|b| {
                b.iter()
                    .filter(|r| r.get("DATA_PATH").is_some_and(|d| !d.is_null()))
                    .count()
            })
            .unwrap_or(1);
        let cap = Capacity::plan(ranks, self.memory_mib, self.overrides.0, self.overrides.1);
        *self.capacity.lock().expect("capacity lock") = cap;
        self.slots.resize(cap.slots);
        self.progress.planned(ranks as u64);
    }
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

/// A Task failure as Step Functions reports it.
pub fn failure(error: &str, cause: impl Into<String>) -> TaskFailure {
    TaskFailure {
        error: error.into(),
        cause: cause.into(),
    }
}

/// Maps a process's ending to the result or the error Step Functions would see from Lambda.
fn interpret(
    o: &process::ProcessOutcome,
    memory_mib: u64,
    timeout: Option<Duration>,
) -> Result<Value, TaskFailure> {
    let last_line = |s: &str| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string()
    };
    match o.ending {
        Ending::Exited(0) => serde_json::from_slice(&o.stdout).map_err(|e| {
            failure("Lambda.Unknown", format!("the handler's response is not JSON ({e}); stderr: {}", last_line(&o.stderr_tail)))
        }),
        Ending::Exited(1) => match serde_json::from_slice::<Value>(&o.stdout) {
            Ok(body) if body.get("errorType").is_some() => Err(failure(
                body["errorType"].as_str().unwrap_or("Lambda.Unknown"),
                body.to_string(),
            )),
            _ => Err(exit_error(o, "exit status 1")),
        },
        Ending::Exited(code) => Err(exit_error(o, &format!("exit status {code}"))),
        Ending::Signaled(sig) => Err(exit_error(o, &format!("signal {sig}"))),
        Ending::OutOfMemory => Err(failure(
            "Runtime.OutOfMemory",
            json!({
                "errorType": "Runtime.OutOfMemory",
                "errorMessage": format!(
                    "Runtime exited with error: signal: killed (peak RSS {:.0} MiB over the {memory_mib} MiB limit; raise memory_mb)",
                    o.peak_rss_mib
                ),
            })
            .to_string(),
        )),
        Ending::TimedOut => Err(failure(
            "States.Timeout",
            format!(
                "the invocation ran past TimeoutSeconds ({} s) and was killed",
                timeout.map_or(0, |t| t.as_secs())
            ),
        )),
    }
}

fn exit_error(o: &process::ProcessOutcome, how: &str) -> TaskFailure {
    let detail = o
        .stderr_tail
        .lines()
        .filter(|l| !l.trim().is_empty())
        .find(|l| l.contains("panicked at") || l.contains("error"))
        .or_else(|| o.stderr_tail.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .trim()
        .to_string();
    let panic_msg = o
        .stderr_tail
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .nth(1)
        .map(str::trim)
        .unwrap_or("");
    failure(
        "Runtime.ExitError",
        json!({
            "errorType": "Runtime.ExitError",
            "errorMessage": format!("Runtime exited with error: {how}: {detail} {panic_msg}").trim().to_string(),
        })
        .to_string(),
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
