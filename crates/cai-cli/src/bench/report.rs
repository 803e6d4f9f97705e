//! What `cai bench` reports, as text for people or one JSON object for scripts.

use serde::Serialize;

use super::measure::CpuInfo;

/// The model that was measured.
#[derive(Debug, Serialize)]
pub struct ModelInfo {
    /// Weight file or `seed:N`.
    pub origin: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// True for seeded random weights.
    pub untrained: bool,
}

/// The PyTorch side of `--compare-pytorch`, one script run per round.
#[derive(Debug, Serialize)]
pub struct PytorchReport {
    /// Script that was run.
    pub script: String,
    /// Median samples/s over the runs.
    pub samples_per_sec: f64,
    /// Samples/s of each run.
    pub per_run_samples_per_sec: Vec<f64>,
    /// Median peak RSS of the Python process, MiB.
    pub peak_rss_mb: f64,
    /// Median CPU ms per sample.
    pub cpu_ms_per_sample: f64,
    /// Median time to the first prediction, ms from process spawn.
    pub first_prediction_ms: f64,
    /// Ours / PyTorch, samples/s (above 1: we are faster).
    pub ratio_samples_per_sec: f64,
    /// Ours / PyTorch, peak RSS (below 1: we use less memory).
    pub ratio_peak_rss: f64,
    /// Each run's JSON as the script printed it.
    pub runs: Vec<serde_json::Value>,
}

/// One cai configuration (precision x ISA level) of the run.
#[derive(Debug, Serialize)]
pub struct VariantReport {
    /// Precision of the products.
    pub precision: String,
    /// Kernel level.
    pub isa: String,
    /// Median samples/s.
    pub samples_per_sec: f64,
    /// Samples/s of each timed pass.
    pub per_pass_samples_per_sec: Vec<f64>,
    /// CPU ms per sample over the timed passes.
    pub cpu_ms_per_sample: f64,
    /// Model GFLOP/s at the median rate.
    pub gflops: f64,
    /// Model GFLOP per CPU-second (what one core does, whatever else shares the machine).
    pub gflops_per_cpu_s: f64,
    /// Largest |dz| against fp32 at the same level on these inputs (0 for fp32 itself).
    pub max_abs_dz_vs_fp32: f64,
}

/// One Python engine of `--compare` (see `bench/engines.py`).
#[derive(Debug, Serialize)]
pub struct EngineReport {
    /// `eager`, `compile`, `autocast_bf16`, `ort_fp32` or `ort_int8`.
    pub engine: String,
    /// Median samples/s over the runs.
    pub samples_per_sec: f64,
    /// Samples/s of each run.
    pub per_run_samples_per_sec: Vec<f64>,
    /// Median CPU ms per sample.
    pub cpu_ms_per_sample: f64,
    /// Median peak RSS, MiB.
    pub peak_rss_mb: f64,
    /// The first cai configuration over this engine, samples/s.
    pub ratio: f64,
}

/// Everything `cai bench` measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Median samples/s over the timed passes.
    pub samples_per_sec: f64,
    /// Samples/s of each timed pass.
    pub per_pass_samples_per_sec: Vec<f64>,
    /// CPU (user + system) ms per sample over the timed passes.
    pub cpu_ms_per_sample: f64,
    /// Peak RSS of this process, MiB.
    pub peak_rss_mb: f64,
    /// ms from process start to the first batch's output, including model load and input
    /// read (excluding the weight export of `--compare-pytorch`).
    pub first_prediction_ms: f64,
    /// ms to load and build the model.
    pub model_load_ms: f64,
    /// ms spent exporting weights for PyTorch (0 without `--compare-pytorch`).
    pub export_ms: f64,
    /// Samples per forward pass.
    pub batch_size: usize,
    /// Worker threads.
    pub threads: usize,
    /// Samples per pass.
    pub samples: usize,
    /// Timed passes.
    pub repeats: usize,
    /// The model.
    pub model: ModelInfo,
    /// The machine.
    pub cpu: CpuInfo,
    /// Precision of the first configuration (the one the top-level figures describe).
    pub precision: String,
    /// ISA level of the first configuration.
    pub isa: String,
    /// Floating-point operations per sample (multiply-add = 2).
    pub flops_per_sample: f64,
    /// The first configuration's GFLOP/s.
    pub gflops: f64,
    /// The first configuration's GFLOP per CPU-second.
    pub gflops_per_cpu_s: f64,
    /// Every configuration measured, interleaved pass by pass.
    pub variants: Vec<VariantReport>,
    /// The Python engines of `--compare`, interleaved with our passes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<EngineReport>,
    /// This machine's single-core sgemm GFLOP per CPU-second on 1088x192x768 (PyTorch's
    /// BLAS), with `--compare`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sgemm_gflops: Option<f64>,
    /// The PyTorch comparison, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pytorch: Option<PytorchReport>,
}

impl Report {
    /// Prints the human-readable summary to stdout.
    pub fn print_text(&self) {
        let m = &self.model;
        println!(
            "model      {} ({} parameters{})",
            m.origin,
            m.parameters,
            if m.untrained { ", UNTRAINED" } else { "" }
        );
        let c = &self.cpu;
        println!(
            "cpu        {} ({} logical, avx512f {}, avx2 {})",
            c.model, c.logical_cpus, c.avx512f, c.avx2
        );
        println!(
            "setup      {} samples, batch {}, {} threads, {} timed passes",
            self.samples, self.batch_size, self.threads, self.repeats
        );
        let passes: Vec<String> = self
            .per_pass_samples_per_sec
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect();
        println!(
            "throughput {:.1} samples/s median (passes: {})",
            self.samples_per_sec,
            passes.join(", ")
        );
        println!("cpu time   {:.3} ms/sample", self.cpu_ms_per_sample);
        println!("peak rss   {:.1} MiB", self.peak_rss_mb);
        println!(
            "latency    first prediction {:.0} ms after start (model load {:.0} ms)",
            self.first_prediction_ms, self.model_load_ms
        );
        println!(
            "flops      {:.3} GFLOP/sample: {:.1} GFLOP/s, {:.1} GFLOP per CPU-second{}",
            self.flops_per_sample / 1e9,
            self.gflops,
            self.gflops_per_cpu_s,
            self.sgemm_gflops.map_or(String::new(), |s| format!(
                " ({:.0}% of this core's sgemm on 1088x192x768: {s:.1} GFLOP per CPU-second)",
                100.0 * self.gflops_per_cpu_s / s
            ))
        );
        if self.variants.len() > 1 || !self.engines.is_empty() {
            println!(
                "\n{:<22} {:>10} {:>8} {:>9} {:>8} {:>12}",
                "engine", "samples/s", "ms CPU", "GFLOP/s", "ratio", "max|dz|fp32"
            );
            let first = self.samples_per_sec;
            for v in &self.variants {
                println!(
                    "{:<22} {:>10.1} {:>8.3} {:>10.1} {:>9.1} {:>8.2} {:>12.2e}",
                    format!("cai {} {}", v.precision, v.isa),
                    v.samples_per_sec,
                    v.cpu_ms_per_sample,
                    1000.0 / v.cpu_ms_per_sample,
                    v.gflops,
                    v.samples_per_sec / first,
                    v.max_abs_dz_vs_fp32
                );
            }
            for e in &self.engines {
                println!(
                    "{:<22} {:>10.1} {:>8.3} {:>10.1} {:>9.1} {:>8.2} {:>12}",
                    e.engine,
                    e.samples_per_sec,
                    e.cpu_ms_per_sample,
                    1000.0 / e.cpu_ms_per_sample,
                    e.samples_per_sec * self.flops_per_sample / 1e9,
                    e.samples_per_sec / first,
                    ""
                );
            }
            println!(
                "(ratio: samples/s over the first cai row; per CPU-s: samples per CPU-second, \
                 what one core does whatever else shares the machine; all rows interleaved)"
            );
        }
        if let Some(p) = &self.pytorch {
            println!(
                "pytorch    {:.1} samples/s median, peak rss {:.1} MiB, {:.3} ms/sample, first prediction {:.0} ms ({})",
                p.samples_per_sec, p.peak_rss_mb, p.cpu_ms_per_sample, p.first_prediction_ms, p.script
            );
            println!(
                "ratio      ours/pytorch: throughput x{:.2}, peak rss x{:.2}",
                p.ratio_samples_per_sec, p.ratio_peak_rss
            );
        }
    }
}
