//! `cai run`: one execution of the workflow definition on this machine, then the execution
//! record and the performance table added to `summary.json`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use cai_asl::{Definition, Event, ExecOptions, Observer, Status};
use cai_store::{BlockingStore, StoreConfig};
use cai_workflow::cost::{performance_row, InvocationStat, PerformanceRow};
use cai_workflow::definition::{self, handler_of_resource, Functions};
use cai_workflow::summary::{ExecutionRecord, Summary};
use cai_workflow::{io, layout, Payload};
use serde_json::Value;

use cai_workflow::lease::{self, Holder, LeaseError, Takeover};

use crate::capacity::Capacity;
use crate::invoker::{Backend, Invoker, ProcessBackend, LAMBDA_INVOKE};
use crate::lease::HeldLease;
use crate::progress::Progress;
use crate::slurm::{SlurmBackend, SlurmRun, SlurmSetup};
use crate::store_s3::StoreS3;
use crate::worker::WorkerBackend;

/// What to run and how.
pub struct RunOptions {
    /// The validated payload.
    pub payload: Payload,
    /// The payload as the user wrote it (the execution's input).
    pub input: Value,
    /// A user-edited definition; None runs the generated one.
    pub definition: Option<Value>,
    /// The store.
    pub store: StoreConfig,
    /// Keep ranks that already have a valid result; also take over the result path's lease
    /// when its holder is provably gone.
    pub resume: bool,
    /// Take over the result path's lease whoever holds it (the user says the holder is gone).
    pub break_lease: bool,
    /// Invocations at once (default: what cores and memory hold).
    pub slots: Option<usize>,
    /// Threads per inference invocation (default: cores / slots).
    pub threads: Option<usize>,
    /// No progress bar.
    pub quiet: bool,
    /// The `cai` executable that serves the handlers.
    pub program: PathBuf,
    /// Extra environment for every invocation.
    pub env: Vec<(String, String)>,
    /// Execution name (default: `cai-<unix time>`).
    pub name: Option<String>,
    /// Where invocations run; None: warm worker processes of `program` (or one process per
    /// invocation with `cold`).
    pub backend: Option<Arc<dyn Backend>>,
    /// One fresh process per invocation instead of warm workers (every invocation cold).
    pub cold: bool,
    /// Run the invocations on a Slurm cluster (checked by [`crate::slurm::prepare`]);
    /// Initialize and the failure records still run here, as `cold` says.
    pub slurm: Option<SlurmSetup>,
    /// Work on the finished results that must happen while this run still owns the result
    /// path (before the lease is released, so no other run can change the folder under it),
    /// e.g. writing report.html; what it returns is kept in [`RunReport::finished`].
    pub while_owned: Option<WhileOwned>,
}

/// See [`RunOptions::while_owned`]: returns a line for the user (e.g. where the report went)
/// or a warning (why it could not be done; never fatal, the run's outcome stands).
pub type WhileOwned = Box<dyn FnOnce() -> Result<String, String> + Send>;

/// What happened.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The execution as the Step Functions console shows it.
    pub execution: ExecutionRecord,
    /// summary.json as written (None when Summarize did not run).
    pub summary: Option<Summary>,
    /// The seed report's row for this run.
    pub performance: PerformanceRow,
    /// Every invocation.
    pub invocations: Vec<InvocationStat>,
    /// Slots and threads used.
    pub capacity: Capacity,
    /// Initialize's warnings (and the engine's: where a Slurm run that failed kept its jobs'
    /// logs).
    pub warnings: Vec<String>,
    /// What [`RunOptions::while_owned`] said, when there was one.
    pub finished: Option<Result<String, String>>,
}

impl RunReport {
    /// 0: every rank succeeded; 3: the run finished but some ranks failed (tolerated);
    /// 1: the execution failed.
    pub fn exit_code(&self) -> i32 {
        match (&self.execution.status[..], &self.summary) {
            ("SUCCEEDED", Some(s)) if s.failed_ranks.is_empty() => 0,
            ("SUCCEEDED", _) => 3,
            _ => 1,
        }
    }
}

/// Errors before the execution starts.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The definition is not one the local engine can run.
    #[error("definition: {0}")]
    Definition(String),
    /// The store cannot be opened.
    #[error("store: {0}")]
    Store(#[from] cai_store::StoreError),
    /// Another run holds the result path (or its lease could not be taken).
    #[error("{0}")]
    Lease(#[from] LeaseError),
    /// The Slurm engine cannot start.
    #[error("slurm: {0}")]
    Slurm(String),
}

/// Runs the workflow once and returns what happened.
pub fn run_workflow(opts: RunOptions) -> Result<RunReport, RunError> {
    let def_value = opts
        .definition
        .clone()
        .unwrap_or_else(|| definition::generate(&opts.payload.settings, &Functions::default()));
    let def = Definition::from_value(def_value).map_err(|e| RunError::Definition(e.to_string()))?;
    for r in def.task_resources() {
        if r != LAMBDA_INVOKE && handler_of_resource(&r).is_none() {
            return Err(RunError::Definition(format!(
                "Task resource {r:?} is not one of cai's functions (a Lambda ARN or name ending in -init, -infer, -failure or -summarize, or {LAMBDA_INVOKE})"
            )));
        }
    }
    let store = BlockingStore::open(opts.store.clone())?;
    // One run per result path: nothing runs (nothing is written) unless this run holds it.
    let (held, run_id, mut lease_warnings) = take_lease(&store, &opts)?;
    let mut env = opts.env.clone();
    env.push((cai_store::STORE_ENV_VAR.into(), opts.store.to_string()));
    let progress = Arc::new(Progress::new(opts.quiet));
    let memory = opts.payload.settings.memory_mb;
    let name = opts.name.clone().unwrap_or_else(|| {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("cai-{secs}")
    });
    let program = opts.program.clone();
    let local: Arc<dyn Backend> = if opts.cold {
        Arc::new(ProcessBackend::new(program, env.clone(), memory))
    } else {
        Arc::new(WorkerBackend::new(program, env.clone(), memory))
    };
    let slurm = match &opts.slurm {
        Some(setup) => Some(Arc::new(
            SlurmBackend::start(SlurmRun {
                setup: setup.clone(),
                local: local.clone(),
                store: store.clone(),
                program: opts.program.clone(),
                env,
                execution: name.clone(),
                memory_mib: memory,
                max_concurrency: opts.payload.settings.max_concurrency,
                arrays: opts.definition.is_none(),
                progress: progress.clone(),
            })
            .map_err(RunError::Slurm)?,
        )),
        None => None,
    };
    let backend: Arc<dyn Backend> = match (&opts.backend, &slurm) {
        (Some(b), _) => b.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => local,
    };
    let invoker = Invoker::new(
        backend,
        opts.payload.settings.memory_mb,
        opts.slots,
        opts.threads,
        progress.clone(),
    );
    let mut input = opts.input.clone();
    if let Some(obj) = input.as_object_mut() {
        if opts.resume {
            obj.insert("resume".into(), Value::Bool(true));
        }
        // Initialize accepts the lease this engine holds as its run's.
        obj.insert("cai_lease".into(), serde_json::json!({ "run_id": run_id }));
    }
    let exec_opts = ExecOptions {
        name: name.clone(),
        state_machine_name: "cai".into(),
        s3: Some(Arc::new(StoreS3::new(store.clone()))),
        ..ExecOptions::default()
    };
    let observer = RankObserver {
        progress: progress.clone(),
    };
    let exec = cai_asl::execute(&def, input, &invoker, &observer, &exec_opts);
    let cluster = slurm.as_ref().map(|s| s.finish());
    progress.finish();

    let invocations = invoker.records();
    // Standard executions bill transitions; Express children are billed per execution and
    // duration instead.
    let transitions = exec.transitions + exec.standard_children.transitions;
    let duration = exec
        .ended
        .duration_since(exec.started)
        .map_or(0.0, |d| d.as_secs_f64());
    let p = &opts.payload;
    let world = invoker
        .world_size()
        .unwrap_or_else(|| world_size(&exec.output, p));
    let mut performance = performance_row(
        world,
        &p.data_prefix,
        &invocations,
        p.settings.memory_mb,
        p.settings.architecture,
        transitions,
    );
    performance.add_express(
        exec.express_children.executions,
        exec.express_children.billed_duration.as_secs_f64(),
    );
    let execution = ExecutionRecord {
        name,
        status: match exec.status {
            Status::Succeeded => "SUCCEEDED".into(),
            Status::Failed => "FAILED".into(),
        },
        error: exec.error.as_ref().map(|e| e.error.clone()),
        cause: exec.error.as_ref().map(|e| e.cause.clone()),
        state_transitions: transitions,
        start: cai_asl::rfc3339(exec.started),
        end: cai_asl::rfc3339(exec.ended),
        duration_seconds: duration,
        invocations: invocations.clone(),
        largest_state_bytes: Some(exec.largest_payload_bytes as u64),
        throttled: Some(invoker.throttled() as u64),
        cluster,
    };
    let summary = record_in_summary(&store, p, &execution, &performance);
    let finished = opts.while_owned.map(|work| work());
    lease_warnings.extend(held.finish());
    let mut warnings: Vec<String> = exec
        .output
        .as_ref()
        .and_then(|o| o.get("warnings"))
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    warnings.extend(lease_warnings);
    let clean = exec.status == Status::Succeeded
        && summary.as_ref().is_some_and(|s| s.failed_ranks.is_empty());
    // A clean run leaves nothing worth reading in the spool; otherwise the jobs' logs say
    // what happened on the nodes.
    match &slurm {
        Some(s) if clean => s.remove_spool(),
        Some(s) => warnings.push(format!(
            "the Slurm jobs' events, outcomes and logs are kept in {}",
            s.spool_dir().display()
        )),
        None => {}
    }
    Ok(RunReport {
        execution,
        summary,
        performance,
        invocations,
        capacity: invoker.capacity(),
        warnings,
        finished,
    })
}

/// Takes the lease on the payload's result path for a new run id (taking over a stale one
/// with `resume`, any with `break_lease`) and starts renewing it; the warnings say what was
/// taken over.
fn take_lease(
    store: &BlockingStore,
    opts: &RunOptions,
) -> Result<(HeldLease, String, Vec<String>), LeaseError> {
    let p = &opts.payload;
    let run_id = lease::new_run_id();
    let takeover = if opts.break_lease {
        Takeover::Break(None)
    } else if opts.resume {
        Takeover::IfStale
    } else {
        Takeover::Never
    };
    let got = lease::acquire(
        store,
        &p.data_bucket,
        &p.result_path,
        &run_id,
        &Holder::this_process(),
        &takeover,
    )?;
    let mut warnings = Vec::new();
    if let Some((old, gone)) = &got.took_over {
        warnings.push(match gone {
            Some(why) => format!(
                "took over the lease on {} of run {} ({}), which is gone: {why}",
                got.lease.result(),
                old.run_id,
                old.holder_text()
            ),
            None => format!(
                "broke the lease on {} of run {} ({}, valid until {}) as --break-lease asked",
                got.lease.result(),
                old.run_id,
                old.holder_text(),
                old.expires
            ),
        });
    }
    Ok((HeldLease::start(got.lease), run_id, warnings))
}

/// Ranks in the plan: from the output when the run got that far, else the payload's intent.
fn world_size(output: &Option<Value>, p: &Payload) -> u64 {
    output
        .as_ref()
        .and_then(|o| {
            o.pointer("/items/count")
                .and_then(Value::as_u64)
                .or_else(|| {
                    o.get("body")
                        .and_then(Value::as_array)
                        .map(|b| b.len() as u64)
                })
        })
        .or(p.world_size)
        .or(p.file_limit)
        .unwrap_or(0)
}

/// Adds the execution record and the performance table to this run's summary.json, if
/// Summarize wrote one in this execution.
fn record_in_summary(
    store: &BlockingStore,
    p: &Payload,
    execution: &ExecutionRecord,
    performance: &PerformanceRow,
) -> Option<Summary> {
    let summarized = execution
        .invocations
        .iter()
        .any(|i| i.handler == "summarize" && i.outcome == "ok");
    if !summarized {
        return None;
    }
    let key = layout::summary_key(&p.result_path);
    let mut summary: Summary = match io::read_json(store, &p.data_bucket, &key) {
        Ok(Some(s)) => s,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!("cannot read {}/{key}: {e}", p.data_bucket);
            return None;
        }
    };
    summary.execution = Some(execution.clone());
    summary.performance = vec![performance.clone()];
    if let Err(e) = io::write_json(store, &p.data_bucket, &key, &summary) {
        tracing::warn!("cannot update {}/{key}: {e}", p.data_bucket);
    }
    Some(summary)
}

/// Feeds final rank failures to the progress bar.
struct RankObserver {
    progress: Arc<Progress>,
}

impl Observer for RankObserver {
    fn event(&self, e: &Event<'_>) {
        match e {
            Event::MapItemFailed { .. } => self.progress.rank_failed(),
            Event::TaskRetrying {
                map_item_index: Some(i),
                error,
                delay,
                ..
            } => {
                tracing::info!(
                    "rank item {i}: retrying after {}: in {delay:?}",
                    error.error
                );
            }
            _ => {}
        }
    }
}
