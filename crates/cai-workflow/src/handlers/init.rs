//! Initialize: validates the payload, lists the partitions completely, makes the plan, takes
//! the result path's lease, checks the weights, and writes the plan under this run's result
//! path, with every rank's payload as the Map's items object (`items.json`, read by the
//! Distributed Map's ItemReader). Returns the original's `statusCode`, a small reference to
//! the items, cai's run settings under `run`, where the plan is, the lease and the weights
//! check: nothing that grows with the world size.
//!
//! Order matters: everything before the lease only reads (the payload, the listing, the
//! plan), so a run refused because another holds the result path (`cai.RunInProgress`)
//! changes nothing of that run's; the weights are checked after the lease and before anything
//! is written, so a bad checkpoint fails the execution (`cai.InvalidModel`) before the Map
//! invokes a single rank, and releases the lease again.
//!
//! Event shapes: the generated definition passes `{"payload": <payload>, "rank_items": "s3",
//! "execution": $$.Execution.Id}`; a definition of the older inline shape passes the bare
//! payload and reads the rank payloads from the output's `body`, which Initialize then still
//! returns (such a definition fails on Step Functions' 256 KiB state limit past ~500 ranks, as
//! it always did). Either way the payload may carry two fields an engine adds and Initialize
//! removes before anything records the payload: `resume` and `cai_lease` (`run_id`: the
//! engine holds the lease under this run id; `take_over`: replace the lease of this run,
//! whose holder the caller found gone or the user said is).

use std::io::Write;
use std::time::Instant;

use serde_json::{json, Value};

use super::HandlerContext;
use crate::error::{kind, HandlerError};
use crate::layout;
use crate::lease::{self, Holder, LeaseError, Takeover};
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

/// What an engine asked of the lease, from the payload's `cai_lease`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// The engine holds the lease under this run id: accept it and run under that id.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Replace the lease of this run (its holder is gone, or the user said so).
    #[serde(default)]
    pub take_over: Option<String>,
}

/// Initialize's event, read.
struct InitEvent {
    payload: Payload,
    inline: bool,
    execution: Option<String>,
    lease: LeaseRequest,
}

/// Who releases the lease Initialize holds for this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Releaser {
    /// The engine that took it before the execution started.
    Engine,
    /// Summarize (Initialize took it for its execution); Initialize itself when it fails.
    Summarize,
}

impl Releaser {
    fn name(self) -> &'static str {
        match self {
            Releaser::Engine => "engine",
            Releaser::Summarize => "summarize",
        }
    }
}

/// The Initialize handler. `resume: true` (beside the payload, or in it) keeps ranks that
/// already have a valid result.
pub fn handle(ctx: &HandlerContext, event: Value) -> Result<Value, HandlerError> {
    let ev = read_event(event)?;
    let mut plan = plan_run(ctx, &ev.payload)?;
    let (releaser, lease) = take_lease(ctx, &ev, &plan)?;
    if let Some(l) = &lease {
        // A retried Initialize of the same execution carries on under the run id it took.
        plan.run.run_id = l.run_id().to_string();
    }
    match prepare(ctx, &ev, &plan, releaser) {
        Ok(out) => Ok(out),
        Err(e) => {
            // Failing for good (or without an execution id to adopt the lease by on a
            // retry): give the result path back.
            let retried = e.error_type == kind::STORE && ev.execution.is_some();
            if let (Some(lease), false) = (lease, retried) {
                if let Err(le) = lease.release() {
                    tracing::warn!("releasing the lease after failing: {le}");
                }
            }
            Err(e)
        }
    }
}

/// Everything after the lease: the weights check, the resume check, then the writes.
fn prepare(
    ctx: &HandlerContext,
    ev: &InitEvent,
    plan: &Plan,
    releaser: Releaser,
) -> Result<Value, HandlerError> {
    let model_check = check_model(ctx, &ev.payload)?;
    if ev.payload.settings.resume {
        check_same_plan(ctx, plan)?;
    }
    let items = write_items(ctx, plan)?;
    write_plan(ctx, plan)?;
    forget_previous_summary(ctx, plan)?;
    let result_path = &plan.rank_template.result_path;
    let mut out = json!({
        "statusCode": 200,
        "items": items,
        "run": plan.run,
        "plan": { "bucket": plan.rank_template.data_bucket, "key": layout::plan_key(result_path) },
        "lease": {
            "bucket": plan.rank_template.data_bucket,
            "key": layout::lease_key(result_path),
            "run_id": plan.run.run_id,
            "release": releaser.name(),
        },
        "model_check": model_check,
        "warnings": plan.warnings,
    });
    if ev.inline {
        out["body"] = Value::Array(
            plan.ranks()
                .map(|r| serde_json::to_value(r).expect("a rank payload serializes"))
                .collect(),
        );
    }
    Ok(out)
}

/// The payload (with this run's resume flag), whether the caller wants the rank payloads
/// inline (the older definition shape), the execution id and the engine's lease request.
fn read_event(event: Value) -> Result<InitEvent, HandlerError> {
    let (mut inner, outer_resume, inline, execution) = match event {
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
            let execution = match obj.remove("execution") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(other) => {
                    return Err(HandlerError::input(format!(
                        "Initialize event: field `execution`: expected the execution id ($$.Execution.Id), found {other}"
                    )))
                }
            };
            let payload = obj.remove("payload").ok_or_else(|| {
                HandlerError::input("Initialize event: field `payload` is missing: expected the workflow's payload object")
            })?;
            (payload, resume, false, execution)
        }
        other => (other, None, true, None),
    };
    let inner_resume = inner.as_object_mut().and_then(|o| o.remove("resume"));
    let resume = [outer_resume, inner_resume]
        .into_iter()
        .flatten()
        .any(|v| v.as_bool() == Some(true));
    let lease: LeaseRequest = match inner.as_object_mut().and_then(|o| o.remove("cai_lease")) {
        None => LeaseRequest::default(),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            HandlerError::input(format!(
                "payload: field `cai_lease`: {e} (it is set by cai's engines, not by hand)"
            ))
        })?,
    };
    let mut payload =
        Payload::from_value(&inner).map_err(|e| HandlerError::input(format!("payload: {e}")))?;
    payload.settings.resume = resume;
    payload.settings.run_id = lease.run_id.clone().unwrap_or_else(lease::new_run_id);
    Ok(InitEvent {
        payload,
        inline,
        execution,
        lease,
    })
}

/// The result path's lease: the engine's, checked to be still in place, or taken now for
/// this execution (refused with `cai.RunInProgress` while another run holds it). Returns who
/// releases it and, when Initialize took it, the lease.
fn take_lease(
    ctx: &HandlerContext,
    ev: &InitEvent,
    plan: &Plan,
) -> Result<(Releaser, Option<lease::Lease>), HandlerError> {
    let bucket = &plan.rank_template.data_bucket;
    let result_path = &plan.rank_template.result_path;
    if let Some(run_id) = &ev.lease.run_id {
        return match lease::read(&ctx.store, bucket, result_path).map_err(lease_error)? {
            Some(Ok(r)) if r.run_id == *run_id => Ok((Releaser::Engine, None)),
            Some(Ok(r)) => Err(lease_error(LeaseError::InUse {
                result: format!("{bucket}/{result_path}"),
                gone: r.gone(lease::now_unix()),
                current: Box::new(r),
            })),
            Some(Err(reason)) => Err(lease_error(LeaseError::Unreadable {
                result: format!("{bucket}/{result_path}"),
                reason,
            })),
            None => Err(lease_error(LeaseError::Lost {
                result: format!("{bucket}/{result_path}"),
                current: None,
            })),
        };
    }
    let ttl = lease::execution_ttl(&plan.run, plan.ranks_with_data());
    let holder = Holder::execution(ev.execution.clone(), ttl);
    let takeover = match (&ev.lease.take_over, ev.payload.settings.resume) {
        (Some(id), _) => Takeover::Break(Some(id.clone())),
        (None, true) => Takeover::IfStale,
        (None, false) => Takeover::Never,
    };
    let got = lease::acquire(
        &ctx.store,
        bucket,
        result_path,
        &plan.run.run_id,
        &holder,
        &takeover,
    )
    .map_err(lease_error)?;
    if let Some((old, why)) = &got.took_over {
        tracing::warn!(
            "took over the lease on {bucket}/{result_path} of run {} ({}){}",
            old.run_id,
            old.holder_text(),
            why.as_deref()
                .map_or_else(String::new, |w| format!(", which is gone: {w}"))
        );
    }
    Ok((Releaser::Summarize, Some(got.lease)))
}

/// A lease refusal is `cai.RunInProgress` (never retried: the other run will not be done
/// within a retry's backoff); a store failure is a store error, worth a retry.
fn lease_error(e: LeaseError) -> HandlerError {
    match e {
        LeaseError::Store { .. } => HandlerError::new(kind::STORE, e.to_string()),
        _ => HandlerError::new(kind::RUN_IN_PROGRESS, e.to_string()),
    }
}

/// The weights must be there and must load, before any rank is invoked: the checkpoint is
/// opened far enough to know it will load (its format, archive directory and pickle, or its
/// safetensors header; every tensor's name, dtype and shape against the architecture the
/// loader builds; see [`cai_model::inspect`]), read in place from a local store and
/// downloaded to scratch otherwise. Returns what was checked and how long it took.
fn check_model(ctx: &HandlerContext, payload: &Payload) -> Result<Value, HandlerError> {
    let crate::settings::ModelLocation::Store { bucket, key } = &payload.settings.model else {
        return Ok(Value::Null);
    };
    let bad = |detail: String| {
        HandlerError::new(
            kind::INVALID_MODEL,
            format!("model {bucket}/{key}: {detail}"),
        )
    };
    let t = Instant::now();
    let copy = crate::io::local_copy(&ctx.store, bucket, key, &ctx.scratch).map_err(|e| {
        if e.is_not_found() {
            bad(
                "not found in the store (put the weights there, set `model` to another \
                 BUCKET/KEY, or to \"seed:0\" for seeded untrained weights)"
                    .into(),
            )
        } else {
            HandlerError::store(e)
        }
    })?;
    let fetch_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let source = cai_model::WeightSource::File(copy.path().to_path_buf());
    let found = cai_model::inspect(&source).map_err(|e| bad(e.detail()))?;
    let seconds = t.elapsed().as_secs_f64();
    tracing::info!(
        "model {bucket}/{key}: {} tensors, {} parameters, checked in {:.1} ms (fetch {:.1} ms)",
        found.tensors,
        found.parameters,
        seconds * 1e3,
        fetch_seconds * 1e3
    );
    Ok(json!({
        "model": format!("{bucket}/{key}"),
        "tensors": found.tensors,
        "parameters": found.parameters,
        "unexpected": found.unexpected,
        "seconds": seconds,
        "fetch_seconds": fetch_seconds,
    }))
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
