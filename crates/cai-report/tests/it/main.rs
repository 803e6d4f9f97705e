//! The integration tests of `cai-report` in one test binary: pages from result folders
//! written as cai writes them (support.rs), the original CAI's folders, and a 10,000-rank run.

mod support;

mod original;
mod page;
mod scale;
