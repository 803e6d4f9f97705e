//! The workflow's Lambda handlers as plain functions of (context, event) -> result, so the
//! local engine, the Lambda runtime and the tests all call the same code.

pub mod failure;
pub mod fault;
pub mod infer;
pub mod init;
pub mod summarize;
pub mod warm;

use std::path::PathBuf;

use cai_store::BlockingStore;
use serde_json::Value;

use crate::error::HandlerError;

/// What a handler may use besides its event.
pub struct HandlerContext {
    /// The store holding buckets (local folder or S3).
    pub store: BlockingStore,
    /// Threads for inference.
    pub threads: usize,
    /// Where remote partitions and weights are downloaded (`/tmp` on Lambda).
    pub scratch: PathBuf,
    /// The model loaded by an earlier invocation of this process (a warm Lambda container).
    pub models: warm::ModelCache,
}

impl HandlerContext {
    /// A context with a cold model cache.
    pub fn new(store: BlockingStore, threads: usize, scratch: PathBuf) -> Self {
        HandlerContext {
            store,
            threads,
            scratch,
            models: warm::ModelCache::default(),
        }
    }
}

/// The handlers a Task resource can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Initialize: payload -> plan.
    Init,
    /// Inference for one rank.
    Infer,
    /// Records why a rank failed for good.
    Failure,
    /// Summarize: rank results -> combined_data.json and summary.json.
    Summarize,
}

impl Handler {
    /// Every handler, in workflow order.
    pub const ALL: [Handler; 4] = [
        Handler::Init,
        Handler::Infer,
        Handler::Failure,
        Handler::Summarize,
    ];

    /// The name used in function names (`<stack>-<name>`) and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Init => "init",
            Handler::Infer => "infer",
            Handler::Failure => "failure",
            Handler::Summarize => "summarize",
        }
    }

    /// Parses a handler name.
    pub fn from_name(s: &str) -> Option<Handler> {
        Handler::ALL.into_iter().find(|h| h.name() == s)
    }

    /// Runs this handler on an event.
    pub fn call(self, ctx: &HandlerContext, event: Value) -> Result<Value, HandlerError> {
        match self {
            Handler::Init => init::handle(ctx, event),
            Handler::Infer => infer::handle(ctx, event),
            Handler::Failure => failure::handle(ctx, event),
            Handler::Summarize => summarize::handle(ctx, event),
        }
    }
}
