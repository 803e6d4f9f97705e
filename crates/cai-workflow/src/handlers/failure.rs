//! Records why a rank failed for good (after its retries), so Summarize, the exit code and
//! the user can name every failed rank and its error. Reached through the inference Task's
//! Catch; the item then ends in a Fail state so the Map counts it against its tolerance.

use serde::Deserialize;
use serde_json::Value;

use super::HandlerContext;
use crate::error::HandlerError;
use crate::io;
use crate::layout;
use crate::rank::RankPayload;
use crate::result::{AttemptMarker, RankFailure};
use crate::settings::RunSettings;

/// The Catch's output: the item's input with the error at `error`.
#[derive(Debug, Deserialize)]
struct FailureEvent {
    payload: RankPayload,
    run: RunSettings,
    error: CaughtError,
}

/// Step Functions' error object.
#[derive(Debug, Deserialize)]
struct CaughtError {
    #[serde(rename = "Error")]
    error: String,
    #[serde(rename = "Cause", default)]
    cause: String,
}

/// The failure handler: writes `errors/<rank>.json` and returns it.
pub fn handle(ctx: &HandlerContext, event: Value) -> Result<Value, HandlerError> {
    let ev: FailureEvent = serde_json::from_value(event)
        .map_err(|e| HandlerError::input(format!("failure event: {e}")))?;
    let p = &ev.payload;
    let rank = p.rank_number().map_err(HandlerError::input)?;
    crate::keys::bucket("DATA_BUCKET", &p.data_bucket).map_err(HandlerError::input)?;
    crate::keys::key("RESULT_PATH", &p.result_path).map_err(HandlerError::input)?;
    let marker: Option<AttemptMarker> = io::read_json(
        &ctx.store,
        &p.data_bucket,
        &layout::attempt_key(&p.result_path, rank),
    )
    .unwrap_or(None);
    let failure = RankFailure {
        rank,
        data_path: p.data_path.clone(),
        error: ev.error.error,
        cause: lambda_cause(&ev.error.cause),
        attempts: marker.map_or(1, |m| m.attempt),
        run_id: ev.run.run_id.clone(),
    };
    io::write_json(
        &ctx.store,
        &p.data_bucket,
        &layout::error_key(&p.result_path, rank),
        &failure,
    )?;
    serde_json::to_value(&failure).map_err(|e| HandlerError::input(e.to_string()))
}

/// Lambda wraps a function error's cause as its JSON error body; unwrap the message.
fn lambda_cause(cause: &str) -> String {
    serde_json::from_str::<HandlerError>(cause)
        .map_or_else(|_| cause.to_string(), |e| e.error_message)
}
