//! Summarize: combines this run's rank results, taken from the run's plan (never from a
//! prefix listing, which bleeds into other runs), checks that every planned sample appears
//! exactly once in the predictions, computes accuracy, and writes `combined_data.json` and
//! `summary.json`.

use std::collections::{HashMap, HashSet};

use cai_data::read_parquet_predictions;
use serde_json::{json, Value};

use super::infer::{is_valid_for, partitions_unchanged, InferEvent, MAX_PREDICTIONS_BYTES};
use super::HandlerContext;
use crate::error::{kind, HandlerError};
use crate::io;
use crate::layout;
use crate::plan::Plan;
use crate::result::{RankFailure, RankResult};
use crate::summary::{AccuracyReport, FailedRank, RankCounts, Summary, Totals};

/// The Summarize handler. The event is the workflow state after the Map: it names the plan
/// (`plan.bucket`, `plan.key`) and may carry the Map's error (`map_error`).
pub fn handle(ctx: &HandlerContext, event: Value) -> Result<Value, HandlerError> {
    let bucket = str_at(&event, "/plan/bucket")?;
    let key = str_at(&event, "/plan/key")?;
    crate::keys::bucket("plan.bucket", bucket).map_err(HandlerError::input)?;
    crate::keys::key("plan.key", key).map_err(HandlerError::input)?;
    let plan: Plan = io::read_json(&ctx.store, bucket, key)?
        .ok_or_else(|| HandlerError::input(format!("{bucket}/{key}: plan not found")))?;
    let run_id = event
        .pointer("/run/run_id")
        .and_then(Value::as_str)
        .unwrap_or(&plan.run.run_id)
        .to_string();
    let summary = summarize(ctx, &plan, &run_id, event.get("map_error").cloned())?;
    Ok(json!({
        "status": summary.status,
        "samples": summary.totals.samples,
        "ranks": summary.ranks,
        "failed_ranks": summary.failed_ranks.iter().map(|f| f.rank).collect::<Vec<_>>(),
        "summary": { "bucket": summary.data_bucket, "key": layout::summary_key(&summary.result_path) },
    }))
}

/// Builds and writes `combined_data.json` and `summary.json` for a plan.
pub fn summarize(
    ctx: &HandlerContext,
    plan: &Plan,
    run_id: &str,
    map_error: Option<Value>,
) -> Result<Summary, HandlerError> {
    let first = plan
        .ranks
        .first()
        .ok_or_else(|| HandlerError::input("the plan has no ranks"))?;
    let (bucket, result_path) = (first.data_bucket.clone(), first.result_path.clone());
    let mut counts = RankCounts {
        planned: plan.ranks.len() as u64,
        ..RankCounts::default()
    };
    let mut totals = Totals::default();
    let mut combined: Vec<RankResult> = Vec::new();
    let mut failed = Vec::new();
    // (file id, row) pairs seen so far; file names are interned so 660k samples stay small.
    let mut file_ids: HashMap<String, u32> = HashMap::new();
    let mut seen: HashSet<(u32, u64)> = HashSet::new();
    let (mut pred, mut truth) = (Vec::new(), Vec::new());
    let mut untrained = false;

    for rp in &plan.ranks {
        let rank = rp.rank_number().map_err(HandlerError::input)?;
        if rp.data_path.is_empty() {
            counts.empty += 1;
            continue;
        }
        let ev = InferEvent {
            payload: rp.clone(),
            run: plan.run.clone(),
            attempt: 0,
        };
        let stored: Option<RankResult> = match io::read_json(
            &ctx.store,
            &bucket,
            &layout::rank_result_key(&result_path, rank),
        ) {
            Ok(r) => r,
            Err(e) if e.error_type == kind::INVALID_INPUT => None,
            Err(e) => return Err(e),
        };
        let result =
            stored.filter(|r| is_valid_for(r, &ev) && (plan.run.resume || r.run_id == run_id));
        let Some(r) = result else {
            failed.push(failure_of(
                ctx,
                &bucket,
                &result_path,
                rank,
                rp.data_path.clone(),
                run_id,
            ));
            continue;
        };
        // take_predictions reads the whole file and checks its rows, so only the partitions'
        // identity is checked separately (one read of each predictions file).
        let checked = match partitions_unchanged(ctx, &r)? {
            Ok(()) => take_predictions(ctx, &r, &mut file_ids, &seen),
            Err(reason) => Err(reason),
        };
        let rows = match checked {
            Ok(rows) => rows,
            Err(reason) => {
                failed.push(FailedRank {
                    rank,
                    data_path: rp.data_path.clone(),
                    error: "cai.InvalidResult".into(),
                    cause: format!("{reason}; rerun the rank (cai run --resume recomputes it)"),
                    attempts: r.attempts,
                });
                continue;
            }
        };
        for (id, row, z, t) in rows {
            seen.insert((id, row));
            if let Some(t) = t {
                pred.push(z);
                truth.push(t);
            }
        }
        counts.succeeded += 1;
        if r.run_id != run_id {
            counts.resumed += 1;
        }
        untrained |= r.untrained;
        totals.samples += r.samples;
        totals.bits += r.bits;
        totals.inference_seconds += r.timings.inference;
        totals.rank_wall_seconds += r.wall_seconds;
        totals.cpu_seconds += r.total_cpu_time;
        totals.max_peak_rss_mb = totals.max_peak_rss_mb.max(r.peak_rss_mb);
        totals.samples_per_inference_second += r.sample_persec;
        combined.push(r);
    }
    counts.failed = failed.len() as u64;
    totals.planned_files = plan.files.len() as u64;
    let accuracy = cai_model::metrics::accuracy(&pred, &truth).map(|a| AccuracyReport {
        count: a.count as u64,
        mae: a.mae,
        mse: a.mse,
        bias: a.bias,
        nmad: a.nmad,
        r2: a.r2,
        outlier_fraction: a.outlier_fraction,
    });
    let status = if failed.is_empty() && map_error.is_none() {
        "succeeded"
    } else if counts.succeeded > 0 {
        "partial"
    } else {
        "failed"
    };
    let summary = Summary {
        run_id: run_id.to_string(),
        status: status.into(),
        data_bucket: bucket.clone(),
        result_path: result_path.clone(),
        ranks: counts,
        totals,
        accuracy,
        untrained,
        failed_ranks: failed,
        map_error,
        execution: None,
        performance: Vec::new(),
    };
    io::write_json(
        &ctx.store,
        &bucket,
        &layout::combined_key(&result_path),
        &combined,
    )?;
    io::write_json(
        &ctx.store,
        &bucket,
        &layout::summary_key(&result_path),
        &summary,
    )?;
    Ok(summary)
}

/// One rank's prediction rows, checked: only its own files, no (file, row) twice (within
/// the rank or already counted for another), one row per sample. `Err(reason)` otherwise,
/// and nothing of the rank is counted.
#[allow(clippy::type_complexity)]
fn take_predictions(
    ctx: &HandlerContext,
    r: &RankResult,
    file_ids: &mut HashMap<String, u32>,
    seen: &HashSet<(u32, u64)>,
) -> Result<Vec<(u32, u64, f32, Option<f32>)>, String> {
    let bytes = ctx
        .store
        .bucket(&r.predictions.bucket)
        .and_then(|b| b.get_capped(&r.predictions.key, MAX_PREDICTIONS_BYTES))
        .map_err(|e| e.to_string())?;
    let files: HashSet<&str> = r.files.iter().map(|f| f.key.as_str()).collect();
    let mut rows = Vec::with_capacity(r.samples as usize);
    let mut mine: HashSet<(u32, u64)> = HashSet::with_capacity(r.samples as usize);
    let mut problem: Option<String> = None;
    read_parquet_predictions(&r.predictions.key, bytes, |file, row, z, t| {
        if problem.is_some() {
            return;
        }
        if !files.contains(file) {
            problem = Some(format!(
                "predictions for {file}, which is not in the rank's DATA_PATH"
            ));
            return;
        }
        let id = match file_ids.get(file) {
            Some(&id) => id,
            None => {
                let id = file_ids.len() as u32;
                file_ids.insert(file.to_string(), id);
                id
            }
        };
        if seen.contains(&(id, row)) || !mine.insert((id, row)) {
            problem = Some(format!(
                "sample {file} row {row} is predicted twice; refusing to double-count"
            ));
            return;
        }
        rows.push((id, row, z, t));
    })
    .map_err(|e| e.to_string())?;
    if let Some(p) = problem {
        return Err(p);
    }
    if rows.len() as u64 != r.samples {
        return Err(format!(
            "{} prediction rows but the result says {} samples",
            rows.len(),
            r.samples
        ));
    }
    Ok(rows)
}

/// Why a rank has no result: its recorded failure from this run, else "did not complete".
fn failure_of(
    ctx: &HandlerContext,
    bucket: &str,
    result_path: &str,
    rank: u64,
    data_path: crate::rank::DataPath,
    run_id: &str,
) -> FailedRank {
    let recorded: Option<RankFailure> =
        io::read_json(&ctx.store, bucket, &layout::error_key(result_path, rank)).unwrap_or(None);
    match recorded.filter(|f| f.run_id == run_id) {
        Some(f) => FailedRank {
            rank,
            data_path,
            error: f.error,
            cause: f.cause,
            attempts: f.attempts,
        },
        None => FailedRank {
            rank,
            data_path,
            error: "cai.NoResult".into(),
            cause: "the rank did not complete and recorded no error (not started, or the Map stopped early)".into(),
            attempts: 0,
        },
    }
}

fn str_at<'a>(event: &'a Value, pointer: &str) -> Result<&'a str, HandlerError> {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            HandlerError::input(format!(
                "summarize event: `{}` missing: expected a string",
                &pointer[1..].replace('/', ".")
            ))
        })
}
