//! Keeping local keys inside the store root, even through symlinks.
//!
//! `object_store`'s `LocalFileSystem` follows symlinks wherever they point, so a key
//! that is (or passes through) a symlink to `/etc` would read or write outside the
//! root. Before touching a local key we resolve the deepest existing part of its path
//! and refuse it unless that lies inside the canonical root.
//!
//! Threat model: keys are untrusted, the filesystem under the root is not (a process
//! that can swap symlinks between the check and the use is out of scope).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// Resolves `path` (which may not exist yet) and checks it lies under `root`, which
/// must already be canonical. Returns the resolved path of the deepest existing
/// ancestor (the path itself when it exists).
pub(crate) fn resolve_inside(
    root: &Path,
    path: &Path,
    bucket: &str,
    key: &str,
) -> Result<PathBuf, StoreError> {
    let mut probe = path;
    loop {
        match std::fs::canonicalize(probe) {
            Ok(resolved) => {
                if resolved.starts_with(root) {
                    return Ok(resolved);
                }
                return Err(StoreError::OutsideRoot {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    resolved,
                    root: root.to_path_buf(),
                });
            }
            // A missing component, a dangling symlink, or a parent "folder" that is a
            // file (ENOTDIR): check the part of the path that does exist.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                match probe.parent() {
                    Some(parent) => probe = parent,
                    None => {
                        return Err(StoreError::Io {
                            op: "resolve",
                            path: path.to_path_buf(),
                            source: e,
                        })
                    }
                }
            }
            Err(e) => {
                return Err(StoreError::Io {
                    op: "resolve",
                    path: path.to_path_buf(),
                    source: e,
                })
            }
        }
    }
}
