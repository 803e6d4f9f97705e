//! Weights from PyTorch `.pt` files: a `state_dict`, or the original checkpoint, a pickled
//! whole `nn.DataParallel` module, read through `cai-torchfile`'s restricted unpickler
//! (nothing in the file is ever executed).

use super::{Depth, RawTensor, RawWeights, WeightError};
use cai_torchfile::{lookup, DType, TorchError, TorchFile, Value};
use std::path::Path;

/// Reads every floating-point tensor (with [`Depth::Structure`], only their names and shapes:
/// opening the file already checked the archive, the pickle and every storage's size);
/// `num_heads` from the pickled attention module when the file is a whole module (a state
/// dict cannot say it).
pub fn load(path: &Path, depth: Depth) -> Result<RawWeights, WeightError> {
    let bad = |msg: String| WeightError::Format {
        path: path.to_path_buf(),
        msg,
    };
    let file = TorchFile::open(path).map_err(|e| bad(without_file(path, &e)))?;
    let mut out = RawWeights {
        origin: path.display().to_string(),
        ..Default::default()
    };
    for (name, t) in file.named_tensors() {
        // BatchNorm's num_batches_tracked is an integer counter, not a weight.
        if !matches!(t.dtype, DType::F16 | DType::BF16 | DType::F32 | DType::F64) {
            continue;
        }
        if out.tensors.contains_key(&name) {
            continue;
        }
        let data = match depth {
            Depth::Values => file
                .read_all_f32(&t)
                .map_err(|e| bad(format!("tensor {name}: {}", without_file(path, &e))))?,
            Depth::Structure => Vec::new(),
        };
        out.tensors.insert(
            name,
            RawTensor {
                shape: t.shape.clone(),
                data,
            },
        );
    }
    if out.tensors.is_empty() {
        return Err(bad(
            "no tensors found: expected a state_dict or a pickled nn.Module".into(),
        ));
    }
    out.num_heads = ["module.blocks.0.attn.num_heads", "blocks.0.attn.num_heads"]
        .iter()
        .find_map(|p| match lookup(file.root(), p) {
            Some(Value::Int(n)) if *n > 0 => Some(*n as usize),
            _ => None,
        });
    Ok(out)
}

/// A torch error's text without the leading file name, which [`WeightError`] adds itself (so
/// the path is named once).
fn without_file(path: &Path, e: &TorchError) -> String {
    let text = e.to_string();
    let name = path.display().to_string();
    text.strip_prefix(&name)
        .and_then(|rest| rest.strip_prefix(": "))
        .map_or_else(|| text.clone(), str::to_string)
}
