//! A rank's result file. Every key of the original's `<rank>.json` keeps its name and meaning
//! so existing analysis scripts work; cai's additions follow them.

use serde::{Deserialize, Serialize};

use crate::rank::DataPath;

/// The original's device value: inference runs on CPU.
pub const DEVICE: &str = "cpu";

/// `<data_bucket>/<result_path>/<rank>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankResult {
    /// CPU seconds spent in inference (user + system, all threads).
    #[serde(rename = "total_cpu_time (seconds)")]
    pub total_cpu_time: f64,
    /// Peak memory of the inference process, MB.
    #[serde(rename = "total_cpu_memory (MB)")]
    pub total_cpu_memory: f64,
    /// Mean wall seconds per batch of inference.
    #[serde(rename = "execution_time (seconds/batch)")]
    pub execution_time: f64,
    /// Batches run.
    pub num_batches: u64,
    /// Batch size used.
    pub batch_size: u64,
    /// Where inference ran.
    pub device: String,
    /// Bits of image and magnitude tensors processed per second of inference.
    pub throughput_bps: f64,
    /// Samples per second of inference.
    pub sample_persec: f64,
    /// This rank's result key prefix (RESULT_PATH).
    pub result_path: String,
    /// The rank's DATA_PATH, as planned.
    pub data_path: DataPath,
    // ---- cai's additions ----
    /// The rank.
    pub rank: u64,
    /// Number of ranks.
    pub world_size: u64,
    /// Samples predicted (equals rows in the predictions file).
    pub samples: u64,
    /// Bits of image (f32) and magnitude (f64, as the original stores them) tensors processed.
    pub bits: u64,
    /// Samples per partition file, in DATA_PATH order.
    pub files: Vec<FileCount>,
    /// Wall seconds of the whole invocation: start to result written.
    pub wall_seconds: f64,
    /// Seconds per phase.
    pub timings: Timings,
    /// Peak RSS of the invocation, MB, as the OS measured it.
    pub peak_rss_mb: f64,
    /// Inference threads used.
    pub threads: u64,
    /// Arithmetic of the model's products (`fp32` for results of older versions).
    #[serde(default)]
    pub precision: cai_model::Precision,
    /// Which attempt produced this result (1 = first).
    pub attempts: u64,
    /// The weights (store key or seed).
    pub model: String,
    /// True for seeded random weights: predictions are meaningless.
    pub untrained: bool,
    /// Where the predictions are.
    pub predictions: PredictionsRef,
    /// Errors of earlier attempts, if any were recorded; empty on a clean run.
    pub errors: Vec<String>,
    /// The execution that wrote this (Initialize's run id).
    #[serde(default)]
    pub run_id: String,
    /// cai version that wrote this.
    pub cai_version: String,
    /// When the invocation started, Unix seconds (0 when unknown: results of older versions).
    #[serde(default)]
    pub started_unix: f64,
    /// The Slurm job that computed this rank (`SLURM_JOB_ID`, unique per array task), when it
    /// ran under Slurm (`cai run --engine slurm`), so a rank can be looked up in `sacct`;
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<u64>,
    /// The job array it ran in (`SLURM_ARRAY_JOB_ID`); absent for a plain job (a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array_job_id: Option<u64>,
    /// Its task in that array (`SLURM_ARRAY_TASK_ID`; cai's arrays index tasks by rank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array_task_id: Option<u64>,
    /// The node it ran on (`SLURMD_NODENAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_node: Option<String>,
    /// The store requests this invocation made, under the keys the original's newer worker
    /// writes (so its `stats.py` fills its S3 columns).
    #[serde(flatten)]
    pub s3: S3Timing,
}

/// Where under Slurm an invocation runs, from the job's environment: `(SLURM_JOB_ID,
/// SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID, SLURMD_NODENAME)`, each None when unset.
pub fn slurm_placement() -> (Option<u64>, Option<u64>, Option<u64>, Option<String>) {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let num = |k: &str| var(k).and_then(|v| v.trim().parse().ok());
    (
        num("SLURM_JOB_ID"),
        num("SLURM_ARRAY_JOB_ID"),
        num("SLURM_ARRAY_TASK_ID"),
        var("SLURMD_NODENAME"),
    )
}

/// Store (S3) requests of one invocation, with the original's key names and meaning: counts,
/// seconds per request, and the wall-clock stamps (Unix seconds) of the first request and
/// the last response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct S3Timing {
    /// Requests made.
    #[serde(default)]
    pub s3_num_requests: u64,
    /// Seconds spent in requests, summed.
    #[serde(default)]
    pub s3_total_time: f64,
    /// Mean seconds per request.
    #[serde(default)]
    pub s3_avg_time: f64,
    /// Fastest request, seconds.
    #[serde(default)]
    pub s3_min_time: f64,
    /// Slowest request, seconds.
    #[serde(default)]
    pub s3_max_time: f64,
    /// When the first request was sent, Unix seconds.
    #[serde(default)]
    pub s3_first_request_time: f64,
    /// When the last response arrived, Unix seconds.
    #[serde(default)]
    pub s3_last_response_time: f64,
}

/// Samples from one partition file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileCount {
    /// Partition key.
    pub key: String,
    /// Samples read from it.
    pub samples: u64,
    /// Its size when read, bytes: with `modified_ms`, how `--resume` notices a replaced file.
    #[serde(default)]
    pub bytes: u64,
    /// Its last-modified time when read, Unix milliseconds.
    #[serde(default)]
    pub modified_ms: u64,
}

/// Seconds spent per phase of an inference invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Timings {
    /// Loading and preparing the weights.
    pub model_load: f64,
    /// Fetching and opening partitions (download for remote stores).
    pub fetch: f64,
    /// Running the model, including reading batches from the open partitions.
    pub inference: f64,
    /// Writing predictions and the result.
    pub write: f64,
    /// True when the weights came from this container's earlier invocation (a warm
    /// Lambda), so `model_load` is only the check that they are unchanged.
    #[serde(default)]
    pub model_cached: bool,
}

/// Pointer to a rank's predictions file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionsRef {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Format (`parquet`).
    pub format: String,
    /// Rows written.
    pub rows: u64,
    /// True when ground-truth redshifts were present (z_true column filled).
    pub with_truth: bool,
}

/// What a rank's attempt marker says: which attempt started when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptMarker {
    /// 1-based attempt number.
    pub attempt: u64,
    /// Unix seconds when the attempt started.
    pub started_unix: f64,
}

/// A rank that failed for good, as the failure handler records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankFailure {
    /// The rank.
    pub rank: u64,
    /// Its planned partitions.
    pub data_path: DataPath,
    /// Step Functions error name (e.g. States.Timeout, Runtime.OutOfMemory).
    pub error: String,
    /// The cause text.
    pub cause: String,
    /// Attempts made (1 = no retry happened).
    pub attempts: u64,
    /// The execution that recorded it.
    #[serde(default)]
    pub run_id: String,
}
