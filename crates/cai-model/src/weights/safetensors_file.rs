//! Weights from a safetensors file, read through a memory map.

use super::{Depth, RawTensor, RawWeights, WeightError};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Reads every tensor, converting to f32 (with [`Depth::Structure`], only names, dtypes and
/// shapes, after the same header checks: no data page is touched); `num_heads` comes from
/// the metadata if present.
pub fn load(path: &Path, depth: Depth) -> Result<RawWeights, WeightError> {
    let file = std::fs::File::open(path).map_err(|e| WeightError::io(path, e))?;
    // SAFETY: the map is read-only and dropped before returning; a concurrent truncation of
    // the file by another process is the usual mmap caveat, accepted for weight files.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| WeightError::io(path, e))?;
    let bad = |msg: String| WeightError::Format {
        path: path.to_path_buf(),
        msg,
    };
    let (_, meta) = SafeTensors::read_metadata(&map)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let num_heads = match meta.metadata().as_ref().and_then(|m| m.get("num_heads")) {
        Some(v) => Some(v.parse().map_err(|_| {
            bad(format!(
                "metadata num_heads={v:?} is not a positive integer"
            ))
        })?),
        None => None,
    };
    let st =
        SafeTensors::deserialize(&map).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let mut out = RawWeights {
        num_heads,
        origin: path.display().to_string(),
        ..Default::default()
    };
    for (name, view) in st.tensors() {
        let bytes = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16 if depth == Depth::Structure => {
                Vec::new()
            }
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            // Integer tensors (BatchNorm's num_batches_tracked) carry no weights.
            Dtype::I64 | Dtype::I32 => continue,
            other => return Err(bad(format!("tensor {name}: unsupported dtype {other:?}"))),
        };
        out.tensors.insert(
            name,
            RawTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}
