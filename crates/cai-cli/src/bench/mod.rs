//! `cai bench`: throughput, CPU time, memory and latency on in-memory inputs, optionally
//! interleaved run by run with the PyTorch reference so both see the same machine load.

mod inputs;
mod measure;
mod pytorch;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use cai_model::{Predictor, WeightSource};

use crate::common;
use inputs::Inputs;
use measure::median;
use report::{ModelInfo, PytorchReport, Report};

/// Flags of `cai bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Weights: a .safetensors or PyTorch .pt file, or `seed:N` for random weights of the
    /// published architecture (fine for speed, meaningless predictions).
    #[arg(long, value_name = "FILE|seed:N")]
    pub model: WeightSource,
    /// Partition files to load into memory and run.
    #[arg(long, num_args = 1.., value_name = "FILE", conflicts_with = "synthetic",
          required_unless_present = "synthetic")]
    pub input: Vec<PathBuf>,
    /// Generate N synthetic samples (fixed seed) instead of reading files.
    #[arg(long, value_name = "N", value_parser = common::positive)]
    pub synthetic: Option<usize>,
    /// Samples per forward pass.
    #[arg(long, default_value = "64", value_parser = common::positive)]
    pub batch_size: usize,
    /// Worker threads (default: all available cores).
    #[arg(long, value_parser = common::positive)]
    pub threads: Option<usize>,
    /// Timed passes after one warm-up pass; the median is reported.
    #[arg(long, default_value = "5", value_parser = common::positive)]
    pub repeats: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also run bench/pytorch_ref.py on the same weights and inputs, one run after each of
    /// our timed passes, and report both and the ratios (needs Python with torch).
    #[arg(long)]
    pub compare_pytorch: bool,
    /// Python interpreter for --compare-pytorch.
    #[arg(long, default_value = "python3", value_name = "PYTHON")]
    pub python: String,
    /// Reference script (default: $CAI_BENCH_DIR/pytorch_ref.py, ./bench/pytorch_ref.py, or
    /// ../../bench/pytorch_ref.py next to the executable).
    #[arg(long, value_name = "PATH")]
    pub pytorch_script: Option<PathBuf>,
}

/// Runs `cai bench`; `t0` is the instant `main` started.
pub fn run(args: BenchArgs, quiet: bool, t0: Instant) -> Result<()> {
    let threads = common::threads(args.threads);
    let script = if args.compare_pytorch {
        Some(pytorch::locate_script(args.pytorch_script.as_deref())?)
    } else {
        None
    };
    // The export is not part of our latency; it is timed and subtracted.
    let export_started = Instant::now();
    let export = match &script {
        Some(_) => {
            let dir = tempfile::tempdir().context("creating a temporary directory")?;
            let path = dir.path().join("weights.safetensors");
            pytorch::export_weights(&args.model, &path)?;
            Some((dir, path))
        }
        None => None,
    };
    let export_ms = if export.is_some() {
        ms(export_started)
    } else {
        0.0
    };

    let inputs = match args.synthetic {
        Some(n) => Inputs::synthetic(n)?,
        None => Inputs::from_files(&args.input)?,
    };
    let load_started = Instant::now();
    let loaded = common::load_model(&args.model)?;
    let model_load_ms = ms(load_started);
    if loaded.untrained {
        common::untrained_banner(&loaded.origin);
    }
    inputs.check(loaded.model.config())?;
    let model = ModelInfo {
        origin: loaded.origin.clone(),
        parameters: loaded.parameters,
        untrained: loaded.untrained,
    };
    let predictor = Predictor::new(loaded.model, threads);

    let mut first_prediction_ms = f64::NAN;
    pass(&predictor, &inputs, args.batch_size, || {
        first_prediction_ms = ms(t0) - export_ms;
    })?;

    let reference = match (&script, &export) {
        (Some(s), Some((_, w))) => Some(pytorch::Reference {
            python: &args.python,
            script: s,
            weights: w,
            inputs: &inputs.files,
            batch_size: args.batch_size,
            threads,
        }),
        _ => None,
    };
    let pb = common::progress_bar(args.repeats as u64, quiet, "passes");
    let mut cpu_s = 0.0;
    let mut rates = Vec::with_capacity(args.repeats);
    let mut runs = Vec::new();
    for _ in 0..args.repeats {
        let u0 = measure::usage();
        let secs = pass(&predictor, &inputs, args.batch_size, || {})?;
        cpu_s += measure::usage().cpu_s - u0.cpu_s;
        rates.push(inputs.n as f64 / secs.max(1e-9));
        if let Some(r) = &reference {
            runs.push(r.run_once()?);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let peak_rss_mb = measure::usage().max_rss_mb;
    let samples_per_sec = median(&rates);

    let pytorch = script.map(|s| {
        let col = |k: &str| -> Vec<f64> { runs.iter().map(|r| pytorch::field(r, k)).collect() };
        let pt_rate = median(&col("samples_per_sec"));
        let pt_rss = median(&col("peak_rss_mb"));
        PytorchReport {
            script: s.display().to_string(),
            samples_per_sec: pt_rate,
            per_run_samples_per_sec: col("samples_per_sec"),
            peak_rss_mb: pt_rss,
            cpu_ms_per_sample: median(&col("cpu_ms_per_sample")),
            first_prediction_ms: median(&col("first_prediction_ms")),
            ratio_samples_per_sec: samples_per_sec / pt_rate,
            ratio_peak_rss: peak_rss_mb / pt_rss,
            runs,
        }
    });
    let report = Report {
        samples_per_sec,
        per_pass_samples_per_sec: rates,
        cpu_ms_per_sample: 1000.0 * cpu_s / (inputs.n * args.repeats).max(1) as f64,
        peak_rss_mb,
        first_prediction_ms,
        model_load_ms,
        export_ms,
        batch_size: args.batch_size,
        threads,
        samples: inputs.n,
        repeats: args.repeats,
        model,
        cpu: measure::cpu_info(),
        pytorch,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report.print_text();
    }
    if report.model.untrained {
        common::untrained_banner(&report.model.origin);
    }
    Ok(())
}

/// One pass over all inputs in batches; calls `on_first` right after the first batch's
/// output exists. Returns the pass's wall seconds.
fn pass(p: &Predictor, inputs: &Inputs, batch: usize, mut on_first: impl FnMut()) -> Result<f64> {
    let (iw, mw) = inputs.widths();
    let started = Instant::now();
    for start in (0..inputs.n).step_by(batch) {
        let end = (start + batch).min(inputs.n);
        let z = p
            .predict(
                &inputs.images[start * iw..end * iw],
                &inputs.magnitudes[start * mw..end * mw],
                end - start,
            )
            .with_context(|| format!("predicting samples {start}..{end}"))?;
        std::hint::black_box(&z);
        if start == 0 {
            on_first();
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Milliseconds since `t`.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
