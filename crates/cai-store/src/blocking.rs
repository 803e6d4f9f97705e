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

use crate::{Bucket, Entry, ObjectWriter, RequestLog, Store, StoreConfig, StoreError};

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
    log: Option<Arc<RequestLog>>,
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
            log: None,
        })
    }

    /// The same store (same runtime and clients) with every request through it, and its
    /// buckets, timed into `log`.
    pub fn recorded(&self, log: Arc<RequestLog>) -> BlockingStore {
        BlockingStore {
            log: Some(log),
            ..self.clone()
        }
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
            log: self.log.clone(),
        })
    }
}

/// A [`Bucket`] with blocking methods; same validation and semantics as the async ones.
/// Do not call it from inside an async context (it returns an error there).
#[derive(Debug, Clone)]
pub struct BlockingBucket {
    bucket: Bucket,
    rt: Arc<Runtime>,
    log: Option<Arc<RequestLog>>,
}

impl BlockingBucket {
    /// Runs one request to completion, timed into the log when there is one.
    fn request<T>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match &self.log {
            Some(log) => log.time(|| self.rt.block_on(fut))?,
            None => self.rt.block_on(fut)?,
        }
    }

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
        self.request(self.bucket.get(key))
    }

    /// Blocking [`Bucket::get_capped`].
    pub fn get_capped(&self, key: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        self.request(self.bucket.get_capped(key, max_bytes))
    }

    /// Blocking [`Bucket::put`].
    pub fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<(), StoreError> {
        self.request(self.bucket.put(key, bytes))
    }

    /// Blocking [`Bucket::put_if_absent`].
    pub fn put_if_absent(&self, key: &str, bytes: impl Into<Bytes>) -> Result<bool, StoreError> {
        self.request(self.bucket.put_if_absent(key, bytes))
    }

    /// Blocking [`Bucket::get_versioned`].
    pub fn get_versioned(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<(Bytes, Option<String>), StoreError> {
        self.request(self.bucket.get_versioned(key, max_bytes))
    }

    /// Blocking [`Bucket::put_if_unchanged`].
    pub fn put_if_unchanged(
        &self,
        key: &str,
        bytes: impl Into<Bytes>,
        e_tag: &str,
    ) -> Result<bool, StoreError> {
        self.request(self.bucket.put_if_unchanged(key, bytes, e_tag))
    }

    /// Blocking [`Bucket::delete_if_unchanged`].
    pub fn delete_if_unchanged(&self, key: &str, e_tag: &str) -> Result<bool, StoreError> {
        self.request(self.bucket.delete_if_unchanged(key, e_tag))
    }

    /// A streaming writer for `key` (see [`ObjectWriter`]): buffers up to 8 MiB, then hands
    /// the bytes to the backend; [`BlockingWriter::finish`] makes the object appear.
    pub fn writer(&self, key: &str) -> Result<BlockingWriter, StoreError> {
        Ok(BlockingWriter {
            inner: Some(self.bucket.writer(key)?),
            buf: Vec::with_capacity(crate::writer::CHUNK_BYTES),
            bucket: self.clone(),
        })
    }

    /// Blocking [`Bucket::head`].
    pub fn head(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.request(self.bucket.head(key))
    }

    /// Blocking [`Bucket::exists`].
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.request(self.bucket.exists(key))
    }

    /// Blocking [`Bucket::list`].
    pub fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        self.request(self.bucket.list(prefix))
    }

    /// Same as [`Bucket::local_path`] (already synchronous).
    pub fn local_path(&self, key: &str) -> Result<Option<PathBuf>, StoreError> {
        self.bucket.local_path(key)
    }

    /// Blocking [`Bucket::download_to_file`].
    pub fn download_to_file(&self, key: &str, dest: &Path) -> Result<u64, StoreError> {
        self.request(self.bucket.download_to_file(key, dest))
    }

    /// Blocking [`Bucket::delete`].
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.request(self.bucket.delete(key))
    }
}

/// A blocking [`ObjectWriter`] that is also a [`std::io::Write`], so serializers can write
/// into it directly. Dropping it unfinished leaves no object behind.
pub struct BlockingWriter {
    inner: Option<ObjectWriter>,
    buf: Vec<u8>,
    bucket: BlockingBucket,
}

impl std::fmt::Debug for BlockingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingWriter")
            .field("object", &self.inner)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl BlockingWriter {
    fn flush_chunk(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(crate::writer::CHUNK_BYTES),
        ));
        let w = self.inner.as_mut().expect("writer used after finish");
        self.bucket.request(w.write(chunk))
    }

    /// Writes what is buffered and completes the object.
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.flush_chunk()?;
        let w = self.inner.take().expect("writer used after finish");
        self.bucket.request(w.finish())
    }
}

impl std::io::Write for BlockingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= crate::writer::CHUNK_BYTES {
            self.flush_chunk().map_err(std::io::Error::other)?;
        }
        Ok(data.len())
    }

    /// Buffered bytes are handed over by [`BlockingWriter::finish`]; a flush does not
    /// complete the object.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BlockingWriter {
    fn drop(&mut self) {
        if let Some(w) = self.inner.take() {
            let _ = self.bucket.rt.block_on(w.abort());
        }
    }
}
