//! Following a running execution to its end, with the Distributed Map's item counts.

use super::arn::ExecutionArn;
use super::{aws_err, ExecutionError};
use crate::context::AwsContext;
use aws_sdk_sfn::primitives::DateTime;
use std::time::Duration;

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
pub(super) async fn map_run_arns(
    ctx: &AwsContext,
    arn: &str,
) -> Result<Vec<String>, ExecutionError> {
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
