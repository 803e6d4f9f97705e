//! The execution history: state transitions as Step Functions bills them, and the invocations it shows.

use super::follow::{map_run_arns, MapCounts};
use super::{aws_err, unix_ms, ExecutionError, FAILED_CHILD_TRANSITIONS};
use crate::context::AwsContext;
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use cai_workflow::cost::{billed_ms, InvocationStat};
use cai_workflow::definition::handler_of_resource;
use serde_json::Value;

/// The parts of a history event cai uses, free of SDK types so they can be tested.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    /// The event type, e.g. `TaskStateEntered`, `LambdaFunctionSucceeded`.
    pub kind: String,
    /// When, Unix ms.
    pub timestamp_ms: i64,
    /// The Lambda resource of a `LambdaFunctionScheduled` event.
    pub resource: Option<String>,
    /// The error of a failed or timed-out Lambda.
    pub error: Option<String>,
    /// The output of a succeeded Lambda.
    pub output: Option<String>,
}

impl HistoryItem {
    /// Keeps what cai needs of an SDK event.
    fn from_event(e: &HistoryEvent) -> HistoryItem {
        let r#type = e.r#type();
        HistoryItem {
            kind: r#type.as_str().to_string(),
            timestamp_ms: unix_ms(e.timestamp()),
            resource: e
                .lambda_function_scheduled_event_details()
                .map(|d| d.resource().to_string()),
            error: match r#type {
                HistoryEventType::LambdaFunctionFailed => Some(
                    e.lambda_function_failed_event_details()
                        .and_then(|d| d.error())
                        .unwrap_or("Lambda.Failed")
                        .to_string(),
                ),
                HistoryEventType::LambdaFunctionTimedOut => Some(
                    e.lambda_function_timed_out_event_details()
                        .and_then(|d| d.error())
                        .unwrap_or("States.Timeout")
                        .to_string(),
                ),
                HistoryEventType::LambdaFunctionStartFailed
                | HistoryEventType::LambdaFunctionScheduleFailed => {
                    Some("Lambda.StartFailed".into())
                }
                _ => None,
            },
            output: e
                .lambda_function_succeeded_event_details()
                .and_then(|d| d.output())
                .map(String::from),
        }
    }
}

/// A full execution history (GetExecutionHistory, all pages).
pub async fn history(ctx: &AwsContext, arn: &str) -> Result<Vec<HistoryItem>, ExecutionError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .sfn()
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| aws_err("states:GetExecutionHistory", arn, &e))?;
        out.extend(page.events().iter().map(HistoryItem::from_event));
        match page.next_token() {
            Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.into()),
            _ => return Ok(out),
        }
    }
}

/// State transitions in one execution's history, as billed: states entered plus Task
/// retries (a Lambda scheduled again within the same state entry).
pub fn transitions_in(history: &[HistoryItem]) -> u64 {
    let entered = history
        .iter()
        .filter(|e| e.kind.ends_with("StateEntered"))
        .count() as u64;
    let task_entries = history
        .iter()
        .filter(|e| e.kind == "TaskStateEntered")
        .count() as u64;
    let scheduled = history
        .iter()
        .filter(|e| {
            matches!(
                e.kind.as_str(),
                "LambdaFunctionScheduled" | "TaskScheduled" | "ActivityScheduled"
            )
        })
        .count() as u64;
    entered + scheduled.saturating_sub(task_entries)
}

/// The parent's Lambda invocations (Initialize, Summarize) from its history: handler from
/// the scheduled resource, duration from started to ended as Step Functions saw it.
pub fn invocations_in(history: &[HistoryItem]) -> Vec<InvocationStat> {
    let mut out = Vec::new();
    let (mut handler, mut started): (Option<&'static str>, Option<i64>) = (None, None);
    let mut attempts: std::collections::HashMap<&'static str, u32> = Default::default();
    for e in history {
        match e.kind.as_str() {
            "LambdaFunctionScheduled" => {
                handler = e
                    .resource
                    .as_deref()
                    .and_then(handler_of_resource)
                    .map(|h| h.name());
                started = Some(e.timestamp_ms);
            }
            "LambdaFunctionStarted" => started = Some(e.timestamp_ms),
            "LambdaFunctionSucceeded" | "LambdaFunctionFailed" | "LambdaFunctionTimedOut" => {
                let (Some(h), Some(t0)) = (handler, started) else {
                    continue;
                };
                let attempt = attempts.entry(h).or_insert(0);
                *attempt += 1;
                let wall = (e.timestamp_ms - t0).max(0) as f64 / 1000.0;
                out.push(InvocationStat {
                    handler: h.to_string(),
                    rank: None,
                    attempt: *attempt,
                    outcome: e.error.clone().unwrap_or_else(|| "ok".into()),
                    wall_seconds: wall,
                    billed_ms: billed_ms(wall),
                    cpu_seconds: 0.0,
                    peak_rss_mb: 0.0,
                    started_seconds: None,
                    worker: None,
                    cold: None,
                });
                started = None;
            }
            _ => {}
        }
    }
    out
}

/// Initialize's warnings, from its output in the history.
pub(super) fn init_warnings(history: &[HistoryItem]) -> Vec<String> {
    let mut handler = None;
    for e in history {
        if e.kind == "LambdaFunctionScheduled" {
            handler = e.resource.as_deref().and_then(handler_of_resource);
        }
        if e.kind == "LambdaFunctionSucceeded"
            && handler == Some(cai_workflow::handlers::Handler::Init)
        {
            let out: Option<Value> = e
                .output
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok());
            return out
                .and_then(|o| o.get("warnings").cloned())
                .and_then(|w| serde_json::from_value(w).ok())
                .unwrap_or_default();
        }
    }
    Vec::new()
}

/// Transitions of the Distributed Map's child executions: counted from their histories
/// (ListExecutions by map run); when they cannot be listed, estimated from the item counts
/// (1 per ended item, [`FAILED_CHILD_TRANSITIONS`] per failed one). The bool says "estimated".
pub(super) async fn child_transitions(
    ctx: &AwsContext,
    arn: &str,
    counts: Option<&MapCounts>,
) -> (u64, bool) {
    match counted_child_transitions(ctx, arn).await {
        Ok(Some(n)) => (n, false),
        Ok(None) | Err(_) => {
            let c = counts.copied().unwrap_or_default();
            (
                c.succeeded + c.timed_out + c.aborted + FAILED_CHILD_TRANSITIONS * c.failed,
                true,
            )
        }
    }
}

/// Sums the child executions' histories; None when no child execution can be listed.
async fn counted_child_transitions(
    ctx: &AwsContext,
    arn: &str,
) -> Result<Option<u64>, ExecutionError> {
    let mut total = 0;
    let mut children = 0;
    for run in map_run_arns(ctx, arn).await? {
        let mut token: Option<String> = None;
        loop {
            let page = ctx
                .sfn()
                .list_executions()
                .map_run_arn(&run)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| aws_err("states:ListExecutions", &run, &e))?;
            for child in page.executions() {
                total += transitions_in(&history(ctx, child.execution_arn()).await?);
                children += 1;
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.into()),
                _ => break,
            }
        }
    }
    Ok((children > 0).then_some(total))
}
