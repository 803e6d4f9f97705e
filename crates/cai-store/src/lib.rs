//! Bucket/key object storage for cai: one interface over a local folder (the default)
//! and S3 or any S3-compatible endpoint, built on the `object_store` crate.
//!
//! This crate is the security boundary for keys that come from untrusted workflow
//! payloads (`data_bucket`, `data_prefix`, `result_path`, model keys...): every bucket
//! name and key is validated before it reaches a backend, and local stores additionally
//! refuse any key that resolves (through symlinks) outside the store root.
//!
//! Layout: with a local root `R`, bucket `b` and key `k` live at `R/b/k`. With
//! `s3://BUCKET/PREFIX` they live at `s3://BUCKET/PREFIX/b/k`, mirroring the local layout.
//! With plain `s3`, `b` is a real S3 bucket and `k` its key.
//!
//! Prefix semantics: a listing prefix is a *folder* prefix matched by whole path
//! segments, so `list("r/1")` returns `r/1/x` but never `r/10/x`.
#![warn(missing_docs)]

mod blocking;
mod bucket;
mod config;
mod error;
mod key;
mod local;
mod store;
mod timing;
mod writer;

pub use blocking::{BlockingBucket, BlockingStore, BlockingWriter};
pub use bucket::{Bucket, Entry, DEFAULT_GET_CAP};
pub use config::{S3Settings, StoreConfig, DEFAULT_LOCAL_ROOT, STORE_ENV_VAR};
pub use error::StoreError;
pub use key::{join_key, validate_bucket_name, validate_key, validate_prefix, MAX_KEY_BYTES};
pub use store::Store;
pub use timing::{RequestLog, RequestStats};
pub use writer::ObjectWriter;
