//! The CAI workflow as data and plain functions: the user's payload, the Initialize plan, the
//! Amazon States Language definition, the three handlers (init, infer, summarize) and what they
//! write (per-rank results, predictions, `combined_data.json`, `summary.json`), and the Lambda
//! cost projection. Engines (local processes, AWS Lambda) only move events to these functions.
#![warn(missing_docs)]

pub mod accuracy;
pub mod cluster;
pub mod cost;
pub mod definition;
pub mod error;
pub mod handlers;
pub mod io;
pub mod keys;
pub mod layout;
pub mod lease;
pub mod order;
pub mod payload;
pub mod plan;
pub mod rank;
pub mod result;
pub mod settings;
pub mod summary;
pub mod usage;

pub use error::HandlerError;
pub use payload::{Payload, PayloadError};
pub use plan::Plan;
pub use rank::{DataPath, RankPayload};
pub use settings::RunSettings;
