//! The integration tests of `cai-asl` in one test binary, so the crate and its
//! dependencies link once rather than once per file.

mod common;

mod choice;
mod io_processing;
mod map;
mod memory_s3;
mod refusals;
mod retry_catch;
