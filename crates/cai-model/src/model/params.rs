//! Hands checkpoint tensors to the modules that own them, by name.

use crate::weights::RawTensor;
use candle_core::{bail, Result};
use std::collections::BTreeMap;

/// Validated checkpoint tensors, taken (moved, not copied) by the modules as they are built,
/// the way candle's `VarBuilder` hands them out by prefix.
pub struct Params {
    tensors: BTreeMap<String, RawTensor>,
}

impl Params {
    /// Wraps tensors that [`crate::weights::validate`] accepted.
    pub fn new(tensors: BTreeMap<String, RawTensor>) -> Self {
        Self { tensors }
    }

    /// A view that prefixes every name with `prefix.`.
    pub fn pp<'a>(&'a mut self, prefix: &str) -> Scope<'a> {
        Scope {
            params: self,
            prefix: prefix.to_string(),
        }
    }
}

/// Names relative to a module path, e.g. `blocks.3` then `attn.qkv.weight`.
pub struct Scope<'a> {
    params: &'a mut Params,
    prefix: String,
}

impl Scope<'_> {
    /// A nested scope.
    pub fn pp(&mut self, name: &str) -> Scope<'_> {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        Scope {
            params: self.params,
            prefix,
        }
    }

    /// Takes a tensor out, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        match self.params.tensors.remove(&full) {
            Some(t) if t.shape == shape => Ok(t.data),
            Some(t) => bail!("{full}: expected shape {shape:?}, found {:?}", t.shape),
            None => bail!("{full}: missing (expected shape {shape:?})"),
        }
    }
}
