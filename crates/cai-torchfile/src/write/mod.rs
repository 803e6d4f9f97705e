//! Streaming `torch.save`-compatible writer: the pickle first, then each storage
//! entry chunk by chunk, stored uncompressed and 64-byte aligned like torch does, into
//! a temporary file renamed into place on [`TorchWriter::finish`].

mod pickler;

use std::io::{BufWriter, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::atomic::AtomicFile;
use crate::dtype::DType;
use crate::error::TorchError;

/// What object the saved file unpickles to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveLayout {
    /// `torch.utils.data.TensorDataset(*tensors)`: the partition layout.
    TensorDataset,
    /// `OrderedDict(name -> tensor)`: a state dict.
    StateDict,
}

/// One tensor to be written: contiguous, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Key in a state dict (ignored for datasets).
    pub name: String,
    /// Element type on disk.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Builds a spec.
    pub fn new(name: impl Into<String>, dtype: DType, shape: Vec<usize>) -> Self {
        TensorSpec {
            name: name.into(),
            dtype,
            shape,
        }
    }

    /// Element count.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Byte length of the payload.
    pub fn byte_len(&self) -> u64 {
        self.numel() as u64 * self.dtype.size() as u64
    }

    pub(crate) fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.shape.len()];
        for i in (0..self.shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.shape[i + 1];
        }
        strides
    }
}

/// Archive folder name inside the zip (torch accepts any).
const PREFIX: &str = "archive";

/// Writes one torch file; tensors' payloads are streamed in spec order.
pub struct TorchWriter {
    zip: Option<ZipWriter<BufWriter<std::fs::File>>>,
    atomic: AtomicFile,
    specs: Vec<TensorSpec>,
    /// Index of the tensor being written and bytes written into it.
    current: usize,
    written: u64,
    name: String,
}

impl TorchWriter {
    /// Starts `path` (via a temp file) holding `specs` as `layout` with pickle
    /// `protocol` (2 to 5; torch's default is 2).
    pub fn create(
        path: &Path,
        layout: SaveLayout,
        specs: Vec<TensorSpec>,
        protocol: u8,
    ) -> Result<Self, TorchError> {
        let name = path.display().to_string();
        if !(2..=5).contains(&protocol) {
            return Err(TorchError::Unsupported {
                file: name,
                msg: format!("pickle protocol {protocol}; use 2 to 5"),
            });
        }
        let ioe = |e| TorchError::io(&name, e);
        let atomic = AtomicFile::create(path).map_err(ioe)?;
        let file = atomic.try_clone_file().map_err(ioe)?;
        let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
        let pkl = pickler::pickle_layout(layout, &specs, protocol);
        let mut w = TorchWriter {
            zip: None,
            atomic,
            specs,
            current: 0,
            written: 0,
            name,
        };
        w.record(&mut zip, "data.pkl", &pkl)?;
        w.record(&mut zip, "byteorder", b"little")?;
        w.zip = Some(zip);
        w.skip_empty()?;
        Ok(w)
    }

    fn options(size: u64) -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .with_alignment(64)
            .large_file(size >= 0xFFFF_FFFF)
    }

    fn zerr(&self, e: zip::result::ZipError) -> TorchError {
        TorchError::format(&self.name, format!("writing zip: {e}"))
    }

    fn record(
        &self,
        zip: &mut ZipWriter<BufWriter<std::fs::File>>,
        rel: &str,
        bytes: &[u8],
    ) -> Result<(), TorchError> {
        zip.start_file(format!("{PREFIX}/{rel}"), Self::options(bytes.len() as u64))
            .map_err(|e| self.zerr(e))?;
        zip.write_all(bytes)
            .map_err(|e| TorchError::io(&self.name, e))
    }

    /// The tensor whose bytes the next write continues, if any.
    pub fn current(&self) -> Option<&TensorSpec> {
        self.specs.get(self.current)
    }

    /// Appends raw little-endian element bytes of the current tensor; a chunk may span
    /// the end of one tensor and the start of the next.
    pub fn write_bytes(&mut self, mut bytes: &[u8]) -> Result<(), TorchError> {
        while !bytes.is_empty() {
            let spec = self.specs.get(self.current).ok_or_else(|| {
                TorchError::Tensor(format!(
                    "{}: more data written than the tensors declare",
                    self.name
                ))
            })?;
            let total = spec.byte_len();
            if self.written == 0 {
                let entry = format!("{PREFIX}/data/{}", self.current);
                let zip = self.zip.as_mut().expect("zip open until finish");
                let r = zip.start_file(entry, Self::options(total));
                r.map_err(|e| self.zerr(e))?;
            }
            let take = ((total - self.written) as usize).min(bytes.len());
            let zip = self.zip.as_mut().expect("zip open until finish");
            zip.write_all(&bytes[..take])
                .map_err(|e| TorchError::io(&self.name, e))?;
            self.written += take as u64;
            bytes = &bytes[take..];
            if self.written == total {
                self.current += 1;
                self.written = 0;
                self.skip_empty()?;
            }
        }
        Ok(())
    }

    /// Empty tensors still get their (empty) storage entry.
    fn skip_empty(&mut self) -> Result<(), TorchError> {
        while let Some(spec) = self.specs.get(self.current) {
            if spec.byte_len() != 0 {
                break;
            }
            let entry = format!("{PREFIX}/data/{}", self.current);
            let zip = self.zip.as_mut().expect("zip open until finish");
            let r = zip.start_file(entry, Self::options(0));
            r.map_err(|e| self.zerr(e))?;
            self.current += 1;
        }
        Ok(())
    }

    /// Appends `f32` values, converted to the current tensor's dtype (F32/F64/F16/BF16).
    pub fn write_f32(&mut self, values: &[f32]) -> Result<(), TorchError> {
        self.write_converted(values.len(), |i| values[i] as f64)
    }

    /// Appends `f64` values, converted to the current tensor's dtype (F32/F64/F16/BF16).
    pub fn write_f64(&mut self, values: &[f64]) -> Result<(), TorchError> {
        self.write_converted(values.len(), |i| values[i])
    }

    fn write_converted(&mut self, n: usize, get: impl Fn(usize) -> f64) -> Result<(), TorchError> {
        let mut buf = Vec::with_capacity(8192);
        let mut i = 0;
        while i < n {
            let spec = self.current().ok_or_else(|| {
                TorchError::Tensor(format!(
                    "{}: more data written than the tensors declare",
                    self.name
                ))
            })?;
            let dtype = spec.dtype;
            let left = ((spec.byte_len() - self.written) / dtype.size() as u64) as usize;
            let chunk = left.min(n - i).min(8192 / 8);
            buf.clear();
            for j in i..i + chunk {
                encode(dtype, get(j), &mut buf)
                    .map_err(|m| TorchError::Tensor(format!("{}: {m}", self.name)))?;
            }
            self.write_bytes(&buf)?;
            i += chunk;
        }
        Ok(())
    }

    /// Checks every tensor was fully written, adds the `version` record, and renames
    /// the file into place.
    pub fn finish(mut self) -> Result<(), TorchError> {
        if let Some(spec) = self.specs.get(self.current) {
            return Err(TorchError::Tensor(format!(
                "{}: tensor {} ({}) got {} of {} bytes",
                self.name,
                self.current,
                spec.name,
                self.written,
                spec.byte_len()
            )));
        }
        let mut zip = self.zip.take().expect("zip open until finish");
        self.record(&mut zip, "version", b"3\n")?;
        let mut inner = zip.finish().map_err(|e| self.zerr(e))?;
        inner.flush().map_err(|e| TorchError::io(&self.name, e))?;
        drop(inner);
        self.atomic
            .commit()
            .map_err(|e| TorchError::io(&self.name, e))
    }
}

fn encode(dtype: DType, v: f64, out: &mut Vec<u8>) -> Result<(), String> {
    match dtype {
        DType::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
        DType::F64 => out.extend_from_slice(&v.to_le_bytes()),
        DType::F16 => out.extend_from_slice(&half::f16::from_f64(v).to_le_bytes()),
        DType::BF16 => out.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes()),
        other => {
            return Err(format!(
                "cannot write floats into a {other:?} tensor; use write_bytes"
            ))
        }
    }
    Ok(())
}
