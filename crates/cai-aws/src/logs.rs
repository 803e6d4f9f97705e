//! The `REPORT` lines Lambda writes to CloudWatch Logs after every invocation: the only
//! place the billed duration and memory of a deployed run appear, so the cost `cai aws run`
//! prints is read from them (see [`cai_lambda::report::ReportLine`]).

use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsError;
use cai_lambda::report::ReportLine;
use cai_workflow::cost::InvocationStat;
use cai_workflow::handlers::Handler;

use crate::context::error_text;
use crate::names::{StackNames, DEPLOYED_HANDLERS};

/// The filter pattern that selects the REPORT lines (a quoted phrase), so only those cross
/// the network.
pub const REPORT_FILTER: &str = "\"REPORT RequestId\"";

/// Errors reading the log groups.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// FilterLogEvents failed for a reason other than a missing log group.
    #[error("logs:FilterLogEvents on {group}: {message}")]
    Filter {
        /// The log group.
        group: String,
        /// The service's code and message.
        message: String,
    },
}

/// One REPORT line, attributed to the handler whose log group it was found in.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportEvent {
    /// The handler (from the log group's name).
    pub handler: Handler,
    /// The parsed line.
    pub line: ReportLine,
    /// `ok`, or the error type the line names (`Status: error`/`timeout` lines).
    pub outcome: String,
    /// When CloudWatch received it, Unix ms.
    pub timestamp_ms: i64,
}

impl ReportEvent {
    /// Parses one log message found in `handler`'s group; None if it is not a REPORT line.
    pub fn parse(handler: Handler, message: &str, timestamp_ms: i64) -> Option<ReportEvent> {
        let line = ReportLine::parse(message)?;
        Some(ReportEvent {
            handler,
            line,
            outcome: report_outcome(message),
            timestamp_ms,
        })
    }

    /// The invocation as the cost table counts it: billed ms and configured memory exactly as
    /// Lambda reported; the rank is unknown (a REPORT line names only the request id).
    pub fn invocation_stat(&self) -> InvocationStat {
        InvocationStat {
            handler: self.handler.name().to_string(),
            rank: None,
            attempt: 1,
            outcome: self.outcome.clone(),
            wall_seconds: self.line.duration_ms / 1000.0,
            billed_ms: self.line.billed_ms,
            cpu_seconds: 0.0,
            peak_rss_mb: self.line.max_memory_used_mb as f64,
            started_seconds: None,
            worker: None,
            cold: None,
        }
    }
}

/// `ok`, unless the line carries Lambda's `Status:` field with another value; then the
/// `Error Type:` it names (e.g. `Runtime.OutOfMemory`), or `Sandbox.Timedout` for a timeout.
/// (A handler that returned an error normally still reports `Status: success`.)
pub fn report_outcome(message: &str) -> String {
    let field = |name: &str| -> Option<String> {
        let at = message.find(name)? + name.len();
        let value: String = message[at..]
            .trim_start_matches([' ', '\t'])
            .chars()
            .take_while(|c| *c != '\t' && *c != '\n')
            .collect();
        Some(value.trim().to_string())
    };
    match field("Status:").as_deref() {
        None | Some("success") | Some("") => "ok".into(),
        Some("timeout") => field("Error Type:").unwrap_or_else(|| "Sandbox.Timedout".into()),
        Some(other) => field("Error Type:").unwrap_or_else(|| other.to_string()),
    }
}

/// Every REPORT line in the deployment's function log groups between `start_ms` and
/// `end_ms` (Unix ms, inclusive). A missing log group (a function never invoked) gives no
/// lines. Other executions of the same deployment in that window are counted too: REPORT
/// lines carry no execution id.
pub async fn report_events(
    client: &aws_sdk_cloudwatchlogs::Client,
    names: &StackNames,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<ReportEvent>, LogsError> {
    let mut out = Vec::new();
    for h in DEPLOYED_HANDLERS {
        out.extend(group_reports(client, names, h, start_ms, end_ms).await?);
    }
    out.sort_by_key(|e| e.timestamp_ms);
    Ok(out)
}

/// One handler's REPORT lines, all pages.
async fn group_reports(
    client: &aws_sdk_cloudwatchlogs::Client,
    names: &StackNames,
    h: Handler,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<ReportEvent>, LogsError> {
    let group = names.log_group(h);
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .filter_log_events()
            .log_group_name(&group)
            .start_time(start_ms)
            .end_time(end_ms)
            .filter_pattern(REPORT_FILTER)
            .set_next_token(token.clone())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) if is_missing_group(&e) => return Ok(Vec::new()),
            Err(e) => {
                return Err(LogsError::Filter {
                    group,
                    message: error_text(&e),
                })
            }
        };
        out.extend(
            page.events()
                .iter()
                .filter_map(|ev| ReportEvent::parse(h, ev.message()?, ev.timestamp().unwrap_or(0))),
        );
        match page.next_token() {
            Some(t) if Some(t) != token.as_deref() && !t.is_empty() => token = Some(t.into()),
            _ => return Ok(out),
        }
    }
}

/// True when the log group does not exist (yet).
fn is_missing_group<R>(
    e: &aws_sdk_cloudwatchlogs::error::SdkError<FilterLogEventsError, R>,
) -> bool {
    matches!(
        e.as_service_error(),
        Some(FilterLogEventsError::ResourceNotFoundException(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const WARM: &str = "REPORT RequestId: 11111111-2222\tDuration: 1500.25 ms\tBilled Duration: 1501 ms\tMemory Size: 3008 MB\tMax Memory Used: 812 MB\t";

    #[test]
    fn a_report_line_becomes_the_stat_lambda_billed() {
        let ev = ReportEvent::parse(Handler::Infer, WARM, 7).unwrap();
        let s = ev.invocation_stat();
        assert_eq!(s.handler, "infer");
        assert_eq!(s.billed_ms, 1501);
        assert_eq!(s.peak_rss_mb, 812.0);
        assert_eq!(s.outcome, "ok");
        assert!((s.wall_seconds - 1.50025).abs() < 1e-9);
        assert_eq!(ev.line.memory_mb, 3008);
        assert!(ReportEvent::parse(Handler::Init, "START RequestId: x", 0).is_none());
    }

    #[test]
    fn status_fields_name_the_error() {
        assert_eq!(report_outcome(WARM), "ok");
        let oom = format!("{WARM}Status: error\tError Type: Runtime.OutOfMemory\t");
        assert_eq!(report_outcome(&oom), "Runtime.OutOfMemory");
        let timeout = format!("{WARM}Status: timeout\t");
        assert_eq!(report_outcome(&timeout), "Sandbox.Timedout");
        assert_eq!(report_outcome(&format!("{WARM}Status: success")), "ok");
    }
}
