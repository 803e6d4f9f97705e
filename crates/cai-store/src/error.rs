//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in a store operation. Variants name the bucket and
/// key involved so that a workflow failure can be traced to the payload field that
/// caused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A key or prefix from a payload (or a caller) broke the key rules.
    #[error("invalid {field} {key:?}: {reason}; expected {expected}")]
    InvalidKey {
        /// Payload field (or argument) the key came from, e.g. `data_prefix`.
        field: String,
        /// The offending key, verbatim.
        key: String,
        /// What is wrong with it.
        reason: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A bucket name broke the S3 bucket naming rules.
    #[error("invalid bucket name {bucket:?}: {reason}; expected 3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit")]
    InvalidBucket {
        /// The offending bucket name.
        bucket: String,
        /// Which rule it broke.
        reason: String,
    },
    /// The `--store` / `CAI_STORE` string could not be understood.
    #[error("invalid store {input:?}: {reason}")]
    InvalidConfig {
        /// The string that was parsed.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// The object does not exist.
    #[error("object {key:?} not found in bucket {bucket:?}")]
    NotFound {
        /// Bucket name.
        bucket: String,
        /// Key inside the bucket.
        key: String,
        /// Backend error, when one reported it.
        #[source]
        source: Option<Box<object_store::Error>>,
    },
    /// The object is larger than the caller allowed to be read into memory.
    #[error("object {key:?} in bucket {bucket:?} is {size} bytes, over the cap of {cap} bytes")]
    TooLarge {
        /// Bucket name.
        bucket: String,
        /// Key inside the bucket.
        key: String,
        /// Size of the object (or bytes seen so far when streaming), in bytes.
        size: u64,
        /// The cap that was exceeded, in bytes.
        cap: u64,
    },
    /// A local key resolves (through a symlink) to a place outside the store root.
    #[error("key {key:?} in bucket {bucket:?} resolves to {resolved:?}, outside the store root {root:?}")]
    OutsideRoot {
        /// Bucket name.
        bucket: String,
        /// Key inside the bucket.
        key: String,
        /// Where the key resolved to.
        resolved: PathBuf,
        /// The store root it had to stay in.
        root: PathBuf,
    },
    /// The storage backend (local filesystem or S3) failed.
    #[error("{op} of {key:?} in bucket {bucket:?} failed: {source}")]
    Backend {
        /// The operation, e.g. `put`.
        op: &'static str,
        /// Bucket name.
        bucket: String,
        /// Key (or prefix) inside the bucket.
        key: String,
        /// The underlying `object_store` error (boxed to keep results small).
        #[source]
        source: Box<object_store::Error>,
    },
    /// A local I/O operation failed (root setup, symlink checks, download target).
    #[error("{op} of {path:?} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The local path involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The S3 client could not be configured.
    #[error("cannot configure S3 for bucket {bucket:?}: {source}")]
    S3Config {
        /// The S3 bucket being configured.
        bucket: String,
        /// The underlying `object_store` error (boxed to keep results small).
        #[source]
        source: Box<object_store::Error>,
    },
    /// The blocking facade was used from inside an async runtime, or its runtime failed.
    #[error("blocking store: {0}")]
    Blocking(String),
}

impl StoreError {
    /// True when the object (or key) simply does not exist, so callers can treat
    /// "absent" differently from "broken".
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// Wraps an `object_store` error for `op` on `bucket`/`key`, mapping its
    /// not-found case to [`StoreError::NotFound`].
    pub(crate) fn backend(
        op: &'static str,
        bucket: &str,
        key: &str,
        source: object_store::Error,
    ) -> Self {
        match source {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                bucket: bucket.to_string(),
                key: key.to_string(),
                source: Some(Box::new(source)),
            },
            source => StoreError::Backend {
                op,
                bucket: bucket.to_string(),
                key: key.to_string(),
                source: Box::new(source),
            },
        }
    }
}
