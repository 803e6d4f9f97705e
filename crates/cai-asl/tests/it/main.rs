//! The integration tests of `cai-asl` in one test binary, so the crate and its
//! dependencies link once rather than once per file.

mod common;

mod choice;
mod data_limit;
mod express;
mod io_processing;
mod item_batcher;
mod item_reader;
mod map;
mod memory_s3;
mod refusals;
mod result_writer;
mod retry_catch;
mod scale;
