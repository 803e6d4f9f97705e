//! Weights as loaded from a file, before they become model modules.

use std::collections::BTreeMap;

/// One tensor, converted to f32 on load (checkpoints are f32, but f16/bf16/f64 files work too).
#[derive(Clone, Debug)]
pub struct RawTensor {
    /// Shape as stored in the file.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Everything a weight file provided: tensors by their checkpoint names, plus hints that
/// shapes cannot carry (the number of attention heads).
#[derive(Clone, Debug, Default)]
pub struct RawWeights {
    /// Tensors keyed by name, with any `module.` (DataParallel) prefix already removed.
    pub tensors: BTreeMap<String, RawTensor>,
    /// Attention heads if the file says so (a pickled module's `num_heads`, safetensors metadata).
    pub num_heads: Option<usize>,
    /// Where the weights came from, for messages.
    pub origin: String,
    /// True for seeded random weights: predictions from them are meaningless.
    pub untrained: bool,
}

impl RawWeights {
    /// Shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// Removes the DataParallel `module.` prefix when every name carries it.
    pub fn strip_data_parallel_prefix(&mut self) {
        if !self.tensors.is_empty() && self.tensors.keys().all(|k| k.starts_with("module.")) {
            let old = std::mem::take(&mut self.tensors);
            self.tensors = old
                .into_iter()
                .map(|(k, v)| (k["module.".len()..].to_string(), v))
                .collect();
        }
    }
}
