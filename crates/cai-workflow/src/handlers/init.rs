//! Initialize: validates the payload, lists the partitions completely, makes the plan and
//! writes it under this run's result path, with every rank's payload as the Map's items
//! object (`items.json`, read by the Distributed Map's ItemReader). Returns the original's
//! `statusCode`, a small reference to the items, cai's run settings under `run`, and where the
//! plan is: nothing that grows with the world size.
//!
//! Two event shapes: the generated definition passes `{"payload": <payload>, "rank_items":
//! "s3"}`; a definition of the older inline shape passes the bare payload and reads the rank
//! payloads from the output's `body`, which Initialize then still returns (such a definition
//! fails on Step Functions' 256 KiB state limit past ~500 ranks, as it always did).

use std::io::Write;

use serde_json::{json, Value};

use super::HandlerContext;
use crate::error::{kind, HandlerError};
use crate::layout;
use crate::payload::Payload;
use crate::plan::{digest_of, make_plan, Plan};
use crate::rank::RankPayload;

/// Where Initialize wrote the Map's items, as its output names them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemsRef {
    /// The data bucket.
    pub bucket: String,
    /// `<result_path>/items.json`.
    pub key: String,
    /// Items (ranks) in it.
    pub count: u64,
    /// Of those, ranks with at least one partition file.
    pub with_data: u64,
}

/// The Initialize handler. `resume: true` (beside the payload, or in it) keeps ranks that
/// already have a valid result.
pub fn handle(ctx: &HandlerContext, event: Value) -> Result<Value, HandlerError> {
    let (payload, inline) = read_event(event)?;
    check_model(ctx, &payload)?;
    let plan = plan_run(ctx, &payload)?;
    if payload.settings.resume {
        check_same_plan(ctx, &plan)?;
    }
    let items = write_items(ctx, &plan)?;
    write_plan(ctx, &plan)?;
    forget_previous_summary(ctx, &plan)?;
    let mut out = json!({
        "statusCode": 200,
        "items": items,
        "run": plan.run,
        "plan": { "bucket": plan.rank_template.data_bucket, "key": layout::plan_key(&plan.rank_template.result_path) },
        "warnings": plan.warnings,
    });
    if inline {
        out["body"] = Value::Array(
            plan.ranks()
                .map(|r| serde_json::to_value(r).expect("a rank payload serializes"))
                .collect(),
        );
    }
    Ok(out)
}

/// The payload (with this run's id and resume flag) and whether the caller wants the rank
/// payloads inline (the older definition shape).
fn read_event(event: Value) -> Result<(Payload, bool), HandlerError> {
    let (mut inner, outer_resume, inline) = match event {
        Value::Object(mut obj) if obj.get("rank_items").is_some() => {
            match obj.remove("rank_items") {
                Some(Value::String(s)) if s == "s3" => {}
                other => {
                    return Err(HandlerError::input(format!(
                        "Initialize event: field `rank_items`: expected \"s3\", found {}",
                        other.unwrap_or(Value::Null)
                    )))
                }
            }
            let resume = obj.remove("resume");
            let payload = obj.remove("payload").ok_or_else(|| {
                HandlerError::input("Initialize event: field `payload` is missing: expected the workflow's payload object")
            })?;
            (payload, resume, false)
        }
        other => (other, None, true),
    };
    let inner_resume = inner.as_object_mut().and_then(|o| o.remove("resume"));
    let resume = [outer_resume, inner_resume]
        .into_iter()
        .flatten()
        .any(|v| v.as_bool() == Some(true));
    let mut payload =
        Payload::from_value(&inner).map_err(|e| HandlerError::input(format!("payload: {e}")))?;
    payload.settings.resume = resume;
    payload.settings.run_id = new_run_id();
    Ok((payload, inline))
}

/// The weights must be there before any rank is invoked.
fn check_model(ctx: &HandlerContext, payload: &Payload) -> Result<(), HandlerError> {
    if let crate::settings::ModelLocation::Store { bucket, key } = &payload.settings.model {
        if !crate::io::exists(&ctx.store, bucket, key)? {
            return Err(HandlerError::input(format!(
                "model {bucket}/{key}: not found in the store (put the weights there, set `model` \
                 to another BUCKET/KEY, or to \"seed:0\" for seeded untrained weights)"
            )));
        }
    }
    Ok(())
}

/// Lists the partitions completely and plans the ranks.
fn plan_run(ctx: &HandlerContext, payload: &Payload) -> Result<Plan, HandlerError> {
    let listing = crate::io::list_keys(&ctx.store, &payload.data_bucket, &payload.data_prefix)?;
    let plan = make_plan(payload, &listing).map_err(|e| HandlerError::input(e.to_string()))?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    Ok(plan)
}

/// `--resume` needs the plan the earlier run made: same files, world size and order.
fn check_same_plan(ctx: &HandlerContext, plan: &Plan) -> Result<(), HandlerError> {
    let bucket = &plan.rank_template.data_bucket;
    let key = layout::plan_key(&plan.rank_template.result_path);
    let Some(old) = crate::io::read_json::<Value>(&ctx.store, bucket, &key)? else {
        return Ok(());
    };
    let old_digest = match (old.get("ranks_sha256"), old.get("ranks")) {
        (Some(Value::String(d)), _) => d.clone(),
        // A plan.json of an older cai, which listed every rank.
        (_, Some(ranks)) => {
            let ranks: Vec<RankPayload> = serde_json::from_value(ranks.clone())
                .map_err(|e| HandlerError::input(format!("{bucket}/{key}: field `ranks`: {e}")))?;
            digest_of(ranks)
        }
        _ => {
            return Err(HandlerError::input(format!(
                "{bucket}/{key}: neither `ranks_sha256` nor `ranks`: not a plan cai wrote"
            )))
        }
    };
    if old_digest != plan.ranks_sha256 {
        return Err(HandlerError::input(format!(
            "--resume: the plan in {bucket}/{key} differs from this payload's (other files, \
             world size or order); resume needs the same plan, or use a new result_path"
        )));
    }
    Ok(())
}

/// Streams every rank's payload into `items.json` (a JSON array, one element per line), so
/// memory does not grow with the world size; the object appears whole or not at all.
fn write_items(ctx: &HandlerContext, plan: &Plan) -> Result<ItemsRef, HandlerError> {
    let bucket = &plan.rank_template.data_bucket;
    let key = plan.items_key();
    let io_error =
        |e: std::io::Error| HandlerError::new(kind::STORE, format!("{bucket}/{key}: {e}"));
    let mut w = ctx
        .store
        .bucket(bucket)
        .and_then(|b| b.writer(&key))
        .map_err(HandlerError::store)?;
    w.write_all(b"[\n").map_err(io_error)?;
    for (i, rank) in plan.ranks().enumerate() {
        if i > 0 {
            w.write_all(b",\n").map_err(io_error)?;
        }
        serde_json::to_writer(&mut w, &rank).map_err(|e| io_error(e.into()))?;
    }
    w.write_all(b"\n]\n").map_err(io_error)?;
    w.finish().map_err(HandlerError::store)?;
    Ok(ItemsRef {
        bucket: bucket.clone(),
        key,
        count: plan.world_size,
        with_data: plan.ranks_with_data(),
    })
}

fn write_plan(ctx: &HandlerContext, plan: &Plan) -> Result<(), HandlerError> {
    crate::io::write_json(
        &ctx.store,
        &plan.rank_template.data_bucket,
        &layout::plan_key(&plan.rank_template.result_path),
        plan,
    )
}

/// A new execution makes the previous summary stale: remove it so a failure later in this
/// run cannot leave an earlier run's "succeeded" in place.
fn forget_previous_summary(ctx: &HandlerContext, plan: &Plan) -> Result<(), HandlerError> {
    let result_path = &plan.rank_template.result_path;
    for key in [
        layout::summary_key(result_path),
        layout::combined_key(result_path),
    ] {
        crate::io::delete(&ctx.store, &plan.rank_template.data_bucket, &key)?;
    }
    Ok(())
}

/// A run id unique enough to tell executions apart under one result path: start time in
/// nanoseconds and the process id.
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}
