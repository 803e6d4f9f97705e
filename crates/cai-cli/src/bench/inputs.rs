//! Bench inputs held in memory, so timed passes measure the model and not the disk.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cai_data::{Batch, Format};
use cai_model::AstroMaeConfig;

use crate::common;

/// Seed of `--synthetic` data, fixed so runs are comparable.
const SYNTHETIC_SEED: u64 = 2025;

/// Every sample of the inputs, concatenated.
pub struct Inputs {
    /// `n x C x H x W` pixels.
    pub images: Vec<f32>,
    /// `n x M` magnitudes.
    pub magnitudes: Vec<f32>,
    /// Samples.
    pub n: usize,
    /// Files the data came from (the temporary partition for `--synthetic`), for PyTorch.
    pub files: Vec<PathBuf>,
    /// Keeps the synthetic partition alive until the comparison has run.
    _tmp: Option<tempfile::TempDir>,
}

impl Inputs {
    /// Reads `files` completely.
    pub fn from_files(files: &[PathBuf]) -> Result<Self> {
        let parts = common::open_inputs(files)?;
        let mut inputs = Inputs {
            images: Vec::new(),
            magnitudes: Vec::new(),
            n: 0,
            files: files.to_vec(),
            _tmp: None,
        };
        let mut batch = Batch::default();
        for (path, part) in files.iter().zip(&parts) {
            part.read_batch(0..part.len(), &mut batch)
                .with_context(|| format!("--input {}", path.display()))?;
            inputs.images.extend_from_slice(&batch.images);
            inputs.magnitudes.extend_from_slice(&batch.magnitudes);
            inputs.n += batch.len;
        }
        Ok(inputs)
    }

    /// Writes `n` synthetic samples to a temporary partition and reads it back, so the
    /// PyTorch comparison can read exactly the same data.
    pub fn synthetic(n: usize) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory for --synthetic")?;
        let path = dir.path().join("synthetic.safetensors");
        cai_data::synth_partition(&path, 0, n, SYNTHETIC_SEED, Format::Safetensors)
            .with_context(|| format!("writing synthetic partition {}", path.display()))?;
        let mut inputs = Self::from_files(std::slice::from_ref(&path))?;
        inputs._tmp = Some(dir);
        Ok(inputs)
    }

    /// Checks every input file against the model's expected sample shape.
    pub fn check(&self, cfg: &AstroMaeConfig) -> Result<()> {
        for (path, part) in self.files.iter().zip(common::open_inputs(&self.files)?) {
            common::check_compatible(cfg, path, &part)?;
        }
        Ok(())
    }

    /// Values per image and per magnitude row.
    pub fn widths(&self) -> (usize, usize) {
        if self.n == 0 {
            return (0, 0);
        }
        (self.images.len() / self.n, self.magnitudes.len() / self.n)
    }
}
