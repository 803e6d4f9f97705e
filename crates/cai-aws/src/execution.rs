//! Executions of a deployed workflow: [`start`] one from a payload (bringing the state
//! machine's definition in line with the payload's settings first), [`follow`] it to the end
//! with the Distributed Map's item counts, and [`fetch`] what it produced: `summary.json`,
//! the REPORT lines Lambda billed, the state transitions, as the same
//! [`cai_local::RunReport`] `cai run` prints.
//!
//! State transitions are counted as Step Functions bills them: one per state entered
//! (`*StateEntered` history events, in the parent and in every Distributed Map child
//! execution) plus one per retry of a Task (a Lambda scheduled again after a failure). The
//! local engine counts states entered only, so on a run without retries both give
//! `ranks + 5`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineError;
use aws_sdk_sfn::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use cai_local::{Capacity, RunReport};
use cai_store::Store;
use cai_workflow::cost::{
    billed_ms, gb_second_price, performance_row, InvocationStat, PerformanceRow,
};
use cai_workflow::definition::{generate, handler_of_resource};
use cai_workflow::result::RankResult;
use cai_workflow::settings::Architecture;
use cai_workflow::summary::{ExecutionRecord, Summary};
use cai_workflow::{layout, Payload};
use serde_json::Value;

use crate::context::{error_text, AwsContext};
use crate::logs::{report_events, LogsError, ReportEvent};
use crate::names::StackNames;

/// How often [`follow`] asks Step Functions about a running execution by default.
pub const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// Transitions of a failed rank's child execution: Infer, RecordFailure, RankFailed (used
/// only when the child executions cannot be listed).
const FAILED_CHILD_TRANSITIONS: u64 = 3;

/// Errors of the execution commands; each names the resource or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The payload is not one cai accepts.
    #[error("payload: {0}")]
    Payload(String),
    /// The payload names buckets or prefixes the deployment may not touch.
    #[error("{0}")]
    Scope(String),
    /// The state machine does not exist.
    #[error("not deployed: state machine {state_machine} not found in {region}; run `cai aws deploy --name {name}`")]
    NotDeployed {
        /// The deployment name.
        name: String,
        /// The state machine's ARN.
        state_machine: String,
        /// The region searched.
        region: String,
    },
    /// An AWS call failed.
    #[error("{op} on {resource}: {message}")]
    Aws {
        /// The API call, e.g. `states:StartExecution`.
        op: &'static str,
        /// The resource it was about.
        resource: String,
        /// The service's code and message.
        message: String,
    },
    /// Not an execution ARN.
    #[error("execution ARN {arn:?}: {reason}")]
    Arn {
        /// What was given.
        arn: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store holding the results failed.
    #[error("store: {0}")]
    Store(String),
    /// CloudWatch Logs failed.
    #[error(transparent)]
    Logs(#[from] LogsError),
}

/// Shorthand for an AWS call's error.
fn aws_err<E, R>(
    op: &'static str,
    resource: &str,
    e: &aws_sdk_sfn::error::SdkError<E, R>,
) -> ExecutionError
where
    E: std::error::Error + aws_sdk_sfn::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    ExecutionError::Aws {
        op,
        resource: resource.to_string(),
        message: error_text(e),
    }
}

// ---------------------------------------------------------------- ARNs and names

/// The parts of an execution ARN, `arn:PARTITION:states:REGION:ACCOUNT:execution:SM:NAME`,
/// so `cai aws status ARN` knows the region and deployment without flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionArn {
    /// Region.
    pub region: String,
    /// Account id.
    pub account: String,
    /// State machine name (= the deployment name for cai's deployments).
    pub state_machine: String,
    /// Execution name.
    pub name: String,
}

impl ExecutionArn {
    /// Splits an execution ARN, refusing anything else (a state machine or map run ARN).
    pub fn parse(arn: &str) -> Result<ExecutionArn, ExecutionError> {
        let bad = |reason: &str| ExecutionError::Arn {
            arn: arn.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() < 6 || parts[0] != "arn" || parts[2] != "states" {
            return Err(bad(
                "expected arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME",
            ));
        }
        if parts[5] != "execution" {
            return Err(bad(&format!(
                "this is a Step Functions {:?} ARN, not an execution's",
                parts[5]
            )));
        }
        if parts.len() < 8 {
            return Err(bad(
                "expected arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME",
            ));
        }
        let field = |i: usize, what: &str| {
            let v = parts[i];
            if v.is_empty() {
                Err(bad(&format!("the {what} is empty")))
            } else {
                Ok(v.to_string())
            }
        };
        Ok(ExecutionArn {
            region: field(3, "region")?,
            account: field(4, "account")?,
            state_machine: field(6, "state machine name")?,
            name: field(parts.len() - 1, "execution name")?,
        })
    }
}

/// A fresh execution name, `cai-<unix secs>-<4 hex>`: readable, sortable by time, and
/// unique among executions started in the same second.
pub fn new_execution_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("cai-{secs}-{:04x}", h.finish() & 0xffff)
}

// ---------------------------------------------------------------- scope

/// The deployment's scope check, before an execution starts: the payload's buckets and
/// prefixes must be ones the deployed roles may touch (the scope `cai aws deploy` recorded
/// in the init function's `CAI_SCOPE`), so a run that would fail on AccessDenied in every
/// rank fails here instead, naming the field. No init function means not deployed.
pub async fn check_scope(
    ctx: &AwsContext,
    names: &StackNames,
    payload: &Payload,
) -> Result<(), ExecutionError> {
    let scope = crate::deploy::deployed_scope(ctx, names)
        .await
        .map_err(|e| ExecutionError::Scope(e.to_string()))?
        .ok_or_else(|| not_deployed(ctx, names))?;
    scope
        .check(payload)
        .map_err(|why| ExecutionError::Scope(format!("deployment {}: {why}", names.name())))
}

/// The error for a deployment that does not exist in this region.
fn not_deployed(ctx: &AwsContext, names: &StackNames) -> ExecutionError {
    ExecutionError::NotDeployed {
        name: names.name().to_string(),
        state_machine: names.state_machine_arn(&ctx.region, &ctx.account),
        region: ctx.region.clone(),
    }
}

// ---------------------------------------------------------------- start

/// What [`start`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The new execution's ARN.
    pub execution_arn: String,
    /// The execution's name.
    pub name: String,
    /// Set when the deployed definition had to be updated for this payload's settings: the
    /// line to show the user.
    pub definition_update: Option<String>,
}

/// Validates the payload, checks the deployment's scope, brings the state machine's
/// definition in line with the payload's settings (UpdateStateMachine when it differs) and
/// starts an execution with the payload as input. `execution_name` defaults to
/// [`new_execution_name`].
pub async fn start(
    ctx: &AwsContext,
    names: &StackNames,
    payload_text: &str,
    execution_name: Option<&str>,
) -> Result<Started, ExecutionError> {
    let payload =
        Payload::parse(payload_text).map_err(|e| ExecutionError::Payload(e.to_string()))?;
    check_scope(ctx, names, &payload).await?;
    let sm_arn = names.state_machine_arn(&ctx.region, &ctx.account);
    let wanted = generate(
        &payload.settings,
        &names.functions(&ctx.region, &ctx.account),
    );
    let deployed = deployed_definition(ctx, names, &sm_arn).await?;
    let definition_update = if deployed != wanted {
        update_definition(ctx, &sm_arn, &wanted).await?;
        Some(format!(
            "state machine {}: definition updated for this payload's settings ({})",
            names.state_machine(),
            definition_changes(&deployed, &wanted).join(", ")
        ))
    } else {
        None
    };
    let name = execution_name.map_or_else(new_execution_name, String::from);
    let out = ctx
        .sfn()
        .start_execution()
        .state_machine_arn(&sm_arn)
        .name(&name)
        .input(payload_text)
        .send()
        .await
        .map_err(|e| aws_err("states:StartExecution", &sm_arn, &e))?;
    let execution_arn = out.execution_arn().to_string();
    if definition_update.is_some() {
        warn_if_stale_definition(ctx, &execution_arn, &wanted).await;
    }
    Ok(Started {
        execution_arn,
        name,
        definition_update,
    })
}

/// The deployed state machine's definition, parsed; NotDeployed when it does not exist.
async fn deployed_definition(
    ctx: &AwsContext,
    names: &StackNames,
    sm_arn: &str,
) -> Result<Value, ExecutionError> {
    let out = match ctx
        .sfn()
        .describe_state_machine()
        .state_machine_arn(sm_arn)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) if is_missing_state_machine(&e) => return Err(not_deployed(ctx, names)),
        Err(e) => return Err(aws_err("states:DescribeStateMachine", sm_arn, &e)),
    };
    serde_json::from_str(out.definition()).map_err(|e| ExecutionError::Aws {
        op: "states:DescribeStateMachine",
        resource: sm_arn.to_string(),
        message: format!("the deployed definition is not JSON: {e}"),
    })
}

/// True for DescribeStateMachine's "does not exist" answer.
fn is_missing_state_machine<R>(
    e: &aws_sdk_sfn::error::SdkError<DescribeStateMachineError, R>,
) -> bool {
    matches!(
        e.as_service_error(),
        Some(DescribeStateMachineError::StateMachineDoesNotExist(_))
    )
}

/// Replaces the definition, then waits (up to ~5 s) until DescribeStateMachine shows it, as
/// updates are eventually consistent.
async fn update_definition(
    ctx: &AwsContext,
    sm_arn: &str,
    wanted: &Value,
) -> Result<(), ExecutionError> {
    ctx.sfn()
        .update_state_machine()
        .state_machine_arn(sm_arn)
        .definition(wanted.to_string())
        .send()
        .await
        .map_err(|e| aws_err("states:UpdateStateMachine", sm_arn, &e))?;
    for _ in 0..5 {
        let out = ctx
            .sfn()
            .describe_state_machine()
            .state_machine_arn(sm_arn)
            .send()
            .await;
        let now: Option<Value> = out
            .ok()
            .and_then(|o| serde_json::from_str(o.definition()).ok());
        if now.as_ref() == Some(wanted) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Step Functions may start an execution on the previous definition for a few seconds after
/// an update; say so when it happened (DescribeStateMachineForExecution shows the one used).
async fn warn_if_stale_definition(ctx: &AwsContext, execution_arn: &str, wanted: &Value) {
    let used = ctx
        .sfn()
        .describe_state_machine_for_execution()
        .execution_arn(execution_arn)
        .send()
        .await;
    let used: Option<Value> = used
        .ok()
        .and_then(|o| serde_json::from_str(o.definition()).ok());
    if used.as_ref().is_some_and(|u| u != wanted) {
        tracing::warn!(
            "{execution_arn} started on the definition before the update (Step Functions applies updates within seconds); its Map settings may differ from the payload's"
        );
    }
}

/// Where two definitions differ, as `path: old -> new` for short leaves and `path` for
/// the rest; at most 6 entries, then `+N more`.
pub fn definition_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut all = Vec::new();
    diff_into("", old, new, &mut all);
    if all.len() > 6 {
        let more = all.len() - 6;
        all.truncate(6);
        all.push(format!("+{more} more"));
    }
    all
}

/// Recursive part of [`definition_changes`].
fn diff_into(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                diff_into(&p, x, y, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_into(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if old == new => {}
        _ => {
            let (o, n) = (old.to_string(), new.to_string());
            if o.len() + n.len() <= 40 {
                out.push(format!("{path}: {o} -> {n}"));
            } else {
                out.push(path.to_string());
            }
        }
    }
}

// ---------------------------------------------------------------- follow

/// Item counts of the execution's Distributed Map runs (summed over map runs), as
/// DescribeMapRun gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapCounts {
    /// Not started yet.
    pub pending: u64,
    /// Running now.
    pub running: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Timed out.
    pub timed_out: u64,
    /// Aborted.
    pub aborted: u64,
    /// All items.
    pub total: u64,
}

impl MapCounts {
    /// Items that ended, whichever way.
    pub fn done(&self) -> u64 {
        self.succeeded + self.failed + self.timed_out + self.aborted
    }

    /// Items that ended badly.
    pub fn unsuccessful(&self) -> u64 {
        self.failed + self.timed_out + self.aborted
    }

    /// Adds another map run's counts.
    fn add(&mut self, o: &MapCounts) {
        self.pending += o.pending;
        self.running += o.running;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.timed_out += o.timed_out;
        self.aborted += o.aborted;
        self.total += o.total;
    }
}

/// An execution as DescribeExecution shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInfo {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// The state machine it runs.
    pub state_machine_arn: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE.
    pub status: String,
    /// The error of an execution that did not succeed.
    pub error: Option<String>,
    /// Its cause.
    pub cause: Option<String>,
    /// Start time.
    pub start: DateTime,
    /// Stop time (None while running).
    pub stop: Option<DateTime>,
    /// The input (the payload), when Step Functions returned it.
    pub input: Option<String>,
}

impl ExecutionInfo {
    /// True once the execution ended.
    pub fn ended(&self) -> bool {
        self.status != "RUNNING"
    }
}

/// Receives what [`follow`] sees, so the CLI can draw a bar and tests can record it.
pub trait FollowProgress {
    /// Called after every poll with the status and (when a map run exists) its counts.
    fn update(&mut self, status: &str, counts: Option<&MapCounts>);
}

/// Ignores progress (quiet runs).
impl FollowProgress for () {
    fn update(&mut self, _status: &str, _counts: Option<&MapCounts>) {}
}

/// DescribeExecution.
pub async fn describe(ctx: &AwsContext, arn: &str) -> Result<ExecutionInfo, ExecutionError> {
    let o = ctx
        .sfn()
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| aws_err("states:DescribeExecution", arn, &e))?;
    Ok(ExecutionInfo {
        arn: o.execution_arn().to_string(),
        name: o.name().map(String::from).unwrap_or_else(|| {
            ExecutionArn::parse(arn).map_or_else(|_| arn.to_string(), |a| a.name)
        }),
        state_machine_arn: o.state_machine_arn().to_string(),
        status: o.status().as_str().to_string(),
        error: o.error().map(String::from),
        cause: o.cause().map(String::from),
        start: *o.start_date(),
        stop: o.stop_date().copied(),
        input: o.input().map(String::from),
    })
}

/// The map runs of an execution (ListMapRuns, all pages).
async fn map_run_arns(ctx: &AwsContext, arn: &str) -> Result<Vec<String>, ExecutionError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .sfn()
            .list_map_runs()
            .execution_arn(arn)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| aws_err("states:ListMapRuns", arn, &e))?;
        out.extend(page.map_runs().iter().map(|m| m.map_run_arn().to_string()));
        match page.next_token() {
            Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.into()),
            _ => return Ok(out),
        }
    }
}

/// The execution's Distributed Map item counts, summed over its map runs; None before the
/// Map started.
pub async fn map_counts(ctx: &AwsContext, arn: &str) -> Result<Option<MapCounts>, ExecutionError> {
    let runs = map_run_arns(ctx, arn).await?;
    if runs.is_empty() {
        return Ok(None);
    }
    let mut sum = MapCounts::default();
    for run in runs {
        let d = ctx
            .sfn()
            .describe_map_run()
            .map_run_arn(&run)
            .send()
            .await
            .map_err(|e| aws_err("states:DescribeMapRun", &run, &e))?;
        if let Some(c) = d.item_counts() {
            let n = |v: i64| v.max(0) as u64;
            sum.add(&MapCounts {
                pending: n(c.pending()),
                running: n(c.running()),
                succeeded: n(c.succeeded()),
                failed: n(c.failed()),
                timed_out: n(c.timed_out()),
                aborted: n(c.aborted()),
                total: n(c.total()),
            });
        }
    }
    Ok(Some(sum))
}

/// Map counts for progress: a failure is logged and shown as "no counts", never fatal.
async fn counts_for_progress(ctx: &AwsContext, arn: &str) -> Option<MapCounts> {
    match map_counts(ctx, arn).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("map run counts: {e}");
            None
        }
    }
}

/// Polls the execution every `poll` until it ends, reporting status and map-run counts to
/// `progress` after every poll (and once more at the end, so the last counts are final).
pub async fn follow(
    ctx: &AwsContext,
    arn: &str,
    poll: Duration,
    progress: &mut dyn FollowProgress,
) -> Result<ExecutionInfo, ExecutionError> {
    loop {
        let info = describe(ctx, arn).await?;
        let counts = counts_for_progress(ctx, arn).await;
        progress.update(&info.status, counts.as_ref());
        if info.ended() {
            return Ok(info);
        }
        tokio::time::sleep(poll).await;
    }
}

// ---------------------------------------------------------------- history

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
fn init_warnings(history: &[HistoryItem]) -> Vec<String> {
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
async fn child_transitions(ctx: &AwsContext, arn: &str, counts: Option<&MapCounts>) -> (u64, bool) {
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

// ---------------------------------------------------------------- fetch

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

// ---------------------------------------------------------------- time

/// Unix milliseconds of an SDK time.
fn unix_ms(t: &DateTime) -> i64 {
    t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
}

/// Now, Unix ms.
fn now_ms() -> i64 {
    unix_ms(&DateTime::from(SystemTime::now()))
}

/// RFC 3339, as the local engine writes times.
fn rfc3339(t: &DateTime) -> String {
    t.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{}s", t.secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_split_and_others_are_refused() {
        let a = ExecutionArn::parse(
            "arn:aws:states:eu-west-1:123456789012:execution:cai-prod:cai-1700000000-ab12",
        )
        .unwrap();
        assert_eq!(a.region, "eu-west-1");
        assert_eq!(a.account, "123456789012");
        assert_eq!(a.state_machine, "cai-prod");
        assert_eq!(a.name, "cai-1700000000-ab12");
        let e = ExecutionArn::parse("arn:aws:states:eu-west-1:1:stateMachine:cai").unwrap_err();
        assert!(e.to_string().contains("not an execution"), "{e}");
        assert!(ExecutionArn::parse("cai-123").is_err());
        assert!(ExecutionArn::parse("arn:aws:lambda:r:1:execution:a:b").is_err());
    }

    #[test]
    fn execution_names_are_unique_and_well_formed() {
        let (a, b) = (new_execution_name(), new_execution_name());
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.len(), 3, "{a}");
        assert_eq!(parts[0], "cai");
        assert!(parts[1].parse::<u64>().is_ok());
        assert_eq!(parts[2].len(), 4);
    }

    #[test]
    fn definition_changes_name_the_settings() {
        let old =
            serde_json::json!({"States": {"Inference": {"MaxConcurrency": 4, "Retry": [1, 2]}}});
        let new =
            serde_json::json!({"States": {"Inference": {"MaxConcurrency": 8, "Retry": [1, 3]}}});
        assert_eq!(
            definition_changes(&old, &new),
            vec![
                "States.Inference.MaxConcurrency: 4 -> 8",
                "States.Inference.Retry[1]: 2 -> 3"
            ]
        );
        assert!(definition_changes(&old, &old).is_empty());
    }

    fn ev(kind: &str, t: i64) -> HistoryItem {
        HistoryItem {
            kind: kind.into(),
            timestamp_ms: t,
            resource: None,
            error: None,
            output: None,
        }
    }

    fn scheduled(fn_name: &str, t: i64) -> HistoryItem {
        HistoryItem {
            resource: Some(format!("arn:aws:lambda:r:1:function:{fn_name}")),
            ..ev("LambdaFunctionScheduled", t)
        }
    }

    #[test]
    fn transitions_count_states_entered_and_retries() {
        let h = vec![
            ev("ExecutionStarted", 0),
            ev("TaskStateEntered", 1),
            scheduled("cai-init", 1),
            ev("LambdaFunctionStarted", 2),
            HistoryItem {
                error: Some("cai.Store".into()),
                ..ev("LambdaFunctionFailed", 5)
            },
            scheduled("cai-init", 6),
            ev("LambdaFunctionStarted", 7),
            ev("LambdaFunctionSucceeded", 1007),
            ev("TaskStateExited", 1008),
            ev("MapStateEntered", 1009),
            ev("MapStateExited", 1010),
            ev("TaskStateEntered", 1011),
            scheduled("cai-summarize", 1011),
            ev("LambdaFunctionStarted", 1012),
            ev("LambdaFunctionSucceeded", 1212),
            ev("ChoiceStateEntered", 1213),
            ev("SucceedStateEntered", 1214),
        ];
        // 5 states entered + 1 retry of Initialize.
        assert_eq!(transitions_in(&h), 6);
        let inv = invocations_in(&h);
        assert_eq!(inv.len(), 3);
        assert_eq!(
            (
                inv[0].handler.as_str(),
                inv[0].attempt,
                inv[0].outcome.as_str()
            ),
            ("init", 1, "cai.Store")
        );
        assert_eq!(
            (inv[1].handler.as_str(), inv[1].attempt, inv[1].billed_ms),
            ("init", 2, 1000)
        );
        assert_eq!(
            (inv[2].handler.as_str(), inv[2].billed_ms),
            ("summarize", 200)
        );
    }

    fn rank(r: u64, wall: f64) -> RankResult {
        let v = serde_json::json!({
            "total_cpu_time (seconds)": 2.0, "total_cpu_memory (MB)": 300.0,
            "execution_time (seconds/batch)": 0.1, "num_batches": 1, "batch_size": 8, "device": "cpu",
            "throughput_bps": 1.0, "sample_persec": 1.0, "result_path": "r", "data_path": [],
            "rank": r, "world_size": 2, "samples": 8, "bits": 8, "files": [], "wall_seconds": wall,
            "timings": {"model_load": 0.0, "fetch": 0.0, "inference": 0.0, "write": 0.0}, "peak_rss_mb": 512.5, "threads": 2, "attempts": 1, "model": "seed:0",
            "untrained": true, "predictions": {"bucket": "d", "key": "k", "format": "parquet", "rows": 8, "with_truth": false},
            "errors": [], "cai_version": "0"
        });
        serde_json::from_value(v).expect("a rank result")
    }

    #[test]
    fn reports_win_and_the_fallback_says_so() {
        let line = "REPORT RequestId: a\tDuration: 10.5 ms\tBilled Duration: 11 ms\tMemory Size: 2048 MB\tMax Memory Used: 99 MB";
        let rep =
            vec![ReportEvent::parse(cai_workflow::handlers::Handler::Infer, line, 0).unwrap()];
        let ranks = vec![rank(0, 1.2345), rank(1, 2.0)];
        let hist = invocations_in(&[scheduled("x-init", 0), ev("LambdaFunctionSucceeded", 50)]);
        let (inv, src) = pick_invocations(&rep, &ranks, &hist);
        assert_eq!(src, CostSource::Reports { lines: 1 });
        assert_eq!(
            (inv.len(), inv[0].billed_ms, inv[0].peak_rss_mb),
            (1, 11, 99.0)
        );
        let (inv, src) = pick_invocations(&[], &ranks, &hist);
        assert_eq!(
            src,
            CostSource::HandlerRecords {
                ranks: 2,
                bookkeeping: 1
            }
        );
        assert_eq!(inv.len(), 3);
        assert_eq!(
            (inv[0].rank, inv[0].billed_ms, inv[0].peak_rss_mb),
            (Some(0), 1235, 512.5)
        );
        assert_eq!((inv[2].handler.as_str(), inv[2].billed_ms), ("init", 50));
        assert!(src.describe().contains("no Lambda REPORT lines"));
    }

    #[test]
    fn mixed_memory_sizes_are_priced_per_invocation() {
        let p = Payload::parse(r#"{"model":"seed:0","batch_size":8,"bucket":"bbb","result_path":"r","data_bucket":"ddd","data_prefix":"p","memory_mb":1024}"#).unwrap();
        let mk = |h, billed: u64, mem: u64| {
            let l = format!("REPORT RequestId: a\tDuration: 1 ms\tBilled Duration: {billed} ms\tMemory Size: {mem} MB\tMax Memory Used: 9 MB");
            ReportEvent::parse(h, &l, 0).unwrap()
        };
        use cai_workflow::handlers::Handler;
        let reps = vec![
            mk(Handler::Init, 1000, 1024),
            mk(Handler::Infer, 2000, 2048),
        ];
        let inv: Vec<_> = reps.iter().map(ReportEvent::invocation_stat).collect();
        let row = priced_row(1, &p, &inv, &reps, Architecture::X86_64, 6);
        assert_eq!(row.memory_gb, 2.0);
        let want = (1.0 * 1.0 + 2.0 * 2.0) * gb_second_price(Architecture::X86_64);
        assert!(
            (row.compute_usd - want).abs() < 1e-12,
            "{}",
            row.compute_usd
        );
        let same = priced_row(1, &p, &inv[1..], &reps[1..], Architecture::X86_64, 6);
        assert!((same.compute_usd - 4.0 * gb_second_price(Architecture::X86_64)).abs() < 1e-12);
    }
}
