//! The numbers a scaling study compares across runs: wall time, throughput, the ranks'
//! summed inference rate and cost, against data size and world size, one series per
//! partition size (and per writer, so an original CAI run sits beside a cai run).

use crate::run::{Origin, RunData};

/// One run reduced to the scaling study's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePoint {
    /// The series: partition size, plus `(original)` for the original's runs.
    pub series: String,
    /// Input data read, GB (10^9 bytes).
    pub data_gb: f64,
    /// World size.
    pub world: f64,
    /// Execution wall seconds (cai only).
    pub wall: Option<f64>,
    /// Samples per second of execution wall time (cai only).
    pub throughput: Option<f64>,
    /// Samples per second of inference, summed over ranks (both writers record it).
    pub inference_rate: f64,
    /// Projected cost, US$ (cai only).
    pub cost: Option<f64>,
}

/// Every run's point.
pub fn points(runs: &[RunData]) -> Vec<ScalePoint> {
    runs.iter()
        .map(|r| {
            let wall = r.wall_seconds();
            let series = match r.origin {
                Origin::Cai => r.partition(),
                Origin::Original => format!("{} (original)", r.partition()),
            };
            ScalePoint {
                series,
                data_gb: r.data_bytes() / 1e9,
                world: r.world_size() as f64,
                wall,
                throughput: wall.map(|w| r.samples() / w),
                inference_rate: r.ranks.iter().map(|k| k.sample_persec).sum(),
                cost: r.performance().map(|p| p.cost_usd),
            }
        })
        .collect()
}
