//! What the report knows about one run, whoever wrote it: cai (rank results, summary, plan,
//! predictions) or the original CAI (its `combined_data.json` alone). Figures read only this,
//! so they never care which format a number came from.

use cai_workflow::cost::PerformanceRow;
use cai_workflow::result::{RankResult, S3Timing, Timings};
use cai_workflow::summary::Summary;

use crate::accuracy::AccuracyData;

/// Who wrote the result folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// cai: per-rank results with timings, predictions, summary and plan.
    Cai,
    /// The original CAI: `combined_data.json` with its ten keys (and maybe the S3 keys).
    Original,
}

/// One run, as loaded from its result folder.
#[derive(Debug, Clone)]
pub struct RunData {
    /// `BUCKET/RESULT_PATH`, how the user named it.
    pub label: String,
    /// Who wrote it.
    pub origin: Origin,
    /// Ranks with a result, in rank order (cai) or file order (original).
    pub ranks: Vec<RankRow>,
    /// `summary.json` (cai only; None when Summarize did not run).
    pub summary: Option<Summary>,
    /// What `plan.json` says about the run, when there is one.
    pub plan: Option<PlanFacts>,
    /// Binned predictions against true redshifts; None without labelled predictions.
    pub accuracy: Option<AccuracyData>,
    /// Why a figure could not be drawn, or what was missing; shown on the page.
    pub notes: Vec<String>,
}

/// The facts of `plan.json` the report uses.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFacts {
    /// Ranks planned (world size), including ranks with no data.
    pub world_size: u64,
    /// Ranks planned with data.
    pub ranks_with_data: u64,
    /// Partition prefix (`data_prefix`, e.g. `100MB`).
    pub data_prefix: String,
    /// Memory configured per invocation, MB.
    pub memory_mb: u64,
    /// The weights (store key or `seed:N`).
    pub model: String,
}

/// One rank's record, normalised from either format.
#[derive(Debug, Clone, PartialEq)]
pub struct RankRow {
    /// The rank (cai) or the record's position (the original records no rank).
    pub rank: u64,
    /// Partition keys it read.
    pub data_path: Vec<String>,
    /// Samples predicted.
    pub samples: f64,
    /// Seconds of inference.
    pub inference_seconds: f64,
    /// Samples per second of inference.
    pub sample_persec: f64,
    /// Bits of input tensors per second of inference.
    pub throughput_bps: f64,
    /// CPU seconds of inference.
    pub cpu_seconds: f64,
    /// Bytes of input data read.
    pub data_bytes: f64,
    /// Peak resident memory of the invocation, MB (cai only: the original's
    /// `total_cpu_memory` is a profiler's cumulative figure, not a peak).
    pub peak_rss_mb: Option<f64>,
    /// Wall seconds of the invocation (cai only).
    pub wall_seconds: Option<f64>,
    /// Unix start of the invocation (cai, when recorded).
    pub started_unix: Option<f64>,
    /// Seconds per phase (cai only).
    pub timings: Option<Timings>,
    /// Attempt that produced the result (cai only).
    pub attempts: Option<u64>,
    /// Store requests, when the writer recorded them.
    pub s3: Option<S3Timing>,
    /// Seeded random weights.
    pub untrained: bool,
}

impl RankRow {
    /// A cai rank result.
    pub fn from_cai(r: &RankResult) -> RankRow {
        let bytes: u64 = r.files.iter().map(|f| f.bytes).sum();
        RankRow {
            rank: r.rank,
            data_path: r.data_path.keys().iter().map(|k| k.to_string()).collect(),
            samples: r.samples as f64,
            inference_seconds: r.timings.inference,
            sample_persec: r.sample_persec,
            throughput_bps: r.throughput_bps,
            cpu_seconds: r.total_cpu_time,
            data_bytes: if bytes > 0 {
                bytes as f64
            } else {
                r.bits as f64 / 8.0
            },
            peak_rss_mb: Some(r.peak_rss_mb),
            wall_seconds: Some(r.wall_seconds),
            started_unix: (r.started_unix > 0.0).then_some(r.started_unix),
            timings: Some(r.timings.clone()),
            attempts: Some(r.attempts),
            s3: (r.s3.s3_num_requests > 0).then(|| r.s3.clone()),
            untrained: r.untrained,
        }
    }
}

impl RunData {
    /// True when any rank ran on seeded random weights.
    pub fn untrained(&self) -> bool {
        self.summary.as_ref().is_some_and(|s| s.untrained) || self.ranks.iter().any(|r| r.untrained)
    }

    /// The seed report's row, when the engine recorded one.
    pub fn performance(&self) -> Option<&PerformanceRow> {
        self.summary.as_ref().and_then(|s| s.performance.first())
    }

    /// Wall seconds of the whole execution, when recorded.
    pub fn wall_seconds(&self) -> Option<f64> {
        self.summary
            .as_ref()
            .and_then(|s| s.execution.as_ref())
            .map(|e| e.duration_seconds)
            .filter(|d| *d > 0.0)
    }

    /// Samples predicted, over every rank.
    pub fn samples(&self) -> f64 {
        self.ranks.iter().map(|r| r.samples).sum()
    }

    /// Input bytes read, over every rank.
    pub fn data_bytes(&self) -> f64 {
        self.ranks.iter().map(|r| r.data_bytes).sum()
    }

    /// World size: the plan's, else the seed table's, else the records counted.
    pub fn world_size(&self) -> u64 {
        self.plan
            .as_ref()
            .map(|p| p.world_size)
            .or_else(|| self.performance().map(|p| p.world_size))
            .unwrap_or(self.ranks.len() as u64)
    }

    /// The partition size label (`data_prefix`, e.g. `100MB`), from the plan or the keys.
    pub fn partition(&self) -> String {
        if let Some(p) = &self.plan {
            return p.data_prefix.clone();
        }
        if let Some(p) = self.performance() {
            return p.partition.clone();
        }
        self.ranks
            .iter()
            .flat_map(|r| r.data_path.first())
            .find_map(|k| k.rsplit_once('/').map(|(dir, _)| dir.to_string()))
            .unwrap_or_else(|| "?".to_string())
    }
}
