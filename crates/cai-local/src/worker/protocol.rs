//! The line protocol between the engine and a warm worker process (`cai worker`): one JSON
//! request per line on the worker's stdin, one JSON response per line on its response pipe
//! (its original stdout; the worker points its own stdout at stderr, so a stray print can
//! never corrupt a response). Logs go to stderr.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One invocation for the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// init, infer, failure or summarize.
    pub handler: String,
    /// The handler's event.
    pub event: Value,
}

/// The worker's answer: the handler's result, or Lambda's error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    /// The handler returned this.
    Ok(Value),
    /// The handler failed: `{"errorType", "errorMessage"}` as Lambda reports it.
    Error(Value),
}

/// Largest request or response line: Lambda's synchronous payload limit, plus framing.
pub const MAX_LINE_BYTES: usize = (6 << 20) + 1024;
