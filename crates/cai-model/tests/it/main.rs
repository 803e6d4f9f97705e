//! The integration tests of `cai-model` in one test binary, so the crate and its
//! dependencies link once rather than once per file.

mod full_config;
mod kernels;
mod parity;
mod precision;
