//! Reading and writing PyTorch `torch.save` files without Python.
//!
//! Partition files and model checkpoints arrive from untrusted places, so this crate
//! never runs Python code: [`pickle`] is a restricted interpreter that builds an inert
//! [`Value`] tree, [`TorchFile`] maps the zip archive that `torch.save` writes (since
//! torch 1.6) and reads tensor payloads on demand with positional reads, and
//! [`TorchWriter`] streams `torch.load`-compatible files.

#![warn(missing_docs)]

mod archive;
mod atomic;
mod dtype;
mod error;
#[doc(hidden)]
pub mod fuzz_support;
mod names;
pub mod pickle;
mod read;
mod source;
mod value;
mod write;

pub use archive::{Entry, TorchFile};
pub use atomic::AtomicFile;
pub use dtype::{decode_into, DType, Element};
pub use error::TorchError;
pub use names::{lookup, named_tensors};
pub use source::{ByteSource, FileSource, MemSource};
pub use value::{Global, Object, StorageRef, TensorRef, Value};
pub use write::{SaveLayout, TensorSpec, TorchWriter};
