//! The state machine: created, or its definition and role updated where they differ.

use super::propagation::send_while_role_propagates;
use super::{aws_error, code_of, state_machine_label, Action, Change, DeployError, DeploySpec};
use crate::context::AwsContext;
use crate::names::{StackNames, STACK_TAG};
use aws_sdk_sfn::types::StateMachineType;
use serde_json::Value;

/// Creates the state machine, or updates its definition and role where they differ.
pub(super) async fn ensure_state_machine(
    ctx: &AwsContext,
    spec: &DeploySpec,
    role_arn: &str,
) -> Result<Change, DeployError> {
    let names = &spec.names;
    let label = state_machine_label(&names.state_machine());
    let arn = names.state_machine_arn(&ctx.region, &ctx.account);
    let definition = spec.definition(&ctx.region, &ctx.account);
    let sfn = ctx.sfn();
    let current = match sfn
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if code_of(&e) == Some("StateMachineDoesNotExist") => {
            create_state_machine(ctx, spec, &definition, role_arn).await?;
            return Ok(Change::new(&label, Action::Created, ""));
        }
        Err(e) => return Err(aws_error(&label, "states:DescribeStateMachine", &e)),
    };
    if !state_machine_is_ours(ctx, names, &arn).await? {
        return Err(DeployError::NotOurs {
            resource: label,
            stack: names.name().into(),
        });
    }
    let mut diffs = Vec::new();
    let current_definition: Value =
        serde_json::from_str(current.definition()).unwrap_or(Value::Null);
    if current_definition != definition {
        diffs.push("definition");
    }
    if current.role_arn() != role_arn {
        diffs.push("role");
    }
    if diffs.is_empty() {
        return Ok(Change::new(&label, Action::Unchanged, ""));
    }
    sfn.update_state_machine()
        .state_machine_arn(&arn)
        .definition(definition.to_string())
        .role_arn(role_arn)
        .send()
        .await
        .map_err(|e| aws_error(&label, "states:UpdateStateMachine", &e))?;
    Ok(Change::new(&label, Action::Updated, diffs.join(", ")))
}

/// CreateStateMachine, retried while a new role is not yet assumable.
async fn create_state_machine(
    ctx: &AwsContext,
    spec: &DeploySpec,
    definition: &Value,
    role_arn: &str,
) -> Result<(), DeployError> {
    let names = &spec.names;
    let label = state_machine_label(&names.state_machine());
    let tag = aws_sdk_sfn::types::Tag::builder()
        .key(STACK_TAG)
        .value(names.name())
        .build();
    let request = ctx
        .sfn()
        .create_state_machine()
        .name(names.state_machine())
        .definition(definition.to_string())
        .role_arn(role_arn)
        .r#type(StateMachineType::Standard)
        .tags(tag);
    send_while_role_propagates(&label, "states:CreateStateMachine", || {
        request.clone().send()
    })
    .await?;
    Ok(())
}

/// True when the state machine carries `cai:stack=<name>`.
pub(crate) async fn state_machine_is_ours(
    ctx: &AwsContext,
    names: &StackNames,
    arn: &str,
) -> Result<bool, DeployError> {
    let label = state_machine_label(&names.state_machine());
    let out = ctx
        .sfn()
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| aws_error(&label, "states:ListTagsForResource", &e))?;
    Ok(out
        .tags()
        .iter()
        .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(names.name())))
}
