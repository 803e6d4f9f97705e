//! The S3 calls a distributed Map makes (ItemReader, ResultWriter). The interpreter has
//! no storage of its own, so the engine that runs it supplies an [`S3Access`]: a real
//! S3 client, a stand-in, or the in-memory [`MemoryS3`].

mod memory;

pub use memory::MemoryS3;

/// Objects larger than this are refused by ItemReader by default: the whole object is
/// held in memory while its items are decoded. See `ExecOptions::item_reader_max_bytes`.
pub const ITEM_READER_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Why an S3 call failed; its text becomes the cause of `States.ItemReaderFailed` or
/// `States.ResultWriterFailed`, so it should say what S3 said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Failure {
    /// The bucket does not exist.
    #[error("the bucket `{bucket}` does not exist (NoSuchBucket)")]
    NoSuchBucket {
        /// The bucket asked for.
        bucket: String,
    },
    /// The object does not exist.
    #[error("there is no object `{key}` in bucket `{bucket}` (NoSuchKey)")]
    NoSuchKey {
        /// The bucket asked for.
        bucket: String,
        /// The key asked for.
        key: String,
    },
    /// The object is larger than the caller's `max_bytes`.
    #[error("the object is {size} bytes, more than the {max} bytes the interpreter reads")]
    TooLarge {
        /// The object's size in bytes.
        size: u64,
        /// The limit that was passed.
        max: u64,
    },
    /// Anything else (access denied, network, throttling…), in the client's words.
    #[error("{0}")]
    Other(String),
}

/// One object of a ListObjectsV2 page, with the fields a distributed Map hands to its
/// children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag as S3 returns it, quotes included (e.g. `"\"9b2cf5…\""`).
    pub etag: String,
    /// Last modification time in seconds since the Unix epoch.
    pub last_modified: i64,
    /// Storage class, e.g. `STANDARD`.
    pub storage_class: String,
}

/// One page of a ListObjectsV2 listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The objects of this page, in key order.
    pub objects: Vec<ObjectEntry>,
    /// The token for the next page; `None` on the last page.
    pub next_continuation_token: Option<String>,
}

/// Blocking S3 operations for ItemReader and ResultWriter. Called from Map worker
/// threads, so implementations must be thread-safe; engines on an async runtime block
/// on their client inside these methods.
pub trait S3Access: Send + Sync {
    /// Reads a whole object. Implementations should refuse objects larger than
    /// `max_bytes` with [`S3Failure::TooLarge`] before downloading them; the interpreter
    /// checks the length again either way.
    fn get_object(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, S3Failure>;

    /// One page of the objects whose keys start with `prefix` (empty: all), in key order,
    /// starting after `continuation_token` when given.
    fn list_objects_v2(
        &self,
        bucket: &str,
        prefix: &str,
        continuation_token: Option<&str>,
    ) -> Result<ListPage, S3Failure>;

    /// Writes (or replaces) an object.
    fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), S3Failure>;
}
