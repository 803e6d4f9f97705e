//! An in-memory [`S3Access`], so tests and tools can run ItemReader and ResultWriter
//! without a bucket.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{ListPage, ObjectEntry, S3Access, S3Failure};

/// ListObjectsV2's default (and maximum) page size.
const DEFAULT_PAGE_SIZE: usize = 1000;

#[derive(Debug, Clone)]
struct Object {
    body: Arc<Vec<u8>>,
    etag: String,
    last_modified: i64,
}

/// Buckets of objects held in memory, for tests and tools. Listing pages hold at most
/// [`MemoryS3::with_page_size`] objects (1000 by default, as S3), so pagination can be
/// exercised with a handful of objects. ETags are a content hash in S3's quoted form,
/// not an MD5.
#[derive(Debug)]
pub struct MemoryS3 {
    buckets: Mutex<BTreeMap<String, BTreeMap<String, Object>>>,
    page_size: usize,
}

impl Default for MemoryS3 {
    fn default() -> Self {
        MemoryS3::new()
    }
}

impl MemoryS3 {
    /// An empty store with S3's page size of 1000.
    pub fn new() -> Self {
        MemoryS3::with_page_size(DEFAULT_PAGE_SIZE)
    }

    /// An empty store whose listings return at most `page_size` objects a page.
    pub fn with_page_size(page_size: usize) -> Self {
        MemoryS3 {
            buckets: Mutex::new(BTreeMap::new()),
            page_size: page_size.max(1),
        }
    }

    /// Creates a bucket (no-op if it exists); `put_object` into a missing bucket fails
    /// as in S3.
    pub fn create_bucket(&self, bucket: &str) {
        self.lock().entry(bucket.to_string()).or_default();
    }

    /// Stores an object, creating its bucket if needed: the shortcut for seeding test
    /// data.
    pub fn insert(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.create_bucket(bucket);
        self.put_object(bucket, key, body.into())
            .expect("the bucket was just created");
    }

    /// A copy of an object's body, if it exists.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.lock()
            .get(bucket)?
            .get(key)
            .map(|o| o.body.as_ref().clone())
    }

    /// Every key of a bucket, sorted (empty if the bucket does not exist).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.lock()
            .get(bucket)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, Object>>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl S3Access for MemoryS3 {
    fn get_object(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, S3Failure> {
        let buckets = self.lock();
        let objects = buckets.get(bucket).ok_or_else(|| S3Failure::NoSuchBucket {
            bucket: bucket.to_string(),
        })?;
        let object = objects.get(key).ok_or_else(|| S3Failure::NoSuchKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })?;
        let size = object.body.len() as u64;
        if size > max_bytes {
            return Err(S3Failure::TooLarge {
                size,
                max: max_bytes,
            });
        }
        Ok(object.body.as_ref().clone())
    }

    fn list_objects_v2(
        &self,
        bucket: &str,
        prefix: &str,
        continuation_token: Option<&str>,
    ) -> Result<ListPage, S3Failure> {
        let buckets = self.lock();
        let objects = buckets.get(bucket).ok_or_else(|| S3Failure::NoSuchBucket {
            bucket: bucket.to_string(),
        })?;
        // The token is the last key of the previous page.
        let start = match continuation_token {
            Some(after) => Bound::Excluded(after.to_string()),
            None => Bound::Included(prefix.to_string()),
        };
        let mut page = ListPage::default();
        for (key, o) in objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                if key.as_str() > prefix {
                    break;
                }
                continue;
            }
            if page.objects.len() == self.page_size {
                page.next_continuation_token = page.objects.last().map(|e| e.key.clone());
                break;
            }
            page.objects.push(ObjectEntry {
                key: key.clone(),
                size: o.body.len() as u64,
                etag: o.etag.clone(),
                last_modified: o.last_modified,
                storage_class: "STANDARD".into(),
            });
        }
        Ok(page)
    }

    fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), S3Failure> {
        let mut buckets = self.lock();
        let objects = buckets
            .get_mut(bucket)
            .ok_or_else(|| S3Failure::NoSuchBucket {
                bucket: bucket.to_string(),
            })?;
        let last_modified = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        objects.insert(
            key.to_string(),
            Object {
                etag: etag(&body),
                body: Arc::new(body),
                last_modified,
            },
        );
        Ok(())
    }
}

/// A quoted 128-bit FNV-1a hash of the body, shaped like S3's MD5 ETags.
fn etag(body: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let hash = body
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME));
    format!("\"{hash:032x}\"")
}
