//! A restricted pickle interpreter, written for this project because torch files come
//! from untrusted sources.
//!
//! It never executes anything: it understands the opcodes `torch.save` emits (pickle
//! protocols 2 to 5), builds an inert [`Value`] tree, and *interprets* (never calls) a
//! small allow-list of reconstructors: the torch tensor/parameter rebuild functions,
//! `collections.OrderedDict`, `builtins.set`/`frozenset` and the `copyreg` object
//! constructors. Any other global becomes an inert [`crate::Object`] carrying its
//! arguments and `BUILD` state. Every declared length is checked against the remaining
//! input, and stack, memo, value count and nesting depth are bounded, so hostile input
//! yields an error naming the byte offset instead of a panic or a huge allocation.

mod machine;
/// Opcode bytes, shared with the writer.
pub(crate) mod opcodes;
mod rebuild;
mod tree;

use crate::error::TorchError;
use crate::value::Value;

/// Resource bounds for one pickle; the defaults scale with the input length.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most values the interpreter may create.
    pub max_values: usize,
    /// Deepest nesting of containers in the result.
    pub max_depth: usize,
    /// Most values the result tree may hold after expanding shared references.
    pub max_expanded: usize,
}

impl Limits {
    /// Hard cap on values whatever the input length.
    const HARD_CAP: usize = 64 << 20;

    /// Bounds proportional to an input of `len` bytes.
    pub fn for_len(len: usize) -> Self {
        Limits {
            max_values: len.saturating_add(16).min(Self::HARD_CAP),
            max_depth: 200,
            max_expanded: len
                .saturating_mul(8)
                .saturating_add(4096)
                .min(Self::HARD_CAP),
        }
    }
}

/// Interprets a pickle stream with bounds derived from its length.
pub fn parse(data: &[u8]) -> Result<Value, TorchError> {
    parse_with_limits(data, Limits::for_len(data.len()))
}

/// Interprets a pickle stream with explicit bounds.
pub fn parse_with_limits(data: &[u8], limits: Limits) -> Result<Value, TorchError> {
    let mut m = machine::Machine::new(data, limits);
    let root = m.run()?;
    tree::materialise(m.nodes(), root, &limits)
}
