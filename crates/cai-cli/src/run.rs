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
    #[arg(long)]
    pub resume: bool,
    /// Invocations at once (default: one per core, as memory allows).
    #[arg(long, value_parser = crate::common::positive)]
    pub concurrency: Option<usize>,
    /// Threads per inference invocation (default: cores / concurrency).
    #[arg(long, value_parser = crate::common::positive)]
    pub threads: Option<usize>,
    /// Execution name (default: cai-<unix seconds>).
    #[arg(long)]
    pub name: Option<String>,
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
/// Map tolerated it, 1 the execution failed).
pub fn run(args: RunArgs, quiet: bool) -> Result<u8> {
    let (payload, input) = read_payload(&args.payload)?;
    let definition = args
        .definition
        .as_deref()
        .map(read_definition)
        .transpose()?;
    let report = cai_local::run_workflow(RunOptions {
        payload,
        input,
        definition,
        store: args.store,
        resume: args.resume,
        slots: args.concurrency,
        threads: args.threads,
        quiet,
        program: std::env::current_exe().context("locating the cai executable")?,
        env: Vec::new(),
        name: args.name,
    })?;
    print_report(&report);
    Ok(report.exit_code() as u8)
}

/// Prints one run's execution summary, table and failures.
pub fn print_report(r: &RunReport) {
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    println!("{}", report::execution_text(r));
    println!("{}", report::performance_table(&[&r.performance]));
    println!("{}\n", report::cost_note(&[&r.performance]));
    print_outcome(r);
}

/// Accuracy, failures, where the files are, and the untrained banner.
pub fn print_outcome(r: &RunReport) {
    if let Some(e) = &r.execution.cause {
        println!(
            "execution failed: {}: {e}",
            r.execution.error.as_deref().unwrap_or("")
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
