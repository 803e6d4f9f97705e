//! Partition files, the inference engine's input: the original's pickled
//! `TensorDataset` `.pt` files or native safetensors files, read a batch of rows at a
//! time without materialising the partition, plus the tools that make them
//! (`synth`, `split`, `convert`).

#![warn(missing_docs)]

mod error;
mod format;
#[doc(hidden)]
pub mod fuzz_support;
mod galaxy;
mod partition;
mod predictions;
mod safetensors_read;
mod safetensors_write;
mod synth;
mod torch_layout;
mod transform;
mod writer;

pub use error::DataError;
pub use format::Format;
pub use partition::{Batch, Partition};
pub use predictions::{
    parquet_row_count, read_parquet_predictions, PredictionFormat, PredictionMeta,
    PredictionWriter, META_MODEL, META_PRECISION, META_UNTRAINED,
};
pub use synth::{synth, synth_partition, SAMPLE_BYTES};
pub use transform::{convert, split};
pub use writer::PartitionWriter;

/// Progress callback: `(done, total)` in samples; called from worker threads.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);
