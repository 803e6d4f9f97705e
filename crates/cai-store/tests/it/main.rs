//! The integration tests of `cai-store` in one test binary, so the crate and its
//! dependencies link once rather than once per file.

mod conditional;
mod config;
mod local_store;
mod traversal;
mod validate;
