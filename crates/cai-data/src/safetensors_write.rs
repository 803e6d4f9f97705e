//! Streaming safetensors writer: the header (all shapes and offsets are known up
//! front), then each tensor's bytes in order, into a temp file renamed on finish.

use std::io::{BufWriter, Write};
use std::path::Path;

use cai_torchfile::{AtomicFile, DType, TensorSpec};

use crate::error::DataError;

/// Writes one safetensors file tensor by tensor.
pub(crate) struct StWriter {
    out: BufWriter<std::fs::File>,
    atomic: AtomicFile,
    specs: Vec<TensorSpec>,
    current: usize,
    written: u64,
    name: String,
}

fn dtype_code(d: DType) -> &'static str {
    match d {
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::F32 => "F32",
        DType::F64 => "F64",
        DType::I8 => "I8",
        DType::U8 => "U8",
        DType::I16 => "I16",
        DType::I32 => "I32",
        DType::I64 => "I64",
        DType::Bool => "BOOL",
    }
}

impl StWriter {
    /// Creates the temp file and writes the header.
    pub(crate) fn create(path: &Path, specs: Vec<TensorSpec>) -> Result<Self, DataError> {
        let name = path.display().to_string();
        let ioe = |e| DataError::io(&name, e);
        let atomic = AtomicFile::create(path).map_err(ioe)?;
        let mut out = BufWriter::with_capacity(1 << 20, atomic.try_clone_file().map_err(ioe)?);
        let mut header = serde_json::Map::new();
        let mut offset = 0u64;
        for s in &specs {
            let end = offset + s.byte_len();
            header.insert(
                s.name.clone(),
                serde_json::json!({"dtype": dtype_code(s.dtype), "shape": s.shape, "data_offsets": [offset, end]}),
            );
            offset = end;
        }
        let mut text = serde_json::to_string(&header).expect("json of plain values");
        let pad = (8 - text.len() % 8) % 8;
        text.extend(std::iter::repeat_n(' ', pad));
        out.write_all(&(text.len() as u64).to_le_bytes())
            .map_err(ioe)?;
        out.write_all(text.as_bytes()).map_err(ioe)?;
        let mut w = StWriter {
            out,
            atomic,
            specs,
            current: 0,
            written: 0,
            name,
        };
        w.skip_empty();
        Ok(w)
    }

    fn skip_empty(&mut self) {
        while self
            .specs
            .get(self.current)
            .is_some_and(|s| s.byte_len() == 0)
        {
            self.current += 1;
        }
    }

    /// The tensor the next bytes belong to.
    pub(crate) fn current(&self) -> Option<&TensorSpec> {
        self.specs.get(self.current)
    }

    /// Appends element bytes; may span tensor boundaries.
    pub(crate) fn write_bytes(&mut self, mut bytes: &[u8]) -> Result<(), DataError> {
        while !bytes.is_empty() {
            let total = self
                .current()
                .ok_or_else(|| {
                    DataError::Invalid(format!("{}: more data than the tensors declare", self.name))
                })?
                .byte_len();
            let take = ((total - self.written) as usize).min(bytes.len());
            self.out
                .write_all(&bytes[..take])
                .map_err(|e| DataError::io(&self.name, e))?;
            self.written += take as u64;
            bytes = &bytes[take..];
            if self.written == total {
                self.current += 1;
                self.written = 0;
                self.skip_empty();
            }
        }
        Ok(())
    }

    /// Checks completeness, flushes and renames into place.
    pub(crate) fn finish(mut self) -> Result<(), DataError> {
        if let Some(s) = self.current() {
            return Err(DataError::Invalid(format!(
                "{}: tensor {} got {} of {} bytes",
                self.name,
                s.name,
                self.written,
                s.byte_len()
            )));
        }
        self.out.flush().map_err(|e| DataError::io(&self.name, e))?;
        drop(self.out);
        self.atomic
            .commit()
            .map_err(|e| DataError::io(&self.name, e))
    }
}
