//! `cai data synth|split|convert`: thin wrappers over `cai_data` with progress bars and a
//! report of what was written, so data preparation needs no Python.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use cai_data::{Format, Partition};

use crate::common;

/// The `cai data` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Write reproducible synthetic partitions (1.pt, 2.pt, ... or .safetensors).
    Synth(SynthArgs),
    /// Split one partition into numbered partitions of a given size, in its own format.
    Split(SplitArgs),
    /// Convert a partition between .pt and .safetensors (output format from its extension).
    Convert(ConvertArgs),
}

/// Partition file format for `cai data synth`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    /// torch.save TensorDataset, as the original uses.
    Pt,
    /// safetensors with images, magnitudes, redshifts.
    Safetensors,
}

/// Flags of `cai data synth`.
#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Total size to generate, in MiB.
    #[arg(long, value_name = "N")]
    pub total_mb: f64,
    /// Size of each partition, in MiB.
    #[arg(long, value_name = "M")]
    pub partition_mb: f64,
    /// Random seed; partition k depends only on (seed, k).
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// File format of the partitions.
    #[arg(long, value_enum, default_value = "pt")]
    pub format: FormatArg,
}

/// Flags of `cai data split`.
#[derive(clap::Args, Debug)]
pub struct SplitArgs {
    /// Partition to split.
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Size of each output partition, in MiB.
    #[arg(long, value_name = "M")]
    pub partition_mb: f64,
}

/// Flags of `cai data convert`.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Partition to read (either format, detected from content).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// File to write; `.pt`/`.pth` or `.safetensors` picks the format.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
}

/// Runs a `cai data` subcommand.
pub fn run(cmd: DataCommand, quiet: bool) -> Result<()> {
    let pb = common::progress_bar(0, quiet, "samples");
    let high = AtomicU64::new(0);
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(high.fetch_max(done, Ordering::Relaxed).max(done));
    };
    let written = match cmd {
        DataCommand::Synth(a) => {
            let format = match a.format {
                FormatArg::Pt => Format::Torch,
                FormatArg::Safetensors => Format::Safetensors,
            };
            cai_data::synth(
                &a.out,
                a.total_mb,
                a.partition_mb,
                a.seed,
                format,
                &progress,
            )
            .with_context(|| format!("synthesising into --out {}", a.out.display()))?
        }
        DataCommand::Split(a) => cai_data::split(&a.input, &a.out, a.partition_mb, &progress)
            .with_context(|| {
                format!(
                    "splitting {} into --out {}",
                    a.input.display(),
                    a.out.display()
                )
            })?,
        DataCommand::Convert(a) => {
            cai_data::convert(&a.input, &a.output, &progress).with_context(|| {
                format!("converting {} to {}", a.input.display(), a.output.display())
            })?;
            vec![a.output]
        }
    };
    pb.finish_and_clear();
    report(&written)
}

/// Prints files, samples and bytes written, reading back each file's header to count rows.
fn report(paths: &[PathBuf]) -> Result<()> {
    let (mut samples, mut bytes) = (0u64, 0u64);
    for p in paths {
        samples += Partition::open(p)
            .with_context(|| format!("re-reading {}", p.display()))?
            .len() as u64;
        bytes += std::fs::metadata(p)
            .with_context(|| format!("{}", p.display()))?
            .len();
    }
    let where_ = match paths {
        [one] => one.display().to_string(),
        _ => paths
            .first()
            .and_then(|p| p.parent())
            .map_or_else(String::new, |d: &Path| d.display().to_string()),
    };
    println!(
        "wrote {} file(s), {samples} samples, {bytes} bytes ({:.1} MiB) to {where_}",
        paths.len(),
        bytes as f64 / (1u64 << 20) as f64
    );
    Ok(())
}
