//! `cai slurm-task`: what every job of `cai run --engine slurm` runs (its batch script calls
//! it): reads its event from the run's spool, runs the handler as a child process and writes
//! the outcome back to the spool (see `cai_local::slurm::task`). Not for people; hidden.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cai_local::slurm::task::{self, TaskArgs};

/// Flags of `cai slurm-task`.
#[derive(clap::Args, Debug)]
pub struct SlurmTaskArgs {
    /// The execution's spool folder.
    pub dir: PathBuf,
    /// The submission number (names the event and outcome files).
    pub submission: u64,
    /// The task's index; without it, `SLURM_ARRAY_TASK_ID` (an array task).
    #[arg(long)]
    pub index: Option<u64>,
    /// The handler: init, infer, failure or summarize.
    #[arg(long)]
    pub handler: String,
    /// Inference threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The invocation's timeout.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

/// Runs the task; the exit status mirrors the handler's.
pub fn run(a: &SlurmTaskArgs) -> ExitCode {
    let status = task::run(&TaskArgs {
        dir: a.dir.clone(),
        submission: a.submission,
        index: a.index,
        handler: a.handler.clone(),
        threads: a.threads,
        timeout: a.timeout_ms.map(Duration::from_millis),
    });
    ExitCode::from(status.clamp(0, 255) as u8)
}
