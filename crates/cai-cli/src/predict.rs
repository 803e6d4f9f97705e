//! `cai predict`: streams partitions batch by batch through the model and writes one row per
//! sample, so predictions (which the original discarded) are kept and checked.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use cai_data::{Batch, PredictionFormat, PredictionMeta, PredictionWriter, META_PRECISION};
use cai_model::{metrics, Precision, Predictor, WeightSource};

use crate::common;

/// Flags of `cai predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// Weights: a .safetensors or PyTorch .pt file, or `seed:N` for reproducible random
    /// (untrained) weights of the published architecture.
    #[arg(long, value_name = "FILE|seed:N")]
    pub model: WeightSource,
    /// Partition files (.pt TensorDataset or .safetensors); read a batch at a time.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub input: Vec<PathBuf>,
    /// Prediction file; `.csv` or `.parquet` (columns file,row,z_pred[,z_true]). Written to a
    /// temporary file and renamed at the end, so it never exists half-written.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Samples per forward pass.
    #[arg(long, default_value = "64", value_parser = common::positive)]
    pub batch_size: usize,
    /// Worker threads (default: all available cores).
    #[arg(long, value_parser = common::positive)]
    pub threads: Option<usize>,
    /// Precision of the matrix products: fp32 (matches PyTorch), bf16 or int8 (faster,
    /// max |dz| against fp32 around 1e-3; see the README). Recorded in Parquet metadata.
    #[arg(long, default_value = "fp32", value_name = "fp32|bf16|int8")]
    pub precision: Precision,
}

/// Runs `cai predict`.
pub fn run(args: PredictArgs, quiet: bool) -> Result<()> {
    let started = Instant::now();
    PredictionFormat::from_path(&args.output).context("--output")?;
    let parts = common::open_inputs(&args.input)?;
    let loaded = common::load_model(&args.model)?;
    if loaded.untrained {
        common::untrained_banner(&loaded.origin);
    }
    for (path, part) in args.input.iter().zip(&parts) {
        common::check_compatible(loaded.model.config(), path, part)?;
    }
    let with_truth = parts.iter().any(|p| p.has_redshifts());
    let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let meta = PredictionMeta {
        model: loaded.origin.clone(),
        untrained: loaded.untrained,
    };
    let (origin, untrained) = (loaded.origin.clone(), loaded.untrained);
    let precision = args.precision.to_string();
    let predictor =
        Predictor::with_precision(loaded.model, common::threads(args.threads), args.precision);
    let extra = [(META_PRECISION, precision.as_str())];
    let mut writer = PredictionWriter::create_with(&args.output, &meta, with_truth, &extra)
        .with_context(|| format!("--output {}", args.output.display()))?;

    let pb = common::progress_bar(total, quiet, "samples");
    let (mut labelled_pred, mut labelled_true) = (Vec::new(), Vec::new());
    let mut batch = Batch::default();
    for (path, part) in args.input.iter().zip(&parts) {
        let name = path.display().to_string();
        for start in (0..part.len()).step_by(args.batch_size) {
            let end = (start + args.batch_size).min(part.len());
            part.read_batch(start..end, &mut batch)
                .with_context(|| format!("reading rows {start}..{end} of {name}"))?;
            let z = predictor
                .predict(&batch.images, &batch.magnitudes, batch.len)
                .with_context(|| format!("predicting rows {start}..{end} of {name}"))?;
            writer
                .write_batch(&name, start as u64, &z, batch.redshifts.as_deref())
                .with_context(|| format!("--output {}", args.output.display()))?;
            if let Some(t) = &batch.redshifts {
                labelled_pred.extend_from_slice(&z);
                labelled_true.extend_from_slice(t);
            }
            pb.inc(batch.len as u64);
        }
    }
    pb.finish_and_clear();
    let rows = writer
        .finish()
        .with_context(|| format!("--output {}", args.output.display()))?;

    if let Some(acc) = metrics::accuracy(&labelled_pred, &labelled_true) {
        println!(
            "accuracy over {} labelled samples: MAE {:.5}  MSE {:.6}  Bias {:.5}  NMAD {:.5}  R^2 {:.4}  outliers(|dz|>0.15) {:.2}%",
            acc.count,
            acc.mae,
            acc.mse,
            acc.bias,
            acc.nmad,
            acc.r2,
            100.0 * acc.outlier_fraction
        );
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "predicted {rows} samples from {} files in {secs:.2} s ({:.1} samples/s, {precision}, {}) -> {}",
        parts.len(),
        rows as f64 / secs.max(1e-9),
        predictor.isa(),
        args.output.display()
    );
    if untrained {
        common::untrained_banner(&origin);
    }
    Ok(())
}
