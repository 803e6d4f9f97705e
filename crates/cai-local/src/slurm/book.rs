//! Every job the engine submitted and what is known about it, kept current by one poller
//! thread: a `squeue` round every [`POLL`] for all of the run's jobs at once (the controller
//! answers one RPC, however many tasks), the wrappers' records read from the spool for tasks
//! that started, and `sacct` for a job the controller has already forgotten. Invocations
//! (the interpreter's Map threads) wait here until their task has an answer; a task's
//! record answers as soon as it appears, so a rank's result reaches the interpreter about a
//! poll after it is written, not after Slurm's bookkeeping catches up.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cai_workflow::cluster::ClusterJob;
use cai_workflow::handlers::Handler;

use super::interrupt;
use super::queue::{self, phase, Id, Phase, Seen};
use super::spool::Spool;
use super::task::TaskRecord;

/// How often the poller asks the scheduler. Once a second keeps a rank's overhead small next
/// to scheduler latency and costs the controller one query a second for the whole run (a
/// busy site may prefer less: `CAI_SLURM_POLL_MS`).
pub const POLL: Duration = Duration::from_secs(1);

/// How long a task may be missing from `squeue` before `sacct` is asked about it.
const UNLISTED_BEFORE_SACCT: Duration = Duration::from_secs(10);
/// How long a task may be unknown to both before it counts as lost.
const UNLISTED_BEFORE_LOST: Duration = Duration::from_secs(120);

/// How long after a task finished its record is still looked for.
const RECORD_LOOKUP: Duration = Duration::from_secs(40);

/// How long to wait for a finished task's record to become visible: a network filesystem
/// may show a file written on a node some seconds late (attribute caching). A task that
/// completed without one is treated as a spool the nodes do not share.
pub fn record_grace(state: &str) -> Duration {
    match state {
        "COMPLETED" => Duration::from_secs(30),
        "FAILED" => Duration::from_secs(3),
        _ => Duration::ZERO,
    }
}

/// The poll interval: [`POLL`] unless `CAI_SLURM_POLL_MS` says otherwise.
pub fn poll_interval() -> Duration {
    std::env::var("CAI_SLURM_POLL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(POLL, |ms| Duration::from_millis(ms.clamp(50, 600_000)))
}

/// One sbatch call: an array of tasks or a plain job.
#[derive(Debug)]
pub struct Submission {
    /// Slurm's job id (the array's id for an array).
    pub job: u64,
    /// Submitted with `--array`.
    pub array: bool,
    /// The handler its tasks run.
    pub handler: Handler,
    /// CPUs per task.
    pub cpus: u32,
    /// When sbatch returned, Unix seconds.
    pub submitted_unix: f64,
    /// Its tasks by index (array task id; 0 for a plain job).
    pub tasks: BTreeMap<u64, Task>,
}

/// One task of a submission.
#[derive(Debug, Default)]
pub struct Task {
    /// The rank, for inference.
    pub rank: Option<u64>,
    /// 1-based attempt.
    pub attempt: u32,
    /// The scheduler's latest word.
    pub seen: Option<Seen>,
    /// The wrapper's record, once read.
    pub record: Option<TaskRecord>,
    /// When the poller first saw it finished (or lost).
    pub finished_at: Option<Instant>,
    /// Since when neither squeue listed it nor sacct knew it.
    pub unlisted_since: Option<Instant>,
    /// Neither squeue nor sacct knows it any more.
    pub lost: bool,
    /// An invocation took (or is waiting for) its outcome.
    pub consumed: bool,
}

impl Task {
    /// A task for `rank`'s `attempt`.
    pub fn new(rank: Option<u64>, attempt: u32) -> Task {
        Task {
            rank,
            attempt,
            ..Task::default()
        }
    }

    /// Finished as far as the scheduler is concerned (or lost).
    pub fn finished(&self) -> bool {
        self.lost
            || self
                .seen
                .as_ref()
                .is_some_and(|s| phase(&s.state) == Phase::Finished)
    }

    /// Whether its outcome can be decided now: a conclusive record, or finished and either
    /// its record is in or the grace for it has passed.
    pub fn answerable(&self) -> bool {
        if self.record.as_ref().is_some_and(TaskRecord::is_conclusive) || self.lost {
            return true;
        }
        if !self.finished() {
            return false;
        }
        let state = self.seen.as_ref().map_or("", |s| s.state.as_str());
        self.record.is_some()
            || self
                .finished_at
                .is_some_and(|t| t.elapsed() >= record_grace(state))
    }
}

/// A task's address: (submission number, index).
pub type Key = (u64, u64);

/// The ledger of submissions, and the condition invocations wait on.
#[derive(Default)]
pub struct Book {
    ledger: Mutex<Ledger>,
    changed: Condvar,
}

#[derive(Default)]
struct Ledger {
    subs: BTreeMap<u64, Submission>,
    by_job: HashMap<u64, u64>,
    stop: bool,
}

impl Book {
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records submission number `s`.
    pub fn add(&self, s: u64, sub: Submission) {
        let mut l = self.lock();
        interrupt::submitted(sub.job);
        l.by_job.insert(sub.job, s);
        l.subs.insert(s, sub);
        drop(l);
        self.changed.notify_all();
    }

    /// Marks a task as taken by an invocation; false when it was taken before (a second
    /// call for the same item must not reuse the first one's outcome).
    pub fn consume(&self, key: Key) -> bool {
        let mut l = self.lock();
        match l.subs.get_mut(&key.0).and_then(|s| s.tasks.get_mut(&key.1)) {
            Some(t) if !t.consumed => {
                t.consumed = true;
                true
            }
            _ => false,
        }
    }

    /// Waits until `key` can be answered, then calls `f` on it and its submission.
    pub fn wait_for<R>(&self, key: Key, f: impl Fn(&Submission, &Task) -> R) -> R {
        let mut l = self.lock();
        loop {
            if let Some(sub) = l.subs.get(&key.0) {
                if let Some(t) = sub.tasks.get(&key.1) {
                    if t.answerable() || l.stop {
                        return f(sub, t);
                    }
                }
            }
            l = self
                .changed
                .wait_timeout(l, Duration::from_millis(250))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// (queued, running) tasks, for the progress line.
    pub fn counts(&self) -> (u64, u64) {
        let l = self.lock();
        let (mut queued, mut running) = (0, 0);
        for t in l.subs.values().flat_map(|s| s.tasks.values()) {
            match t.seen.as_ref().map(|s| phase(&s.state)) {
                _ if t.lost => {}
                Some(Phase::Running) => running += 1,
                Some(Phase::Finished) => {}
                Some(Phase::Queued) | None => queued += 1,
            }
        }
        (queued, running)
    }

    /// Slurm ids (`J`, `J_T`, or `J` for a whole array) of every task not finished that no
    /// invocation is waiting for: what the Map will never ask for (it stopped early) and
    /// what an ending run leaves behind.
    pub fn leftovers(&self) -> Vec<String> {
        let l = self.lock();
        let mut ids = Vec::new();
        for sub in l.subs.values() {
            let open = sub.tasks.values().filter(|t| !t.finished()).count();
            let idle: Vec<u64> = sub
                .tasks
                .iter()
                .filter(|(_, t)| !t.finished() && !t.consumed)
                .map(|(i, _)| *i)
                .collect();
            if idle.is_empty() {
                continue;
            }
            if idle.len() == open {
                ids.push(sub.job.to_string());
            } else {
                ids.extend(idle.iter().map(|i| format!("{}_{i}", sub.job)));
            }
        }
        ids
    }

    /// Whether every task that an invocation took has finished (so its times are final).
    pub fn consumed_finished(&self) -> bool {
        let l = self.lock();
        l.subs
            .values()
            .flat_map(|s| s.tasks.values())
            .all(|t| !t.consumed || t.finished())
    }

    /// Stops the poller and wakes every waiter.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }

    /// Whether [`Book::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Every task that ran or was waited for, as the cluster usage records it.
    pub fn jobs(&self) -> Vec<ClusterJob> {
        let l = self.lock();
        let mut out = Vec::new();
        for sub in l.subs.values() {
            for (i, t) in &sub.tasks {
                let started = t
                    .record
                    .as_ref()
                    .map(|r| r.started_unix)
                    .or_else(|| t.seen.as_ref().and_then(|s| s.started));
                if started.is_none() && !t.consumed {
                    continue; // cancelled before it ran: cost nothing
                }
                let seen = t.seen.as_ref();
                let slurm_wall = seen
                    .and_then(|s| Some(s.ended? - s.started?))
                    .unwrap_or(0.0);
                let own_wall = t.record.as_ref().map_or(0.0, |r| r.wall_seconds);
                out.push(ClusterJob {
                    job_id: if sub.array {
                        format!("{}_{i}", sub.job)
                    } else {
                        sub.job.to_string()
                    },
                    handler: sub.handler.name().into(),
                    rank: t.rank,
                    attempt: t.attempt,
                    state: match seen {
                        Some(s) => s.state.clone(),
                        None if t.lost => "LOST".into(),
                        None => "UNKNOWN".into(),
                    },
                    node: seen
                        .and_then(|s| s.node.clone())
                        .or_else(|| t.record.as_ref().and_then(|r| r.node.clone())),
                    cpus: seen.map_or(0, |s| s.cpus).max(sub.cpus),
                    submitted_unix: sub.submitted_unix,
                    started_unix: started,
                    ended_unix: t
                        .record
                        .as_ref()
                        .map(|r| r.ended_unix)
                        .or_else(|| seen.and_then(|s| s.ended)),
                    queued_seconds: started.map(|s| (s - sub.submitted_unix).max(0.0)),
                    wall_seconds: slurm_wall.max(own_wall),
                });
            }
        }
        out
    }

    /// One poll: squeue for every job with open tasks, records for started tasks, sacct for
    /// forgotten ones. Wakes the waiters.
    pub fn poll_once(&self, spool: &Spool) {
        let jobs: Vec<u64> = {
            let l = self.lock();
            l.subs
                .values()
                .filter(|s| s.tasks.values().any(|t| !t.finished()))
                .map(|s| s.job)
                .collect()
        };
        if jobs.is_empty() {
            return;
        }
        let listed = queue::squeue(&jobs);
        if let Err(e) = &listed {
            tracing::warn!("{e} (the engine keeps polling)");
        }
        self.apply(listed.as_ref().ok().map(Vec::as_slice));
        self.read_records(spool, listed.is_err());
        self.ask_accounting();
        interrupt::forget(&self.finished_jobs());
        self.changed.notify_all();
    }

    /// Folds a squeue answer in; None when squeue failed (nothing is read from silence).
    fn apply(&self, listed: Option<&[Seen]>) {
        let mut l = self.lock();
        let now = Instant::now();
        let Some(listed) = listed else { return };
        let mut mentioned: Vec<(u64, u64)> = Vec::new();
        for seen in listed {
            let Some(&s) = l.by_job.get(&seen.id.job()) else {
                continue;
            };
            let Some(sub) = l.subs.get_mut(&s) else {
                continue;
            };
            let indices: Vec<u64> = match &seen.id {
                Id::Job(_) => vec![0],
                Id::Task(_, t) => vec![*t],
                Id::Pending(_, ts) => ts.clone(),
            };
            for i in indices {
                if let Some(t) = sub.tasks.get_mut(&i) {
                    mentioned.push((s, i));
                    update(t, seen, now);
                }
            }
        }
        mentioned.sort_unstable();
        let subs: Vec<u64> = l.subs.keys().copied().collect();
        for s in subs {
            let sub = l.subs.get_mut(&s).expect("listed above");
            for (i, t) in sub.tasks.iter_mut() {
                if t.finished() {
                    continue;
                }
                if mentioned.binary_search(&(s, *i)).is_ok() {
                    t.unlisted_since = None;
                } else {
                    t.unlisted_since.get_or_insert(now);
                }
            }
        }
    }

    /// Reads the records of tasks that started or finished and have none yet (and, while
    /// squeue fails, of every task an invocation waits for: the records still answer).
    fn read_records(&self, spool: &Spool, blind: bool) {
        let wanted: Vec<Key> = {
            let l = self.lock();
            l.subs
                .iter()
                .flat_map(|(s, sub)| sub.tasks.iter().map(move |(i, t)| (*s, *i, t)))
                .filter(|(_, _, t)| {
                    // Finished tasks only while a late record may still show up.
                    let started = t
                        .seen
                        .as_ref()
                        .is_some_and(|s| phase(&s.state) != Phase::Queued);
                    t.record.is_none()
                        && (started || blind && t.consumed)
                        && t.finished_at.is_none_or(|f| f.elapsed() < RECORD_LOOKUP)
                })
                .map(|(s, i, _)| (s, i))
                .collect()
        };
        let found: Vec<(Key, TaskRecord)> = wanted
            .into_iter()
            .filter_map(|k| spool.read_record(k.0, k.1).map(|r| (k, r)))
            .collect();
        let mut l = self.lock();
        for ((s, i), r) in found {
            if let Some(t) = l.subs.get_mut(&s).and_then(|sub| sub.tasks.get_mut(&i)) {
                t.record = Some(r);
            }
        }
    }

    /// Asks sacct about tasks squeue stopped listing before they were seen finished; marks
    /// them lost when nobody knows them for long.
    fn ask_accounting(&self) {
        let ask: Vec<(Key, String)> = {
            let l = self.lock();
            l.subs
                .iter()
                .flat_map(|(s, sub)| {
                    sub.tasks.iter().filter_map(move |(i, t)| {
                        let since = t.unlisted_since?;
                        (!t.finished() && since.elapsed() >= UNLISTED_BEFORE_SACCT).then(|| {
                            let id = if sub.array {
                                format!("{}_{i}", sub.job)
                            } else {
                                sub.job.to_string()
                            };
                            ((*s, *i), id)
                        })
                    })
                })
                .collect()
        };
        if ask.is_empty() {
            return;
        }
        let ids: Vec<String> = ask.iter().map(|(_, id)| id.clone()).collect();
        let answers = queue::sacct(&ids).unwrap_or_default();
        let now = Instant::now();
        let mut l = self.lock();
        for ((s, i), id) in ask {
            let Some(t) = l.subs.get_mut(&s).and_then(|sub| sub.tasks.get_mut(&i)) else {
                continue;
            };
            let known = answers.iter().find(|a| match &a.id {
                Id::Task(j, k) => format!("{j}_{k}") == id,
                Id::Job(j) => j.to_string() == id,
                Id::Pending(..) => false,
            });
            match known {
                Some(seen) => update(t, seen, now),
                None if t
                    .unlisted_since
                    .is_some_and(|since| since.elapsed() >= UNLISTED_BEFORE_LOST) =>
                {
                    t.lost = true;
                    t.finished_at.get_or_insert(now);
                }
                None => {}
            }
        }
    }

    /// Jobs all of whose tasks finished.
    fn finished_jobs(&self) -> Vec<u64> {
        let l = self.lock();
        l.subs
            .values()
            .filter(|s| s.tasks.values().all(Task::finished))
            .map(|s| s.job)
            .collect()
    }
}

/// Folds one sighting into a task. A pending range line only says "still queued".
fn update(t: &mut Task, seen: &Seen, now: Instant) {
    if t.finished() {
        return;
    }
    let mut seen = seen.clone();
    if let Id::Pending(j, _) = seen.id {
        seen.id = Id::Job(j);
    }
    if phase(&seen.state) == Phase::Finished {
        t.finished_at.get_or_insert(now);
    }
    t.seen = Some(seen);
    t.unlisted_since = None;
}
