//! The Slurm engine (`cai run --engine slurm`): the same state machine, run by the same local
//! interpreter, with the invocations dispatched to a Slurm cluster instead of local worker
//! processes. It is a [`Backend`]; the interpreter does not know.
//!
//! **The Map's ranks are one job array.** The interpreter asks for invocations one at a
//! time, from up to MaxConcurrency Map threads, each blocking until its answer. The first
//! inference call of the Map (the first item, attempt 0) makes the whole array: the engine
//! reads the Map's items from `items.json` (where Initialize wrote them and the Map's
//! ItemReader reads them), builds every rank's event exactly as the generated definition's
//! ItemSelector and Parameters do (`{"payload": item, "run": ..., "attempt": 0}`), checks
//! that construction against the event the interpreter actually passed, writes each event to
//! the spool, and submits `sbatch --array=<ranks with data>%MaxConcurrency` whose task `i`
//! runs rank `i`'s inference. Every later call for an item then waits for its task's outcome
//! (and checks that its event is the one the task ran). So Slurm gets the Map as one array,
//! as a cluster user would submit it, and schedules it without waiting for the interpreter;
//! the interpreter still decides everything that makes the workflow (Retry, Catch, failure
//! tolerance, the ResultWriter). Ranks without data and ranks `--resume` keeps run through
//! the local backend: they finish in milliseconds and a job would only queue. A Map larger
//! than the cluster's MaxArraySize is several arrays, each after the previous one when the
//! Map limits its concurrency (so the limit holds across them).
//!
//! **Retries resubmit just the failed rank** as a plain job (attempt > 0), as do inference
//! calls of a user-edited definition (`--definition`), where the engine cannot know the
//! events in advance. Summarize is a plain job too: it reads every rank's predictions, work
//! for a compute node. Initialize (a listing and a few small writes) and the failure
//! recorder (one small write per failed rank) run locally on the submitting host, as the
//! local engine runs them: as jobs each would add a queue wait to the critical path and a
//! job's minimum charge for milliseconds of work.
//!
//! **Outcomes** come from the spool (see [`spool`]) and the scheduler (see [`book`]); their
//! mapping to Lambda's error names is in [`outcome`]. Ctrl-C cancels everything submitted
//! ([`interrupt`]). When the Map stops early (its failure tolerance is exceeded), array
//! tasks nobody will ask for are cancelled before Summarize runs. The cluster usage (every
//! job, its queue wait, core-hours) goes into `summary.json` under `execution.cluster`.

pub mod book;
pub mod check;
pub mod command;
pub mod interrupt;
pub mod outcome;
pub mod queue;
pub mod spool;
pub mod submit;
pub mod task;
pub mod time;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cai_asl::TaskFailure;
use cai_store::BlockingStore;
use cai_workflow::cluster::ClusterUsage;
use cai_workflow::cost::billed_ms;
use cai_workflow::handlers::init::ItemsRef;
use cai_workflow::handlers::{infer, Handler, HandlerContext};
use serde_json::{json, Value};

pub use check::{prepare, SlurmSetup};

use crate::errors::failure;
use crate::invoker::{Backend, Measured, Served};
use crate::progress::Progress;
use book::{Book, Key, Submission, Task};
use outcome::{decide, Ended, CLUSTER_FAULT};
use spool::Spool;
use submit::{array_spec, sbatch_args, script_text, JobSpec};

/// Largest items object read to build the arrays (a 1,000,000-rank plan is ~500 MB).
const MAX_ITEMS_BYTES: u64 = 1 << 30;

/// The user's Slurm flags (`cai run --engine slurm --partition ...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// Passed to every sbatch verbatim, after cai's own flags (so they win).
    pub sbatch_args: Vec<String>,
    /// Where the spool goes (default: `<store>/.cai-slurm`, or `./.cai-slurm` with S3).
    pub spool: Option<PathBuf>,
}

/// What the engine needs to start.
pub struct SlurmRun {
    /// The checked setup ([`prepare`]).
    pub setup: SlurmSetup,
    /// Runs what stays on this host (Initialize, failure records, empty and kept ranks).
    pub local: Arc<dyn Backend>,
    /// The store (to read the Map's items).
    pub store: BlockingStore,
    /// The `cai` executable the jobs run (it must be visible on the nodes).
    pub program: PathBuf,
    /// The environment every handler gets (CAI_STORE, ...).
    pub env: Vec<(String, String)>,
    /// The execution's name: the spool folder and the jobs' names derive from it.
    pub execution: String,
    /// `memory_mb`: every job's `--mem`.
    pub memory_mib: u64,
    /// The Map's MaxConcurrency (0: none): the array's `%` limit.
    pub max_concurrency: u64,
    /// Whether the Map's events can be built in advance (the generated definition).
    pub arrays: bool,
    /// The progress bar, fed with queued and running counts.
    pub progress: Arc<Progress>,
}

/// Whether the Map's array exists yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// Not before the Map's first inference call.
    Unplanned,
    /// Submitted.
    Planned,
    /// Not possible for this run: every call is its own job.
    Off,
}

/// The Map's array: which task runs which rank, with a fingerprint of the event it got.
struct ArrayPlan {
    state: ArrayState,
    items: Option<ItemsRef>,
    tasks: HashMap<u64, (Key, u64)>,
    resumed: HashSet<u64>,
}

/// Runs invocations on a Slurm cluster. See the module documentation.
pub struct SlurmBackend {
    run: SlurmRun,
    spool: Spool,
    book: Arc<Book>,
    next: AtomicU64,
    plan: Mutex<ArrayPlan>,
    fatal: Mutex<Option<TaskFailure>>,
    poller: Mutex<Option<JoinHandle<()>>>,
}

impl SlurmBackend {
    /// Creates the execution's spool, installs the Ctrl-C handler and starts polling.
    pub fn start(run: SlurmRun) -> Result<SlurmBackend, String> {
        let spool = Spool::create(&run.setup.spool_root, &run.execution)
            .map_err(|e| format!("the spool {}: {e}", run.setup.spool_root.display()))?;
        spool
            .write_env(&run.env)
            .map_err(|e| format!("{}: {e}", spool.env_path().display()))?;
        interrupt::install();
        let book = Arc::new(Book::default());
        let poller = {
            let (book, spool, progress) = (book.clone(), spool.clone(), run.progress.clone());
            std::thread::spawn(move || {
                let every = book::poll_interval();
                while !book.stopped() {
                    book.poll_once(&spool);
                    let (queued, running) = book.counts();
                    progress.queue(queued, running);
                    let t = Instant::now();
                    while t.elapsed() < every && !book.stopped() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
        };
        Ok(SlurmBackend {
            run,
            spool,
            book,
            next: AtomicU64::new(1),
            plan: Mutex::new(ArrayPlan {
                state: ArrayState::Unplanned,
                items: None,
                tasks: HashMap::new(),
                resumed: HashSet::new(),
            }),
            fatal: Mutex::new(None),
            poller: Mutex::new(Some(poller)),
        })
    }

    /// The execution's spool folder (events, outcomes, the jobs' logs).
    pub fn spool_dir(&self) -> PathBuf {
        self.spool.dir().to_path_buf()
    }

    /// Ends the run on the cluster: cancels what nobody will ask for, waits briefly for the
    /// jobs' final times, stops polling, and returns what the run used.
    pub fn finish(&self) -> ClusterUsage {
        self.cancel_leftovers();
        let t = Instant::now();
        while !self.book.consumed_finished() && t.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.book.stop();
        if let Some(h) = self.lock_poller().take() {
            let _ = h.join();
        }
        ClusterUsage::from_jobs("slurm", self.book.jobs())
    }

    /// Removes the spool folder (after a clean run nothing in it is needed).
    pub fn remove_spool(&self) {
        self.spool.remove();
    }

    fn lock_plan(&self) -> MutexGuard<'_, ArrayPlan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_poller(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.poller.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fatal(&self) -> Option<TaskFailure> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn cancel_leftovers(&self) {
        let ids = self.book.leftovers();
        if ids.is_empty() {
            return;
        }
        match command::scancel(&ids) {
            Ok(()) => tracing::info!(
                "cancelled Slurm job(s) the Map will not use: {}",
                ids.join(", ")
            ),
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// One inference invocation: its array task, a job of its own, or local.
    fn infer(&self, input: &Value, timeout: Option<Duration>, threads: usize) -> Served {
        let rank = input
            .pointer("/payload/RANK")
            .and_then(Value::as_str)
            .and_then(|r| r.trim().parse::<u64>().ok());
        let attempt = input.get("attempt").and_then(Value::as_u64).unwrap_or(0);
        if let Some(rank) = rank {
            if !has_data(input.get("payload").unwrap_or(&Value::Null)) {
                return self
                    .run
                    .local
                    .serve(Handler::Infer, input, timeout, threads);
            }
            if attempt == 0 {
                if let Some(key) = self.array_task(rank, input, timeout, threads) {
                    return self.outcome(key, timeout);
                }
            }
            if self.lock_plan().resumed.contains(&rank) {
                return self
                    .run
                    .local
                    .serve(Handler::Infer, input, timeout, threads);
            }
        }
        let attempt = u32::try_from(attempt + 1).unwrap_or(u32::MAX);
        self.job(Handler::Infer, input, timeout, threads, rank, attempt)
    }

    /// The array task that runs `rank`'s first attempt, submitting the Map's array on the
    /// first call. None: no array for this run, or this call's event is not the one the task
    /// was given.
    fn array_task(
        &self,
        rank: u64,
        input: &Value,
        timeout: Option<Duration>,
        threads: usize,
    ) -> Option<Key> {
        if !self.run.arrays {
            return None;
        }
        let mut plan = self.lock_plan();
        if plan.state == ArrayState::Unplanned {
            plan.state = match self.plan_arrays(&mut plan, rank, input, timeout, threads) {
                Ok(()) => ArrayState::Planned,
                Err(why) => {
                    tracing::warn!(
                        "no job array for this Map; every rank is a job of its own: {why}"
                    );
                    let submitted = self.book.leftovers();
                    let _ = command::scancel(&submitted);
                    plan.tasks.clear();
                    ArrayState::Off
                }
            };
        }
        let (key, fp) = *plan.tasks.get(&rank)?;
        drop(plan);
        if fingerprint(input) != fp {
            tracing::warn!("rank {rank}: the event differs from the one its array task was given; running it as a job of its own");
            return None;
        }
        self.book.consume(key).then_some(key)
    }

    /// Builds every rank's event from the Map's items, writes them and submits the array(s).
    fn plan_arrays(
        &self,
        plan: &mut ArrayPlan,
        rank: u64,
        input: &Value,
        timeout: Option<Duration>,
        threads: usize,
    ) -> Result<(), String> {
        let items = plan
            .items
            .clone()
            .ok_or("Initialize named no items object")?;
        let obj = input
            .as_object()
            .ok_or("the inference event is not an object")?;
        let shape = obj.len() == 3
            && obj.contains_key("payload")
            && obj.contains_key("run")
            && obj.get("attempt") == Some(&json!(0));
        if !shape {
            return Err("the inference event is not {payload, run, attempt: 0}".into());
        }
        let run = &obj["run"];
        let resume = run.get("resume") == Some(&Value::Bool(true));
        let bytes = self
            .run
            .store
            .bucket(&items.bucket)
            .and_then(|b| b.get_capped(&items.key, MAX_ITEMS_BYTES))
            .map_err(|e| format!("{}/{}: {e}", items.bucket, items.key))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| format!("{}/{}: {e}", items.bucket, items.key))?;
        let ctx =
            resume.then(|| HandlerContext::new(self.run.store.clone(), 1, std::env::temp_dir()));
        // Task ids run from 0 to MaxArraySize - 1.
        let per_array = self.run.setup.cluster.max_array_size.max(1);
        let mut chunks: BTreeMap<u64, (u64, Vec<(u64, u64)>)> = BTreeMap::new();
        let mut n = 0u64;
        for line in text.lines() {
            let line = line.trim().trim_end_matches(',');
            if line.is_empty() || line == "[" || line == "]" {
                continue;
            }
            let item: Value = serde_json::from_str(line)
                .map_err(|e| format!("{}/{}: item {n}: {e}", items.bucket, items.key))?;
            let i = n;
            n += 1;
            if i == rank && item != obj["payload"] {
                return Err(format!(
                    "item {rank} of {} is not the event's payload",
                    items.key
                ));
            }
            if !has_data(&item) {
                continue;
            }
            let event = json!({ "payload": item, "run": run, "attempt": 0 });
            if let Some(ctx) = &ctx {
                let ev = infer::InferEvent::parse(event.clone()).map_err(|e| e.error_message)?;
                if matches!(infer::existing_result(ctx, &ev, i), Ok(Some(_))) {
                    plan.resumed.insert(i);
                    continue;
                }
            }
            let (chunk, index) = (i / per_array, i % per_array);
            let (s, tasks) = chunks
                .entry(chunk)
                .or_insert_with(|| (self.next.fetch_add(1, Ordering::SeqCst), Vec::new()));
            self.spool
                .write_event(*s, index, &event)
                .map_err(|e| format!("{}: {e}", self.spool.event_path(*s, index).display()))?;
            tasks.push((index, i));
            plan.tasks.insert(i, ((*s, index), fingerprint(&event)));
        }
        if n != items.count {
            return Err(format!(
                "{} holds {n} items, Initialize said {}",
                items.key, items.count
            ));
        }
        let mut after = None;
        for (s, tasks) in chunks.into_values() {
            let indices: Vec<u64> = tasks.iter().map(|t| t.0).collect();
            let spec = array_spec(&indices, self.run.max_concurrency);
            let submitted_unix = time::now_unix();
            let job = self.submit(s, Some(spec), None, Handler::Infer, threads, timeout, after)?;
            let tasks = tasks
                .iter()
                .map(|&(index, rank)| (index, Task::new(Some(rank), 1)))
                .collect();
            self.book.add(
                s,
                Submission {
                    job,
                    array: true,
                    handler: Handler::Infer,
                    cpus: threads as u32,
                    submitted_unix,
                    tasks,
                },
            );
            if self.run.max_concurrency > 0 {
                after = Some(job);
            }
        }
        Ok(())
    }

    /// One invocation as a plain job of its own, waited for.
    fn job(
        &self,
        handler: Handler,
        input: &Value,
        timeout: Option<Duration>,
        threads: usize,
        rank: Option<u64>,
        attempt: u32,
    ) -> Served {
        let s = self.next.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.spool.write_event(s, 0, input) {
            return Served::unstarted(failure(
                CLUSTER_FAULT,
                format!("{}: {e}", self.spool.event_path(s, 0).display()),
            ));
        }
        let submitted_unix = time::now_unix();
        let job = match self.submit(s, None, Some(0), handler, threads, timeout, None) {
            Ok(j) => j,
            Err(e) => return Served::unstarted(failure(CLUSTER_FAULT, e)),
        };
        let mut task = Task::new(rank, attempt);
        task.consumed = true;
        self.book.add(
            s,
            Submission {
                job,
                array: false,
                handler,
                cpus: threads as u32,
                submitted_unix,
                tasks: BTreeMap::from([(0, task)]),
            },
        );
        self.outcome((s, 0), timeout)
    }

    /// Writes submission `s`'s script and submits it; returns the job id.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        s: u64,
        array: Option<String>,
        index: Option<u64>,
        handler: Handler,
        threads: usize,
        timeout: Option<Duration>,
        after: Option<u64>,
    ) -> Result<u64, String> {
        let script = self.spool.script_path(s);
        let text = script_text(
            &self.run.program,
            self.spool.dir(),
            s,
            index,
            handler.name(),
            threads,
            timeout,
        );
        spool::write_atomic(&script, text.as_bytes())
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let spec = JobSpec {
            name: format!("{}-{}", self.run.execution, handler.name()),
            script,
            log: self.spool.log_pattern(array.is_some()),
            chdir: self.spool.dir().to_path_buf(),
            array,
            after,
            cpus: threads,
            memory_mib: self.run.memory_mib,
            timeout,
        };
        submit::sbatch(&sbatch_args(&self.run.setup.options, &spec))
    }

    /// Waits for a task's outcome and reads it as the other backends would report it.
    fn outcome(&self, key: Key, timeout: Option<Duration>) -> Served {
        let served = self.book.wait_for(key, |sub, t| {
            let job = if sub.array {
                format!("{}_{}", sub.job, key.1)
            } else {
                sub.job.to_string()
            };
            let conclusive = t.record.as_ref().is_some_and(|r| r.is_conclusive());
            let log_tail = if conclusive {
                String::new()
            } else {
                self.spool.log_tail(&job)
            };
            let seen = t.seen.as_ref();
            let state = match seen {
                Some(s) => Some(s.state.as_str()),
                None if conclusive => Some("RUNNING"),
                None => None,
            };
            let ended = Ended {
                state: if t.lost { None } else { state },
                exit: seen.and_then(|s| s.exit),
                record: t.record.as_ref(),
                log_tail: &log_tail,
                job: &job,
                spool: self.spool.dir(),
            };
            Served {
                result: decide(&ended, self.run.memory_mib, timeout),
                cost: measured(t),
                worker: None,
                cold: Some(true),
            }
        });
        if let Err(f) = &served.result {
            if f.error == cai_asl::error_names::RUNTIME {
                *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(f.clone());
                self.cancel_leftovers();
            }
        }
        served
    }
}

impl Backend for SlurmBackend {
    fn serve(
        &self,
        handler: Handler,
        input: &Value,
        timeout: Option<Duration>,
        threads: usize,
    ) -> Served {
        if let Some(f) = self.fatal() {
            return Served::unstarted(f);
        }
        match handler {
            Handler::Init => {
                let served = self.run.local.serve(handler, input, timeout, threads);
                if let Ok(out) = &served.result {
                    let items = out
                        .get("items")
                        .and_then(|v| serde_json::from_value::<ItemsRef>(v.clone()).ok());
                    self.lock_plan().items = items;
                }
                served
            }
            Handler::Failure => self.run.local.serve(handler, input, timeout, threads),
            Handler::Summarize => {
                // The Map is over: array tasks it never asked for must not race Summarize.
                self.cancel_leftovers();
                self.job(handler, input, timeout, threads, None, 1)
            }
            Handler::Infer => self.infer(input, timeout, threads),
        }
    }
}

/// Whether a rank payload has partitions (`DATA_PATH` a key or a non-empty list).
fn has_data(payload: &Value) -> bool {
    match payload.get("DATA_PATH") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    }
}

/// What a task cost, from its record (else Slurm's times); None when it never ran.
fn measured(t: &Task) -> Option<Measured> {
    if let Some(r) = &t.record {
        return Some(Measured {
            wall_seconds: r.wall_seconds,
            billed_ms: billed_ms(r.wall_seconds),
            cpu_seconds: r.cpu_seconds,
            peak_rss_mb: r.peak_rss_mb,
        });
    }
    let s = t.seen.as_ref()?;
    let wall = s.ended? - s.started?;
    Some(Measured {
        wall_seconds: wall,
        billed_ms: billed_ms(wall),
        cpu_seconds: 0.0,
        peak_rss_mb: 0.0,
    })
}

/// A hash of a JSON value that does not depend on the order of object keys.
fn fingerprint(v: &Value) -> u64 {
    fn feed(v: &Value, h: &mut std::collections::hash_map::DefaultHasher) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                "{".hash(h);
                for k in keys {
                    k.hash(h);
                    feed(&m[k], h);
                }
                "}".hash(h);
            }
            Value::Array(a) => {
                "[".hash(h);
                a.iter().for_each(|x| feed(x, h));
                "]".hash(h);
            }
            other => other.to_string().hash(h),
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    feed(v, &mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a =
            json!({"payload": {"RANK": "1", "DATA_PATH": ["a"]}, "run": {"x": 1}, "attempt": 0});
        let b =
            json!({"attempt": 0, "run": {"x": 1}, "payload": {"DATA_PATH": ["a"], "RANK": "1"}});
        let c =
            json!({"attempt": 1, "run": {"x": 1}, "payload": {"DATA_PATH": ["a"], "RANK": "1"}});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn data_paths() {
        assert!(has_data(&json!({"DATA_PATH": "p/1.pt"})));
        assert!(has_data(&json!({"DATA_PATH": ["p/1.pt"]})));
        assert!(!has_data(&json!({"DATA_PATH": null})));
        assert!(!has_data(&json!({"DATA_PATH": []})));
        assert!(!has_data(&json!({})));
    }
}
