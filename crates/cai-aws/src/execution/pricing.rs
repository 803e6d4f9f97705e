//! What a finished execution cost: the invocations priced (Lambda's REPORT lines when there are any) and the seed report's row.

use crate::logs::ReportEvent;
use cai_workflow::cost::{
    billed_ms, gb_second_price, performance_row, InvocationStat, PerformanceRow,
};
use cai_workflow::result::RankResult;
use cai_workflow::settings::Architecture;
use cai_workflow::Payload;

/// Where the cost figures came from.
#[derive(Debug, Clone, PartialEq)]
pub enum CostSource {
    /// Lambda's REPORT lines in CloudWatch Logs: what AWS bills.
    Reports {
        /// Lines found.
        lines: usize,
    },
    /// No REPORT lines: the handlers' own measurements.
    HandlerRecords {
        /// Rank results read (`<result_path>/<rank>.json` or combined_data.json).
        ranks: usize,
        /// Initialize/Summarize invocations timed from the execution history.
        bookkeeping: usize,
    },
}

impl CostSource {
    /// One line for the user saying where the cost figures came from.
    pub fn describe(&self) -> String {
        match self {
            CostSource::Reports { lines } => format!(
                "cost source: {lines} Lambda REPORT line(s) from CloudWatch Logs (billed duration and memory as AWS reported them; \
                 invocations of the same functions by other executions in this time window are included)"
            ),
            CostSource::HandlerRecords { ranks, bookkeeping } => format!(
                "cost source: no Lambda REPORT lines found in CloudWatch Logs; estimated from the wall times the handlers recorded \
                 ({ranks} rank result(s)) and {bookkeeping} Initialize/Summarize invocation(s) timed from the execution history, \
                 at the payload's memory_mb: not AWS's bill"
            ),
        }
    }
}

/// The invocations the cost is computed from: the REPORT lines when there are any, else the
/// rank results' wall times plus the bookkeeping invocations timed from the history.
pub fn pick_invocations(
    reports: &[ReportEvent],
    ranks: &[RankResult],
    from_history: &[InvocationStat],
) -> (Vec<InvocationStat>, CostSource) {
    if !reports.is_empty() {
        let stats = reports.iter().map(ReportEvent::invocation_stat).collect();
        return (
            stats,
            CostSource::Reports {
                lines: reports.len(),
            },
        );
    }
    let mut stats: Vec<InvocationStat> = ranks.iter().map(rank_stat).collect();
    let bookkeeping: Vec<InvocationStat> = from_history.to_vec();
    let source = CostSource::HandlerRecords {
        ranks: stats.len(),
        bookkeeping: bookkeeping.len(),
    };
    stats.extend(bookkeeping);
    (stats, source)
}

/// A rank's invocation as its handler recorded it (the attempt that produced the result).
fn rank_stat(r: &RankResult) -> InvocationStat {
    InvocationStat {
        handler: "infer".into(),
        rank: Some(r.rank),
        attempt: r.attempts.max(1) as u32,
        outcome: "ok".into(),
        wall_seconds: r.wall_seconds,
        billed_ms: billed_ms(r.wall_seconds),
        cpu_seconds: r.total_cpu_time,
        peak_rss_mb: r.peak_rss_mb,
        started_seconds: None,
        worker: None,
        cold: None,
    }
}

/// The seed report's row. With REPORT lines, memory is Lambda's configured size per
/// invocation (compute cost summed per invocation when the functions differ); otherwise the
/// payload's memory_mb.
pub fn priced_row(
    world: u64,
    payload: &Payload,
    invocations: &[InvocationStat],
    reports: &[ReportEvent],
    arch: Architecture,
    transitions: u64,
) -> PerformanceRow {
    let sizes: Vec<u64> = reports.iter().map(|r| r.line.memory_mb).collect();
    let infer_size = reports
        .iter()
        .find(|r| r.handler == cai_workflow::handlers::Handler::Infer)
        .map(|r| r.line.memory_mb);
    let memory_mb = infer_size
        .or(sizes.first().copied())
        .unwrap_or(payload.settings.memory_mb);
    let mut row = performance_row(
        world,
        &payload.data_prefix,
        invocations,
        memory_mb,
        arch,
        transitions,
    );
    if sizes.iter().any(|m| *m != memory_mb) {
        let gb_s: f64 = reports
            .iter()
            .map(|r| r.line.billed_ms as f64 / 1000.0 * r.line.memory_mb as f64 / 1024.0)
            .sum();
        row.compute_usd = gb_s * gb_second_price(arch);
        row.cost_usd = row.compute_usd + row.request_usd + row.transition_usd;
    }
    row
}
