//! `Store`: the opened `--store`, handing out validated buckets.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;

use crate::bucket::{Bucket, LocalRoot};
use crate::key::validate_bucket_name;
use crate::{S3Settings, StoreConfig, StoreError};

/// An opened store. Cheap to clone (one `Arc`), `Send + Sync`, so one can be shared by
/// every handler and thread of a workflow run.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: StoreConfig,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Local(LocalRoot),
    S3Buckets {
        settings: S3Settings,
        clients: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    },
    S3Root {
        client: Arc<dyn ObjectStore>,
        prefix: Path,
    },
}

impl Store {
    /// Opens the store described by `config`. A local root is created if missing; S3
    /// clients are configured from the AWS environment without any network I/O (bad
    /// credentials show up on the first request).
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let backend = match &config {
            StoreConfig::Local { root } => Backend::Local(open_local(root)?),
            StoreConfig::S3Buckets => Backend::S3Buckets {
                settings: S3Settings::from_env(),
                clients: Mutex::new(HashMap::new()),
            },
            StoreConfig::S3Root { bucket, prefix } => {
                let settings = S3Settings::from_env();
                let client = build_s3(&settings, bucket)?;
                let prefix = Path::parse(prefix).map_err(|e| StoreError::InvalidConfig {
                    input: config.to_string(),
                    reason: e.to_string(),
                })?;
                Backend::S3Root { client, prefix }
            }
        };
        Ok(Store {
            inner: Arc::new(Inner { config, backend }),
        })
    }

    /// The configuration this store was opened from (its `Display` form is what to put
    /// in `CAI_STORE` for child processes).
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The canonical root directory for local stores, `None` for S3.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        match &self.inner.backend {
            Backend::Local(l) => Some(&l.root),
            _ => None,
        }
    }

    /// A handle on bucket `name`, after checking it against the S3 bucket naming rules
    /// (so a payload bucket like `..` or `a/b` can never become a path).
    pub fn bucket(&self, name: &str) -> Result<Bucket, StoreError> {
        validate_bucket_name(name)?;
        match &self.inner.backend {
            Backend::Local(local) => Ok(Bucket::new(
                name,
                local.fs.clone(),
                Path::from_iter([name]),
                Some(local.clone()),
            )),
            Backend::S3Buckets { settings, clients } => {
                let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
                let client = match clients.get(name) {
                    Some(c) => c.clone(),
                    None => {
                        let c = build_s3(settings, name)?;
                        clients.insert(name.to_string(), c.clone());
                        c
                    }
                };
                Ok(Bucket::new(name, client, Path::ROOT, None))
            }
            Backend::S3Root { client, prefix } => Ok(Bucket::new(
                name,
                client.clone(),
                prefix.clone().join(name),
                None,
            )),
        }
    }
}

fn open_local(root: &std::path::Path) -> Result<LocalRoot, StoreError> {
    let io = |op, source| StoreError::Io {
        op,
        path: root.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(root).map_err(|e| io("create store root", e))?;
    let canonical: PathBuf =
        std::fs::canonicalize(root).map_err(|e| io("canonicalize store root", e))?;
    let fs = LocalFileSystem::new_with_prefix(&canonical).map_err(|e| StoreError::Backend {
        op: "open local store",
        bucket: String::new(),
        key: canonical.to_string_lossy().into_owned(),
        source: Box::new(e),
    })?;
    Ok(LocalRoot {
        fs: Arc::new(fs),
        root: canonical,
    })
}

fn build_s3(settings: &S3Settings, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let s3 = settings
        .builder(bucket)
        .build()
        .map_err(|source| StoreError::S3Config {
            bucket: bucket.to_string(),
            source: Box::new(source),
        })?;
    Ok(Arc::new(s3))
}
