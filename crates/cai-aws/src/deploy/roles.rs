//! The deployment's two roles: created with their trust and inline policy, or brought up to date.

use super::{aws_error, code_of, role_label, Action, Change, DeployError};
use crate::context::AwsContext;
use crate::names::{StackNames, STACK_TAG};
use serde_json::Value;

/// Creates the role with its trust and inline policy, or brings both up to date.
pub(super) async fn ensure_role(
    ctx: &AwsContext,
    names: &StackNames,
    role: &str,
    trust: &Value,
    policy: &Value,
) -> Result<(String, Change), DeployError> {
    let iam_client = ctx.iam();
    let label = role_label(role);
    let existing = match iam_client.get_role().role_name(role).send().await {
        Ok(out) => out.role().cloned(),
        Err(e) if code_of(&e) == Some("NoSuchEntity") => None,
        Err(e) => return Err(aws_error(&label, "iam:GetRole", &e)),
    };
    let Some(existing) = existing else {
        let tag = aws_sdk_iam::types::Tag::builder()
            .key(STACK_TAG)
            .value(names.name())
            .build()
            .map_err(|e| DeployError::Invalid(e.to_string()))?;
        let out = iam_client
            .create_role()
            .role_name(role)
            .assume_role_policy_document(trust.to_string())
            .description(format!("cai deployment {}", names.name()))
            .tags(tag)
            .send()
            .await
            .map_err(|e| aws_error(&label, "iam:CreateRole", &e))?;
        put_policy(ctx, names, role, policy).await?;
        let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
        return Ok((arn, Change::new(&label, Action::Created, "")));
    };
    if !role_is_ours(ctx, names, role).await? {
        return Err(DeployError::NotOurs {
            resource: label,
            stack: names.name().into(),
        });
    }
    let mut diffs = Vec::new();
    let current_trust = existing
        .assume_role_policy_document()
        .map(policy_json)
        .unwrap_or(Value::Null);
    if &current_trust != trust {
        iam_client
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(trust.to_string())
            .send()
            .await
            .map_err(|e| aws_error(&label, "iam:UpdateAssumeRolePolicy", &e))?;
        diffs.push("trust policy");
    }
    let current = match iam_client
        .get_role_policy()
        .role_name(role)
        .policy_name(names.policy())
        .send()
        .await
    {
        Ok(out) => policy_json(out.policy_document()),
        Err(e) if code_of(&e) == Some("NoSuchEntity") => Value::Null,
        Err(e) => return Err(aws_error(&label, "iam:GetRolePolicy", &e)),
    };
    if &current != policy {
        put_policy(ctx, names, role, policy).await?;
        diffs.push("policy");
    }
    let change = if diffs.is_empty() {
        Change::new(&label, Action::Unchanged, "")
    } else {
        Change::new(&label, Action::Updated, diffs.join(", "))
    };
    Ok((existing.arn().to_string(), change))
}

/// Puts the deployment's inline policy on a role.
async fn put_policy(
    ctx: &AwsContext,
    names: &StackNames,
    role: &str,
    policy: &Value,
) -> Result<(), DeployError> {
    ctx.iam()
        .put_role_policy()
        .role_name(role)
        .policy_name(names.policy())
        .policy_document(policy.to_string())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_error(&role_label(role), "iam:PutRolePolicy", &e))
}

/// True when the role carries `cai:stack=<name>`.
pub(crate) async fn role_is_ours(
    ctx: &AwsContext,
    names: &StackNames,
    role: &str,
) -> Result<bool, DeployError> {
    let out = ctx
        .iam()
        .list_role_tags()
        .role_name(role)
        .send()
        .await
        .map_err(|e| aws_error(&role_label(role), "iam:ListRoleTags", &e))?;
    Ok(out
        .tags()
        .iter()
        .any(|t| t.key() == STACK_TAG && t.value() == names.name()))
}

/// A policy document as IAM returns it (URL-encoded JSON) parsed for comparison.
pub(super) fn policy_json(text: &str) -> Value {
    let decoded = percent_decode(text);
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(text))
        .unwrap_or(Value::Null)
}

/// Decodes `%XX` escapes (IAM returns policy documents URL-encoded per RFC 3986).
pub(super) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
