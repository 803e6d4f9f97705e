//! Writing one object as a stream, for outputs whose size grows with the work (the Map's
//! rank items, a 10,000-rank `combined_data.json`), so the writer's memory stays bounded.
//! The object appears whole or not at all: locally it is staged and renamed into place; on
//! S3 it is one PUT or a multipart upload, completed only by [`ObjectWriter::finish`].

use bytes::Bytes;
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use crate::StoreError;

/// Bytes handed to the backend at a time, and the part size of a multipart upload.
pub(crate) const CHUNK_BYTES: usize = 8 << 20;

/// An object being written. Dropping it without [`ObjectWriter::finish`] leaves no object.
pub struct ObjectWriter {
    pub(crate) inner: Option<BufWriter>,
    pub(crate) bucket: String,
    pub(crate) key: String,
}

impl std::fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ObjectWriter {
    /// Appends `bytes`.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        let w = self.inner.as_mut().expect("writer used after finish");
        match w.put(bytes).await {
            Ok(()) => Ok(()),
            Err(e) => Err(StoreError::backend("write", &self.bucket, &self.key, e)),
        }
    }

    /// Completes the object: only now does it exist.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        let mut w = self.inner.take().expect("writer used after finish");
        match w.shutdown().await {
            Ok(()) => Ok(()),
            Err(e) => Err(StoreError::backend(
                "write",
                &self.bucket,
                &self.key,
                object_store::Error::Generic {
                    store: "writer",
                    source: Box::new(e),
                },
            )),
        }
    }

    /// Gives up: nothing is left behind (a multipart upload is aborted).
    pub async fn abort(mut self) {
        if let Some(mut w) = self.inner.take() {
            let _ = w.abort().await;
        }
    }
}
