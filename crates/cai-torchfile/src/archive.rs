//! The torch zip archive (`torch.save` since 1.6): locates `data.pkl` and the storage
//! entries, interprets the pickle and checks every tensor against its entry. Storage
//! payloads stay on disk until a tensor read asks for them.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::dtype::Element;
use crate::error::TorchError;
use crate::source::{ByteSource, FileSource, MemSource, SourceReader};
use crate::value::{StorageRef, TensorRef, Value};
use crate::{names, pickle, read};

/// Largest `data.pkl` accepted (the pickle is held in memory while interpreted).
const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// Where one archive entry's bytes lie in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Absolute offset of the first data byte.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
    /// True for stored (uncompressed) entries, the only kind tensors can be read from.
    pub stored: bool,
}

/// An opened torch file: the interpreted object tree plus the storage entry map.
pub struct TorchFile {
    name: String,
    source: Arc<dyn ByteSource>,
    prefix: String,
    entries: HashMap<String, Entry>,
    root: Value,
}

impl std::fmt::Debug for TorchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchFile")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl TorchFile {
    /// Opens a file on disk (reads only the directory and `data.pkl`).
    pub fn open(path: &Path) -> Result<Self, TorchError> {
        let name = path.display().to_string();
        let src = FileSource::open(path).map_err(|e| TorchError::io(&name, e))?;
        Self::from_source(name, Arc::new(src))
    }

    /// Opens bytes already in memory.
    pub fn from_bytes<T: AsRef<[u8]> + Send + Sync + 'static>(
        name: impl Into<String>,
        bytes: T,
    ) -> Result<Self, TorchError> {
        Self::from_source(name.into(), Arc::new(MemSource(bytes)))
    }

    /// Opens any byte source; `name` is used in error messages.
    pub fn from_source(name: String, source: Arc<dyn ByteSource>) -> Result<Self, TorchError> {
        check_magic(&name, source.as_ref())?;
        let entries = list_entries(&name, source.as_ref())?;
        let prefix = find_prefix(&name, &entries)?;
        let mut file = TorchFile {
            name,
            source,
            prefix,
            entries,
            root: Value::None,
        };
        if let Some(order) = file.small_record("byteorder", 64)? {
            if order.trim() != "little" {
                return Err(TorchError::Unsupported {
                    file: file.name.clone(),
                    msg: format!(
                        "byteorder {:?}; only little-endian files are supported",
                        order.trim()
                    ),
                });
            }
        }
        let pkl = file.entry_bytes("data.pkl", MAX_PICKLE_BYTES)?;
        file.root = pickle::parse(&pkl).map_err(|e| {
            TorchError::format(
                format!("{}: {}data.pkl", file.name, file.prefix),
                e.to_string(),
            )
        })?;
        file.validate_storages()?;
        Ok(file)
    }

    /// The file name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The unpickled object (state dict, dataset, module tree...).
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Every tensor with its dotted name; see [`names::named_tensors`].
    pub fn named_tensors(&self) -> Vec<(String, TensorRef)> {
        names::named_tensors(&self.root)
    }

    /// The archive entry holding a storage.
    pub fn storage_entry(&self, s: &StorageRef) -> Result<Entry, TorchError> {
        let entry_name = format!("{}data/{}", self.prefix, s.key);
        self.entries.get(&entry_name).copied().ok_or_else(|| {
            TorchError::format(&self.name, format!("storage entry {entry_name} is missing"))
        })
    }

    /// Rows `rows` of the first dimension of `t`, converted to `f32`.
    pub fn read_f32(&self, t: &TensorRef, rows: Range<usize>) -> Result<Vec<f32>, TorchError> {
        let mut out = Vec::new();
        self.read_rows_into(t, rows, &mut out)?;
        Ok(out)
    }

    /// The whole tensor as `f32`, row-major.
    pub fn read_all_f32(&self, t: &TensorRef) -> Result<Vec<f32>, TorchError> {
        let rows = if t.shape.is_empty() { 1 } else { t.shape[0] };
        self.read_f32(t, 0..rows)
    }

    /// Rows of `t` converted to `T` into `out` (cleared first, capacity reused), reading
    /// only the bytes the rows need; 0-dim tensors have the single row `0..1`.
    pub fn read_rows_into<T: Element>(
        &self,
        t: &TensorRef,
        rows: Range<usize>,
        out: &mut Vec<T>,
    ) -> Result<(), TorchError> {
        let entry = self.storage_entry(&t.storage)?;
        read::read_rows(self.source.as_ref(), entry.offset, t, rows, out).map_err(|e| match e {
            TorchError::Io { source, .. } => {
                TorchError::io(format!("{}: storage {}", self.name, t.storage.key), source)
            }
            other => other,
        })
    }

    /// Reads a small non-storage record (`byteorder`, `version`) if present.
    fn small_record(&self, rel: &str, max: u64) -> Result<Option<String>, TorchError> {
        if !self.entries.contains_key(&format!("{}{rel}", self.prefix)) {
            return Ok(None);
        }
        let b = self.entry_bytes(rel, max)?;
        Ok(Some(String::from_utf8_lossy(&b).into_owned()))
    }

    fn entry_bytes(&self, rel: &str, max: u64) -> Result<Vec<u8>, TorchError> {
        let full = format!("{}{rel}", self.prefix);
        let e = self
            .entries
            .get(&full)
            .ok_or_else(|| TorchError::format(&self.name, format!("entry {full} is missing")))?;
        if !e.stored {
            return Err(TorchError::format(
                &self.name,
                format!("entry {full} is compressed; torch files store entries uncompressed"),
            ));
        }
        if e.size > max {
            return Err(TorchError::format(
                &self.name,
                format!(
                    "entry {full} is {} bytes, more than the {max} allowed",
                    e.size
                ),
            ));
        }
        let mut buf = vec![0u8; e.size as usize];
        self.source
            .read_exact_at(e.offset, &mut buf)
            .map_err(|err| TorchError::io(format!("{}: {full}", self.name), err))?;
        Ok(buf)
    }

    /// Every tensor's storage must exist, be stored, and have exactly the declared size.
    fn validate_storages(&self) -> Result<(), TorchError> {
        let mut result = Ok(());
        let mut seen: HashMap<&str, u64> = HashMap::new();
        self.root.visit_tensors(&mut |t| {
            if result.is_err() {
                return;
            }
            result = self.validate_storage(&t.storage, &mut seen);
        });
        result
    }

    fn validate_storage<'a>(
        &self,
        s: &'a StorageRef,
        seen: &mut HashMap<&'a str, u64>,
    ) -> Result<(), TorchError> {
        let entry = self.storage_entry(s)?;
        let entry_name = format!("{}data/{}", self.prefix, s.key);
        if !entry.stored {
            return Err(TorchError::format(&self.name, format!("storage entry {entry_name} is compressed; re-save it uncompressed (torch.save does)")));
        }
        let want = s.byte_len().unwrap_or(u64::MAX);
        if entry.size != want {
            return Err(TorchError::format(
                &self.name,
                format!("storage entry {entry_name} holds {} bytes but the pickle declares {} x {:?} = {want} bytes", entry.size, s.numel, s.dtype),
            ));
        }
        if let Some(prev) = seen.insert(&s.key, want) {
            if prev != want {
                return Err(TorchError::format(
                    &self.name,
                    format!("storage {} declared with two sizes", s.key),
                ));
            }
        }
        Ok(())
    }
}

fn check_magic(name: &str, src: &dyn ByteSource) -> Result<(), TorchError> {
    let mut head = [0u8; 4];
    if src.len() < 4 {
        return Err(TorchError::format(
            name,
            format!("only {} bytes; not a torch file", src.len()),
        ));
    }
    src.read_exact_at(0, &mut head)
        .map_err(|e| TorchError::io(name, e))?;
    if head == *b"PK\x03\x04" || head == *b"PK\x05\x06" {
        return Ok(());
    }
    if head[0] == 0x80 {
        return Err(TorchError::Unsupported {
            file: name.into(),
            msg: "legacy (pre-1.6, non-zip) torch format; re-save the file with torch>=1.6 (`torch.save(torch.load(f, weights_only=False), f)`)".into(),
        });
    }
    Err(TorchError::format(
        name,
        "not a torch zip archive (bad magic bytes)",
    ))
}

fn list_entries(name: &str, src: &dyn ByteSource) -> Result<HashMap<String, Entry>, TorchError> {
    let zerr = |e: zip::result::ZipError| TorchError::format(name, format!("zip archive: {e}"));
    let mut zip = zip::ZipArchive::new(SourceReader::new(src)).map_err(zerr)?;
    let mut entries = HashMap::with_capacity(zip.len());
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).map_err(zerr)?;
        let entry_name = String::from_utf8_lossy(f.name_raw()).into_owned();
        let offset = f.data_start().ok_or_else(|| {
            TorchError::format(name, format!("entry {entry_name}: no data offset"))
        })?;
        let size = f.compressed_size();
        let stored = f.compression() == zip::CompressionMethod::Stored;
        if stored && f.size() != size {
            return Err(TorchError::format(
                name,
                format!("entry {entry_name}: stored entry with differing sizes"),
            ));
        }
        match offset.checked_add(size) {
            Some(end) if end <= src.len() => {}
            _ => return Err(TorchError::format(name, format!("entry {entry_name}: {size} bytes at offset {offset} run past the end of the file"))),
        }
        entries.insert(
            entry_name,
            Entry {
                offset,
                size,
                stored,
            },
        );
    }
    Ok(entries)
}

/// The archive's folder prefix (`archive/`, `<stem>/`...): the folder of `data.pkl`.
fn find_prefix(name: &str, entries: &HashMap<String, Entry>) -> Result<String, TorchError> {
    entries
        .keys()
        .filter_map(|k| k.strip_suffix("data.pkl"))
        .filter(|p| p.is_empty() || (p.ends_with('/') && p[..p.len() - 1].find('/').is_none()))
        .min_by_key(|p| p.len())
        .map(str::to_owned)
        .ok_or_else(|| {
            TorchError::format(
                name,
                "zip archive has no <prefix>/data.pkl; not a torch file",
            )
        })
}
