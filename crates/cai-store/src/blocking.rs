//! Synchronous facade for the workflow handlers, which are not async code.
//!
//! [`BlockingStore`] owns a small multi-threaded tokio runtime (shared by every bucket
//! and clone) and runs each call to completion on it. It works from any thread that is
//! **not** inside an async runtime; called from inside one (e.g. in an `async fn` or a
//! tokio task) it returns [`StoreError::Blocking`] instead of blocking or panicking — use
//! the async [`Store`] / [`Bucket`] there.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::{Bucket, Entry, Store, StoreConfig, StoreError};

/// Owns the runtime; shuts it down without waiting so that dropping the last handle
/// can never panic or hang, whichever thread does it.
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Runtime {
    fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, StoreError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(StoreError::Blocking(
                "called from inside an async runtime; use the async Store/Bucket there".into(),
            ));
        }
        let rt = self.0.as_ref().expect("runtime present until drop");
        Ok(rt.block_on(fut))
    }
}

/// A [`Store`] with blocking methods, for synchronous code. Cheap to clone; clones share
/// one runtime. Do not call it from inside an async context (it returns an error there).
#[derive(Debug, Clone)]
pub struct BlockingStore {
    store: Store,
    rt: Arc<Runtime>,
}

impl BlockingStore {
    /// Opens `config` (see [`Store::open`]) with a private runtime.
    pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
        Self::new(Store::open(config)?)
    }

    /// Wraps an already opened store, starting a private runtime for it.
    pub fn new(store: Store) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cai-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Blocking(format!("cannot start runtime: {e}")))?;
        Ok(BlockingStore {
            store,
            rt: Arc::new(Runtime(Some(rt))),
        })
    }

    /// The async store underneath (for code that has its own runtime).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A blocking handle on bucket `name` (validated as in [`Store::bucket`]).
    pub fn bucket(&self, name: &str) -> Result<BlockingBucket, StoreError> {
        Ok(BlockingBucket {
            bucket: self.store.bucket(name)?,
            rt: self.rt.clone(),
        })
    }
}

/// A [`Bucket`] with blocking methods; same validation and semantics as the async ones.
/// Do not call it from inside an async context (it returns an error there).
#[derive(Debug, Clone)]
pub struct BlockingBucket {
    bucket: Bucket,
    rt: Arc<Runtime>,
}

impl BlockingBucket {
    /// The async bucket underneath.
    pub fn inner(&self) -> &Bucket {
        &self.bucket
    }

    /// The bucket name, for messages.
    pub fn name(&self) -> &str {
        self.bucket.name()
    }

    /// Blocking [`Bucket::get`].
    pub fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.rt.block_on(self.bucket.get(key))?
    }

    /// Blocking [`Bucket::get_capped`].
    pub fn get_capped(&self, key: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        self.rt.block_on(self.bucket.get_capped(key, max_bytes))?
    }

    /// Blocking [`Bucket::put`].
    pub fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<(), StoreError> {
        self.rt.block_on(self.bucket.put(key, bytes))?
    }

    /// Blocking [`Bucket::head`].
    pub fn head(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.rt.block_on(self.bucket.head(key))?
    }

    /// Blocking [`Bucket::exists`].
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.rt.block_on(self.bucket.exists(key))?
    }

    /// Blocking [`Bucket::list`].
    pub fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        self.rt.block_on(self.bucket.list(prefix))?
    }

    /// Same as [`Bucket::local_path`] (already synchronous).
    pub fn local_path(&self, key: &str) -> Result<Option<PathBuf>, StoreError> {
        self.bucket.local_path(key)
    }

    /// Blocking [`Bucket::download_to_file`].
    pub fn download_to_file(&self, key: &str, dest: &Path) -> Result<u64, StoreError> {
        self.rt.block_on(self.bucket.download_to_file(key, dest))?
    }

    /// Blocking [`Bucket::delete`].
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.rt.block_on(self.bucket.delete(key))?
    }
}
