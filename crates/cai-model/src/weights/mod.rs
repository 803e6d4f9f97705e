//! Where weights come from: safetensors, PyTorch `.pt` (state dict or the original's
//! pickled DataParallel module), or a seed; and the check that they fit the architecture.

mod raw;
mod safetensors_file;
mod seeded;
mod spec;
mod torch_file;

pub use raw::{RawTensor, RawWeights};
pub use seeded::{seeded_weights, sincos_pos_embed};
pub use spec::{
    expected_tensors, parameter_count, validate, Mismatch, Role, TensorSpec, Validation,
};

use std::fmt;
use std::path::{Path, PathBuf};

/// A `--model` argument: a weight file, or `seed:N` for reproducible random weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightSource {
    /// A file; its format is detected from its content.
    File(PathBuf),
    /// Seeded random weights of the published architecture.
    Seed(u64),
}

impl std::str::FromStr for WeightSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("seed:") {
            Some(n) => n
                .parse()
                .map(WeightSource::Seed)
                .map_err(|_| format!("model {s:?}: expected seed:N with N a non-negative integer")),
            None if s.is_empty() => {
                Err("model: expected a file path or seed:N, got an empty string".into())
            }
            None => Ok(WeightSource::File(PathBuf::from(s))),
        }
    }
}

impl fmt::Display for WeightSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightSource::File(p) => write!(f, "{}", p.display()),
            WeightSource::Seed(n) => write!(f, "seed:{n}"),
        }
    }
}

/// Why weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The weight file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a weight file we can read.
    #[error("{path}: {msg}")]
    Format {
        /// The weight file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Tensors are missing or mis-shaped; every one is listed.
    #[error("{origin}: {} tensor(s) missing or mis-shaped for the AstroMAE architecture:\n  {}", .mismatches.len(), .mismatches.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("\n  "))]
    Mismatch {
        /// The weight source.
        origin: String,
        /// Every problem found.
        mismatches: Vec<Mismatch>,
    },
    /// The sizes read from the file are inconsistent (e.g. heads do not divide the width).
    #[error("{origin}: {msg}")]
    Config {
        /// The weight source.
        origin: String,
        /// What is inconsistent.
        msg: String,
    },
}

impl WeightError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        WeightError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// What is wrong, without the file's name: for callers that name the weights their own
    /// way (the workflow says `model BUCKET/KEY`, not the scratch copy it read), so that a
    /// message names each path once.
    pub fn detail(&self) -> String {
        match self {
            WeightError::Io { source, .. } => source.to_string(),
            WeightError::Format { msg, .. } | WeightError::Config { msg, .. } => msg.clone(),
            WeightError::Mismatch { mismatches, .. } => format!(
                "{} tensor(s) missing or mis-shaped for the AstroMAE architecture:\n  {}",
                mismatches.len(),
                mismatches
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        }
    }
}

/// How much of a weight file a loader reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Every tensor's values, converted to f32.
    Values,
    /// Names, dtypes and shapes only, with every structural check of [`Depth::Values`] (the
    /// zip directory, the pickle, each storage entry against its declared size, the
    /// safetensors header against the file): the tensors' `data` stay empty.
    Structure,
}

/// Reads raw tensors from a source, detecting the file format from its first bytes.
pub fn load_raw(source: &WeightSource) -> Result<RawWeights, WeightError> {
    read_raw(source, Depth::Values)
}

/// What [`inspect`] learned about a checkpoint that will load.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// Where the weights came from.
    pub origin: String,
    /// The architecture the loader will build from them.
    pub config: crate::AstroMaeConfig,
    /// Weight tensors in the file (integer counters such as `num_batches_tracked` excluded).
    pub tensors: usize,
    /// Trainable parameters of that architecture.
    pub parameters: usize,
    /// Tensors the architecture does not know about (the loader warns and ignores them).
    pub unexpected: Vec<String>,
}

/// Opens a checkpoint only far enough to know that [`crate::load_model`] will accept it: the
/// format, the zip directory and the pickle (or the safetensors header), every storage against
/// its declared size, and every tensor's name, dtype and shape against the architecture the
/// loader would build (the same [`fit`] check the loader runs). No tensor value is read and no
/// model is built, so it costs milliseconds where a load costs a second: what a workflow runs
/// once before fanning out to many invocations that would each fail on a bad checkpoint.
pub fn inspect(source: &WeightSource) -> Result<Inspection, WeightError> {
    let raw = read_raw(source, Depth::Structure)?;
    let (config, check) = fit(&raw)?;
    Ok(Inspection {
        origin: raw.origin.clone(),
        tensors: raw.tensors.len(),
        parameters: parameter_count(&config),
        unexpected: check.unexpected,
        config,
    })
}

/// The architecture a checkpoint describes and the check of every tensor against it: an
/// error when the sizes contradict each other or any tensor the forward pass needs is missing
/// or mis-shaped (all listed at once). Shared by the loader and [`inspect`], which therefore
/// accept exactly the same files.
pub fn fit(raw: &RawWeights) -> Result<(crate::AstroMaeConfig, Validation), WeightError> {
    let cfg = crate::AstroMaeConfig::infer(raw);
    if cfg.num_heads == 0 || !cfg.embed_dim.is_multiple_of(cfg.num_heads) {
        return Err(WeightError::Config {
            origin: raw.origin.clone(),
            msg: format!(
                "{} attention heads do not divide the token width {}",
                cfg.num_heads, cfg.embed_dim
            ),
        });
    }
    let check = validate(raw, &cfg);
    if !check.mismatches.is_empty() {
        return Err(WeightError::Mismatch {
            origin: raw.origin.clone(),
            mismatches: check.mismatches,
        });
    }
    Ok((cfg, check))
}

fn read_raw(source: &WeightSource, depth: Depth) -> Result<RawWeights, WeightError> {
    let mut raw = match source {
        WeightSource::Seed(seed) => seeded_weights(&crate::AstroMaeConfig::published(), *seed),
        WeightSource::File(path) => {
            let mut head = [0u8; 9];
            let n = {
                use std::io::Read;
                let mut f = std::fs::File::open(path).map_err(|e| WeightError::io(path, e))?;
                f.read(&mut head).map_err(|e| WeightError::io(path, e))?
            };
            // safetensors: an 8-byte little-endian header length, then the JSON header.
            if n == 9 && head[8] == b'{' {
                safetensors_file::load(path, depth)?
            } else if n >= 4 && &head[..4] == b"PK\x03\x04" || n >= 1 && head[0] == 0x80 {
                // A zip archive (torch.save since 1.6) or a bare pickle (legacy torch.save).
                torch_file::load(path, depth)?
            } else {
                return Err(WeightError::Format {
                    path: path.clone(),
                    msg: "not a weight file: expected safetensors, or a PyTorch .pt (zip archive)"
                        .into(),
                });
            }
        }
    };
    raw.strip_data_parallel_prefix();
    Ok(raw)
}
