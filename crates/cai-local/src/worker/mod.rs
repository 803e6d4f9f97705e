//! Warm workers: the default way the local engine runs invocations. Each worker is a
//! long-lived process of the same binary (`cai worker`) that serves invocation after
//! invocation and keeps its model between them (keyed by the weights' identity), as a warm
//! Lambda container does; so 10,000 small ranks pay a model build per worker, not per rank.
//! A worker that crashes, goes over its memory or past its timeout is killed, only that
//! invocation fails (with the error names a one-shot process would give), and the next
//! invocation starts a fresh one. Whether an invocation started a worker is recorded (cold
//! or warm), as Lambda's Init Duration tells.

mod child;
pub mod protocol;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use cai_asl::TaskFailure;
use cai_workflow::cost::billed_ms;
use cai_workflow::handlers::Handler;
use serde_json::Value;

use crate::errors::{self, failure};
use crate::invoker::{Backend, Measured, Served};
use child::{Ending, Report, Spawn, Worker};
use protocol::{Request, Response};

/// Runs invocations on warm worker processes of `program`.
pub struct WorkerBackend {
    program: PathBuf,
    env: Vec<(String, String)>,
    memory_mib: u64,
    idle: Mutex<Vec<Worker>>,
    next_id: AtomicU64,
}

impl WorkerBackend {
    /// Workers run `program worker` with `env` (the store, for one), each invocation limited
    /// to `memory_mib`.
    pub fn new(program: PathBuf, env: Vec<(String, String)>, memory_mib: u64) -> Self {
        WorkerBackend {
            program,
            env,
            memory_mib,
            idle: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        }
    }

    /// An idle worker for this handler and thread count, or a new one (cold).
    fn take(&self, key: (&'static str, usize)) -> std::io::Result<(Worker, bool)> {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.iter()
                .position(|w| w.key == key)
                .map(|i| idle.swap_remove(i))
        };
        if let Some(w) = reused {
            return Ok((w, false));
        }
        let env = crate::invoker::with_threads(&self.env, key.1);
        let spawn = Spawn {
            program: &self.program,
            env: &env,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Worker::start(&spawn, id, key).map(|w| (w, true))
    }

    fn give_back(&self, w: Worker) {
        if w.healthy() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(w);
        }
    }
}

impl Backend for WorkerBackend {
    fn serve(
        &self,
        handler: Handler,
        input: &Value,
        timeout: Option<Duration>,
        threads: usize,
    ) -> Served {
        let request = Request {
            handler: handler.name().into(),
            event: input.clone(),
        };
        let line = match serde_json::to_vec(&request) {
            Ok(l) => l,
            Err(e) => return Served::unstarted(failure("States.Runtime", e.to_string())),
        };
        let (mut worker, cold) = match self.take((handler.name(), threads)) {
            Ok(w) => w,
            Err(e) => {
                return Served::unstarted(failure(
                    "Lambda.ServiceException",
                    format!("cannot start {}: {e}", self.program.display()),
                ))
            }
        };
        let report = worker.invoke(&line, self.memory_mib, timeout);
        let result = interpret(&report, self.memory_mib, timeout);
        let id = worker.id;
        self.give_back(worker);
        Served {
            result,
            cost: Some(Measured {
                wall_seconds: report.wall_seconds,
                billed_ms: billed_ms(report.wall_seconds),
                cpu_seconds: report.cpu_seconds,
                peak_rss_mb: report.peak_rss_mib,
            }),
            worker: Some(id),
            cold: Some(cold),
        }
    }
}

/// Maps a worker's ending to the result or the error Step Functions would see from Lambda.
fn interpret(r: &Report, memory_mib: u64, timeout: Option<Duration>) -> Result<Value, TaskFailure> {
    match &r.ending {
        Ending::Answered(Response::Ok(v)) => Ok(v.clone()),
        Ending::Answered(Response::Error(body)) => Err(errors::handler_error(body)),
        Ending::Died(how) => Err(errors::exit_error(how, &r.stderr)),
        Ending::OutOfMemory => Err(errors::out_of_memory(r.peak_rss_mib, memory_mib)),
        Ending::TimedOut => Err(errors::timed_out(timeout)),
        Ending::Garbled(what) => Err(errors::unknown(
            &format!("the worker's response is not one ({what})"),
            &r.stderr,
        )),
    }
}
