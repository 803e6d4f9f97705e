//! Inference for one rank: loads the weights, streams the rank's partitions batch by batch
//! through the model, writes the predictions (Parquet) and then the rank's result JSON, each
//! atomically. The result is written last, so its presence means the rank is complete.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cai_data::{Batch, Partition, PredictionMeta, PredictionWriter};
use cai_model::{AstroMaeConfig, LoadedModel, WeightSource};
use serde::Deserialize;
use serde_json::{json, Value};

use super::warm::WarmModel;
use super::{fault, HandlerContext};
use crate::error::{kind, HandlerError};
use crate::io;
use crate::layout;
use crate::rank::RankPayload;
use crate::result::{AttemptMarker, FileCount, PredictionsRef, RankResult, Timings, DEVICE};
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

/// The inference handler.
pub fn handle(ctx: &HandlerContext, event: Value) -> Result<Value, HandlerError> {
    let started = Instant::now();
    let ev = InferEvent::parse(event)?;
    let p = &ev.payload;
    let rank = p.rank_number().map_err(HandlerError::input)?;
    let world: u64 = p.world_size.trim().parse().map_err(|_| {
        HandlerError::input(format!(
            "field `WORLD_SIZE`: expected a whole number as a string, found {:?}",
            p.world_size
        ))
    })?;
    validate(p)?;
    if p.data_path.is_empty() {
        return Ok(json!({ "rank": rank, "samples": 0, "status": "empty" }));
    }
    if ev.run.resume {
        if let Some(done) = existing_result(ctx, &ev, rank)? {
            return Ok(digest(&done, "resumed"));
        }
    }
    let attempt = ev.attempt + 1;
    let marker = AttemptMarker {
        attempt,
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    };
    io::write_json(
        &ctx.store,
        &p.data_bucket,
        &layout::attempt_key(&p.result_path, rank),
        &marker,
    )?;
    let injected = fault::planned(rank, attempt);
    fault::before_inference(injected)?;

    let scratch = Scratch::new(&ctx.scratch)?;
    let mut timings = Timings::default();
    let t = Instant::now();
    let (loaded, cached) = load_model(ctx, &ev.run.model, scratch.path())?;
    timings.model_load = t.elapsed().as_secs_f64();
    timings.model_cached = cached;

    let t = Instant::now();
    let keys = p.data_path.keys();
    let mut copies = Vec::with_capacity(keys.len());
    let mut parts = Vec::with_capacity(keys.len());
    let mut identities = Vec::with_capacity(keys.len());
    for key in &keys {
        let copy =
            io::local_copy(&ctx.store, &p.data_bucket, key, scratch.path()).map_err(|e| {
                if e.is_not_found() {
                    HandlerError::new(
                        kind::INVALID_PARTITION,
                        format!("{}/{key}: partition not found", p.data_bucket),
                    )
                } else {
                    HandlerError::store(e)
                }
            })?;
        let part = Partition::open(copy.path()).map_err(|e| {
            HandlerError::new(
                kind::INVALID_PARTITION,
                format!("{}/{key}: {e}", p.data_bucket),
            )
        })?;
        check_compatible(loaded.predictor.model().config(), &part).map_err(|e| {
            HandlerError::new(
                kind::INVALID_PARTITION,
                format!("{}/{key}: {e}", p.data_bucket),
            )
        })?;
        let (bytes, modified_ms) =
            io::identity(&ctx.store, &p.data_bucket, key)?.unwrap_or_default();
        identities.push((bytes, modified_ms));
        copies.push(copy);
        parts.push(part);
    }
    timings.fetch = t.elapsed().as_secs_f64();

    let with_truth = parts.iter().any(Partition::has_redshifts);
    let meta = PredictionMeta {
        model: loaded.origin.clone(),
        untrained: loaded.untrained,
    };
    let out = tempfile::Builder::new()
        .prefix("cai-pred-")
        .suffix(".parquet")
        .tempfile_in(scratch.path())
        .map_err(|e| {
            HandlerError::new(
                kind::INTERNAL,
                format!("scratch {}: {e}", scratch.path().display()),
            )
        })?
        .into_temp_path();
    let internal = |e: cai_data::DataError| HandlerError::new(kind::INTERNAL, e.to_string());
    let mut writer = PredictionWriter::create(&out, &meta, with_truth).map_err(internal)?;
    let predictor = &loaded.predictor;
    let batch_size = p.batch_size.max(1) as usize;

    let t = Instant::now();
    let cpu_before = usage::self_usage().cpu_seconds;
    let (mut num_batches, mut bits, mut files) = (0u64, 0f64, Vec::new());
    let mut batch = Batch::default();
    for ((key, part), &(file_bytes, modified_ms)) in keys.iter().zip(&parts).zip(&identities) {
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
            let z = predictor
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
    timings.inference = t.elapsed().as_secs_f64();
    let cpu = usage::self_usage().cpu_seconds - cpu_before;
    drop(parts);
    drop(copies);

    let t = Instant::now();
    let rows = writer.finish().map_err(internal)?;
    let bytes = std::fs::read(&out)
        .map_err(|e| HandlerError::new(kind::INTERNAL, format!("{}: {e}", out.display())))?;
    let pred_key = layout::predictions_key(&p.result_path, rank);
    io::put(&ctx.store, &p.data_bucket, &pred_key, Bytes::from(bytes))?;
    let samples: u64 = files.iter().map(|f| f.samples).sum();
    let infer_secs = timings.inference.max(1e-9);
    let mut result = RankResult {
        total_cpu_time: cpu,
        total_cpu_memory: 0.0,
        execution_time: timings.inference / num_batches.max(1) as f64,
        num_batches,
        batch_size: p.batch_size,
        device: DEVICE.into(),
        throughput_bps: bits / infer_secs,
        sample_persec: samples as f64 / infer_secs,
        result_path: p.result_path.clone(),
        data_path: p.data_path.clone(),
        rank,
        world_size: world,
        samples,
        bits: bits as u64,
        files,
        wall_seconds: 0.0,
        timings,
        peak_rss_mb: 0.0,
        threads: predictor.threads() as u64,
        attempts: attempt,
        model: ev.run.model.to_string(),
        untrained: loaded.untrained,
        predictions: PredictionsRef {
            bucket: p.data_bucket.clone(),
            key: pred_key,
            format: "parquet".into(),
            rows,
            with_truth,
        },
        errors: Vec::new(),
        run_id: ev.run.run_id.clone(),
        cai_version: env!("CARGO_PKG_VERSION").into(),
        started_unix: 0.0,
        s3: Default::default(),
    };
    result.timings.write = t.elapsed().as_secs_f64();
    let peak = usage::self_usage().peak_rss_mb;
    result.total_cpu_memory = peak;
    result.peak_rss_mb = peak;
    result.wall_seconds = started.elapsed().as_secs_f64();
    io::write_json(
        &ctx.store,
        &p.data_bucket,
        &layout::rank_result_key(&p.result_path, rank),
        &result,
    )?;
    Ok(digest(&result, "ok"))
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
    model: &ModelLocation,
    scratch: &std::path::Path,
) -> Result<(Arc<WarmModel>, bool), HandlerError> {
    let identity = match model {
        ModelLocation::Seed(n) => format!("seed:{n}"),
        ModelLocation::Store { bucket, key } => {
            let (size, ms) = io::identity(&ctx.store, bucket, key)?.unwrap_or_default();
            format!("{bucket}/{key}@{size}:{ms}")
        }
    };
    if let Some(warm) = ctx.models.get(&identity) {
        return Ok((warm, true));
    }
    ctx.models.clear();
    let loaded = load_weights(ctx, model, scratch)?;
    let warm = Arc::new(WarmModel::new(identity, loaded, ctx.threads));
    ctx.models.put(warm.clone());
    Ok((warm, false))
}

/// Loads the weights from the store (in place for a local store, via scratch otherwise) or
/// from a seed.
fn load_weights(
    ctx: &HandlerContext,
    model: &ModelLocation,
    scratch: &std::path::Path,
) -> Result<LoadedModel, HandlerError> {
    let bad = |e: String| HandlerError::new(kind::INVALID_MODEL, format!("model {model}: {e}"));
    match model {
        ModelLocation::Seed(n) => {
            cai_model::load_model(&WeightSource::Seed(*n)).map_err(|e| bad(e.to_string()))
        }
        ModelLocation::Store { bucket, key } => {
            let copy = io::local_copy(&ctx.store, bucket, key, scratch).map_err(|e| {
                if e.is_not_found() {
                    bad("not found in the store (set `model` in the payload to another key, or \"seed:0\" for random weights)".into())
                } else {
                    HandlerError::store(e)
                }
            })?;
            cai_model::load_model(&WeightSource::File(copy.path().to_path_buf()))
                .map_err(|e| bad(e.to_string()))
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
