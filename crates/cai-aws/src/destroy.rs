//! `cai aws destroy`: removes exactly the state machine, the four functions and the two roles
//! of one deployment name, and only those carrying the tag `cai:stack=<name>`; a same-named
//! resource without it was not made by deploy and is skipped (reported, never deleted).
//!
//! Log groups are left alone: deploy never creates them (Lambda does, on first invocation),
//! they hold the logs of past runs that `cai aws` and the user may still want, and they carry
//! no stack tag to prove whose they are. Delete `/aws/lambda/<name>-*` by hand if unwanted.

use cai_workflow::handlers::Handler;

use crate::context::AwsContext;
use crate::deploy::{
    aws_error, code_of, function_label, role_is_ours, role_label, state_machine_is_ours,
    state_machine_label, Action, Change, DeployError,
};
use crate::names::{StackNames, DEPLOYED_HANDLERS, STACK_TAG};

/// Deletes the deployment `names`, state machine first (so no execution starts new
/// invocations), then the functions, then the roles (inline policy first). Returns one
/// [`Change`] per resource: deleted, absent, or skipped (no stack tag).
pub async fn destroy(ctx: &AwsContext, names: &StackNames) -> Result<Vec<Change>, DeployError> {
    let mut changes = vec![destroy_state_machine(ctx, names).await?];
    for h in DEPLOYED_HANDLERS {
        changes.push(destroy_function(ctx, names, h).await?);
    }
    for role in [names.lambda_role(), names.states_role()] {
        changes.push(destroy_role(ctx, names, &role).await?);
    }
    Ok(changes)
}

/// The detail of a skipped resource.
fn not_ours(names: &StackNames) -> String {
    format!(
        "no tag {STACK_TAG}={}: not made by `cai aws deploy`, left alone",
        names.name()
    )
}

/// Deletes the state machine if it is this deployment's.
async fn destroy_state_machine(
    ctx: &AwsContext,
    names: &StackNames,
) -> Result<Change, DeployError> {
    let label = state_machine_label(&names.state_machine());
    let arn = names.state_machine_arn(&ctx.region, &ctx.account);
    let sfn = ctx.sfn();
    match sfn
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if code_of(&e) == Some("StateMachineDoesNotExist") => {
            return Ok(Change {
                resource: label,
                action: Action::Absent,
                detail: String::new(),
            })
        }
        Err(e) => return Err(aws_error(&label, "states:DescribeStateMachine", &e)),
    }
    if !state_machine_is_ours(ctx, names, &arn).await? {
        return Ok(skipped(label, names));
    }
    sfn.delete_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .map_err(|e| aws_error(&label, "states:DeleteStateMachine", &e))?;
    Ok(deleted(label))
}

/// Deletes one handler's function if it is this deployment's.
async fn destroy_function(
    ctx: &AwsContext,
    names: &StackNames,
    h: Handler,
) -> Result<Change, DeployError> {
    let name = names.function(h);
    let label = function_label(&name);
    let lambda = ctx.lambda();
    let out = match lambda.get_function().function_name(&name).send().await {
        Ok(out) => out,
        Err(e) if code_of(&e) == Some("ResourceNotFoundException") => return Ok(absent(label)),
        Err(e) => return Err(aws_error(&label, "lambda:GetFunction", &e)),
    };
    let ours = out
        .tags()
        .and_then(|t| t.get(STACK_TAG))
        .is_some_and(|v| v == names.name());
    if !ours {
        return Ok(skipped(label, names));
    }
    lambda
        .delete_function()
        .function_name(&name)
        .send()
        .await
        .map_err(|e| aws_error(&label, "lambda:DeleteFunction", &e))?;
    Ok(deleted(label))
}

/// Deletes a role (its inline policy first) if it is this deployment's.
async fn destroy_role(
    ctx: &AwsContext,
    names: &StackNames,
    role: &str,
) -> Result<Change, DeployError> {
    let label = role_label(role);
    let iam = ctx.iam();
    match iam.get_role().role_name(role).send().await {
        Ok(_) => {}
        Err(e) if code_of(&e) == Some("NoSuchEntity") => return Ok(absent(label)),
        Err(e) => return Err(aws_error(&label, "iam:GetRole", &e)),
    }
    if !role_is_ours(ctx, names, role).await? {
        return Ok(skipped(label, names));
    }
    match iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(names.policy())
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if code_of(&e) == Some("NoSuchEntity") => {}
        Err(e) => return Err(aws_error(&label, "iam:DeleteRolePolicy", &e)),
    }
    iam.delete_role()
        .role_name(role)
        .send()
        .await
        .map_err(|e| aws_error(&label, "iam:DeleteRole", &e))?;
    Ok(deleted(label))
}

fn deleted(resource: String) -> Change {
    Change {
        resource,
        action: Action::Deleted,
        detail: String::new(),
    }
}

fn absent(resource: String) -> Change {
    Change {
        resource,
        action: Action::Absent,
        detail: String::new(),
    }
}

fn skipped(resource: String, names: &StackNames) -> Change {
    Change {
        resource,
        action: Action::Skipped,
        detail: not_ours(names),
    }
}
