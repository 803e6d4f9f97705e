//! `cai demo`: the seed report's three experiments (world sizes 11, 50 and 100 over the same
//! 100MB-style partitions) on a synthetic set it makes in the local store, scaled to about a
//! minute on 2 cores: each partition holds a few samples instead of 5,113, and the weights
//! are seeded (untrained), so the workflow, not the model, is what is shown.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cai_data::{Format, SAMPLE_BYTES};
use cai_local::{report, RunOptions, RunReport};
use cai_store::{BlockingStore, StoreConfig};
use cai_workflow::{Payload, RunSettings};
use serde_json::json;

/// The demo's bucket.
const BUCKET: &str = "cai-demo";
/// The seed report's partition prefix.
const PREFIX: &str = "100MB";

/// Flags of `cai demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where buckets live (the demo writes bucket `cai-demo` there).
    #[arg(long, default_value = cai_store::DEFAULT_LOCAL_ROOT, value_name = "DIR|s3|s3://B/P")]
    pub store: StoreConfig,
    /// Partition files to make (world 100 needs at least 100 to give every rank one).
    #[arg(long, default_value = "100", value_parser = crate::common::positive)]
    pub files: usize,
    /// Samples per partition (the real 100 MB partitions hold 5,113).
    #[arg(long, default_value = "16", value_parser = crate::common::positive)]
    pub samples_per_file: usize,
    /// World sizes to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "11,50,100")]
    pub world_sizes: Vec<u64>,
    /// Invocations at once (default: one per core, as memory allows).
    #[arg(long, value_parser = crate::common::positive)]
    pub concurrency: Option<usize>,
    /// A fresh process per invocation instead of warm workers (see `cai run --cold`).
    #[arg(long)]
    pub cold: bool,
}

/// cai's defaults, for `cai asl` without a payload.
pub fn default_settings() -> RunSettings {
    demo_payload(11, 1)
        .map(|p| p.settings)
        .unwrap_or_else(|_| unreachable!("the demo payload is valid"))
}

fn demo_payload(world: u64, run: usize) -> Result<Payload, cai_workflow::PayloadError> {
    Payload::from_value(&payload_json(world, run))
}

/// The seed report's payload, pointed at the demo bucket, with seeded weights.
fn payload_json(world: u64, run: usize) -> serde_json::Value {
    json!({
        "bucket": BUCKET,
        "file_limit": world.to_string(),
        "batch_size": 512,
        "object_type": "folder",
        "S3_object_name": "Anomaly Detection",
        "script": "/tmp/Anomaly Detection/Inference/inference.py",
        "result_path": format!("result-partition-100MB/demo/{run}"),
        "data_bucket": BUCKET,
        "data_prefix": PREFIX,
        "model": "seed:0"
    })
}

/// Runs `cai demo`.
pub fn run(args: DemoArgs, quiet: bool) -> Result<u8> {
    let store = BlockingStore::open(args.store.clone()).context("--store")?;
    make_data(&store, args.files, args.samples_per_file)?;
    let program = std::env::current_exe().context("locating the cai executable")?;
    let mut reports: Vec<RunReport> = Vec::new();
    for (i, &world) in args.world_sizes.iter().enumerate() {
        eprintln!("== world size {world}");
        let report = cai_local::run_workflow(RunOptions {
            payload: demo_payload(world, i + 1)?,
            input: payload_json(world, i + 1),
            definition: None,
            store: args.store.clone(),
            resume: false,
            break_lease: false,
            slots: args.concurrency,
            threads: None,
            quiet,
            program: program.clone(),
            env: Vec::new(),
            name: Some(format!("cai-demo-world-{world}")),
            backend: None,
            cold: args.cold,
            slurm: None,
            while_owned: None,
        })?;
        reports.push(report);
    }
    let refs: Vec<&RunReport> = reports.iter().collect();
    println!(
        "\nThe seed report's experiments, scaled: {} partitions of {} samples under {BUCKET}/{PREFIX}/ in {}, seeded weights.\n",
        args.files, args.samples_per_file, args.store
    );
    println!("{}", report::executions_side_by_side(&refs));
    let rows: Vec<_> = reports.iter().map(|r| &r.performance).collect();
    println!("{}", report::performance_table(&rows));
    println!("{}\n", report::cost_note(&rows, report::LOCAL_COST_SOURCE));
    let mut code = 0;
    for r in &reports {
        if r.exit_code() != 0 {
            println!("world size {}:", r.performance.world_size);
            crate::run::print_outcome(r);
        }
        code = code.max(r.exit_code());
    }
    crate::common::untrained_banner("seed:0");
    Ok(code as u8)
}

/// Writes `files` synthetic partitions of `samples` samples each as `100MB/1.pt ..` in the
/// demo bucket (made in a scratch folder, then put through the store like any upload).
fn make_data(store: &BlockingStore, files: usize, samples: usize) -> Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let mib = (1u64 << 20) as f64;
    let per = (samples * SAMPLE_BYTES) as f64 / mib;
    let paths: Vec<PathBuf> = cai_data::synth(
        scratch.path(),
        per * files as f64,
        per,
        7,
        Format::Torch,
        &|_, _| {},
    )
    .context("making the synthetic partitions")?;
    let bucket = store.bucket(BUCKET)?;
    for p in &paths {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .context("partition name")?;
        let bytes = std::fs::read(p).with_context(|| p.display().to_string())?;
        bucket.put(&format!("{PREFIX}/{name}"), bytes)?;
    }
    eprintln!(
        "made {} partitions of {samples} samples in {BUCKET}/{PREFIX}/",
        paths.len()
    );
    Ok(())
}
