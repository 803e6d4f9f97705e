//! Errors of partition reading and writing.

use cai_torchfile::TorchError;

/// What went wrong with a partition; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The torch file could not be read.
    #[error("{file}: {source}")]
    Torch {
        /// Partition file.
        file: String,
        /// Underlying error.
        #[source]
        source: TorchError,
    },
    /// Reading or writing failed at the OS level.
    #[error("{file}: {source}")]
    Io {
        /// File concerned.
        file: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A tensor is missing or has the wrong rank, size or dtype.
    #[error("{file}: tensor `{tensor}`: expected {expected}, found {found}")]
    Layout {
        /// Partition file.
        file: String,
        /// Which tensor (images, magnitudes, redshifts).
        tensor: String,
        /// What was expected.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The file is in neither supported format, or its safetensors header is bad.
    #[error("{file}: {msg}")]
    Format {
        /// File concerned.
        file: String,
        /// What is wrong.
        msg: String,
    },
    /// A caller asked for something impossible (rows out of range, zero sizes...).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub(crate) fn torch(file: &str, source: TorchError) -> Self {
        DataError::Torch {
            file: file.to_owned(),
            source,
        }
    }

    pub(crate) fn io(file: impl std::fmt::Display, source: std::io::Error) -> Self {
        DataError::Io {
            file: file.to_string(),
            source,
        }
    }

    pub(crate) fn format(file: &str, msg: impl Into<String>) -> Self {
        DataError::Format {
            file: file.to_owned(),
            msg: msg.into(),
        }
    }

    pub(crate) fn layout(
        file: &str,
        tensor: &str,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        DataError::Layout {
            file: file.to_owned(),
            tensor: tensor.to_owned(),
            expected: expected.into(),
            found: found.into(),
        }
    }
}
