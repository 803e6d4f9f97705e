//! The integration tests of `cai-aws` in one test binary, so the crate and its
//! dependencies link once rather than once per file.

mod support;

mod moto_deploy;
