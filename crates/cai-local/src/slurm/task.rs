//! The batch side of the Slurm engine: `cai slurm-task`, what every job runs. It reads its
//! event from the spool (an array task finds it by `SLURM_ARRAY_TASK_ID`), runs `cai handler
//! NAME` as a child process exactly as the `--cold` engine does (event on stdin, result or
//! Lambda's error body on stdout), enforces the invocation's timeout to the second (Slurm's
//! `--time` counts whole minutes), and writes what happened (exit status or signal, the
//! handler's stdout, a stderr tail, wall and CPU time, peak RSS, start and end) atomically to
//! the spool, where the engine reads it. Memory is left to the cluster: the job's `--mem` is
//! the limit, enforced by Slurm (cgroup or its accounting poller), which reports
//! OUT_OF_MEMORY; the engine also checks the recorded peak against `memory_mb` afterwards.
//!
//! The wrapper's exit status mirrors the handler's (128 + signal when killed, 124 on a
//! timeout), so Slurm's job state tells the same story for anyone reading `sacct`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spool::{write_atomic, Spool};
use super::time::now_unix;
use crate::process::{self, Ending, ProcessSpec};

/// How a task's handler ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEnding {
    /// Exited with this status (0: a result; 1: Lambda's error body, or a startup failure).
    Exited(i32),
    /// Killed by this signal (the kernel's OOM killer, Slurm, a crash).
    Signaled(i32),
    /// Killed by the wrapper at the invocation's timeout.
    TimedOut,
}

/// What the wrapper reports for one task (`out/<s>.<index>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// How the handler ended.
    pub ending: TaskEnding,
    /// Its stdout: the result JSON, or Lambda's error body.
    pub stdout: String,
    /// The last 16 KiB of its stderr.
    pub stderr_tail: String,
    /// Wall seconds of the handler process.
    pub wall_seconds: f64,
    /// Its user + system CPU seconds.
    pub cpu_seconds: f64,
    /// Its peak RSS, MiB.
    pub peak_rss_mb: f64,
    /// When the wrapper started it, Unix seconds (the node's clock).
    pub started_unix: f64,
    /// When it ended.
    pub ended_unix: f64,
    /// `SLURMD_NODENAME`.
    pub node: Option<String>,
}

impl TaskRecord {
    /// Whether the record alone says how the invocation ended (a result, a handler error, a
    /// timeout), so the engine need not wait for Slurm's verdict. A signal or an unexpected
    /// status may be Slurm's doing (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL): that waits for the
    /// job's state.
    pub fn is_conclusive(&self) -> bool {
        matches!(
            self.ending,
            TaskEnding::Exited(0) | TaskEnding::Exited(1) | TaskEnding::TimedOut
        )
    }
}

/// `cai slurm-task`'s arguments.
#[derive(Debug, Clone)]
pub struct TaskArgs {
    /// The execution's spool folder.
    pub dir: PathBuf,
    /// The submission number.
    pub submission: u64,
    /// The task index; None: `SLURM_ARRAY_TASK_ID` (an array task).
    pub index: Option<u64>,
    /// The handler (init, infer, failure, summarize).
    pub handler: String,
    /// Inference threads (CAI_THREADS).
    pub threads: usize,
    /// The invocation's timeout.
    pub timeout: Option<Duration>,
}

/// Exit status when the task could not even start its handler (no event, no spool).
pub const SETUP_FAILED: i32 = 3;

/// Runs one task; returns the wrapper's exit status.
pub fn run(args: &TaskArgs) -> i32 {
    match serve(args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("cai slurm-task: {e}");
            SETUP_FAILED
        }
    }
}

fn serve(args: &TaskArgs) -> Result<i32, String> {
    let spool = Spool::open(&args.dir);
    let index = match args.index {
        Some(i) => i,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or("not an array task (no SLURM_ARRAY_TASK_ID) and no --index")?,
    };
    let event_path = spool.event_path(args.submission, index);
    let event = std::fs::read(&event_path).map_err(|e| {
        format!(
            "cannot read the event {}: {e} (is {} on a filesystem this node shares with the submitting host?)",
            event_path.display(),
            args.dir.display()
        )
    })?;
    let env_path = spool.env_path();
    let mut env: Vec<(String, String)> = std::fs::read(&env_path)
        .map_err(|e| format!("cannot read {}: {e}", env_path.display()))
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", env_path.display()))
        })?;
    env.push(("CAI_THREADS".into(), args.threads.to_string()));
    env.push(("RAYON_NUM_THREADS".into(), args.threads.to_string()));
    let program = std::env::current_exe().map_err(|e| format!("locating cai: {e}"))?;
    let spec = ProcessSpec {
        program,
        args: vec!["handler".into(), args.handler.clone()],
        env,
        // The cluster enforces --mem; the wrapper only measures.
        memory_mb: u64::MAX,
        timeout: args.timeout,
    };
    let started_unix = now_unix();
    let outcome =
        process::run(&spec, &event).map_err(|e| format!("cannot start the handler: {e}"))?;
    let ending = match outcome.ending {
        Ending::Exited(c) => TaskEnding::Exited(c),
        Ending::Signaled(s) => TaskEnding::Signaled(s),
        Ending::TimedOut => TaskEnding::TimedOut,
        // Not produced without a memory limit; read as the kill it would have been.
        Ending::OutOfMemory => TaskEnding::Signaled(libc::SIGKILL),
    };
    let record = TaskRecord {
        ending,
        stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
        stderr_tail: outcome.stderr_tail,
        wall_seconds: outcome.wall_seconds,
        cpu_seconds: outcome.cpu_seconds,
        peak_rss_mb: outcome.peak_rss_mib,
        started_unix,
        ended_unix: now_unix(),
        node: std::env::var("SLURMD_NODENAME").ok(),
    };
    let path = spool.record_path(args.submission, index);
    let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    write_atomic(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if !record.stderr_tail.is_empty() && ending != TaskEnding::Exited(0) {
        eprint!("{}", record.stderr_tail);
    }
    Ok(match ending {
        TaskEnding::Exited(c) => c,
        TaskEnding::Signaled(s) => 128 + s,
        TaskEnding::TimedOut => 124,
    })
}
