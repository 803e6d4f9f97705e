//! The few store operations the handlers need, with the error kinds they map to. All
//! writes go through the store's atomic put, so no reader ever sees half a file.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use cai_store::BlockingStore;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::HandlerError;

/// Largest JSON document (plan, result, summary) a handler will read: bounds memory against a
/// hostile or mistaken object.
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// Reads and parses a JSON object; `Ok(None)` when it does not exist.
pub fn read_json<T: DeserializeOwned>(
    store: &BlockingStore,
    bucket: &str,
    key: &str,
) -> Result<Option<T>, HandlerError> {
    let b = store.bucket(bucket).map_err(HandlerError::store)?;
    let bytes = match b.get_capped(key, MAX_JSON_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(HandlerError::store(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| HandlerError::input(format!("{bucket}/{key}: not the expected JSON: {e}")))
}

/// Serialises and writes a JSON object atomically (pretty, as the original's files are read
/// by people too).
pub fn write_json<T: Serialize>(
    store: &BlockingStore,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<(), HandlerError> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| HandlerError::new(crate::error::kind::INTERNAL, e.to_string()))?;
    put(store, bucket, key, Bytes::from(text))
}

/// Writes bytes atomically.
pub fn put(
    store: &BlockingStore,
    bucket: &str,
    key: &str,
    bytes: Bytes,
) -> Result<(), HandlerError> {
    store
        .bucket(bucket)
        .and_then(|b| b.put(key, bytes))
        .map_err(HandlerError::store)
}

/// True when the object exists.
pub fn exists(store: &BlockingStore, bucket: &str, key: &str) -> Result<bool, HandlerError> {
    store
        .bucket(bucket)
        .and_then(|b| b.head(key))
        .map(|m| m.is_some())
        .map_err(HandlerError::store)
}

/// Every key under a folder prefix, complete however many there are.
pub fn list_keys(
    store: &BlockingStore,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, HandlerError> {
    let b = store.bucket(bucket).map_err(HandlerError::store)?;
    Ok(b.list(prefix)
        .map_err(HandlerError::store)?
        .into_iter()
        .map(|e| e.key)
        .collect())
}

/// A store object as a local file: the file itself for a local store (read in place, no
/// copy), else a download into `scratch` that is deleted when dropped.
pub struct LocalCopy {
    path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

impl LocalCopy {
    /// Path to read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes `bucket/key` readable as a local file.
pub fn local_copy(
    store: &BlockingStore,
    bucket: &str,
    key: &str,
    scratch: &Path,
) -> Result<LocalCopy, cai_store::StoreError> {
    let b = store.bucket(bucket)?;
    if let Some(path) = b.local_path(key)? {
        return Ok(LocalCopy { path, _temp: None });
    }
    let temp = tempfile::Builder::new()
        .prefix("cai-fetch-")
        .tempfile_in(scratch)
        .map_err(|e| cai_store::StoreError::Io {
            op: "create scratch file in",
            path: scratch.to_path_buf(),
            source: e,
        })?
        .into_temp_path();
    b.download_to_file(key, &temp)?;
    Ok(LocalCopy {
        path: temp.to_path_buf(),
        _temp: Some(temp),
    })
}

/// Size and last-modified time (Unix ms) of an object; `None` when absent.
pub fn identity(
    store: &BlockingStore,
    bucket: &str,
    key: &str,
) -> Result<Option<(u64, u64)>, HandlerError> {
    let entry = store
        .bucket(bucket)
        .and_then(|b| b.head(key))
        .map_err(HandlerError::store)?;
    Ok(entry.map(|e| {
        let ms = e
            .last_modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        (e.size, ms)
    }))
}

/// Deletes an object if it exists.
pub fn delete(store: &BlockingStore, bucket: &str, key: &str) -> Result<(), HandlerError> {
    store
        .bucket(bucket)
        .and_then(|b| b.delete(key))
        .map_err(HandlerError::store)
}
