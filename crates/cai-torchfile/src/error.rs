//! The error type shared by every part of the crate.

use std::io;

/// Everything that can go wrong reading or writing a torch file; each variant says what
/// was malformed and where (file, archive entry, pickle byte offset).
#[derive(Debug, thiserror::Error)]
pub enum TorchError {
    /// An operating-system read or write failed.
    #[error("{context}: I/O error: {source}")]
    Io {
        /// File name or operation.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The pickle stream (`data.pkl`) is malformed or uses something not allowed.
    #[error("pickle byte {offset}: {msg}")]
    Pickle {
        /// Byte offset of the offending opcode inside the pickle.
        offset: usize,
        /// What is wrong.
        msg: String,
    },
    /// The zip archive or one of its entries is malformed.
    #[error("{file}: {msg}")]
    Format {
        /// File (and entry) name.
        file: String,
        /// What is wrong.
        msg: String,
    },
    /// A tensor description is inconsistent (shape, strides, storage size, row range).
    #[error("tensor: {0}")]
    Tensor(String),
    /// A valid file that uses a feature this crate does not support.
    #[error("{file}: unsupported: {msg}")]
    Unsupported {
        /// File name.
        file: String,
        /// What is unsupported and what to do instead.
        msg: String,
    },
}

impl TorchError {
    /// Wraps an I/O error with the file or operation it came from.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        TorchError::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds a [`TorchError::Format`].
    pub(crate) fn format(file: impl Into<String>, msg: impl Into<String>) -> Self {
        TorchError::Format {
            file: file.into(),
            msg: msg.into(),
        }
    }
}
