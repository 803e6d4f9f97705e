//! Summarize: combines this run's rank results, taken from the run's plan (never from a
//! prefix listing, which bleeds into other runs and, unpaginated, stops at 1,000 keys), checks
//! that every planned sample appears exactly once in the predictions, computes accuracy, and
//! writes `combined_data.json` (every rank's result, in rank order) and `summary.json`.
//!
//! Built for 10,000 ranks: the ranks are read by a pool of threads a window at a time and
//! folded in rank order, so memory holds one window of ranks, the plan's file list and a
//! fixed-size accuracy histogram, never every prediction. Exactly-once needs no set of all
//! samples: the plan hands each file to one rank (checked), and each rank's predictions must
//! cover its own files' rows exactly once (checked per rank).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use cai_data::read_parquet_predictions;
use serde_json::{json, Value};

use super::infer::{is_valid_for, partitions_unchanged, InferEvent, MAX_PREDICTIONS_BYTES};
use super::HandlerContext;
use crate::accuracy::AccuracyAccumulator;
use crate::error::{kind, HandlerError};
use crate::io;
use crate::layout;
use crate::plan::Plan;
use crate::rank::RankPayload;
use crate::result::{RankFailure, RankResult};
use crate::summary::{FailedRank, RankCounts, Summary, Totals};

/// Ranks read at once; bounds memory to this many ranks' results and predictions.
const WINDOW: u64 = 256;
/// Threads reading ranks: store requests are mostly waiting (S3 latency).
const READERS: usize = 16;

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
    let summary = summarize(ctx, &plan, &run_id, event.get("map_error").cloned());
    // The execution is over unless Step Functions retries this (a store error): give the
    // result path back if this execution's Initialize took it (an engine releases its own).
    let retried = matches!(&summary, Err(e) if e.error_type == kind::STORE);
    if event.pointer("/lease/release").and_then(Value::as_str) == Some("summarize") && !retried {
        let (bucket, result_path) = (
            &plan.rank_template.data_bucket,
            &plan.rank_template.result_path,
        );
        match crate::lease::release_if_ours(&ctx.store, bucket, result_path, &run_id) {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "{bucket}/{result_path}: the lease is no longer run {run_id}'s; left in place"
            ),
            Err(e) => tracing::warn!("releasing the lease: {e}"),
        }
    }
    let summary = summary?;
    Ok(json!({
        "status": summary.status,
        "samples": summary.totals.samples,
        "ranks": summary.ranks,
        "failed_ranks": summary.failed_ranks.len(),
        "summary": { "bucket": summary.data_bucket, "key": layout::summary_key(&summary.result_path) },
    }))
}

/// What reading one rank found.
enum RankOutcome {
    /// No data planned.
    Empty,
    /// A valid, complete result and its labelled predictions `(pred, z)`.
    Done {
        result: Box<RankResult>,
        labelled: Vec<(f32, f32)>,
        resumed: bool,
    },
    /// No valid result.
    Failed(FailedRank),
}

/// Builds and writes `combined_data.json` and `summary.json` for a plan.
pub fn summarize(
    ctx: &HandlerContext,
    plan: &Plan,
    run_id: &str,
    map_error: Option<Value>,
) -> Result<Summary, HandlerError> {
    let bucket = plan.rank_template.data_bucket.clone();
    let result_path = plan.rank_template.result_path.clone();
    check_files_disjoint(plan)?;
    let mut combined = CombinedWriter::open(ctx, &bucket, &layout::combined_key(&result_path))?;
    let mut fold = Fold::new(plan);
    let mut start = 0;
    while start < plan.world_size {
        let end = (start + WINDOW).min(plan.world_size);
        for outcome in read_window(ctx, plan, run_id, start..end) {
            let outcome = outcome?;
            if let RankOutcome::Done { result, .. } = &outcome {
                combined.push(result)?;
            }
            fold.add(outcome);
        }
        start = end;
    }
    combined.finish()?;
    let summary = fold.finish(plan, run_id, map_error);
    io::write_json(
        &ctx.store,
        &bucket,
        &layout::summary_key(&result_path),
        &summary,
    )?;
    Ok(summary)
}

/// Each partition file must belong to one rank only, or a sample could be counted twice.
fn check_files_disjoint(plan: &Plan) -> Result<(), HandlerError> {
    let mut seen = HashSet::with_capacity(plan.files.len());
    for f in &plan.files {
        if !seen.insert(f.as_str()) {
            return Err(HandlerError::input(format!(
                "the plan lists partition {f} twice; refusing to double-count its samples"
            )));
        }
    }
    Ok(())
}

/// Reads ranks `range` on a pool of threads; outcomes come back in rank order.
fn read_window(
    ctx: &HandlerContext,
    plan: &Plan,
    run_id: &str,
    range: std::ops::Range<u64>,
) -> Vec<Result<RankOutcome, HandlerError>> {
    let n = (range.end - range.start) as usize;
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<RankOutcome, HandlerError>>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        let outcome = read_rank(ctx, plan, run_id, plan.rank(range.start + i as u64));
        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    };
    std::thread::scope(|s| {
        for _ in 0..READERS.min(n) {
            s.spawn(work);
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every rank of the window was read")
        })
        .collect()
}

/// One rank: its result if valid for this plan and run, with its predictions checked.
fn read_rank(
    ctx: &HandlerContext,
    plan: &Plan,
    run_id: &str,
    rp: RankPayload,
) -> Result<RankOutcome, HandlerError> {
    let rank = rp.rank_number().map_err(HandlerError::input)?;
    if rp.data_path.is_empty() {
        return Ok(RankOutcome::Empty);
    }
    let (bucket, result_path) = (&rp.data_bucket, &rp.result_path);
    let stored: Option<RankResult> = match io::read_json(
        &ctx.store,
        bucket,
        &layout::rank_result_key(result_path, rank),
    ) {
        Ok(r) => r,
        Err(e) if e.error_type == kind::INVALID_INPUT => None,
        Err(e) => return Err(e),
    };
    let ev = InferEvent {
        payload: rp.clone(),
        run: plan.run.clone(),
        attempt: 0,
    };
    let Some(r) =
        stored.filter(|r| is_valid_for(r, &ev) && (plan.run.resume || r.run_id == run_id))
    else {
        return Ok(RankOutcome::Failed(failure_of(ctx, &rp, rank, run_id)));
    };
    // take_predictions reads the whole file and checks its rows, so only the partitions'
    // identity is checked separately (one read of each predictions file).
    let checked = match partitions_unchanged(ctx, &r)? {
        Ok(()) => take_predictions(ctx, &r),
        Err(reason) => Err(reason),
    };
    Ok(match checked {
        Ok(labelled) => RankOutcome::Done {
            resumed: r.run_id != run_id,
            result: Box::new(r),
            labelled,
        },
        Err(reason) => RankOutcome::Failed(FailedRank {
            rank,
            data_path: rp.data_path.clone(),
            error: "cai.InvalidResult".into(),
            cause: format!("{reason}; rerun the rank (cai run --resume recomputes it)"),
            attempts: r.attempts,
        }),
    })
}

/// One rank's labelled predictions `(pred, z)`, checked: only its own files, each row of each
/// file exactly once (`0 <= row < samples of that file`, no row twice, as many rows as the
/// file has samples). `Err(reason)` otherwise, and nothing of the rank is counted.
fn take_predictions(ctx: &HandlerContext, r: &RankResult) -> Result<Vec<(f32, f32)>, String> {
    let bytes = ctx
        .store
        .bucket(&r.predictions.bucket)
        .and_then(|b| b.get_capped(&r.predictions.key, MAX_PREDICTIONS_BYTES))
        .map_err(|e| e.to_string())?;
    // Per file: its sample count and which rows were seen.
    let mut files: HashMap<&str, (u64, Vec<bool>)> = r
        .files
        .iter()
        .map(|f| (f.key.as_str(), (f.samples, Vec::new())))
        .collect();
    let mut labelled = Vec::new();
    let mut problem: Option<String> = None;
    let mut rows = 0u64;
    read_parquet_predictions(&r.predictions.key, bytes, |file, row, z, t| {
        if problem.is_some() {
            return;
        }
        let Some((samples, seen)) = files.get_mut(file) else {
            problem = Some(format!(
                "predictions for {file}, which is not in the rank's DATA_PATH"
            ));
            return;
        };
        if row >= *samples {
            problem = Some(format!(
                "sample {file} row {row} is past the file's {samples} samples"
            ));
            return;
        }
        if seen.is_empty() {
            *seen = vec![false; *samples as usize];
        }
        if std::mem::replace(&mut seen[row as usize], true) {
            problem = Some(format!(
                "sample {file} row {row} is predicted twice; refusing to double-count"
            ));
            return;
        }
        rows += 1;
        if let Some(t) = t {
            labelled.push((z, t));
        }
    })
    .map_err(|e| e.to_string())?;
    if let Some(p) = problem {
        return Err(p);
    }
    if rows != r.samples {
        return Err(format!(
            "{rows} prediction rows but the result says {} samples",
            r.samples
        ));
    }
    Ok(labelled)
}

/// Why a rank has no result: its recorded failure from this run, else "did not complete".
fn failure_of(ctx: &HandlerContext, rp: &RankPayload, rank: u64, run_id: &str) -> FailedRank {
    let recorded: Option<RankFailure> = io::read_json(
        &ctx.store,
        &rp.data_bucket,
        &layout::error_key(&rp.result_path, rank),
    )
    .unwrap_or(None);
    match recorded.filter(|f| f.run_id == run_id) {
        Some(f) => FailedRank {
            rank,
            data_path: rp.data_path.clone(),
            error: f.error,
            cause: f.cause,
            attempts: f.attempts,
        },
        None => FailedRank {
            rank,
            data_path: rp.data_path.clone(),
            error: "cai.NoResult".into(),
            cause: "the rank did not complete and recorded no error (not started, or the Map stopped early)".into(),
            attempts: 0,
        },
    }
}

/// The running totals over ranks, folded in rank order.
struct Fold {
    counts: RankCounts,
    totals: Totals,
    accuracy: AccuracyAccumulator,
    failed: Vec<FailedRank>,
    untrained: bool,
}

impl Fold {
    fn new(plan: &Plan) -> Self {
        Fold {
            counts: RankCounts {
                planned: plan.world_size,
                ..RankCounts::default()
            },
            totals: Totals::default(),
            accuracy: AccuracyAccumulator::default(),
            failed: Vec::new(),
            untrained: false,
        }
    }

    fn add(&mut self, outcome: RankOutcome) {
        match outcome {
            RankOutcome::Empty => self.counts.empty += 1,
            RankOutcome::Failed(f) => self.failed.push(f),
            RankOutcome::Done {
                result: r,
                labelled,
                resumed,
            } => {
                for (p, t) in labelled {
                    self.accuracy.add(p, t);
                }
                self.counts.succeeded += 1;
                self.counts.resumed += u64::from(resumed);
                self.untrained |= r.untrained;
                let t = &mut self.totals;
                t.samples += r.samples;
                t.bits += r.bits;
                t.inference_seconds += r.timings.inference;
                t.rank_wall_seconds += r.wall_seconds;
                t.cpu_seconds += r.total_cpu_time;
                t.max_peak_rss_mb = t.max_peak_rss_mb.max(r.peak_rss_mb);
                t.samples_per_inference_second += r.sample_persec;
            }
        }
    }

    fn finish(self, plan: &Plan, run_id: &str, map_error: Option<Value>) -> Summary {
        let mut counts = self.counts;
        counts.failed = self.failed.len() as u64;
        let mut totals = self.totals;
        totals.planned_files = plan.files.len() as u64;
        let status = if self.failed.is_empty() && map_error.is_none() {
            "succeeded"
        } else if counts.succeeded > 0 {
            "partial"
        } else {
            "failed"
        };
        Summary {
            run_id: run_id.to_string(),
            status: status.into(),
            data_bucket: plan.rank_template.data_bucket.clone(),
            result_path: plan.rank_template.result_path.clone(),
            ranks: counts,
            totals,
            accuracy: self.accuracy.report(),
            untrained: self.untrained,
            precision: plan.run.precision,
            failed_ranks: self.failed,
            map_error,
            execution: None,
            performance: Vec::new(),
        }
    }
}

/// `combined_data.json` written as it is folded: a JSON array of rank results, in rank order.
struct CombinedWriter {
    out: cai_store::BlockingWriter,
    first: bool,
    name: String,
}

impl CombinedWriter {
    fn open(ctx: &HandlerContext, bucket: &str, key: &str) -> Result<Self, HandlerError> {
        let out = ctx
            .store
            .bucket(bucket)
            .and_then(|b| b.writer(key))
            .map_err(HandlerError::store)?;
        let mut w = CombinedWriter {
            out,
            first: true,
            name: format!("{bucket}/{key}"),
        };
        w.bytes(b"[")?;
        Ok(w)
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), HandlerError> {
        self.out
            .write_all(b)
            .map_err(|e| HandlerError::new(kind::STORE, format!("{}: {e}", self.name)))
    }

    fn push(&mut self, r: &RankResult) -> Result<(), HandlerError> {
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        self.bytes(sep)?;
        let text = serde_json::to_vec_pretty(r)
            .map_err(|e| HandlerError::new(kind::INTERNAL, e.to_string()))?;
        self.bytes(&text)
    }

    fn finish(mut self) -> Result<(), HandlerError> {
        self.bytes(b"\n]\n")?;
        self.out.finish().map_err(HandlerError::store)
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
