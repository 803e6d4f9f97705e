//! Why a report could not be made, naming the run, file or figure concerned.

/// A report error.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] cai_store::StoreError),
    /// A result file is not what cai or the original CAI writes.
    #[error("{file}: {why}")]
    Invalid {
        /// `bucket/key` of the file.
        file: String,
        /// What is wrong with it.
        why: String,
    },
    /// Nothing under the result path that the report can read.
    #[error(
        "{0}: no results there (no combined_data.json, summary.json, plan.json or <rank>.json)"
    )]
    NoResults(String),
    /// Plotting failed (a bug: figures are drawn from checked, finite data).
    #[error("drawing figure {figure}: {why}")]
    Draw {
        /// The figure's id.
        figure: String,
        /// The plotting library's error.
        why: String,
    },
}
