//! Fetching what a finished execution produced: summary, rank results, REPORT lines, as the report `cai run` prints.

use super::follow::{map_counts, ExecutionInfo, MapCounts};
use super::history::{child_transitions, history, init_warnings, invocations_in, transitions_in};
use super::pricing::{pick_invocations, priced_row, CostSource};
use super::{now_ms, rfc3339, unix_ms, ExecutionError};
use crate::context::AwsContext;
use crate::logs::{report_events, ReportEvent};
use crate::names::StackNames;
use aws_sdk_sfn::primitives::DateTime;
use cai_local::{Capacity, RunReport};
use cai_store::Store;
use cai_workflow::cost::{InvocationStat, PerformanceRow};
use cai_workflow::result::RankResult;
use cai_workflow::settings::Architecture;
use cai_workflow::summary::{ExecutionRecord, Summary};
use cai_workflow::{layout, Payload};
use std::time::{Duration, SystemTime};

/// How [`fetch`] waits for REPORT lines (CloudWatch delivers them seconds after the run).
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    /// Tries of the log query before falling back to the handlers' records.
    pub log_attempts: u32,
    /// Pause between tries.
    pub log_wait: Duration,
}

impl Default for FetchOptions {
    /// 5 tries 2.5 s apart: about 10 s, enough for Lambda's log delivery.
    fn default() -> Self {
        FetchOptions {
            log_attempts: 5,
            log_wait: Duration::from_millis(2500),
        }
    }
}

/// What [`fetch`] returns: the report `cai run` prints, plus what is AWS-specific.
#[derive(Debug, Clone)]
pub struct AwsRunReport {
    /// The report, printable with cai's run report functions.
    pub report: RunReport,
    /// Where the cost came from.
    pub cost_source: CostSource,
    /// Final Distributed Map item counts.
    pub map_counts: Option<MapCounts>,
    /// True when the child executions' transitions were estimated from item counts.
    pub transitions_estimated: bool,
    /// The execution's ARN.
    pub execution_arn: String,
}

/// After the execution ended: reads `summary.json` (and `combined_data.json`) through
/// `store`, the REPORT lines of the run's invocations from CloudWatch Logs, and the history,
/// and builds the report `cai run` would print. The summary is used only when Summarize
/// succeeded in this execution; the execution record and performance row are written back
/// into it, as `cai run` does.
pub async fn fetch(
    ctx: &AwsContext,
    names: &StackNames,
    store: &Store,
    info: &ExecutionInfo,
    opts: &FetchOptions,
) -> Result<AwsRunReport, ExecutionError> {
    let input = info.input.as_deref().ok_or_else(|| {
        ExecutionError::Payload(format!(
            "{}: Step Functions returned no input for this execution",
            info.arn
        ))
    })?;
    let payload = Payload::parse(input).map_err(|e| ExecutionError::Payload(e.to_string()))?;
    let events = history(ctx, &info.arn).await?;
    let counts = map_counts(ctx, &info.arn).await.unwrap_or_else(|e| {
        tracing::warn!("map run counts: {e}");
        None
    });
    let (children, transitions_estimated) =
        child_transitions(ctx, &info.arn, counts.as_ref()).await;
    let transitions = transitions_in(&events) + children;
    let from_history = invocations_in(&events);
    let summarized = from_history
        .iter()
        .any(|i| i.handler == "summarize" && i.outcome == "ok");
    let summary = if summarized {
        read_summary(store, &payload).await?
    } else {
        None
    };
    let ranks = read_rank_results(store, &payload, summary.as_ref()).await;
    let reports = wait_for_reports(ctx, names, info, opts).await?;
    let (invocations, cost_source) = pick_invocations(&reports, &ranks, &from_history);
    let arch = deployed_architecture(ctx, names)
        .await
        .unwrap_or(payload.settings.architecture);
    let world = summary
        .as_ref()
        .map(|s| s.ranks.planned)
        .or(payload.world_size)
        .or(payload.file_limit)
        .unwrap_or(ranks.len() as u64);
    let performance = priced_row(world, &payload, &invocations, &reports, arch, transitions);
    let execution = execution_record(info, transitions, &invocations);
    let summary = match summary {
        Some(s) => Some(record_in_summary(store, &payload, s, &execution, &performance).await),
        None => None,
    };
    let report = RunReport {
        execution,
        summary,
        performance,
        invocations,
        capacity: capacity(&payload, world, &ranks),
        warnings: init_warnings(&events),
        finished: None,
    };
    Ok(AwsRunReport {
        report,
        cost_source,
        map_counts: counts,
        transitions_estimated,
        execution_arn: info.arn.clone(),
    })
}

/// REPORT lines between the execution's start and stop, retried while none have arrived.
async fn wait_for_reports(
    ctx: &AwsContext,
    names: &StackNames,
    info: &ExecutionInfo,
    opts: &FetchOptions,
) -> Result<Vec<ReportEvent>, ExecutionError> {
    let start = unix_ms(&info.start) - 1000;
    let end = info.stop.as_ref().map_or_else(now_ms, unix_ms) + 60_000;
    let logs = ctx.logs();
    for attempt in 0..opts.log_attempts.max(1) {
        let found = report_events(&logs, names, start, end).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        if attempt + 1 < opts.log_attempts {
            tokio::time::sleep(opts.log_wait).await;
        }
    }
    Ok(Vec::new())
}

/// The execution as the console shows it.
fn execution_record(
    info: &ExecutionInfo,
    transitions: u64,
    invocations: &[InvocationStat],
) -> ExecutionRecord {
    let end = info
        .stop
        .unwrap_or_else(|| DateTime::from(SystemTime::now()));
    let duration = (unix_ms(&end) - unix_ms(&info.start)).max(0) as f64 / 1000.0;
    ExecutionRecord {
        name: info.name.clone(),
        status: info.status.clone(),
        error: info.error.clone(),
        cause: info.cause.clone(),
        state_transitions: transitions,
        start: rfc3339(&info.start),
        end: rfc3339(&end),
        duration_seconds: duration,
        invocations: invocations.to_vec(),
        largest_state_bytes: None,
        throttled: None,
        cluster: None,
    }
}

/// Slots = the Map's MaxConcurrency (0 = as many as ranks); threads = what the ranks used,
/// else the vCPUs Lambda gives at this memory (1 per 1769 MB, at most 6).
fn capacity(payload: &Payload, world: u64, ranks: &[RankResult]) -> Capacity {
    let mc = payload.settings.max_concurrency;
    let slots = (if mc == 0 { world.max(1) } else { mc }) as usize;
    let threads = ranks
        .iter()
        .map(|r| r.threads)
        .max()
        .unwrap_or_else(|| payload.settings.memory_mb.div_ceil(1769).clamp(1, 6))
        as usize;
    Capacity {
        slots,
        threads: threads.max(1),
    }
}

/// The Infer function's architecture as deployed (None when it cannot be read).
async fn deployed_architecture(ctx: &AwsContext, names: &StackNames) -> Option<Architecture> {
    let f = names.function(cai_workflow::handlers::Handler::Infer);
    let c = ctx
        .lambda()
        .get_function_configuration()
        .function_name(&f)
        .send()
        .await
        .ok()?;
    c.architectures()
        .first()
        .and_then(|a| a.as_str().parse().ok())
}

/// summary.json of this run (None when absent).
async fn read_summary(store: &Store, p: &Payload) -> Result<Option<Summary>, ExecutionError> {
    read_json(store, &p.data_bucket, &layout::summary_key(&p.result_path)).await
}

/// The rank results: combined_data.json when Summarize wrote it, else each planned rank's
/// `<rank>.json` (ranks from summary or payload). Unreadable ones are skipped.
async fn read_rank_results(
    store: &Store,
    p: &Payload,
    summary: Option<&Summary>,
) -> Vec<RankResult> {
    let combined: Option<Vec<RankResult>> =
        read_json(store, &p.data_bucket, &layout::combined_key(&p.result_path))
            .await
            .unwrap_or(None);
    if let Some(c) = combined.filter(|c| !c.is_empty()) {
        return c;
    }
    let planned = summary
        .map(|s| s.ranks.planned)
        .or(p.world_size)
        .or(p.file_limit)
        .unwrap_or(0);
    let mut out = Vec::new();
    for rank in 0..planned {
        let key = layout::rank_result_key(&p.result_path, rank);
        if let Ok(Some(r)) = read_json::<RankResult>(store, &p.data_bucket, &key).await {
            out.push(r);
        }
    }
    out
}

/// A JSON object from the store; None when it does not exist.
async fn read_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    bucket: &str,
    key: &str,
) -> Result<Option<T>, ExecutionError> {
    let b = store
        .bucket(bucket)
        .map_err(|e| ExecutionError::Store(e.to_string()))?;
    let bytes = match b.get(key).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(ExecutionError::Store(e.to_string())),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ExecutionError::Store(format!("{bucket}/{key}: not valid JSON for cai: {e}")))
}

/// Adds the execution record and performance table to summary.json, as `cai run` does;
/// a failed write is a warning (the report still prints).
async fn record_in_summary(
    store: &Store,
    p: &Payload,
    mut summary: Summary,
    execution: &ExecutionRecord,
    performance: &PerformanceRow,
) -> Summary {
    summary.execution = Some(execution.clone());
    summary.performance = vec![performance.clone()];
    let key = layout::summary_key(&p.result_path);
    let written = match (
        store.bucket(&p.data_bucket),
        serde_json::to_vec_pretty(&summary),
    ) {
        (Ok(b), Ok(bytes)) => b.put(&key, bytes).await.map_err(|e| e.to_string()),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(e.to_string()),
    };
    if let Err(e) = written {
        tracing::warn!("cannot update {}/{key}: {e}", p.data_bucket);
    }
    summary
}
