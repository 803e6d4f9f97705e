//! The integration tests of `cai-torchfile` in one test binary, so the crate and its
//! dependencies link once rather than once per file.

mod corpus_replay;
mod fixtures;
mod malformed;
mod roundtrip;
