//! Initialize: validates the payload, lists the partitions completely, makes the plan and
//! writes it under this run's result path. Returns the original's `{statusCode, body}` with
//! the rank payloads, plus cai's run settings under `run`.

use serde_json::{json, Value};

use super::HandlerContext;
use crate::error::HandlerError;
use crate::layout;
use crate::payload::Payload;
use crate::plan::make_plan;

/// The Initialize handler. The event is the user's payload; `resume: true` may be added by
/// the engine to keep ranks that already have a valid result.
pub fn handle(ctx: &HandlerContext, event: Value) -> Result<Value, HandlerError> {
    let resume = event
        .get("resume")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut event = event;
    if let Some(obj) = event.as_object_mut() {
        obj.remove("resume");
    }
    let mut payload =
        Payload::from_value(&event).map_err(|e| HandlerError::input(format!("payload: {e}")))?;
    payload.settings.resume = resume;
    payload.settings.run_id = new_run_id();
    if let crate::settings::ModelLocation::Store { bucket, key } = &payload.settings.model {
        if !crate::io::exists(&ctx.store, bucket, key)? {
            return Err(HandlerError::input(format!(
                "model {bucket}/{key}: not found in the store (put the weights there, set `model` \
                 to another BUCKET/KEY, or to \"seed:0\" for seeded untrained weights)"
            )));
        }
    }
    let listing = crate::io::list_keys(&ctx.store, &payload.data_bucket, &payload.data_prefix)?;
    let plan = make_plan(&payload, &listing).map_err(|e| HandlerError::input(e.to_string()))?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let plan_key = layout::plan_key(&payload.result_path);
    if resume {
        if let Some(old) =
            crate::io::read_json::<crate::plan::Plan>(&ctx.store, &payload.data_bucket, &plan_key)?
        {
            if old.ranks != plan.ranks {
                return Err(HandlerError::input(format!(
                    "--resume: the plan in {}/{plan_key} differs from this payload's (other files, \
                     world size or order); resume needs the same plan, or use a new result_path",
                    payload.data_bucket
                )));
            }
        }
    }
    crate::io::write_json(&ctx.store, &payload.data_bucket, &plan_key, &plan)?;
    // A new execution makes the previous summary stale: remove it so a failure later in this
    // run cannot leave an earlier run's "succeeded" in place.
    for key in [
        layout::summary_key(&payload.result_path),
        layout::combined_key(&payload.result_path),
    ] {
        crate::io::delete(&ctx.store, &payload.data_bucket, &key)?;
    }
    Ok(json!({
        "statusCode": 200,
        "body": plan.ranks,
        "run": plan.run,
        "plan": { "bucket": payload.data_bucket, "key": plan_key },
        "warnings": plan.warnings,
    }))
}

/// A run id unique enough to tell executions apart under one result path: start time in
/// nanoseconds and the process id.
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}
