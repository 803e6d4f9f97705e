//! `Bucket`: validated async access to the objects of one bucket.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use crate::key::{is_staging_name, validate_key, validate_prefix};
use crate::local::resolve_inside;
use crate::writer::ObjectWriter;
use crate::StoreError;

/// Cap used by [`Bucket::get`]: the most bytes a plain `get` will hold in memory, so a
/// hostile or mistaken object cannot exhaust memory. Use [`Bucket::get_capped`] to
/// choose another cap, or [`Bucket::download_to_file`] / [`Bucket::local_path`] for
/// large partition files.
pub const DEFAULT_GET_CAP: u64 = 1 << 30;

/// Metadata of one object, as returned by [`Bucket::list`] and [`Bucket::head`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Key relative to the bucket (what you would pass to [`Bucket::get`]).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time reported by the backend.
    pub last_modified: SystemTime,
    /// The backend's entity tag, when it reports one (S3 always does).
    pub e_tag: Option<String>,
}

/// The local filesystem backend and its canonical root, kept for symlink checks.
#[derive(Debug, Clone)]
pub(crate) struct LocalRoot {
    pub(crate) fs: Arc<LocalFileSystem>,
    pub(crate) root: PathBuf,
}

/// One bucket of a [`crate::Store`]. Every method validates its key (see
/// [`validate_key`]) before touching the backend; on local stores it also refuses keys
/// that resolve through symlinks to anywhere outside the store root. Cheap to clone.
///
/// The local checks do a few blocking `canonicalize` syscalls inline.
#[derive(Debug, Clone)]
pub struct Bucket {
    name: String,
    client: Arc<dyn ObjectStore>,
    base: Path,
    local: Option<LocalRoot>,
}

impl Bucket {
    pub(crate) fn new(
        name: &str,
        client: Arc<dyn ObjectStore>,
        base: Path,
        local: Option<LocalRoot>,
    ) -> Self {
        Bucket {
            name: name.to_string(),
            client,
            base,
            local,
        }
    }

    /// The bucket name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Backend path of a (validated) key or prefix body; `body` may be empty.
    fn location(&self, body: &str) -> Result<Path, StoreError> {
        let full = match (self.base.as_ref().is_empty(), body.is_empty()) {
            (_, true) => self.base.as_ref().to_string(),
            (true, false) => body.to_string(),
            (false, false) => format!("{}/{}", self.base.as_ref(), body),
        };
        Path::parse(&full).map_err(|e| StoreError::InvalidKey {
            field: "key".into(),
            key: body.to_string(),
            reason: e.to_string(),
            expected: "a key the storage backend accepts",
        })
    }

    /// Validates `key` and returns its backend path, after the local containment check.
    fn checked(&self, key: &str) -> Result<Path, StoreError> {
        validate_key("key", key)?;
        let loc = self.location(key)?;
        self.resolve_local(key, &loc)?;
        Ok(loc)
    }

    /// On local stores: the filesystem path of `loc` and its resolution, refusing any
    /// that lands outside the root. `None` on S3.
    fn resolve_local(
        &self,
        key: &str,
        loc: &Path,
    ) -> Result<Option<(PathBuf, PathBuf)>, StoreError> {
        let Some(local) = &self.local else {
            return Ok(None);
        };
        let path = local
            .fs
            .path_to_filesystem(loc)
            .map_err(|e| StoreError::backend("resolve", &self.name, key, e))?;
        let resolved = resolve_inside(&local.root, &path, &self.name, key)?;
        Ok(Some((path, resolved)))
    }

    fn entry(&self, meta: ObjectMeta) -> Option<Entry> {
        let parts: Vec<String> = meta
            .location
            .prefix_match(&self.base)?
            .map(|p| p.as_ref().to_string())
            .collect();
        if parts.is_empty() || parts.iter().any(|p| is_staging_name(p)) {
            return None;
        }
        Some(Entry {
            key: parts.join("/"),
            size: meta.size,
            last_modified: meta.last_modified.into(),
            e_tag: meta.e_tag,
        })
    }

    /// Reads a whole object into memory, refusing objects over [`DEFAULT_GET_CAP`].
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.get_capped(key, DEFAULT_GET_CAP).await
    }

    /// Reads a whole object into memory, refusing (with [`StoreError::TooLarge`]) one
    /// larger than `max_bytes`, checked both against the reported size and while
    /// streaming, so a hostile object cannot exhaust memory.
    pub async fn get_capped(&self, key: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        Ok(self.get_versioned(key, max_bytes).await?.0)
    }

    /// [`Bucket::get_capped`] that also returns the entity tag of the version read (from the
    /// same response, so the bytes and the tag belong together): what
    /// [`Bucket::put_if_unchanged`] and [`Bucket::delete_if_unchanged`] compare against.
    pub async fn get_versioned(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<(Bytes, Option<String>), StoreError> {
        let loc = self.checked(key)?;
        let backend = |e| StoreError::backend("get", &self.name, key, e);
        let too_large = |size| StoreError::TooLarge {
            bucket: self.name.clone(),
            key: key.to_string(),
            size,
            cap: max_bytes,
        };
        let result = self.client.get(&loc).await.map_err(backend)?;
        let size = result.meta.size;
        if size > max_bytes {
            return Err(too_large(size));
        }
        let e_tag = result.meta.e_tag.clone();
        if let GetResultPayload::File(..) = &result.payload {
            // A local file handle reads exactly the range that was sized at open time.
            return Ok((result.bytes().await.map_err(backend)?, e_tag));
        }
        let mut stream = result.into_stream();
        let mut buf = BytesMut::with_capacity(size as usize);
        while let Some(chunk) = stream.try_next().await.map_err(backend)? {
            let seen = (buf.len() + chunk.len()) as u64;
            if seen > max_bytes {
                return Err(too_large(seen));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((buf.freeze(), e_tag))
    }

    /// Writes a whole object atomically: readers see the old object or the new one,
    /// never a mix. Locally the data is staged as `<key>#<n>` and renamed into place
    /// (staging names are refused as keys and hidden from listings); an S3 PUT is
    /// atomic by itself. Missing folders (including the bucket's) are created.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<(), StoreError> {
        let loc = self.checked(key)?;
        self.client
            .put(&loc, PutPayload::from(bytes.into()))
            .await
            .map_err(|e| StoreError::backend("put", &self.name, key, e))?;
        Ok(())
    }

    /// Creates the object only if no object exists at `key` (locally an exclusive create, on
    /// S3 a PUT with `If-None-Match: *`): `Ok(false)` when one already exists, so two writers
    /// racing for the same key cannot both win.
    pub async fn put_if_absent(
        &self,
        key: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<bool, StoreError> {
        let loc = self.checked(key)?;
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        match self
            .client
            .put_opts(&loc, PutPayload::from(bytes.into()), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(StoreError::backend("create", &self.name, key, e)),
        }
    }

    /// Replaces the object only if it is still the version whose entity tag is `e_tag` (as
    /// [`Bucket::get_versioned`] or [`Bucket::head`] returned it): `Ok(false)` when it changed
    /// or vanished since, so two writers that read the same version cannot both replace it.
    ///
    /// On S3 this is one PUT with `If-Match` (object_store's `PutMode::Update`, which S3
    /// evaluates atomically). A local folder has no such primitive, so the compare and the
    /// rename run under an exclusive `flock` of the key's folder, which every conditional
    /// write and delete of this crate takes: among cai processes sharing the folder the
    /// operation is atomic. (An exclusive create, [`Bucket::put_if_absent`], needs no lock: it
    /// cannot replace anything.)
    pub async fn put_if_unchanged(
        &self,
        key: &str,
        bytes: impl Into<Bytes>,
        e_tag: &str,
    ) -> Result<bool, StoreError> {
        let loc = self.checked(key)?;
        let payload = PutPayload::from(bytes.into());
        let backend = |e| StoreError::backend("replace", &self.name, key, e);
        if self.local.is_some() {
            let _lock = self.lock_folder_of(key, &loc).await?;
            if self.head(key).await?.and_then(|e| e.e_tag).as_deref() != Some(e_tag) {
                return Ok(false);
            }
            self.client.put(&loc, payload).await.map_err(backend)?;
            return Ok(true);
        }
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Update(object_store::UpdateVersion {
                e_tag: Some(e_tag.to_string()),
                version: None,
            }),
            ..Default::default()
        };
        match self.client.put_opts(&loc, payload, opts).await {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    /// Deletes the object only if it is still the version whose entity tag is `e_tag`:
    /// `Ok(false)` when it changed since (`Ok(true)` also when it is already gone).
    ///
    /// Locally atomic, under the same folder lock as [`Bucket::put_if_unchanged`]. S3 has a
    /// conditional DELETE, but object_store does not send it, so on S3 this is a HEAD and then
    /// a DELETE: a writer that replaces the object between the two loses its version. Callers
    /// use it only where that window is acceptable (releasing a lease, see cai-workflow).
    pub async fn delete_if_unchanged(&self, key: &str, e_tag: &str) -> Result<bool, StoreError> {
        let loc = self.checked(key)?;
        let _lock = match self.local {
            Some(_) => Some(self.lock_folder_of(key, &loc).await?),
            None => None,
        };
        match self.head(key).await? {
            None => return Ok(true),
            Some(e) if e.e_tag.as_deref() != Some(e_tag) => return Ok(false),
            Some(_) => {}
        }
        self.delete(key).await?;
        Ok(true)
    }

    /// Locally: an exclusive `flock` on the folder holding `key` (created if missing),
    /// released when the returned file is dropped. Waits for another holder.
    async fn lock_folder_of(&self, key: &str, loc: &Path) -> Result<std::fs::File, StoreError> {
        let Some((path, _)) = self.resolve_local(key, loc)? else {
            return Err(StoreError::backend(
                "lock",
                &self.name,
                key,
                object_store::Error::NotImplemented {
                    operation: "folder lock".into(),
                    implementer: "S3".into(),
                },
            ));
        };
        let folder = path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| path.clone());
        let locked = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder)?;
            let f = std::fs::File::open(&folder)?;
            f.lock()?;
            Ok::<_, std::io::Error>(f)
        })
        .await
        .map_err(|e| StoreError::Io {
            op: "lock folder of",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        locked.map_err(|source| StoreError::Io {
            op: "lock folder of",
            path,
            source,
        })
    }

    /// Starts writing the object at `key` as a stream (see [`ObjectWriter`]); nothing is
    /// visible until it is finished.
    pub fn writer(&self, key: &str) -> Result<ObjectWriter, StoreError> {
        let loc = self.checked(key)?;
        Ok(ObjectWriter {
            inner: Some(BufWriter::with_capacity(
                self.client.clone(),
                loc,
                crate::writer::CHUNK_BYTES,
            )),
            bucket: self.name.clone(),
            key: key.to_string(),
        })
    }

    /// Metadata of one object, or `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let loc = self.checked(key)?;
        match self.client.head(&loc).await {
            Ok(meta) => Ok(Some(Entry {
                key: key.to_string(),
                size: meta.size,
                last_modified: meta.last_modified.into(),
                e_tag: meta.e_tag,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::backend("head", &self.name, key, e)),
        }
    }

    /// Whether an object exists at `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.head(key).await?.is_some())
    }

    /// Every object under the folder `prefix` (empty = whole bucket), sorted by key.
    ///
    /// Complete: the backend listing is streamed across all pages (S3 continuation
    /// tokens), never stopping at 1,000. `prefix` is matched by whole path segments:
    /// `r/1` lists `r/1/x` but not `r/10/x` or the object `r/1` itself. Local entries
    /// that resolve outside the root through a symlink are left out.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        validate_prefix("prefix", prefix)?;
        let body = prefix.strip_suffix('/').unwrap_or(prefix);
        let loc = self.location(body)?;
        if !body.is_empty() {
            self.resolve_local(prefix, &loc)?;
        }
        let backend = |e| StoreError::backend("list", &self.name, prefix, e);
        let listing_prefix = (!loc.as_ref().is_empty()).then_some(&loc);
        let mut stream = self.client.list(listing_prefix);
        let folder = format!("{body}/");
        let mut out = Vec::new();
        while let Some(meta) = stream.try_next().await.map_err(backend)? {
            let location = meta.location.clone();
            let Some(entry) = self.entry(meta) else {
                continue;
            };
            if !body.is_empty() && !entry.key.starts_with(&folder) {
                continue;
            }
            if let Err(e) = self.resolve_local(&entry.key, &location) {
                tracing::warn!(bucket = %self.name, key = %entry.key, error = %e, "left out of listing");
                continue;
            }
            out.push(entry);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The local file behind `key`, so a reader can `pread` a big partition in place
    /// instead of copying it. `Ok(None)` on S3 stores. The returned path is resolved
    /// (canonical) and inside the store root; a key that is, or passes through, a
    /// symlink pointing outside the root is refused with [`StoreError::OutsideRoot`].
    /// A missing key (or a folder) is [`StoreError::NotFound`].
    pub fn local_path(&self, key: &str) -> Result<Option<PathBuf>, StoreError> {
        validate_key("key", key)?;
        let loc = self.location(key)?;
        let Some((path, resolved)) = self.resolve_local(key, &loc)? else {
            return Ok(None);
        };
        let is_file = std::fs::metadata(&path)
            .map(|m| m.is_file())
            .unwrap_or(false);
        if !is_file || path.symlink_metadata().is_err() {
            return Err(StoreError::NotFound {
                bucket: self.name.clone(),
                key: key.to_string(),
                source: None,
            });
        }
        Ok(Some(resolved))
    }

    /// Streams an object into the local file `dest` (created or truncated) without
    /// holding it in memory, e.g. an S3 partition to `/tmp`. Returns the byte count.
    /// On failure the partial `dest` is removed.
    pub async fn download_to_file(
        &self,
        key: &str,
        dest: &std::path::Path,
    ) -> Result<u64, StoreError> {
        let loc = self.checked(key)?;
        let result = self
            .client
            .get(&loc)
            .await
            .map_err(|e| StoreError::backend("download", &self.name, key, e))?;
        let expected = result.meta.size;
        let written = self.stream_to(result.into_stream(), key, dest).await;
        match written {
            Ok(n) if n == expected => Ok(n),
            Ok(n) => {
                let _ = tokio::fs::remove_file(dest).await;
                Err(StoreError::Io {
                    op: "download",
                    path: dest.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "got {n} of {expected} bytes of {key:?} in bucket {:?}",
                            self.name
                        ),
                    ),
                })
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(dest).await;
                Err(e)
            }
        }
    }

    async fn stream_to(
        &self,
        mut stream: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
        key: &str,
        dest: &std::path::Path,
    ) -> Result<u64, StoreError> {
        let io = |source| StoreError::Io {
            op: "download",
            path: dest.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut n = 0u64;
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| StoreError::backend("download", &self.name, key, e))?
        {
            file.write_all(&chunk).await.map_err(io)?;
            n += chunk.len() as u64;
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        Ok(n)
    }

    /// Deletes an object (tests, cleanup). Deleting a missing object succeeds, as on S3.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let loc = self.checked(key)?;
        match self.client.delete(&loc).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::backend("delete", &self.name, key, e)),
        }
    }
}
