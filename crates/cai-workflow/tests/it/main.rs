//! The integration tests of `cai-workflow` in one test binary, so the crate and its
//! dependencies link once rather than once per file.

mod ownership;
mod payload_errors;
mod seed_report;
