//! How a Slurm job's ending reads to the state machine: the same error names the other
//! backends give (see [`crate::errors`]), so Retry and Catch keep their meaning.
//!
//! | Slurm says                         | the task's record            | error                          |
//! |------------------------------------|------------------------------|--------------------------------|
//! | anything                           | result / handler error body  | the result / the handler's own |
//! | anything                           | killed at the timeout        | `States.Timeout`               |
//! | OUT_OF_MEMORY                      | (any)                        | `Runtime.OutOfMemory`          |
//! | FAILED, log: "exceeded memory limit" | (none, or killed)          | `Runtime.OutOfMemory`          |
//! | COMPLETED, FAILED                  | peak RSS over `memory_mb`    | `Runtime.OutOfMemory`          |
//! | TIMEOUT, DEADLINE                  | (none, or killed)            | `States.Timeout`               |
//! | NODE_FAIL, PREEMPTED, BOOT_FAIL    | (none, or killed)            | `Lambda.ServiceException`      |
//! | CANCELLED                          | (none, or killed)            | `Runtime.ExitError`            |
//! | FAILED                             | crash, signal, exit status   | `Runtime.ExitError`            |
//! | COMPLETED                          | none                         | `States.Runtime` (not shared)  |
//! | forgotten, no accounting           | none                         | `Lambda.ServiceException`      |
//!
//! Without cgroups, Slurm's accounting poller (`JobAcctGatherParams=OverMemoryKill`) kills
//! a job over its `--mem` and says so only in the job's log ("exceeded memory limit"); the
//! state is FAILED. That is read as out of memory too.
//!
//! Node failures and preemption say nothing about the rank, as a Lambda service error says
//! nothing about the function: the generated definition retries those with its patient
//! throttle backoff. A cancelled job (scancel, an administrator) is retried like a crash. A
//! job that completed without its outcome reaching the spool means the spool is not shared
//! with the nodes; retrying cannot help, so it is `States.Runtime`, which no Retry or Catch
//! matches, and the execution stops with a cause that says what to fix.

use std::path::Path;
use std::time::Duration;

use cai_asl::TaskFailure;
use serde_json::Value;

use super::task::{TaskEnding, TaskRecord};
use crate::errors::{self, failure};
use crate::invoker::interpret;
use crate::process::{Ending, ProcessOutcome};

/// The error name for endings that are the cluster's fault, not the rank's.
pub const CLUSTER_FAULT: &str = "Lambda.ServiceException";

/// A finished (or lost) job as the engine knows it.
pub struct Ended<'a> {
    /// Slurm's final state; None when the scheduler forgot the job and no accounting has it.
    pub state: Option<&'a str>,
    /// Slurm's exit code and signal.
    pub exit: Option<(i32, i32)>,
    /// The wrapper's record, if it wrote one.
    pub record: Option<&'a TaskRecord>,
    /// The end of the job's Slurm log, for causes.
    pub log_tail: &'a str,
    /// `12_3` or `12`.
    pub job: &'a str,
    /// The spool folder, for causes.
    pub spool: &'a Path,
}

/// The result or the error Step Functions would see.
pub fn decide(
    e: &Ended<'_>,
    memory_mib: u64,
    timeout: Option<Duration>,
) -> Result<Value, TaskFailure> {
    let peak = e.record.map_or(0.0, |r| r.peak_rss_mb);
    if e.state == Some("OUT_OF_MEMORY") {
        return Err(errors::out_of_memory(peak, memory_mib));
    }
    if let Some(r) = e.record {
        if r.ending == TaskEnding::TimedOut {
            return Err(errors::timed_out(timeout));
        }
        if r.peak_rss_mb > memory_mib as f64 {
            return Err(errors::out_of_memory(r.peak_rss_mb, memory_mib));
        }
        if r.is_conclusive() {
            return interpret(&as_outcome(r), memory_mib, timeout);
        }
    }
    if let Some(used) = killed_for_memory(e.log_tail) {
        return Err(errors::out_of_memory(used.unwrap_or(peak), memory_mib));
    }
    match e.state {
        Some("TIMEOUT" | "DEADLINE") => Err(errors::timed_out(timeout)),
        Some(s @ ("NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL" | "REVOKED")) => Err(failure(
            CLUSTER_FAULT,
            format!(
                "Slurm job {} ended {s}: the cluster stopped it, not the rank; retried",
                e.job
            ),
        )),
        Some("CANCELLED") => Err(errors::exit_error(
            &format!("Slurm job {} was cancelled (scancel) before it finished", e.job),
            e.log_tail,
        )),
        None => Err(failure(
            CLUSTER_FAULT,
            format!(
                "Slurm no longer knows job {} and the cluster keeps no accounting (sacct) to say how it ended",
                e.job
            ),
        )),
        Some(state) => match e.record {
            Some(r) => interpret(&as_outcome(r), memory_mib, timeout),
            None if state == "COMPLETED" => Err(failure(
                cai_asl::error_names::RUNTIME,
                format!(
                    "Slurm job {} completed but its outcome never appeared in {}: that folder must be on a filesystem every node shares at the same path (NFS, Lustre, GPFS, BeeGFS, CephFS); pass --spool DIR on one",
                    e.job,
                    e.spool.display()
                ),
            )),
            None => {
                let how = match e.exit {
                    Some((_, sig)) if sig != 0 => format!("signal {sig}"),
                    Some((code, _)) => format!("exit status {code}"),
                    None => state.to_string(),
                };
                Err(errors::exit_error(
                    &format!("Slurm job {} ended {state} ({how}) without an outcome", e.job),
                    e.log_tail,
                ))
            }
        },
    }
}

/// Whether Slurm's log says it killed the job for its memory, and the usage it saw (MiB)
/// when it says: slurmstepd's `exceeded memory limit (USED > LIMIT), being killed`
/// (jobacct_gather's OverMemoryKill), `Exceeded job memory limit` (older releases) or its
/// cgroup OOM notice.
pub fn killed_for_memory(log: &str) -> Option<Option<f64>> {
    let line = log.lines().find(|l| {
        l.contains("exceeded memory limit")
            || l.contains("Exceeded job memory limit")
            || l.contains("Exceeded step memory limit")
            || l.contains("oom-kill event")
    })?;
    let used = line
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(" > "))
        .and_then(|(used, _)| used.trim().parse::<f64>().ok())
        .map(|bytes| bytes / 1_048_576.0);
    Some(used)
}

/// The record as the one-shot process engine's outcome, so both read the same way.
fn as_outcome(r: &TaskRecord) -> ProcessOutcome {
    ProcessOutcome {
        ending: match r.ending {
            TaskEnding::Exited(c) => Ending::Exited(c),
            TaskEnding::Signaled(s) => Ending::Signaled(s),
            TaskEnding::TimedOut => Ending::TimedOut,
        },
        stdout: r.stdout.clone().into_bytes(),
        stderr_tail: r.stderr_tail.clone(),
        wall_seconds: r.wall_seconds,
        cpu_seconds: r.cpu_seconds,
        peak_rss_mib: r.peak_rss_mb,
    }
}

/// A record, for the tests.
#[cfg(test)]
fn record(ending: TaskEnding, stdout: Value, peak: f64) -> TaskRecord {
    TaskRecord {
        ending,
        stdout: stdout.to_string(),
        stderr_tail: String::new(),
        wall_seconds: 1.0,
        cpu_seconds: 0.5,
        peak_rss_mb: peak,
        started_unix: 0.0,
        ended_unix: 1.0,
        node: Some("n1".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(
        state: Option<&str>,
        exit: Option<(i32, i32)>,
        r: Option<&TaskRecord>,
    ) -> Result<Value, TaskFailure> {
        let e = Ended {
            state,
            exit,
            record: r,
            log_tail: "",
            job: "7_3",
            spool: Path::new("/shared/spool"),
        };
        decide(&e, 300, Some(Duration::from_secs(60)))
    }

    fn error(r: Result<Value, TaskFailure>) -> String {
        r.expect_err("a failure").error
    }

    #[test]
    fn results_and_handler_errors_come_from_the_record() {
        let ok = record(
            TaskEnding::Exited(0),
            json!({"rank": 3, "samples": 10}),
            120.0,
        );
        assert_eq!(
            run(Some("COMPLETED"), Some((0, 0)), Some(&ok)).unwrap()["samples"],
            10
        );
        // Even before Slurm's verdict (the engine answers as soon as the record is there).
        assert!(run(Some("RUNNING"), None, Some(&ok)).is_ok());
        let bad = record(
            TaskEnding::Exited(1),
            json!({"errorType": "cai.InvalidPartition", "errorMessage": "parts/2.pt: bad"}),
            80.0,
        );
        assert_eq!(
            error(run(Some("FAILED"), Some((1, 0)), Some(&bad))),
            "cai.InvalidPartition"
        );
        let hung = record(TaskEnding::TimedOut, json!(null), 80.0);
        assert_eq!(
            error(run(Some("FAILED"), Some((124, 0)), Some(&hung))),
            "States.Timeout"
        );
    }

    #[test]
    fn slurm_states_map_to_the_other_backends_names() {
        let killed = record(TaskEnding::Signaled(9), json!(null), 290.0);
        let cases: [(&str, Option<&TaskRecord>, &str); 9] = [
            ("OUT_OF_MEMORY", Some(&killed), "Runtime.OutOfMemory"),
            ("OUT_OF_MEMORY", None, "Runtime.OutOfMemory"),
            ("TIMEOUT", None, "States.Timeout"),
            ("DEADLINE", Some(&killed), "States.Timeout"),
            ("NODE_FAIL", None, CLUSTER_FAULT),
            ("PREEMPTED", Some(&killed), CLUSTER_FAULT),
            ("BOOT_FAIL", None, CLUSTER_FAULT),
            ("CANCELLED", None, "Runtime.ExitError"),
            ("FAILED", Some(&killed), "Runtime.ExitError"),
        ];
        for (state, r, want) in cases {
            assert_eq!(error(run(Some(state), Some((0, 9)), r)), want, "{state}");
        }
        assert_eq!(
            error(run(Some("FAILED"), Some((127, 0)), None)),
            "Runtime.ExitError"
        );
        assert_eq!(error(run(None, None, None)), CLUSTER_FAULT);
        // The accounting poller's kill: FAILED, said in the log.
        let log = "slurmstepd-n1: error: StepId=40.batch exceeded memory limit (1064751104 > 314572800), being killed\n";
        let e = Ended {
            state: Some("FAILED"),
            exit: Some((0, 9)),
            record: None,
            log_tail: log,
            job: "40",
            spool: Path::new("/s"),
        };
        let f = decide(&e, 300, None).unwrap_err();
        assert_eq!(f.error, "Runtime.OutOfMemory");
        assert!(f.cause.contains("1015 MiB"), "{}", f.cause);
    }

    #[test]
    fn over_memory_without_enforcement_and_unshared_spools() {
        let fat = record(TaskEnding::Exited(0), json!({"rank": 1}), 301.0);
        let f = run(Some("COMPLETED"), Some((0, 0)), Some(&fat)).unwrap_err();
        assert_eq!(f.error, "Runtime.OutOfMemory");
        assert!(f.cause.contains("300"), "{}", f.cause);
        let f = run(Some("COMPLETED"), Some((0, 0)), None).unwrap_err();
        assert_eq!(f.error, "States.Runtime");
        assert!(
            f.cause.contains("/shared/spool") && f.cause.contains("--spool"),
            "{}",
            f.cause
        );
    }
}
