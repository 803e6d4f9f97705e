//! Starting an execution: the deployment's scope, the definition brought in line with the payload, StartExecution.

use super::arn::new_execution_name;
use super::{aws_err, ExecutionError};
use crate::context::AwsContext;
use crate::names::StackNames;
use aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineError;
use cai_workflow::definition::generate;
use cai_workflow::settings::RunSettings;
use cai_workflow::Payload;
use serde_json::Value;
use std::time::Duration;

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
    /// Set when the Map's MaxConcurrency was lowered to what the account's Lambda
    /// concurrency allows: the line to show the user.
    pub concurrency_note: Option<String>,
}

/// Keeps the Map's MaxConcurrency within the account's unreserved Lambda concurrency
/// (GetAccountSettings), since every child over it would only be throttled and retried.
/// Returns the note to show when it lowered it; an account whose settings cannot be read
/// keeps the payload's value (with a warning).
pub async fn fit_concurrency(ctx: &AwsContext, settings: &mut RunSettings) -> Option<String> {
    let account = match ctx.lambda().get_account_settings().send().await {
        Ok(out) => out.account_limit,
        Err(e) => {
            tracing::warn!(
                "lambda:GetAccountSettings: {}; keeping max_concurrency {}",
                crate::context::error_text(&e),
                settings.max_concurrency
            );
            return None;
        }
    };
    let limit = account.and_then(|a| {
        a.unreserved_concurrent_executions
            .or(Some(a.concurrent_executions))
            .filter(|&n| n > 0)
    })?;
    let (fitted, note) = within_quota(settings.max_concurrency, limit as u64);
    settings.max_concurrency = fitted;
    note
}

/// `asked` (0: unlimited) kept within `limit`, and the note saying so when it had to change.
pub fn within_quota(asked: u64, limit: u64) -> (u64, Option<String>) {
    if asked != 0 && asked <= limit {
        return (asked, None);
    }
    let shown = if asked == 0 {
        "unlimited (Step Functions would start up to 10,000 at once)".to_string()
    } else {
        asked.to_string()
    };
    (
        limit,
        Some(format!(
            "max_concurrency {shown} lowered to {limit}, the account's unreserved Lambda concurrency (lambda:GetAccountSettings); ask AWS for a higher quota to run more ranks at once"
        )),
    )
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
    let mut payload =
        Payload::parse(payload_text).map_err(|e| ExecutionError::Payload(e.to_string()))?;
    check_scope(ctx, names, &payload).await?;
    let concurrency_note = fit_concurrency(ctx, &mut payload.settings).await;
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
        concurrency_note,
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
