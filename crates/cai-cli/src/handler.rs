//! `cai handler NAME`: serves one invocation of a workflow handler the way the local engine
//! runs it, as its own process: the event on stdin, the result on stdout, or Lambda's error
//! body (`errorType`, `errorMessage`) on stdout with exit status 1. Not for people; hidden.

use std::io::{Read, Write};
use std::process::ExitCode;

use cai_store::{BlockingStore, StoreConfig, STORE_ENV_VAR};
use cai_workflow::handlers::{Handler, HandlerContext};
use cai_workflow::HandlerError;

/// Largest event accepted: Lambda's synchronous invocation payload limit.
const MAX_EVENT_BYTES: u64 = 6 << 20;

/// Runs the handler named `name` on the event read from stdin.
pub fn run(name: &str) -> ExitCode {
    crate::common::exit_with_parent();
    match serve(name) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let body = serde_json::to_string(&e).unwrap_or_default();
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(body.as_bytes());
            let _ = stdout.flush();
            eprintln!("{}: {}", e.error_type, e.error_message);
            ExitCode::from(1)
        }
    }
}

fn serve(name: &str) -> Result<String, HandlerError> {
    let handler = Handler::from_name(name).ok_or_else(|| {
        HandlerError::input(format!(
            "unknown handler {name:?}: expected init, infer, failure or summarize"
        ))
    })?;
    let mut text = Vec::new();
    std::io::stdin()
        .take(MAX_EVENT_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| HandlerError::input(format!("reading the event from stdin: {e}")))?;
    if text.len() as u64 > MAX_EVENT_BYTES {
        return Err(HandlerError::input(format!(
            "the event is over {MAX_EVENT_BYTES} bytes"
        )));
    }
    let event = serde_json::from_slice(&text)
        .map_err(|e| HandlerError::input(format!("the event is not JSON: {e}")))?;
    let ctx = context_from_env()?;
    let out = handler.call(&ctx, event)?;
    serde_json::to_string(&out)
        .map_err(|e| HandlerError::new(cai_workflow::error::kind::INTERNAL, e.to_string()))
}

/// The handler context an engine's child process gets: the store from `CAI_STORE`, inference
/// threads from `CAI_THREADS` (else every core), scratch from `CAI_SCRATCH` (else the system's
/// temporary folder).
pub fn context_from_env() -> Result<HandlerContext, HandlerError> {
    let config = StoreConfig::from_env()
        .map_err(|e| HandlerError::input(format!("{STORE_ENV_VAR}: {e}")))?;
    let store = BlockingStore::open(config).map_err(HandlerError::store)?;
    let threads = std::env::var("CAI_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| crate::common::threads(None));
    Ok(HandlerContext::new(
        store,
        threads,
        std::env::var_os("CAI_SCRATCH").map_or_else(std::env::temp_dir, Into::into),
    ))
}
