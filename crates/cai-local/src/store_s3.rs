//! The store as the S3 that the state machine's ItemReader and ResultWriter talk to, so the
//! local interpreter reads the Map's items and writes its results where Step Functions would:
//! a local store's folders, or the real buckets.

use std::time::UNIX_EPOCH;

use cai_asl::{ListPage, ObjectEntry, S3Access, S3Failure};
use cai_store::{BlockingStore, StoreError};

/// [`S3Access`] over a [`BlockingStore`].
pub struct StoreS3 {
    store: BlockingStore,
}

impl StoreS3 {
    /// Serves the state machine's S3 calls from `store`.
    pub fn new(store: BlockingStore) -> StoreS3 {
        StoreS3 { store }
    }
}

fn failure(e: StoreError, bucket: &str, key: &str) -> S3Failure {
    match e {
        StoreError::NotFound { .. } => S3Failure::NoSuchKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
        },
        StoreError::TooLarge { size, cap, .. } => S3Failure::TooLarge { size, max: cap },
        other => S3Failure::Other(other.to_string()),
    }
}

impl S3Access for StoreS3 {
    fn get_object(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, S3Failure> {
        self.store
            .bucket(bucket)
            .and_then(|b| b.get_capped(key, max_bytes))
            .map(|bytes| bytes.to_vec())
            .map_err(|e| failure(e, bucket, key))
    }

    /// S3's prefix is a plain string prefix (`a/b` matches `a/bc`), the store's a folder: list
    /// the folder the prefix ends in and keep the keys that start with it. One page holds
    /// everything: the store's listing is already complete.
    fn list_objects_v2(
        &self,
        bucket: &str,
        prefix: &str,
        _continuation_token: Option<&str>,
    ) -> Result<ListPage, S3Failure> {
        let folder = prefix.rsplit_once('/').map_or("", |(f, _)| f);
        let entries = self
            .store
            .bucket(bucket)
            .and_then(|b| b.list(folder))
            .map_err(|e| failure(e, bucket, prefix))?;
        let objects = entries
            .into_iter()
            .filter(|e| e.key.starts_with(prefix))
            .map(|e| ObjectEntry {
                last_modified: e
                    .last_modified
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
                etag: e.e_tag.unwrap_or_default(),
                key: e.key,
                size: e.size,
                storage_class: "STANDARD".into(),
            })
            .collect();
        Ok(ListPage {
            objects,
            next_continuation_token: None,
        })
    }

    fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), S3Failure> {
        self.store
            .bucket(bucket)
            .and_then(|b| b.put(key, body))
            .map_err(|e| failure(e, bucket, key))
    }
}
