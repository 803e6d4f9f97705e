//! `cai bench`: throughput, CPU time, memory and latency on in-memory inputs, optionally
//! interleaved run by run with the PyTorch reference so both see the same machine load.

mod inputs;
mod measure;
mod pytorch;
mod report;
mod variants;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use cai_model::{Isa, Precision, Predictor, WeightSource};

use crate::common;
use inputs::Inputs;
use measure::median;
use report::{EngineReport, ModelInfo, PytorchReport, Report, VariantReport};

/// The engines `bench/engines.py` knows.
const ENGINES: [&str; 5] = ["eager", "compile", "autocast_bf16", "ort_fp32", "ort_int8"];

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
    /// Also run bench/pytorch_ref.py's PyTorch eager engine on the same weights and inputs,
    /// one run after each of our timed passes (the same as `--compare --engines eager`).
    #[arg(long)]
    pub compare_pytorch: bool,
    /// Time the Python engines (PyTorch eager, torch.compile, autocast-bf16, ONNX Runtime
    /// fp32 and dynamic int8, on the very same weights) interleaved with our passes and print
    /// the ratios, plus this core's sgemm GFLOP/s (needs Python with torch, onnx,
    /// onnxruntime, numpy, safetensors).
    #[arg(long)]
    pub compare: bool,
    /// Engines for --compare (comma-separated: eager, compile, autocast_bf16, ort_fp32,
    /// ort_int8).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub engines: Option<Vec<String>>,
    /// Precision(s) of the matrix products: fp32, bf16, int8; a comma-separated list
    /// measures each, interleaved (the first is the one the top-level figures describe).
    #[arg(long, default_value = "fp32", value_delimiter = ',', value_parser = variants::parse::<Precision>, value_name = "LIST")]
    pub precision: Vec<Precision>,
    /// Kernel ISA level(s): scalar, avx2, avx512, neon (default: CAI_ISA or the best this
    /// CPU has); a list measures each, interleaved.
    #[arg(long, value_delimiter = ',', value_parser = variants::parse::<Isa>, value_name = "LIST")]
    pub isa: Option<Vec<Isa>>,
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
    let mut engines: Vec<String> = Vec::new();
    if args.compare || args.compare_pytorch {
        engines = match &args.engines {
            Some(list) => list.clone(),
            None if args.compare => ENGINES.iter().map(|e| e.to_string()).collect(),
            None => vec!["eager".into()],
        };
    }
    let script = if engines.is_empty() {
        None
    } else {
        Some(pytorch::locate_script(args.pytorch_script.as_deref())?)
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
    let flops = loaded.model.config().flops_per_sample();
    let model = ModelInfo {
        origin: loaded.origin.clone(),
        parameters: loaded.parameters,
        untrained: loaded.untrained,
    };
    let isas = args.isa.clone().unwrap_or_else(|| vec![Isa::selected()]);
    variants::check(&isas)?;
    // Every (precision, isa) pair, precision-major; the first reuses the model loaded above
    // (whose load time is reported).
    let mut all = Vec::new();
    let mut first_model = Some(loaded.model);
    for &precision in &args.precision {
        for &isa in &isas {
            let model = match first_model.take() {
                Some(m) => m,
                None => common::load_model(&args.model)?.model,
            };
            all.push(variants::Variant::new(model, threads, precision, isa));
        }
    }

    let mut first_prediction_ms = f64::NAN;
    for (i, v) in all.iter_mut().enumerate() {
        let mut z = Vec::with_capacity(inputs.n);
        pass(&v.predictor, &inputs, args.batch_size, &mut z, || {
            if i == 0 {
                first_prediction_ms = ms(t0) - export_ms;
            }
        })?;
        v.z = z;
    }

    let workdir = tempfile::tempdir().context("creating a temporary directory")?;
    let reference = match (&script, &export) {
        (Some(s), Some((_, w))) => Some(pytorch::Reference {
            python: &args.python,
            script: s,
            weights: w,
            inputs: &inputs.files,
            batch_size: args.batch_size,
            threads,
            workdir: workdir.path(),
        }),
        _ => None,
    };
    let rounds = args.repeats as u64 * (all.len() + engines.len()) as u64;
    let pb = common::progress_bar(rounds, quiet, "passes");
    let mut runs: Vec<Vec<serde_json::Value>> = vec![Vec::new(); engines.len()];
    let mut scratch = Vec::new();
    for _ in 0..args.repeats {
        for v in all.iter_mut() {
            let u0 = measure::usage();
            let secs = pass(&v.predictor, &inputs, args.batch_size, &mut scratch, || {})?;
            v.cpu_s += measure::usage().cpu_s - u0.cpu_s;
            v.rates.push(inputs.n as f64 / secs.max(1e-9));
            pb.inc(1);
        }
        if let Some(r) = &reference {
            for (e, out) in engines.iter().zip(runs.iter_mut()) {
                out.push(r.run_once(e)?);
                pb.inc(1);
            }
        }
    }
    pb.finish_and_clear();
    let sgemm_gflops = match &reference {
        Some(r) if args.compare => Some(pytorch::field(&r.sgemm()?, "gflops_per_cpu_s")),
        _ => None,
    };
    let peak_rss_mb = measure::usage().max_rss_mb;
    let per_sample = |cpu_s: f64| 1000.0 * cpu_s / (inputs.n * args.repeats).max(1) as f64;
    let fp32_z = |isa: Isa| -> Result<Vec<f32>> {
        if let Some(v) = all
            .iter()
            .find(|v| v.isa == isa && v.precision == Precision::Fp32)
        {
            return Ok(v.z.clone());
        }
        let p = Predictor::new(common::load_model(&args.model)?.model, threads).with_isa(isa);
        let mut z = Vec::new();
        pass(&p, &inputs, args.batch_size, &mut z, || {})?;
        Ok(z)
    };
    let mut variant_reports = Vec::new();
    for v in &all {
        let rate = median(&v.rates);
        variant_reports.push(VariantReport {
            precision: v.precision.to_string(),
            isa: v.isa.to_string(),
            samples_per_sec: rate,
            per_pass_samples_per_sec: v.rates.clone(),
            cpu_ms_per_sample: per_sample(v.cpu_s),
            gflops: rate * flops / 1e9,
            gflops_per_cpu_s: flops / 1e6 / per_sample(v.cpu_s),
            max_abs_dz_vs_fp32: variants::max_abs_dz(&v.z, &fp32_z(v.isa)?),
        });
    }
    let samples_per_sec = variant_reports[0].samples_per_sec;
    let col = |runs: &[serde_json::Value], k: &str| -> Vec<f64> {
        runs.iter().map(|r| pytorch::field(r, k)).collect()
    };
    let engine_reports: Vec<EngineReport> = engines
        .iter()
        .zip(&runs)
        .map(|(e, r)| {
            let rate = median(&col(r, "samples_per_sec"));
            EngineReport {
                engine: e.clone(),
                samples_per_sec: rate,
                per_run_samples_per_sec: col(r, "samples_per_sec"),
                cpu_ms_per_sample: median(&col(r, "cpu_ms_per_sample")),
                peak_rss_mb: median(&col(r, "peak_rss_mb")),
                ratio: samples_per_sec / rate,
            }
        })
        .collect();
    let pytorch = match (&script, engines.iter().position(|e| e == "eager")) {
        (Some(s), Some(i)) => {
            let runs = runs[i].clone();
            let pt_rate = median(&col(&runs, "samples_per_sec"));
            let pt_rss = median(&col(&runs, "peak_rss_mb"));
            Some(PytorchReport {
                script: s.display().to_string(),
                samples_per_sec: pt_rate,
                per_run_samples_per_sec: col(&runs, "samples_per_sec"),
                peak_rss_mb: pt_rss,
                cpu_ms_per_sample: median(&col(&runs, "cpu_ms_per_sample")),
                first_prediction_ms: median(&col(&runs, "first_prediction_ms")),
                ratio_samples_per_sec: samples_per_sec / pt_rate,
                ratio_peak_rss: peak_rss_mb / pt_rss,
                runs,
            })
        }
        _ => None,
    };
    let report = Report {
        samples_per_sec,
        per_pass_samples_per_sec: all[0].rates.clone(),
        cpu_ms_per_sample: per_sample(all[0].cpu_s),
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
        precision: all[0].precision.to_string(),
        isa: all[0].isa.to_string(),
        flops_per_sample: flops,
        gflops: samples_per_sec * flops / 1e9,
        gflops_per_cpu_s: flops / 1e6 / per_sample(all[0].cpu_s),
        variants: variant_reports,
        engines: engine_reports,
        sgemm_gflops,
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

/// One pass over all inputs in batches, predictions into `z_out`; calls `on_first` right
/// after the first batch's output exists. Returns the pass's wall seconds.
fn pass(
    p: &Predictor,
    inputs: &Inputs,
    batch: usize,
    z_out: &mut Vec<f32>,
    mut on_first: impl FnMut(),
) -> Result<f64> {
    let (iw, mw) = inputs.widths();
    z_out.clear();
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
        z_out.extend_from_slice(std::hint::black_box(&z));
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
