//! What the scheduler says about cai's jobs: `squeue` (every job the controller still holds,
//! finished ones included for MinJobAge, 300 s by default) and, for a job it has already
//! forgotten, `sacct` where the cluster keeps accounting. One `squeue` call covers every job
//! of a run, however many array tasks, so polling costs the controller one RPC a round.

use super::command;
use super::time::unix_seconds;

/// Which job (or array task) a line is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// A plain job.
    Job(u64),
    /// One task of an array.
    Task(u64, u64),
    /// Tasks of an array still pending, listed together (`12_[3-9%2]`).
    Pending(u64, Vec<u64>),
}

impl Id {
    /// The job (or array) id.
    pub fn job(&self) -> u64 {
        match self {
            Id::Job(j) | Id::Task(j, _) | Id::Pending(j, _) => *j,
        }
    }
}

/// One job or task as the scheduler reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Which.
    pub id: Id,
    /// Its state (`PENDING`, `RUNNING`, `COMPLETED`, `OUT_OF_MEMORY`, ...), without the
    /// decorations sacct adds (`CANCELLED by 0`, `+`).
    pub state: String,
    /// Exit code and signal (`sacct`'s `ExitCode=code:signal`), once finished.
    pub exit: Option<(i32, i32)>,
    /// The node(s), once started.
    pub node: Option<String>,
    /// Unix seconds.
    pub submitted: Option<f64>,
    /// Unix seconds.
    pub started: Option<f64>,
    /// Unix seconds.
    pub ended: Option<f64>,
    /// CPUs allocated (or requested while pending).
    pub cpus: u32,
}

/// The broad phase of a Slurm job state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting (PENDING, REQUEUED, ...).
    Queued,
    /// Started and not finished (RUNNING, COMPLETING, SUSPENDED, ...).
    Running,
    /// Finished, one way or another.
    Finished,
}

/// The phase of a state name; an unknown state counts as running (it exists and has not
/// said it finished).
pub fn phase(state: &str) -> Phase {
    match state {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD"
        | "CONFIGURING" => Phase::Queued,
        "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL"
        | "PREEMPTED" | "BOOT_FAIL" | "DEADLINE" | "REVOKED" | "SPECIAL_EXIT" => Phase::Finished,
        _ => Phase::Running,
    }
}

/// squeue's fields, `|`-terminated without padding (`-O name:0|`).
const SQUEUE_FIELDS: [&str; 8] = [
    "JobArrayID",
    "State",
    "exit_code",
    "NodeList",
    "SubmitTime",
    "StartTime",
    "EndTime",
    "NumCPUs",
];

/// Every job and task of `jobs` the controller still holds. `Err` when squeue failed (the
/// controller is unreachable): the caller must not read silence as an ending then.
pub fn squeue(jobs: &[u64]) -> Result<Vec<Seen>, String> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = jobs.iter().map(u64::to_string).collect();
    let format: Vec<String> = SQUEUE_FIELDS.iter().map(|f| format!("{f}:0|")).collect();
    let args = vec![
        "--noheader".to_string(),
        "--states=all".into(),
        format!("--jobs={}", ids.join(",")),
        format!("--Format={}", format.join(",")),
    ];
    let out = command::run("squeue", &args).map_err(|e| format!("squeue: {e}"))?;
    if !out.ok {
        // Every id forgotten (past MinJobAge): not an error, just nothing held.
        if out.stderr.contains("Invalid job id") {
            return Ok(Vec::new());
        }
        return Err(format!("squeue: {}", out.complaint()));
    }
    Ok(out.stdout.lines().filter_map(parse_squeue_line).collect())
}

/// One `squeue -O` line.
pub fn parse_squeue_line(line: &str) -> Option<Seen> {
    let f: Vec<&str> = line.split('|').map(str::trim).collect();
    if f.len() < SQUEUE_FIELDS.len() {
        return None;
    }
    // squeue's exit_code is the raw wait status.
    let exit = f[2]
        .parse::<i32>()
        .ok()
        .map(|status| ((status >> 8) & 0xff, status & 0x7f));
    seen(&f, exit)
}

/// Jobs (`JOB` or `ARRAY_TASK`) the controller forgot, from the accounting database; Err
/// when the cluster keeps no accounting (`sacct` refuses) or cannot be reached.
pub fn sacct(ids: &[String]) -> Result<Vec<Seen>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let args = vec![
        "--noheader".to_string(),
        "--parsable2".into(),
        "--allocations".into(),
        format!("--jobs={}", ids.join(",")),
        "--format=JobID,State,ExitCode,NodeList,Submit,Start,End,AllocCPUS".into(),
    ];
    let out = command::run("sacct", &args).map_err(|e| format!("sacct: {e}"))?;
    if !out.ok {
        return Err(format!("sacct: {}", out.complaint()));
    }
    Ok(out.stdout.lines().filter_map(parse_sacct_line).collect())
}

/// A job from the fields squeue and sacct are both asked for, in the same order (id, state,
/// exit code, node, submit, start, end, CPUs); only the exit code is written differently.
fn seen(f: &[&str], exit: Option<(i32, i32)>) -> Option<Seen> {
    Some(Seen {
        id: parse_id(f[0])?,
        state: clean_state(f[1]),
        exit,
        node: node(f[3]),
        submitted: unix_seconds(f[4]),
        started: unix_seconds(f[5]),
        ended: unix_seconds(f[6]),
        cpus: f[7].parse().unwrap_or(0),
    })
}

/// One `sacct --parsable2` line.
pub fn parse_sacct_line(line: &str) -> Option<Seen> {
    let f: Vec<&str> = line.split('|').map(str::trim).collect();
    if f.len() < 8 {
        return None;
    }
    let exit = f[2]
        .split_once(':')
        .and_then(|(c, s)| Some((c.parse().ok()?, s.parse().ok()?)));
    seen(&f, exit)
}

/// `12`, `12_3`, `12_[3-5,7%2]`.
pub fn parse_id(s: &str) -> Option<Id> {
    let Some((job, task)) = s.split_once('_') else {
        return s.parse().ok().map(Id::Job);
    };
    let job: u64 = job.parse().ok()?;
    if let Some(list) = task.strip_prefix('[') {
        let list = list.trim_end_matches(']');
        let list = list.split('%').next().unwrap_or("");
        return Some(Id::Pending(job, expand(list)?));
    }
    task.parse().ok().map(|t| Id::Task(job, t))
}

/// `3-5,7` as `[3, 4, 5, 7]`; a stride (`1-9:2`) is honoured.
fn expand(list: &str) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (range, step) = match part.split_once(':') {
            Some((r, s)) => (r, s.parse::<u64>().ok()?.max(1)),
            None => (part, 1),
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                out.extend((a..=b).step_by(step as usize));
            }
            None => out.push(range.parse().ok()?),
        }
    }
    Some(out)
}

fn clean_state(s: &str) -> String {
    s.split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+')
        .to_string()
}

fn node(s: &str) -> Option<String> {
    (!s.is_empty() && s != "None assigned" && s != "(null)").then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_of_tasks_pending_ranges_and_plain_jobs() {
        let t = parse_squeue_line(
            "3_4|FAILED|256|vm|2026-11-30T16:55:08|2026-11-30T16:55:14|2026-11-30T16:55:15|1|",
        )
        .unwrap();
        assert_eq!(t.id, Id::Task(3, 4));
        assert_eq!((t.state.as_str(), t.exit), ("FAILED", Some((1, 0))));
        assert_eq!(t.node.as_deref(), Some("vm"));
        assert_eq!(t.ended.unwrap() - t.started.unwrap(), 1.0);
        let p = parse_squeue_line("3_[2-4,7%2]|PENDING|0||2026-11-30T16:55:08|N/A|N/A|1|").unwrap();
        assert_eq!(p.id, Id::Pending(3, vec![2, 3, 4, 7]));
        assert_eq!((p.node, p.started), (None, None));
        let k = parse_squeue_line(
            "9|OUT_OF_MEMORY|9|n1|2026-11-30T16:55:08|2026-11-30T16:55:08|2026-11-30T16:55:09|2|",
        )
        .unwrap();
        assert_eq!((k.id, k.exit, k.cpus), (Id::Job(9), Some((0, 9)), 2));
        assert_eq!(parse_squeue_line("garbage"), None);
    }

    #[test]
    fn sacct_lines_and_states() {
        let s = parse_sacct_line("12_7|CANCELLED by 0|0:15|n3|2026-01-01T00:00:00|2026-01-01T00:00:05|2026-01-01T00:01:05|4")
            .unwrap();
        assert_eq!(s.id, Id::Task(12, 7));
        assert_eq!(
            (s.state.as_str(), s.exit, s.cpus),
            ("CANCELLED", Some((0, 15)), 4)
        );
        assert_eq!(phase("PENDING"), Phase::Queued);
        assert_eq!(phase("COMPLETING"), Phase::Running);
        for st in [
            "COMPLETED",
            "OUT_OF_MEMORY",
            "TIMEOUT",
            "NODE_FAIL",
            "PREEMPTED",
        ] {
            assert_eq!(phase(st), Phase::Finished, "{st}");
        }
        assert_eq!(parse_id("5_[1-9:4]"), Some(Id::Pending(5, vec![1, 5, 9])));
    }
}
