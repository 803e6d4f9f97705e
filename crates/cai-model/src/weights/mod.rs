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
}

/// Reads raw tensors from a source, detecting the file format from its first bytes.
pub fn load_raw(source: &WeightSource) -> Result<RawWeights, WeightError> {
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
                safetensors_file::load(path)?
            } else if n >= 4 && &head[..4] == b"PK\x03\x04" || n >= 1 && head[0] == 0x80 {
                // A zip archive (torch.save since 1.6) or a bare pickle (legacy torch.save).
                torch_file::load(path)?
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
