//! Runs Slurm's client commands (sbatch, squeue, sacct, scancel, scontrol, sinfo) the way the
//! engine needs them: with a time limit (a controller that does not answer must not hang the
//! run), and without the `SLURM_*` variables of an enclosing job, so `cai run --engine slurm`
//! started inside an allocation (an sbatch script, salloc) submits ordinary jobs instead of
//! inheriting that job's memory and CPU settings (sbatch refuses `--mem` beside an inherited
//! `SLURM_MEM_PER_CPU`). `SLURM_CONF` is kept: it names the cluster.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one client command may take. Slurm's own client retries an unresponsive
/// controller for about MessageTimeout (10 s) x a few attempts; past a minute something is
/// wrong and the caller decides (a failed submission is retried by the Retry policy).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// The first line of stderr that says something, else the exit status: for error
    /// messages.
    pub fn complaint(&self) -> String {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message")
            .to_string()
    }
}

/// The environment variables an enclosing Slurm job sets that must not leak into the
/// commands cai runs.
fn inherited_slurm_vars() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("SLURM_") && k != "SLURM_CONF")
        .collect()
}

/// Runs `program args`, waiting at most [`COMMAND_TIMEOUT`]. `Err` when it cannot be
/// started or did not finish in time.
pub fn run(program: &str, args: &[String]) -> std::io::Result<Output> {
    run_for(program, args, COMMAND_TIMEOUT)
}

/// [`run`] with its own time limit.
pub fn run_for(program: &str, args: &[String], limit: Duration) -> std::io::Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in inherited_slurm_vars() {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn()?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{program} did not finish within {} s", limit.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        ok: status.success(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// Cancels jobs (whole arrays or single tasks, as `scancel` takes them); best effort, as it
/// runs when a run is ending or interrupted.
pub fn scancel(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    match run("scancel", ids) {
        Ok(o) if o.ok => Ok(()),
        Ok(o) => Err(format!("scancel {}: {}", ids.join(" "), o.complaint())),
        Err(e) => Err(format!("scancel: {e}")),
    }
}
