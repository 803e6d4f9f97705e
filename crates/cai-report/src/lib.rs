//! `cai report`: a run (or several) as pictures in one self-contained HTML page.
//!
//! Astronomers judge a redshift run by looking at it, and the platform by how time,
//! throughput and cost move with data and world size. This crate reads what cai (or the
//! original CAI) wrote under a result path, reduces it (predictions are binned as they
//! stream, so a run of thousands of ranks reports in seconds), draws the figures with
//! plotters' SVG backend, and lays them out in a page with inline SVG and CSS only:
//! readable offline, printable, and a few MB at most.
//!
//! [`load_run`] reads one run from a store; [`build`] makes the page and the figures.
#![warn(missing_docs)]

pub mod accuracy;
pub mod error;
pub mod figures;
pub mod format;
mod load;
pub mod page;
pub mod report;
pub mod run;
pub mod scaling;
pub mod timeline;

pub use error::ReportError;
pub use load::load_run;
pub use report::{build, Options, Report};
pub use run::{Origin, RunData};
