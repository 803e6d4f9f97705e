//! `--store` / `CAI_STORE` parsing and S3 settings from the AWS environment.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use object_store::aws::AmazonS3Builder;

use crate::key::{validate_bucket_name, validate_prefix};
use crate::StoreError;

/// Local root used when no `--store` is given.
pub const DEFAULT_LOCAL_ROOT: &str = "./cai-store";

/// Environment variable through which a parent hands its store to child processes
/// (set it to the [`StoreConfig`]'s `Display` string).
pub const STORE_ENV_VAR: &str = "CAI_STORE";

/// Where buckets live, as chosen by `--store`. Parse with [`FromStr`]; the
/// [`fmt::Display`] form parses back to the same value (exactly, for every value that
/// came from parsing; a hand-built local root `s3` comes back as the same directory
/// spelled `./s3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A local directory; bucket `b` is the folder `<root>/b/`.
    Local {
        /// The store root directory.
        root: PathBuf,
    },
    /// Real S3 buckets named as in the payload (`s3` or `s3://`), configured from the
    /// standard AWS environment.
    S3Buckets,
    /// A root inside one S3 bucket (`s3://BUCKET[/PREFIX]`); payload bucket `b` is the
    /// folder `PREFIX/b/` there, mirroring the local layout.
    S3Root {
        /// The one real S3 bucket holding everything.
        bucket: String,
        /// Folder inside it, without leading or trailing `/`; empty for the bucket root.
        prefix: String,
    },
}

impl Default for StoreConfig {
    /// The local folder `./cai-store`, so cai works with no setup.
    fn default() -> Self {
        StoreConfig::Local {
            root: PathBuf::from(DEFAULT_LOCAL_ROOT),
        }
    }
}

impl StoreConfig {
    /// Reads [`STORE_ENV_VAR`], falling back to the default local root when unset, so a
    /// child process uses the same store as the parent that spawned it.
    pub fn from_env() -> Result<Self, StoreError> {
        match std::env::var(STORE_ENV_VAR) {
            Ok(s) => s.parse(),
            Err(std::env::VarError::NotPresent) => Ok(Self::default()),
            Err(std::env::VarError::NotUnicode(v)) => Err(StoreError::InvalidConfig {
                input: v.to_string_lossy().into_owned(),
                reason: format!("{STORE_ENV_VAR} is not valid UTF-8"),
            }),
        }
    }
}

impl FromStr for StoreConfig {
    type Err = StoreError;

    /// `s3` or `s3://` → [`StoreConfig::S3Buckets`]; `s3://BUCKET[/PREFIX]` →
    /// [`StoreConfig::S3Root`]; anything else non-empty is a local directory.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| StoreError::InvalidConfig {
            input: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid(format!(
                "it is empty; expected a directory (e.g. {DEFAULT_LOCAL_ROOT}), 's3' or 's3://BUCKET[/PREFIX]'"
            )));
        }
        if s == "s3" || s == "s3://" {
            return Ok(StoreConfig::S3Buckets);
        }
        let Some(rest) = s.strip_prefix("s3://") else {
            return Ok(StoreConfig::Local {
                root: PathBuf::from(s),
            });
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        validate_bucket_name(bucket).map_err(|e| invalid(e.to_string()))?;
        validate_prefix("store prefix", prefix).map_err(|e| invalid(e.to_string()))?;
        Ok(StoreConfig::S3Root {
            bucket: bucket.to_string(),
            prefix: prefix.strip_suffix('/').unwrap_or(prefix).to_string(),
        })
    }
}

impl fmt::Display for StoreConfig {
    /// The string form that [`FromStr`] turns back into this value. A local root that
    /// would read as an S3 form (`s3`, `s3://...`) is written as `./s3...`. Non-UTF-8
    /// local paths are written lossily.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Local { root } => {
                let s = root.to_string_lossy();
                if s == "s3" || s.starts_with("s3://") {
                    write!(f, "./{s}")
                } else {
                    f.write_str(&s)
                }
            }
            StoreConfig::S3Buckets => f.write_str("s3://"),
            StoreConfig::S3Root { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            StoreConfig::S3Root { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// S3 connection settings resolved from the AWS environment, kept separate from the
/// client so they can be inspected and tested without any network access.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Settings {
    /// Custom endpoint (`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region (`AWS_REGION`, else `AWS_DEFAULT_REGION`); `None` lets object_store default.
    pub region: Option<String>,
}

impl S3Settings {
    /// Resolves the settings from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Resolves the settings from any variable lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        S3Settings {
            endpoint: get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
        }
    }

    /// Plain HTTP is only allowed when the endpoint itself says `http://` (local MinIO
    /// and similar); AWS proper is always HTTPS.
    pub fn allow_http(&self) -> bool {
        self.endpoint
            .as_deref()
            .is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"))
    }

    /// An `object_store` builder for one real S3 bucket: credentials and other options
    /// from the AWS environment, then these settings on top (path-style requests when
    /// a custom endpoint is given). Building it performs no network I/O.
    pub fn builder(&self, bucket: &str) -> AmazonS3Builder {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(region) = &self.region {
            b = b.with_region(region);
        }
        if let Some(endpoint) = &self.endpoint {
            b = b
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(self.allow_http());
        }
        b
    }
}
