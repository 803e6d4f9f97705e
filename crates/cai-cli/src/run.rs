//! `cai run payload.json`: the whole workflow (Initialize, one inference process per rank,
//! Summarize) on this machine, from the payloads users already have.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cai_local::{report, RunOptions, RunReport};
use cai_store::StoreConfig;
use cai_workflow::Payload;
use serde_json::Value;

/// Flags of `cai run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The workflow input: the original CAI's payload JSON (see README for cai's own fields).
    #[arg(value_name = "PAYLOAD")]
    pub payload: PathBuf,
    /// Where buckets live: a directory (one subfolder per bucket), `s3` (real buckets, from
    /// the standard AWS environment) or `s3://BUCKET[/PREFIX]`.
    #[arg(long, default_value = cai_store::DEFAULT_LOCAL_ROOT, value_name = "DIR|s3|s3://B/P")]
    pub store: StoreConfig,
    /// Run this Amazon States Language definition instead of the generated one (`cai asl`
    /// prints the generated one to start from).
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
    /// Keep ranks that already have a valid result under result_path; rerun only the rest.
    /// Also takes over the result path's lease when its holder is provably gone (its process
    /// no longer exists, or its lease expired).
    #[arg(long)]
    pub resume: bool,
    /// Take the result path's lease whoever holds it: for a run you know is gone that cai
    /// cannot prove gone (it ran on another host, or its execution was stopped).
    #[arg(long)]
    pub break_lease: bool,
    /// Invocations at once (default: one per core, as memory allows).
    #[arg(long, value_parser = crate::common::positive)]
    pub concurrency: Option<usize>,
    /// Threads per inference invocation (default: cores / concurrency).
    #[arg(long, value_parser = crate::common::positive)]
    pub threads: Option<usize>,
    /// Execution name (default: cai-<unix seconds>).
    #[arg(long)]
    pub name: Option<String>,
    /// Start a fresh process for every invocation (every one a cold start) instead of
    /// keeping warm workers that reuse the loaded model between invocations.
    #[arg(long, conflicts_with = "lambda_endpoint")]
    pub cold: bool,
    /// Run the handlers as Lambda functions behind this Invoke API endpoint (an emulator
    /// such as `cargo lambda watch`, or `aws` for the configured AWS endpoint) instead of
    /// local processes; this machine still executes the state machine. The functions read
    /// and write their own store (their CAI_STORE), so pass the same one as --store.
    #[arg(long, value_name = "URL|aws")]
    pub lambda_endpoint: Option<String>,
    /// With --lambda-endpoint: the functions are <NAME>-init, <NAME>-infer, ...
    #[arg(long, default_value = cai_workflow::definition::DEFAULT_STACK, value_name = "NAME", requires = "lambda_endpoint")]
    pub lambda_name: String,
    /// With --lambda-endpoint: the region to sign for (default: the AWS environment's).
    #[arg(long, value_name = "REGION", requires = "lambda_endpoint")]
    pub lambda_region: Option<String>,
    /// Also write report.html (the run's figures, see `cai report`) next to its results.
    #[arg(long)]
    pub report: bool,
    /// Arithmetic of the model's matrix products, overriding the payload's `precision`
    /// (fp32 by default; bf16 and int8 are faster, within 2e-3 in redshift).
    #[arg(long, value_name = "fp32|bf16|int8")]
    pub precision: Option<cai_model::Precision>,
    /// Where the invocations run: `local` (processes on this machine) or `slurm` (jobs on a
    /// Slurm cluster: the Map's ranks as one job array, `memory_mb` as --mem, timeout_seconds
    /// as --time, --threads as --cpus-per-task; needs sbatch, squeue and scancel, and a store
    /// and spool the nodes see at the same path, or --store s3).
    #[arg(long, value_enum, default_value_t = Engine::Local)]
    pub engine: Engine,
    /// With --engine slurm: the partition (sbatch --partition).
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// With --engine slurm: the account charged (sbatch --account).
    #[arg(long, value_name = "A")]
    pub account: Option<String>,
    /// With --engine slurm: the quality of service (sbatch --qos).
    #[arg(long, value_name = "Q")]
    pub qos: Option<String>,
    /// With --engine slurm: an sbatch flag for every job, after cai's own (repeatable; e.g.
    /// --sbatch-arg=--gres=gpu:1 or --sbatch-arg=--constraint=avx512).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// With --engine slurm: the folder for the jobs' events, outcomes and logs; must be
    /// shared with the nodes (default: <store>/.cai-slurm, or ./.cai-slurm with --store s3).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
}

/// Where `cai run`'s invocations run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Worker processes on this machine.
    Local,
    /// Jobs on a Slurm cluster.
    Slurm,
}

/// The Slurm setup for `--engine slurm` (checked against the cluster), or None; refuses
/// Slurm flags without it and flags that mean nothing with it.
fn slurm_setup(args: &RunArgs, payload: &Payload) -> Result<Option<cai_local::slurm::SlurmSetup>> {
    let options = cai_local::slurm::SlurmOptions {
        partition: args.partition.clone(),
        account: args.account.clone(),
        qos: args.qos.clone(),
        sbatch_args: args.sbatch_args.clone(),
        spool: args.spool.clone(),
    };
    if args.engine != Engine::Slurm {
        if options != cai_local::slurm::SlurmOptions::default() {
            anyhow::bail!(
                "--partition, --account, --qos, --sbatch-arg and --spool need --engine slurm"
            );
        }
        return Ok(None);
    }
    if args.lambda_endpoint.is_some() {
        anyhow::bail!("--engine slurm runs the handlers as Slurm jobs; it cannot be combined with --lambda-endpoint");
    }
    if args.concurrency.is_some() {
        anyhow::bail!("--concurrency does not apply to --engine slurm: the payload's max_concurrency limits the job array (sbatch --array=...%N), the cluster the rest");
    }
    let setup = cai_local::slurm::prepare(
        options,
        &args.store,
        payload.settings.memory_mb,
        args.threads.unwrap_or(1),
    )
    .map_err(|e| anyhow::anyhow!("--engine slurm: {e}"))?;
    for w in &setup.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Some(setup))
}

/// The Lambda functions behind `--lambda-endpoint`, or None for local processes.
fn lambda_backend(args: &RunArgs) -> Result<Option<std::sync::Arc<dyn cai_local::Backend>>> {
    let Some(endpoint) = &args.lambda_endpoint else {
        return Ok(None);
    };
    let target = cai_lambda::invoke::LambdaTarget {
        endpoint: (endpoint != "aws").then(|| endpoint.clone()),
        region: args.lambda_region.clone(),
        stem: args.lambda_name.clone(),
    };
    let backend = cai_lambda::invoke::LambdaBackend::connect(&target)
        .map_err(|e| anyhow::anyhow!("--lambda-endpoint {endpoint}: {e}"))?;
    Ok(Some(std::sync::Arc::new(backend)))
}

/// Reads and validates a payload file, naming the file in every error.
pub fn read_payload(path: &Path) -> Result<(Payload, Value)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let payload = Payload::parse(&text).with_context(|| format!("{}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok((payload, value))
}

/// Reads a definition file.
pub fn read_definition(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--definition {}", path.display()))?;
    cai_asl::Definition::parse(&text)
        .with_context(|| format!("--definition {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("--definition {}", path.display()))
}

/// Runs `cai run`; returns the exit code (0 all ranks succeeded, 3 some ranks failed but the
/// Map tolerated it, 1 the execution failed). Errors before the execution starts, another
/// run holding the result path among them, exit 2.
pub fn run(args: RunArgs, quiet: bool) -> Result<u8> {
    let (mut payload, mut input) = read_payload(&args.payload)?;
    if let Some(p) = args.precision {
        // The execution input is what Initialize plans from: the flag goes there too.
        payload.settings.precision = p;
        input["precision"] = p.to_string().into();
    }
    let definition = args
        .definition
        .as_deref()
        .map(read_definition)
        .transpose()?;
    let slurm = slurm_setup(&args, &payload)?;
    let backend = lambda_backend(&args)?;
    // The report is written while this run still holds the result path's lease.
    let while_owned = args.report.then(|| {
        let target = crate::report::Target::new(&args.store, &payload);
        Box::new(move || target.outcome()) as cai_local::WhileOwned
    });
    // Lambda and Slurm run as many invocations at once as the Map asks for; slots only
    // bound the local processes. A Slurm job gets one CPU unless --threads says more.
    let (slots, threads) = match (&backend, &slurm) {
        (Some(_), _) => (
            Some(args.concurrency.unwrap_or(cai_asl::UNBOUNDED_MAP_WORKERS)),
            args.threads,
        ),
        (None, Some(_)) => (
            Some(cai_asl::UNBOUNDED_MAP_WORKERS),
            Some(args.threads.unwrap_or(1)),
        ),
        (None, None) => (args.concurrency, args.threads),
    };
    let store = slurm
        .as_ref()
        .map_or(args.store.clone(), |s| s.store.clone());
    let report = cai_local::run_workflow(RunOptions {
        payload,
        input,
        definition,
        store,
        resume: args.resume,
        break_lease: args.break_lease,
        slots,
        threads,
        quiet,
        program: std::env::current_exe().context("locating the cai executable")?,
        env: Vec::new(),
        name: args.name,
        backend,
        cold: args.cold,
        slurm,
        while_owned,
    })?;
    match (&args.lambda_endpoint, args.engine) {
        (Some(_), _) => print_report_with(
            &report,
            "durations from Lambda's REPORT lines where Invoke returned them, else each Invoke's wall time seen here; memory as configured.",
        ),
        (None, Engine::Slurm) => print_report_with(&report, report::SLURM_COST_SOURCE),
        (None, Engine::Local) => print_report(&report),
    }
    if let Some(outcome) = &report.finished {
        crate::report::print_outcome(outcome);
    }
    Ok(report.exit_code() as u8)
}

/// Prints one run's execution summary, table and failures, the cost projected from this
/// machine's timings.
pub fn print_report(r: &RunReport) {
    print_report_with(r, report::LOCAL_COST_SOURCE);
}

/// Prints one run's execution summary, table (its cost from `cost_source`) and failures.
pub fn print_report_with(r: &RunReport, cost_source: &str) {
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    println!("{}", report::execution_text(r));
    println!("{}", report::performance_table(&[&r.performance]));
    println!("{}\n", report::cost_note(&[&r.performance], cost_source));
    print_outcome(r);
}

/// A Task's cause is the function's error body (`{"errorType", "errorMessage"}`) as Lambda
/// reports it; the message alone reads better after the error name.
fn lambda_message(cause: &str) -> String {
    serde_json::from_str::<cai_workflow::HandlerError>(cause)
        .map_or_else(|_| cause.to_string(), |e| e.error_message)
}

/// Accuracy, failures, where the files are, and the untrained banner.
pub fn print_outcome(r: &RunReport) {
    if let Some(e) = &r.execution.cause {
        println!(
            "execution failed: {}: {}",
            r.execution.error.as_deref().unwrap_or(""),
            lambda_message(e)
        );
    }
    let Some(s) = &r.summary else {
        let summarize_failed = r
            .invocations
            .iter()
            .any(|i| i.handler == "summarize" && i.outcome != "ok");
        if summarize_failed {
            println!("no summary was written: Summarize failed (error above)");
        } else {
            println!("no summary was written: the execution stopped before Summarize");
        }
        return;
    };
    if let Some(a) = &s.accuracy {
        println!(
            "accuracy over {} labelled samples: MAE {:.5}  MSE {:.6}  Bias {:.5}  NMAD {:.5}  R^2 {:.4}  outliers(|dz|>0.15) {:.2}%",
            a.count, a.mae, a.mse, a.bias, a.nmad, a.r2, 100.0 * a.outlier_fraction
        );
    }
    for f in &s.failed_ranks {
        println!(
            "FAILED rank {} ({}) after {} attempt(s): {}: {}",
            f.rank,
            f.data_path.keys().join(", "),
            f.attempts,
            f.error,
            f.cause
        );
    }
    println!(
        "results: {}/{}/ (per-rank <rank>.json, predictions/<rank>.parquet, combined_data.json, summary.json)",
        s.data_bucket, s.result_path
    );
    if s.untrained {
        crate::common::untrained_banner("seed weights");
    }
}
