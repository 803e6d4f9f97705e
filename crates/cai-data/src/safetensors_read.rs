//! The safetensors backend: header parsed once, rows sliced from a memory map (or
//! bytes in memory) and converted; consumed pages of a map are released.

use std::ops::Range;

use cai_torchfile::{decode_into, DType, Element};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::DataError;

/// The bytes of the file.
pub(crate) enum StBytes {
    /// A read-only map of the file.
    Map(Mmap),
    /// Bytes supplied by the caller.
    Mem(Box<dyn AsRef<[u8]> + Send + Sync>),
}

impl StBytes {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            StBytes::Map(m) => m,
            StBytes::Mem(b) => (**b).as_ref(),
        }
    }
}

/// Where one tensor lies in the file.
#[derive(Clone, Debug)]
pub(crate) struct StTensor {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    /// Absolute byte offset of the data.
    start: usize,
}

impl StTensor {
    fn row_bytes(&self) -> usize {
        self.shape.iter().skip(1).product::<usize>() * self.dtype.size()
    }
}

/// A parsed safetensors partition.
pub(crate) struct StFile {
    pub(crate) bytes: StBytes,
    pub(crate) tensors: Vec<(String, StTensor)>,
}

fn dtype(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

impl StFile {
    /// Parses and checks the header (the safetensors crate validates offsets).
    pub(crate) fn parse(file: &str, bytes: StBytes) -> Result<Self, DataError> {
        let data = bytes.bytes();
        let (header_len, meta) = SafeTensors::read_metadata(data)
            .map_err(|e| DataError::format(file, format!("safetensors header: {e}")))?;
        let base = 8usize
            .checked_add(header_len)
            .ok_or_else(|| DataError::format(file, "safetensors header length overflows"))?;
        let mut tensors = Vec::new();
        for (name, info) in meta.tensors() {
            let dt = dtype(info.dtype).ok_or_else(|| {
                DataError::layout(
                    file,
                    &name,
                    "a float or integer dtype",
                    format!("{:?}", info.dtype),
                )
            })?;
            let (a, b) = info.data_offsets;
            let numel = info
                .shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d));
            let fits = numel.and_then(|n| n.checked_mul(dt.size())) == Some(b.wrapping_sub(a))
                && a <= b
                && base.checked_add(b).is_some_and(|end| end <= data.len());
            if !fits {
                return Err(DataError::layout(
                    file,
                    &name,
                    "data offsets matching shape and dtype inside the file",
                    format!("shape {:?}, offsets {a}..{b}", info.shape),
                ));
            }
            tensors.push((
                name,
                StTensor {
                    dtype: dt,
                    shape: info.shape.clone(),
                    start: base + a,
                },
            ));
        }
        drop(meta);
        Ok(StFile { bytes, tensors })
    }

    /// Looks a tensor up by name.
    pub(crate) fn get(&self, name: &str) -> Option<&StTensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Rows of a contiguous tensor, converted, into the cleared `out`.
    pub(crate) fn read_rows<T: Element>(&self, t: &StTensor, rows: Range<usize>, out: &mut Vec<T>) {
        out.clear();
        let rb = t.row_bytes();
        let (a, b) = (t.start + rows.start * rb, t.start + rows.end * rb);
        decode_into(t.dtype, &self.bytes.bytes()[a..b], out);
        if let StBytes::Map(m) = &self.bytes {
            // SAFETY: the map is private and read-only; DONTNEED only drops cached pages,
            // which the kernel re-reads from the file if touched again.
            let _ =
                unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a) };
        }
    }
}
