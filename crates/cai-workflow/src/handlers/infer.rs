//! Inference for one rank: loads the weights, streams the rank's partitions batch by batch
//! through the model, writes the predictions (Parquet) and then the rank's result JSON, each
//! atomically. The result is written last, so its presence means the rank is complete.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cai_data::{Batch, Partition, PredictionMeta, PredictionWriter};
use cai_model::{AstroMaeConfig, LoadedModel, WeightSource};
use cai_store::{BlockingStore, RequestLog, RequestStats};
use serde::Deserialize;
use serde_json::{json, Value};

use super::warm::WarmModel;
use super::{fault, HandlerContext};
use crate::error::{kind, HandlerError};
use crate::io;
use crate::layout;
use crate::rank::RankPayload;
use crate::result::{
    AttemptMarker, FileCount, PredictionsRef, RankResult, S3Timing, Timings, DEVICE,
};
use crate::settings::{ModelLocation, RunSettings};
use crate::usage;

/// The inference event: the original's rank payload, cai's run settings and the retry count
/// (`$$.State.RetryCount`). A bare rank payload, as the original's inference Lambda gets, is
/// accepted too (default settings).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InferEvent {
    /// The rank's payload, exactly the original's.
    pub payload: RankPayload,
    /// Run-wide settings from Initialize.
    pub run: RunSettings,
    /// Retries already made (0 on the first attempt).
    #[serde(default)]
    pub attempt: u64,
}

impl InferEvent {
    /// Reads either form of the event, naming what is wrong.
    pub fn parse(event: Value) -> Result<InferEvent, HandlerError> {
        if event.get("payload").is_some() {
            return serde_json::from_value(event)
                .map_err(|e| HandlerError::input(format!("inference event: {e}")));
        }
        let payload: RankPayload = serde_json::from_value(event)
            .map_err(|e| HandlerError::input(format!("rank payload: {e}")))?;
        let default = crate::payload::Payload::from_value(&json!({
            "bucket": payload.s3_bucket, "S3_object_name": payload.s3_object_name,
            "batch_size": payload.batch_size, "result_path": payload.result_path,
            "data_bucket": payload.data_bucket, "data_prefix": payload.data_prefix,
        }))
        .map_err(|e| HandlerError::input(format!("rank payload: {e}")))?;
        Ok(InferEvent {
            payload,
            run: default.settings,
            attempt: 0,
        })
    }
}

/// The inference handler: its phases (prepare, load the model, fetch the partitions, infer,
/// write) are the functions below.
pub fn handle(ctx: &HandlerContext, event: Value) -> Result<Value, HandlerError> {
    let started = Instant::now();
    let started_unix = unix_now();
    let ev = InferEvent::parse(event)?;
    let p = &ev.payload;
    let rank = prepare(p)?;
    if p.data_path.is_empty() {
        return Ok(json!({ "rank": rank, "samples": 0, "status": "empty" }));
    }
    if ev.run.resume {
        if let Some(done) = existing_result(ctx, &ev, rank)? {
            return Ok(digest(&done, "resumed"));
        }
    }
    // Every store request from here on is timed for the result's s3_* keys.
    let log = Arc::new(RequestLog::default());
    let store = ctx.store.recorded(log.clone());
    let attempt = mark_attempt(&store, &ev, rank)?;
    let injected = fault::planned(rank, attempt);
    fault::before_inference(injected)?;

    let scratch = Scratch::new(&ctx.scratch)?;
    let mut timings = Timings::default();
    let t = Instant::now();
    let (model, cached) = load_model(ctx, &store, &ev.run, scratch.path())?;
    timings.model_load = t.elapsed().as_secs_f64();
    timings.model_cached = cached;

    let t = Instant::now();
    let inputs = fetch(&store, p, &model, scratch.path())?;
    timings.fetch = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let inferred = infer(p, &model, &inputs, scratch.path(), injected)?;
    timings.inference = t.elapsed().as_secs_f64();
    drop(inputs);

    let t = Instant::now();
    let mut result = write_predictions(&store, &ev, rank, &model, inferred, timings)?;
    result.timings.write = t.elapsed().as_secs_f64();
    result.started_unix = started_unix;
    let peak = usage::self_usage().peak_rss_mb;
    result.total_cpu_memory = peak;
    result.peak_rss_mb = peak;
    result.s3 = s3_timing(&log.stats());
    result.wall_seconds = started.elapsed().as_secs_f64();
    io::write_json(
        &store,
        &p.data_bucket,
        &layout::rank_result_key(&p.result_path, rank),
        &result,
    )?;
    Ok(digest(&result, "ok"))
}

/// Checks the payload before touching the store; returns the rank.
fn prepare(p: &RankPayload) -> Result<u64, HandlerError> {
    let rank = p.rank_number().map_err(HandlerError::input)?;
    p.world_size.trim().parse::<u64>().map_err(|_| {
        HandlerError::input(format!(
            "field `WORLD_SIZE`: expected a whole number as a string, found {:?}",
            p.world_size
        ))
    })?;
    validate(p)?;
    Ok(rank)
}

/// Records which attempt this is before any work, so a crash's attempt count survives it.
fn mark_attempt(store: &BlockingStore, ev: &InferEvent, rank: u64) -> Result<u64, HandlerError> {
    let attempt = ev.attempt + 1;
    let marker = AttemptMarker {
        attempt,
        started_unix: unix_now(),
    };
    io::write_json(
        store,
        &ev.payload.data_bucket,
        &layout::attempt_key(&ev.payload.result_path, rank),
        &marker,
    )?;
    Ok(attempt)
}

/// The rank's partitions, open and checked against the model, with their identities.
struct Inputs {
    keys: Vec<String>,
    parts: Vec<Partition>,
    /// (bytes, modified ms) of each partition when read.
    identities: Vec<(u64, u64)>,
    _copies: Vec<io::LocalCopy>,
}

/// Makes each partition readable (in place locally, downloaded from S3) and opens it.
fn fetch(
    store: &BlockingStore,
    p: &RankPayload,
    model: &WarmModel,
    scratch: &std::path::Path,
) -> Result<Inputs, HandlerError> {
    let bad = |key: &str, e: String| {
        HandlerError::new(
            kind::INVALID_PARTITION,
            format!("{}/{key}: {e}", p.data_bucket),
        )
    };
    let keys: Vec<String> = p.data_path.keys().into_iter().map(String::from).collect();
    let mut inputs = Inputs {
        parts: Vec::with_capacity(keys.len()),
        identities: Vec::with_capacity(keys.len()),
        _copies: Vec::with_capacity(keys.len()),
        keys: Vec::new(),
    };
    for key in &keys {
        let copy = io::local_copy(store, &p.data_bucket, key, scratch).map_err(|e| {
            if e.is_not_found() {
                bad(key, "partition not found".into())
            } else {
                HandlerError::store(e)
            }
        })?;
        let part = Partition::open(copy.path()).map_err(|e| bad(key, e.to_string()))?;
        check_compatible(model.predictor.model().config(), &part).map_err(|e| bad(key, e))?;
        inputs
            .identities
            .push(io::identity(store, &p.data_bucket, key)?.unwrap_or_default());
        inputs._copies.push(copy);
        inputs.parts.push(part);
    }
    inputs.keys = keys;
    Ok(inputs)
}

/// What inference produced: the predictions in a scratch file and the counts.
struct Inferred {
    predictions: tempfile::TempPath,
    rows: u64,
    with_truth: bool,
    num_batches: u64,
    bits: f64,
    cpu_seconds: f64,
    files: Vec<FileCount>,
}

/// Streams every partition batch by batch through the model into a Parquet file.
fn infer(
    p: &RankPayload,
    model: &WarmModel,
    inputs: &Inputs,
    scratch: &std::path::Path,
    injected: Option<fault::Fault>,
) -> Result<Inferred, HandlerError> {
    let internal = |e: cai_data::DataError| HandlerError::new(kind::INTERNAL, e.to_string());
    let with_truth = inputs.parts.iter().any(Partition::has_redshifts);
    let meta = PredictionMeta {
        model: model.origin.clone(),
        untrained: model.untrained,
    };
    let out = tempfile::Builder::new()
        .prefix("cai-pred-")
        .suffix(".parquet")
        .tempfile_in(scratch)
        .map_err(|e| {
            HandlerError::new(
                kind::INTERNAL,
                format!("scratch {}: {e}", scratch.display()),
            )
        })?
        .into_temp_path();
    let precision = model.predictor.precision().to_string();
    let extra = [(cai_data::META_PRECISION, precision.as_str())];
    let mut writer =
        PredictionWriter::create_with(&out, &meta, with_truth, &extra).map_err(internal)?;
    let batch_size = p.batch_size.max(1) as usize;
    let cpu_before = usage::self_usage().cpu_seconds;
    let (mut num_batches, mut bits, mut files) = (0u64, 0f64, Vec::new());
    let mut batch = Batch::default();
    let parts = inputs
        .keys
        .iter()
        .zip(&inputs.parts)
        .zip(&inputs.identities);
    for ((key, part), &(file_bytes, modified_ms)) in parts {
        let [c, h, w] = part.image_shape();
        let bits_per_sample = (c * h * w * 32 + part.magnitude_width() * 64) as f64;
        for start in (0..part.len()).step_by(batch_size) {
            let end = (start + batch_size).min(part.len());
            part.read_batch(start..end, &mut batch).map_err(|e| {
                HandlerError::new(
                    kind::INVALID_PARTITION,
                    format!("{}/{key}: rows {start}..{end}: {e}", p.data_bucket),
                )
            })?;
            let z = model
                .predictor
                .predict(&batch.images, &batch.magnitudes, batch.len)
                .map_err(|e| {
                    HandlerError::new(kind::INTERNAL, format!("{key}: rows {start}..{end}: {e}"))
                })?;
            writer
                .write_batch(key, start as u64, &z, batch.redshifts.as_deref())
                .map_err(internal)?;
            num_batches += 1;
            bits += bits_per_sample * batch.len as f64;
            fault::mid_partition(injected);
        }
        files.push(FileCount {
            key: key.to_string(),
            samples: part.len() as u64,
            bytes: file_bytes,
            modified_ms,
        });
    }
    let cpu_seconds = usage::self_usage().cpu_seconds - cpu_before;
    let rows = writer.finish().map_err(internal)?;
    Ok(Inferred {
        predictions: out,
        rows,
        with_truth,
        num_batches,
        bits,
        cpu_seconds,
        files,
    })
}

/// Puts the predictions into the store and builds the rank's result (written by the caller,
/// last, so its presence means the rank is complete).
fn write_predictions(
    store: &BlockingStore,
    ev: &InferEvent,
    rank: u64,
    model: &WarmModel,
    inferred: Inferred,
    timings: Timings,
) -> Result<RankResult, HandlerError> {
    let p = &ev.payload;
    let bytes = std::fs::read(&inferred.predictions).map_err(|e| {
        HandlerError::new(
            kind::INTERNAL,
            format!("{}: {e}", inferred.predictions.display()),
        )
    })?;
    let pred_key = layout::predictions_key(&p.result_path, rank);
    let (slurm_job_id, slurm_array_job_id, slurm_array_task_id, slurm_node) =
        crate::result::slurm_placement();
    io::put(store, &p.data_bucket, &pred_key, Bytes::from(bytes))?;
    let samples: u64 = inferred.files.iter().map(|f| f.samples).sum();
    let infer_secs = timings.inference.max(1e-9);
    Ok(RankResult {
        total_cpu_time: inferred.cpu_seconds,
        total_cpu_memory: 0.0,
        execution_time: timings.inference / inferred.num_batches.max(1) as f64,
        num_batches: inferred.num_batches,
        batch_size: p.batch_size,
        device: DEVICE.into(),
        throughput_bps: inferred.bits / infer_secs,
        sample_persec: samples as f64 / infer_secs,
        result_path: p.result_path.clone(),
        data_path: p.data_path.clone(),
        rank,
        world_size: p.world_size.trim().parse().unwrap_or(0),
        samples,
        bits: inferred.bits as u64,
        files: inferred.files,
        wall_seconds: 0.0,
        timings,
        peak_rss_mb: 0.0,
        threads: model.predictor.threads() as u64,
        precision: model.predictor.precision(),
        attempts: ev.attempt + 1,
        model: ev.run.model.to_string(),
        untrained: model.untrained,
        predictions: PredictionsRef {
            bucket: p.data_bucket.clone(),
            key: pred_key,
            format: "parquet".into(),
            rows: inferred.rows,
            with_truth: inferred.with_truth,
        },
        errors: Vec::new(),
        run_id: ev.run.run_id.clone(),
        cai_version: env!("CARGO_PKG_VERSION").into(),
        started_unix: 0.0,
        slurm_job_id,
        slurm_array_job_id,
        slurm_array_task_id,
        slurm_node,
        s3: Default::default(),
    })
}

/// The store requests of this invocation under the original's `s3_*` keys.
fn s3_timing(s: &RequestStats) -> S3Timing {
    S3Timing {
        s3_num_requests: s.count,
        s3_total_time: s.total_seconds,
        s3_avg_time: s.mean_seconds(),
        s3_min_time: s.min_seconds,
        s3_max_time: s.max_seconds,
        s3_first_request_time: s.first_request_unix,
        s3_last_response_time: s.last_response_unix,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The small answer a rank returns to the Map (the full result is in the store).
fn digest(r: &RankResult, status: &str) -> Value {
    json!({
        "rank": r.rank,
        "status": status,
        "samples": r.samples,
        "wall_seconds": r.wall_seconds,
        "peak_rss_mb": r.peak_rss_mb,
        "attempts": r.attempts,
    })
}

/// Refuses unsafe bucket names and keys before touching the store.
fn validate(p: &RankPayload) -> Result<(), HandlerError> {
    crate::keys::bucket("DATA_BUCKET", &p.data_bucket).map_err(HandlerError::input)?;
    crate::keys::key("RESULT_PATH", &p.result_path).map_err(HandlerError::input)?;
    crate::keys::prefix("DATA_PREFIX", &p.data_prefix).map_err(HandlerError::input)?;
    for key in p.data_path.keys() {
        crate::keys::key("DATA_PATH", key).map_err(HandlerError::input)?;
    }
    Ok(())
}

/// A rank result already in the store that matches this rank's plan and model, if any: what
/// `--resume` keeps instead of recomputing.
pub fn existing_result(
    ctx: &HandlerContext,
    ev: &InferEvent,
    rank: u64,
) -> Result<Option<RankResult>, HandlerError> {
    let p = &ev.payload;
    let key = layout::rank_result_key(&p.result_path, rank);
    let found: Option<RankResult> = match io::read_json(&ctx.store, &p.data_bucket, &key) {
        Ok(r) => r,
        Err(e) if e.error_type == kind::INVALID_INPUT => None, // unreadable: recompute
        Err(e) => return Err(e),
    };
    Ok(match found {
        Some(r) if is_valid_for(&r, ev) && still_valid(ctx, &r)?.is_ok() => Some(r),
        _ => None,
    })
}

/// Whether a result still describes the store: its partitions unchanged since they were read
/// and its predictions file readable with one row per sample. `Err(reason)` when not.
pub fn still_valid(
    ctx: &HandlerContext,
    r: &RankResult,
) -> Result<Result<(), String>, HandlerError> {
    if let Err(reason) = partitions_unchanged(ctx, r)? {
        return Ok(Err(reason));
    }
    let bytes = match ctx
        .store
        .bucket(&r.predictions.bucket)
        .and_then(|b| b.get_capped(&r.predictions.key, MAX_PREDICTIONS_BYTES))
    {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(Err(format!("{} is missing", r.predictions.key))),
        Err(e) => return Err(HandlerError::store(e)),
    };
    Ok(
        match cai_data::parquet_row_count(&r.predictions.key, bytes) {
            Ok(rows) if rows == r.samples => Ok(()),
            Ok(rows) => Err(format!(
                "{} holds {rows} rows, not {}",
                r.predictions.key, r.samples
            )),
            Err(e) => Err(e.to_string()),
        },
    )
}

/// Whether every partition a result was computed from still has the size and modification
/// time it had when read. `Err(reason)` names the first that changed or vanished.
pub fn partitions_unchanged(
    ctx: &HandlerContext,
    r: &RankResult,
) -> Result<Result<(), String>, HandlerError> {
    let bucket = &r.predictions.bucket;
    for f in &r.files {
        match io::identity(&ctx.store, bucket, &f.key)? {
            Some((bytes, ms)) if bytes == f.bytes && ms == f.modified_ms => {}
            Some(_) => {
                return Ok(Err(format!(
                    "partition {bucket}/{} changed after this rank read it",
                    f.key
                )))
            }
            None => {
                return Ok(Err(format!(
                    "partition {bucket}/{} no longer exists",
                    f.key
                )))
            }
        }
    }
    Ok(Ok(()))
}

/// Largest predictions file read (bytes); a rank of 10 GB of partitions is ~6 MB of Parquet.
pub const MAX_PREDICTIONS_BYTES: u64 = 1 << 30;

/// Whether a stored result is this rank's under this plan and model.
pub fn is_valid_for(r: &RankResult, ev: &InferEvent) -> bool {
    let p = &ev.payload;
    p.rank_number() == Ok(r.rank)
        && r.data_path == p.data_path
        && r.model == ev.run.model.to_string()
        && r.predictions.rows == r.samples
        && r.files.iter().map(|f| f.samples).sum::<u64>() == r.samples
        && r.predictions.key == layout::predictions_key(&p.result_path, r.rank)
}

/// The model: the one this container loaded before if the weights are unchanged, else
/// loaded now (and kept for the next invocation); true when it came from the cache.
fn load_model(
    ctx: &HandlerContext,
    store: &BlockingStore,
    run: &RunSettings,
    scratch: &std::path::Path,
) -> Result<(Arc<WarmModel>, bool), HandlerError> {
    let model = &run.model;
    let weights = match model {
        ModelLocation::Seed(n) => format!("seed:{n}"),
        ModelLocation::Store { bucket, key } => {
            let (size, ms) = io::identity(store, bucket, key)?.unwrap_or_default();
            format!("{bucket}/{key}@{size}:{ms}")
        }
    };
    let identity = format!("{weights}#{}", run.precision);
    if let Some(warm) = ctx.models.get(&identity) {
        return Ok((warm, true));
    }
    ctx.models.clear();
    let loaded = load_weights(store, model, scratch)?;
    let warm = Arc::new(WarmModel::new(identity, loaded, ctx.threads, run.precision));
    ctx.models.put(warm.clone());
    Ok((warm, false))
}

/// Loads the weights from the store (in place for a local store, via scratch otherwise) or
/// from a seed.
fn load_weights(
    store: &BlockingStore,
    model: &ModelLocation,
    scratch: &std::path::Path,
) -> Result<LoadedModel, HandlerError> {
    // `model` names the weights as the payload does; the loader's error names the file it
    // read (a scratch copy, or the store's file), so only its detail is kept: one path.
    let bad = |e: String| HandlerError::new(kind::INVALID_MODEL, format!("model {model}: {e}"));
    match model {
        ModelLocation::Seed(n) => {
            cai_model::load_model(&WeightSource::Seed(*n)).map_err(|e| bad(e.detail()))
        }
        ModelLocation::Store { bucket, key } => {
            let copy = io::local_copy(store, bucket, key, scratch).map_err(|e| {
                if e.is_not_found() {
                    bad("not found in the store (set `model` in the payload to another key, or \"seed:0\" for random weights)".into())
                } else {
                    HandlerError::store(e)
                }
            })?;
            cai_model::load_model(&WeightSource::File(copy.path().to_path_buf()))
                .map_err(|e| bad(e.detail()))
        }
    }
}

/// A partition's sample shape must be the model's.
pub fn check_compatible(cfg: &AstroMaeConfig, part: &Partition) -> Result<(), String> {
    let want = [cfg.in_chans, cfg.img_size, cfg.img_size];
    if part.image_shape() != want {
        return Err(format!(
            "images are {:?} per sample but the model expects {want:?} (channels, height, width)",
            part.image_shape()
        ));
    }
    if part.magnitude_width() != cfg.mag_in {
        return Err(format!(
            "{} magnitudes per sample but the model expects {}",
            part.magnitude_width(),
            cfg.mag_in
        ));
    }
    Ok(())
}

/// This invocation's own folder under the scratch directory, removed when done. A crashed
/// invocation cannot remove its own, so each new one first removes those of processes that
/// no longer exist (on Lambda, /tmp outlives a crashed runtime).
struct Scratch {
    dir: std::path::PathBuf,
}

impl Scratch {
    const PREFIX: &'static str = "cai-scratch-";

    fn new(root: &std::path::Path) -> Result<Scratch, HandlerError> {
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(pid) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(Self::PREFIX))
                    .and_then(|p| p.parse::<i32>().ok())
                else {
                    continue;
                };
                // SAFETY: signal 0 only checks whether the process exists.
                let alive = unsafe { libc::kill(pid, 0) } == 0
                    || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
                if !alive {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = root.join(format!("{}{}", Self::PREFIX, std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            HandlerError::new(kind::INTERNAL, format!("scratch {}: {e}", dir.display()))
        })?;
        Ok(Scratch { dir })
    }

    fn path(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
