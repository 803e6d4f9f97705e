//! `summary.json`: what a user wants to know after a run, in one file. Summarize fills the
//! data part (totals, accuracy, failures); the engine that ran the execution adds the
//! execution record and the performance table (it alone saw every invocation).

use serde::{Deserialize, Serialize};

use crate::cost::PerformanceRow;
use crate::rank::DataPath;

/// The run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The execution (Initialize's run id).
    pub run_id: String,
    /// `succeeded` when every rank with data has a result, else `partial` or `failed`.
    pub status: String,
    /// Bucket and prefix of this run's results.
    pub data_bucket: String,
    /// The result prefix.
    pub result_path: String,
    /// Rank counts.
    pub ranks: RankCounts,
    /// Totals over the ranks with results.
    pub totals: Totals,
    /// Accuracy over every prediction with a ground-truth redshift; null without labels.
    pub accuracy: Option<AccuracyReport>,
    /// True when any rank ran on seeded random weights.
    pub untrained: bool,
    /// Arithmetic of the model's products in this run (the payload's `precision`).
    #[serde(default)]
    pub precision: cai_model::Precision,
    /// Every rank with data but no result, with why.
    pub failed_ranks: Vec<FailedRank>,
    /// The Map's own error when it failed (e.g. tolerated failure threshold exceeded).
    pub map_error: Option<serde_json::Value>,
    /// Execution record, added by the engine after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionRecord>,
    /// The seed report's table, added by the engine after the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance: Vec<PerformanceRow>,
}

/// How the ranks ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RankCounts {
    /// Ranks in the plan.
    pub planned: u64,
    /// Ranks with no data (more ranks than files).
    pub empty: u64,
    /// Ranks with a valid result.
    pub succeeded: u64,
    /// Of those, results kept from an earlier execution (`--resume`).
    pub resumed: u64,
    /// Ranks with data but no valid result.
    pub failed: u64,
}

/// Sums over the ranks with results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Totals {
    /// Samples predicted (each exactly once: checked against the predictions files).
    pub samples: u64,
    /// Samples planned (in all planned files).
    pub planned_files: u64,
    /// Bits of input tensors processed.
    pub bits: u64,
    /// Inference seconds summed over ranks.
    pub inference_seconds: f64,
    /// Invocation wall seconds summed over ranks (model load, I/O and inference).
    pub rank_wall_seconds: f64,
    /// CPU seconds of inference summed over ranks.
    pub cpu_seconds: f64,
    /// Largest peak RSS of any rank, MB.
    pub max_peak_rss_mb: f64,
    /// Samples per second of inference, summed over ranks' rates.
    pub samples_per_inference_second: f64,
}

/// The field's accuracy metrics (dz = (pred - z) / (1 + z)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    /// Labelled predictions.
    pub count: u64,
    /// Mean |pred - z|.
    #[serde(rename = "MAE")]
    pub mae: f64,
    /// Mean (pred - z)^2.
    #[serde(rename = "MSE")]
    pub mse: f64,
    /// Mean dz.
    #[serde(rename = "Bias")]
    pub bias: f64,
    /// 1.48 * median |dz - median dz|.
    #[serde(rename = "NMAD")]
    pub nmad: f64,
    /// Coefficient of determination.
    #[serde(rename = "R2")]
    pub r2: f64,
    /// Fraction with |dz| > 0.15.
    pub outlier_fraction: f64,
}

/// A rank that ended without a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedRank {
    /// The rank.
    pub rank: u64,
    /// Its planned partitions.
    pub data_path: DataPath,
    /// Error name.
    pub error: String,
    /// Cause.
    pub cause: String,
    /// Attempts made.
    pub attempts: u64,
}

/// What the Step Functions console shows about an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Execution name.
    pub name: String,
    /// SUCCEEDED or FAILED.
    pub status: String,
    /// Error of a failed execution.
    pub error: Option<String>,
    /// Cause of a failed execution.
    pub cause: Option<String>,
    /// State transitions, parent and child executions together.
    pub state_transitions: u64,
    /// RFC 3339 start.
    pub start: String,
    /// RFC 3339 end.
    pub end: String,
    /// Seconds from start to end.
    pub duration_seconds: f64,
    /// Invocations by handler and outcome.
    pub invocations: Vec<crate::cost::InvocationStat>,
    /// The largest input, output or result any state handled (UTF-8 JSON bytes), when the
    /// engine measured it: how far the execution stayed under the 256 KiB state limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub largest_state_bytes: Option<u64>,
    /// Invocations answered with a throttle (and retried by the definition), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<u64>,
    /// The jobs and core-hours of an execution whose invocations ran on a batch cluster
    /// (`cai run --engine slurm`); absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::cluster::ClusterUsage>,
}
