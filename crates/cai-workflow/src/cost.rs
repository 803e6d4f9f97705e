//! What a run would cost on AWS: Lambda compute (billed per ms at the configured memory),
//! Lambda requests and Step Functions Standard state transitions, at the us-east-1 prices the
//! original's paper uses. Locally it is a projection from this machine's timings.

use serde::{Deserialize, Serialize};

use crate::settings::Architecture;

/// Lambda x86_64, $ per GB-second.
pub const X86_GB_SECOND: f64 = 0.000_016_666_7;
/// Lambda arm64, $ per GB-second.
pub const ARM_GB_SECOND: f64 = 0.000_013_333_4;
/// Lambda, $ per request.
pub const PER_REQUEST: f64 = 0.20 / 1_000_000.0;
/// Step Functions Standard, $ per state transition.
pub const PER_TRANSITION: f64 = 0.000_025;
/// Step Functions Express, $ per execution (request).
pub const EXPRESS_PER_REQUEST: f64 = 1.00 / 1_000_000.0;
/// Step Functions Express, $ per GB-second of execution duration.
pub const EXPRESS_GB_SECOND: f64 = 0.000_016_67;
/// Memory an Express execution is billed for: 64 MB chunks of what it uses, at least one,
/// and a workflow that only passes small payloads uses one.
pub const EXPRESS_BILLED_GB: f64 = 64.0 / 1024.0;

/// One function invocation as the engine measured (or Lambda reported) it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationStat {
    /// Handler (init, infer, failure, summarize).
    pub handler: String,
    /// Rank, for inference.
    pub rank: Option<u64>,
    /// 1-based attempt.
    pub attempt: u32,
    /// `ok` or the error name.
    pub outcome: String,
    /// Wall seconds, process start to exit.
    pub wall_seconds: f64,
    /// Billed milliseconds (wall rounded up to the ms, as Lambda bills).
    pub billed_ms: u64,
    /// CPU seconds (user + system).
    pub cpu_seconds: f64,
    /// Peak RSS, MB.
    pub peak_rss_mb: f64,
    /// When it started, seconds after the execution started (None when unknown), so a
    /// timeline can be drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_seconds: Option<f64>,
    /// The local worker (slot) that served it; None on AWS, where each invocation has its
    /// own container as far as cai can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<u64>,
    /// Whether it paid a cold start (a new worker process or Lambda container); None when
    /// unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold: Option<bool>,
}

/// The seed report's table columns, in its order: users compare cai's tables with it.
pub const SEED_TABLE_COLUMNS: [&str; 6] = [
    "World size",
    "Partition",
    "Requests",
    "Duration (s)",
    "Memory (GB)",
    "Cost ($)",
];

/// One row of the seed report's table, with its cost broken down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceRow {
    /// Ranks.
    #[serde(rename = "World size")]
    pub world_size: u64,
    /// Partition prefix (e.g. `100MB`).
    #[serde(rename = "Partition")]
    pub partition: String,
    /// Lambda requests (every invocation, retries included).
    #[serde(rename = "Requests")]
    pub requests: u64,
    /// Billed Lambda seconds summed over requests.
    #[serde(rename = "Duration (s)")]
    pub duration_seconds: f64,
    /// Configured memory per function, GB (what Lambda bills).
    #[serde(rename = "Memory (GB)")]
    pub memory_gb: f64,
    /// Total projected cost.
    #[serde(rename = "Cost ($)")]
    pub cost_usd: f64,
    /// Compute part: Duration x Memory x GB-second price.
    pub compute_usd: f64,
    /// Requests part.
    pub request_usd: f64,
    /// State transitions counted (Standard executions; Express ones are billed otherwise).
    pub state_transitions: u64,
    /// Transitions part.
    pub transition_usd: f64,
    /// Distributed Map child executions of type EXPRESS.
    #[serde(default)]
    pub express_executions: u64,
    /// Their part: per execution and per GB-second of duration (rounded up to 100 ms each).
    #[serde(default)]
    pub express_usd: f64,
}

impl PerformanceRow {
    /// Adds the cost of `executions` Express child executions that were billed
    /// `billed_seconds` in all (each rounded up to 100 ms).
    pub fn add_express(&mut self, executions: u64, billed_seconds: f64) {
        self.express_executions += executions;
        let usd = executions as f64 * EXPRESS_PER_REQUEST
            + billed_seconds * EXPRESS_BILLED_GB * EXPRESS_GB_SECOND;
        self.express_usd += usd;
        self.cost_usd += usd;
    }
}

/// $ per GB-second for an architecture.
pub fn gb_second_price(arch: Architecture) -> f64 {
    match arch {
        Architecture::X86_64 => X86_GB_SECOND,
        Architecture::Arm64 => ARM_GB_SECOND,
    }
}

/// Milliseconds Lambda would bill for a wall time.
pub fn billed_ms(wall_seconds: f64) -> u64 {
    (wall_seconds * 1000.0).ceil().max(1.0) as u64
}

/// Cost = Requests x $0.20/M + Duration x Memory x GB-s price + Transitions x $0.000025.
pub fn performance_row(
    world_size: u64,
    partition: &str,
    invocations: &[InvocationStat],
    memory_mb: u64,
    arch: Architecture,
    state_transitions: u64,
) -> PerformanceRow {
    let requests = invocations.len() as u64;
    let duration_seconds = invocations
        .iter()
        .map(|i| i.billed_ms as f64 / 1000.0)
        .sum::<f64>();
    let memory_gb = memory_mb as f64 / 1024.0;
    let compute_usd = duration_seconds * memory_gb * gb_second_price(arch);
    let request_usd = requests as f64 * PER_REQUEST;
    let transition_usd = state_transitions as f64 * PER_TRANSITION;
    PerformanceRow {
        world_size,
        partition: partition.to_string(),
        requests,
        duration_seconds,
        memory_gb,
        cost_usd: compute_usd + request_usd + transition_usd,
        compute_usd,
        request_usd,
        state_transitions,
        transition_usd,
        express_executions: 0,
        express_usd: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_100mb_figure_is_reproduced() {
        // 130 requests x 25 s x 7 GB at x86 prices: the paper's $0.38 (compute only).
        let inv: Vec<InvocationStat> = (0..130)
            .map(|r| InvocationStat {
                handler: "infer".into(),
                rank: Some(r),
                attempt: 1,
                outcome: "ok".into(),
                wall_seconds: 25.0,
                billed_ms: 25_000,
                cpu_seconds: 0.0,
                peak_rss_mb: 0.0,
                started_seconds: None,
                worker: None,
                cold: None,
            })
            .collect();
        let row = performance_row(130, "100MB", &inv, 7 * 1024, Architecture::X86_64, 0);
        assert!(
            (row.compute_usd - 0.379).abs() < 0.001,
            "{}",
            row.compute_usd
        );
        assert_eq!(row.requests, 130);
        assert!((row.request_usd - 130.0 * 0.2e-6).abs() < 1e-12);
    }

    #[test]
    fn express_children_cost_requests_and_duration() {
        let mut row = performance_row(1000, "25MB", &[], 2048, Architecture::X86_64, 5);
        let before = row.cost_usd;
        // 1,000 children of 12.4 s each, billed at 64 MB.
        row.add_express(1000, 12_400.0);
        let want = 1000.0 * 1e-6 + 12_400.0 * 0.0625 * 0.000_016_67;
        assert!((row.express_usd - want).abs() < 1e-12);
        assert!((row.cost_usd - before - want).abs() < 1e-12);
        assert_eq!(row.express_executions, 1000);
    }
}
