//! One writer for both partition formats, streaming images, then magnitudes, then
//! redshifts, in the original dtypes (float32, float64, float32).

use std::path::Path;

use cai_torchfile::{DType, SaveLayout, TensorSpec, TorchWriter};

use crate::error::DataError;
use crate::format::Format;
use crate::safetensors_write::StWriter;

enum Inner {
    Torch(Box<TorchWriter>),
    Safetensors(StWriter),
}

/// Streams a partition to disk (atomically: temp file + rename on [`finish`]).
///
/// [`finish`]: PartitionWriter::finish
pub struct PartitionWriter {
    inner: Inner,
    name: String,
    /// (dtype, elements) per tensor, and progress through them.
    layout: Vec<(DType, usize)>,
    current: usize,
    done: usize,
}

impl PartitionWriter {
    /// Starts a partition of `rows` samples with `[C,H,W]` images, `mag_width`
    /// magnitudes and optionally redshifts. `.pt` files are pickled TensorDatasets
    /// (protocol 2, like the original) so real `torch.load` reads them.
    pub fn create(
        path: &Path,
        format: Format,
        rows: usize,
        image_shape: [usize; 3],
        mag_width: usize,
        redshifts: bool,
    ) -> Result<Self, DataError> {
        let name = path.display().to_string();
        let [c, h, w] = image_shape;
        let mut specs = vec![
            TensorSpec::new("images", DType::F32, vec![rows, c, h, w]),
            TensorSpec::new("magnitudes", DType::F64, vec![rows, mag_width]),
        ];
        if redshifts {
            specs.push(TensorSpec::new("redshifts", DType::F32, vec![rows]));
        }
        let layout = specs.iter().map(|s| (s.dtype, s.numel())).collect();
        let inner = match format {
            Format::Torch => Inner::Torch(Box::new(
                TorchWriter::create(path, SaveLayout::TensorDataset, specs, 2)
                    .map_err(|e| DataError::torch(&name, e))?,
            )),
            Format::Safetensors => Inner::Safetensors(StWriter::create(path, specs)?),
        };
        Ok(PartitionWriter {
            inner,
            name,
            layout,
            current: 0,
            done: 0,
        })
    }

    /// Elements of `want` that may be written before the current tensor is full.
    fn room(&mut self, want: DType) -> Result<usize, DataError> {
        while self
            .layout
            .get(self.current)
            .is_some_and(|&(_, n)| n == self.done)
        {
            self.current += 1;
            self.done = 0;
        }
        match self.layout.get(self.current) {
            Some(&(d, n)) if d == want => Ok(n - self.done),
            other => Err(DataError::Invalid(format!(
                "{}: writing {want:?} values but the next tensor is {:?}",
                self.name,
                other.map(|o| o.0)
            ))),
        }
    }

    fn write_bytes(&mut self, b: &[u8]) -> Result<(), DataError> {
        match &mut self.inner {
            Inner::Torch(w) => w
                .write_bytes(b)
                .map_err(|e| DataError::torch(&self.name, e)),
            Inner::Safetensors(w) => w.write_bytes(b),
        }
    }

    /// Appends image pixels or redshifts (float32 tensors).
    pub fn write_f32(&mut self, values: &[f32]) -> Result<(), DataError> {
        self.write_le(values, DType::F32, f32::to_le_bytes)
    }

    /// Appends magnitudes (the float64 tensor).
    pub fn write_f64(&mut self, values: &[f64]) -> Result<(), DataError> {
        self.write_le(values, DType::F64, f64::to_le_bytes)
    }

    /// Encodes values little-endian in chunks of 64 Ki elements and streams them out.
    fn write_le<T: Copy, const N: usize>(
        &mut self,
        values: &[T],
        dtype: DType,
        to_le: fn(T) -> [u8; N],
    ) -> Result<(), DataError> {
        let mut buf = Vec::with_capacity(values.len().min(1 << 16) * N);
        let mut rest = values;
        while !rest.is_empty() {
            let take = self.room(dtype)?.min(rest.len()).min(1 << 16);
            buf.clear();
            rest[..take]
                .iter()
                .for_each(|v| buf.extend_from_slice(&to_le(*v)));
            self.write_bytes(&buf)?;
            self.done += take;
            rest = &rest[take..];
        }
        Ok(())
    }

    /// Checks everything was written and moves the file into place.
    pub fn finish(self) -> Result<(), DataError> {
        match self.inner {
            Inner::Torch(w) => w.finish().map_err(|e| DataError::torch(&self.name, e)),
            Inner::Safetensors(w) => w.finish(),
        }
    }
}
