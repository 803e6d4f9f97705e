//! The workflow as an Amazon States Language definition: the one document both engines run.
//! `cai run` executes it locally; `cai aws deploy` gives the same text to Step Functions.
//!
//! Shape (5 parent states, so a successful run makes `ranks + 5` state transitions, as the
//! original's 16/55/105 for 11/50/100 ranks):
//! Initialize -> Inference (Distributed Map: Infer, Catch -> RecordFailure -> RankFailed)
//! -> Summarize -> Outcome (Choice) -> Done | Failed.
//!
//! No state's input or output grows with the world size: Initialize writes the rank payloads
//! to `<result_path>/items.json` and the Map reads them with an ItemReader; the Map's results
//! go to S3 through a ResultWriter (`<result_path>/<map run id>/`) and are not kept in the
//! state.

use serde_json::{json, Map, Value};

use crate::error::kind;
use crate::handlers::Handler;
use crate::settings::RunSettings;

/// Task resources in a locally generated definition: Lambda ARNs in a pseudo-region.
pub const LOCAL_ARN_PREFIX: &str = "arn:aws:lambda:local:000000000000:function:";

/// Default function-name stem (`cai-init`, `cai-infer`, ...).
pub const DEFAULT_STACK: &str = "cai";

/// Names the functions a definition calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Functions {
    /// Everything before the function name, e.g. `arn:aws:lambda:us-east-1:123:function:`.
    pub arn_prefix: String,
    /// Function-name stem; the handlers are `<stem>-init` etc.
    pub stack: String,
}

impl Default for Functions {
    fn default() -> Self {
        Functions {
            arn_prefix: LOCAL_ARN_PREFIX.into(),
            stack: DEFAULT_STACK.into(),
        }
    }
}

impl Functions {
    /// The ARN of one handler's function.
    pub fn arn(&self, h: Handler) -> String {
        format!("{}{}-{}", self.arn_prefix, self.stack, h.name())
    }
}

/// The handler a Task resource names: a Lambda function ARN (or bare function name, optionally
/// qualified with `:alias`) whose name ends in `-init`, `-infer`, `-failure` or `-summarize`.
pub fn handler_of_resource(resource: &str) -> Option<Handler> {
    let name = match resource.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None if !resource.contains(':') => resource,
        None => return None,
    };
    let (_, suffix) = name.rsplit_once('-')?;
    Handler::from_name(suffix)
}

/// Generates the workflow definition for these settings.
pub fn generate(run: &RunSettings, fns: &Functions) -> Value {
    let mut map = Map::new();
    map.insert("Type".into(), "Map".into());
    map.insert("Comment".into(), "One inference invocation per rank".into());
    map.insert(
        "ItemReader".into(),
        json!({
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": { "InputType": "JSON" },
            "Parameters": { "Bucket.$": "$.items.bucket", "Key.$": "$.items.key" }
        }),
    );
    map.insert(
        "ItemSelector".into(),
        json!({ "payload.$": "$$.Map.Item.Value", "run.$": "$.run" }),
    );
    map.insert("MaxConcurrency".into(), run.max_concurrency.into());
    if let Some(n) = run.tolerated_failure_count {
        map.insert("ToleratedFailureCount".into(), n.into());
    }
    if let Some(p) = run.tolerated_failure_percentage {
        // Written as a float: some interpreters (moto) refuse an integer here.
        map.insert("ToleratedFailurePercentage".into(), json!(p));
    }
    map.insert(
        "ItemProcessor".into(),
        json!({
            "ProcessorConfig": { "Mode": "DISTRIBUTED", "ExecutionType": "STANDARD" },
            "StartAt": "Infer",
            "States": {
                "Infer": {
                    "Type": "Task",
                    "Resource": fns.arn(Handler::Infer),
                    "Parameters": {
                        "payload.$": "$.payload",
                        "run.$": "$.run",
                        "attempt.$": "$$.State.RetryCount"
                    },
                    "TimeoutSeconds": run.timeout_seconds,
                    "Retry": infer_retry(run),
                    "Catch": [{ "ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure" }],
                    "End": true
                },
                "RecordFailure": {
                    "Type": "Task",
                    "Resource": fns.arn(Handler::Failure),
                    "Retry": store_retry(),
                    "Next": "RankFailed"
                },
                "RankFailed": {
                    "Type": "Fail",
                    "Error": "cai.RankFailed",
                    "Cause": "The rank failed after its retries; its error is in <result_path>/errors/<rank>.json"
                }
            }
        }),
    );
    map.insert(
        "ResultWriter".into(),
        json!({
            "Resource": "arn:aws:states:::s3:putObject",
            // From the execution input (the payload), not the Map's input: evaluated the same
            // way whenever the results are written.
            "Parameters": {
                "Bucket.$": "$$.Execution.Input.data_bucket",
                "Prefix.$": "$$.Execution.Input.result_path"
            }
        }),
    );
    map.insert("ResultPath".into(), Value::Null);
    map.insert(
        "Catch".into(),
        json!([{ "ErrorEquals": ["States.ALL"], "ResultPath": "$.map_error", "Next": "Summarize" }]),
    );
    map.insert("Next".into(), "Summarize".into());

    json!({
        "Comment": "cosmic-ai (cai): Initialize -> one inference invocation per rank -> Summarize",
        "StartAt": "Initialize",
        "States": {
            "Initialize": {
                "Type": "Task",
                "Resource": fns.arn(Handler::Init),
                "Parameters": { "payload.$": "$", "rank_items": "s3", "execution.$": "$$.Execution.Id" },
                "Retry": store_retry(),
                "Next": "Inference"
            },
            "Inference": Value::Object(map),
            "Summarize": {
                "Type": "Task",
                "Resource": fns.arn(Handler::Summarize),
                "ResultPath": "$.summary",
                "Retry": store_retry(),
                "Next": "Outcome"
            },
            "Outcome": {
                "Type": "Choice",
                "Choices": [{ "Variable": "$.map_error", "IsPresent": true, "Next": "Failed" }],
                "Default": "Done"
            },
            "Done": { "Type": "Succeed" },
            "Failed": {
                "Type": "Fail",
                "Error": "cai.TooManyRanksFailed",
                "Cause": "More ranks failed than the Map tolerates; summary.json names each failed rank and why"
            }
        }
    })
}

/// Permanent errors (bad input, bad partition, bad weights, out of memory at this memory
/// size) are never retried; anything else is, with the payload's backoff.
fn infer_retry(run: &RunSettings) -> Value {
    let r = &run.retry;
    let mut permanent: Vec<&str> = kind::PERMANENT.to_vec();
    permanent.push("Runtime.OutOfMemory");
    let mut retry = Map::new();
    retry.insert("ErrorEquals".into(), json!(["States.ALL"]));
    retry.insert("IntervalSeconds".into(), r.interval_seconds.into());
    retry.insert("MaxAttempts".into(), r.max_attempts.into());
    retry.insert("BackoffRate".into(), json!(r.backoff_rate));
    if let Some(d) = r.max_delay_seconds {
        retry.insert("MaxDelaySeconds".into(), d.into());
    }
    retry.insert(
        "JitterStrategy".into(),
        if r.jitter { "FULL" } else { "NONE" }.into(),
    );
    json!([
        { "ErrorEquals": permanent, "MaxAttempts": 0 },
        throttle_retry(),
        Value::Object(retry)
    ])
}

/// Lambda's throttling and service errors, as AWS recommends retrying them: the invocation
/// never ran, so they say nothing about the rank and get their own, patient backoff with full
/// jitter (so thousands of throttled ranks do not come back in lockstep).
fn throttle_retry() -> Value {
    json!({
        "ErrorEquals": THROTTLE_ERRORS,
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2.0,
        "MaxDelaySeconds": 60,
        "JitterStrategy": "FULL"
    })
}

/// The errors Lambda's Invoke answers when the function did not run: throttling, and the
/// service's and the client's own failures.
pub const THROTTLE_ERRORS: [&str; 4] = [
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
];

/// Store hiccups and Lambda throttling are worth a short retry for the bookkeeping tasks.
fn store_retry() -> Value {
    json!([{
        "ErrorEquals": [kind::STORE, "Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2.0,
        "JitterStrategy": "FULL"
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_resolve_to_handlers() {
        let f = Functions::default();
        for h in Handler::ALL {
            assert_eq!(handler_of_resource(&f.arn(h)), Some(h));
        }
        assert_eq!(
            handler_of_resource("arn:aws:lambda:us-east-1:1:function:x-infer:live"),
            Some(Handler::Infer)
        );
        assert_eq!(
            handler_of_resource("my-summarize"),
            Some(Handler::Summarize)
        );
        assert_eq!(
            handler_of_resource("arn:aws:states:::sqs:sendMessage"),
            None
        );
    }
}
