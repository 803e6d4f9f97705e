//! `cai aws deploy`: creates or updates, idempotently, the two roles, the four functions and
//! the state machine of one deployment, and returns what changed (printing nothing itself).
//!
//! Everything created carries the tag [`STACK_TAG`]`=<name>`; a same-named resource without
//! it was not made by deploy, and deploy refuses to take it over (destroy skips it).

mod functions;
mod propagation;
mod roles;
mod state_machine;
#[cfg(test)]
mod tests;

use crate::context::{error_text, AwsContext};
use crate::iam::{self, Scope};
use crate::names::{StackNames, DEPLOYED_HANDLERS, STACK_TAG};
use aws_sdk_sts::error::ProvideErrorMetadata;
use cai_workflow::handlers::Handler;
use cai_workflow::order::FileOrder;
use cai_workflow::settings::{Architecture, ModelLocation, RetryPolicy, RunSettings};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use functions::ensure_function;
use roles::ensure_role;
pub(crate) use roles::role_is_ours;
use state_machine::ensure_state_machine;
pub(crate) use state_machine::state_machine_is_ours;

/// The custom runtime the `bootstrap` binary runs on.
pub const RUNTIME: &str = "provided.al2023";

/// The handler name a custom runtime ignores but Lambda requires.
pub const HANDLER: &str = "bootstrap";

/// Env var telling the `cai` binary which handler it serves (`Handler::name()`).
pub const ENV_HANDLER: &str = "CAI_HANDLER";

/// Env var selecting the store backend; deployed functions reach S3 (`s3`).
pub const ENV_STORE: &str = "CAI_STORE";

/// Env var carrying the deployment [`Scope`] as JSON; [`deployed_scope`] reads it back.
pub const ENV_SCOPE: &str = "CAI_SCOPE";

/// Lambda's limit on all environment variables of a function together (keys + values).
pub const MAX_ENV_BYTES: usize = 4096;

/// IAM's limit on a role's inline policies together (characters, whitespace excluded).
pub const MAX_INLINE_POLICY_CHARS: usize = 10_240;

/// Lambda's limit on a zip uploaded directly in CreateFunction/UpdateFunctionCode.
pub const MAX_DIRECT_ZIP_BYTES: usize = 50 * 1024 * 1024;

/// How long a freshly created role may take to be usable by Lambda and Step Functions (IAM
/// is eventually consistent).
pub(super) const IAM_PROPAGATION: Duration = Duration::from_secs(30);

/// How long a function may stay Pending or InProgress after a create or an update.
pub(super) const FUNCTION_READY: Duration = Duration::from_secs(300);

/// Everything one deployment is made of.
#[derive(Debug, Clone)]
pub struct DeploySpec {
    /// The resource names.
    pub names: StackNames,
    /// What the functions may touch in S3.
    pub scope: Scope,
    /// The deployment zip (`bootstrap` inside), as `cai aws package` writes it.
    pub zip: Vec<u8>,
    /// Memory per function (MB, 128-10240).
    pub memory_mb: u64,
    /// Function timeout (s, 1-900).
    pub timeout_seconds: u64,
    /// `/tmp` size (MB, 512-10240): the weights and one partition are downloaded there.
    pub ephemeral_mb: u64,
    /// The functions' architecture; must match the zip's binary.
    pub architecture: Architecture,
    /// The settings the state machine definition is generated from (Map concurrency,
    /// tolerated failures, the Infer task's retry and timeout).
    pub settings: RunSettings,
}

impl DeploySpec {
    /// Definition settings for a deployment: the payload defaults, with the Infer task's
    /// timeout equal to the functions' and the deployed architecture. The model plays no part
    /// in the definition (each payload names its own), so a seed stands in.
    pub fn default_settings(
        timeout_seconds: u64,
        memory_mb: u64,
        arch: Architecture,
    ) -> RunSettings {
        RunSettings {
            model: ModelLocation::Seed(0),
            memory_mb,
            timeout_seconds,
            max_concurrency: 0,
            retry: RetryPolicy::default(),
            tolerated_failure_count: None,
            tolerated_failure_percentage: None,
            file_order: FileOrder::Natural,
            architecture: arch,
            precision: Default::default(),
            resume: false,
            run_id: String::new(),
        }
    }

    /// One function's environment: its handler, the S3 store and the deployment scope.
    pub fn environment(&self, h: Handler) -> BTreeMap<String, String> {
        BTreeMap::from([
            (ENV_HANDLER.to_string(), h.name().to_string()),
            (ENV_STORE.to_string(), "s3".to_string()),
            (ENV_SCOPE.to_string(), self.scope.to_env()),
        ])
    }

    /// The state machine definition deploy gives Step Functions.
    pub fn definition(&self, region: &str, account: &str) -> Value {
        cai_workflow::definition::generate(&self.settings, &self.names.functions(region, account))
    }

    /// Checks the limits Lambda and IAM would otherwise refuse halfway through a deploy.
    pub fn validate(&self) -> Result<(), DeployError> {
        let invalid = |m: String| Err(DeployError::Invalid(m));
        if !(128..=10_240).contains(&self.memory_mb) {
            return invalid(format!(
                "memory {} MB: Lambda allows 128-10240 MB",
                self.memory_mb
            ));
        }
        if !(1..=900).contains(&self.timeout_seconds) {
            return invalid(format!(
                "timeout {} s: Lambda allows 1-900 s",
                self.timeout_seconds
            ));
        }
        if !(512..=10_240).contains(&self.ephemeral_mb) {
            return invalid(format!(
                "ephemeral storage {} MB: Lambda allows 512-10240 MB",
                self.ephemeral_mb
            ));
        }
        if self.zip.is_empty() || self.zip.len() > MAX_DIRECT_ZIP_BYTES {
            return invalid(format!(
                "the zip is {} bytes: Lambda takes a direct upload of 1 byte to 50 MB",
                self.zip.len()
            ));
        }
        let env: usize = self
            .environment(Handler::Summarize)
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if env > MAX_ENV_BYTES {
            return invalid(format!(
                "the scope is too large for Lambda's 4 KB of environment ({env} bytes): \
                 deploy fewer, wider prefixes or models"
            ));
        }
        let policy = iam::lambda_policy(&self.scope, &self.names, "us-east-1", "000000000000");
        let chars = policy.to_string().len();
        if chars > MAX_INLINE_POLICY_CHARS {
            return invalid(format!(
                "the scope makes a {chars}-character role policy (IAM allows 10240): deploy \
                 fewer, wider prefixes or models"
            ));
        }
        Ok(())
    }
}

/// What deploy or destroy did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Made by this call.
    Created,
    /// Existed and was changed to match the spec.
    Updated,
    /// Existed and already matched.
    Unchanged,
    /// Removed by destroy.
    Deleted,
    /// Destroy found nothing of that name.
    Absent,
    /// Exists but lacks the stack tag, so it was left alone.
    Skipped,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::Absent => "absent",
            Action::Skipped => "skipped",
        })
    }
}

/// One resource's outcome, printed by the CLI as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The resource, kind first: `role cai-lambda`, `function cai-infer`, `state machine cai`.
    pub resource: String,
    /// What happened to it.
    pub action: Action,
    /// What differed (`memory 2048 -> 3008 MB`), or why it was skipped; may be empty.
    pub detail: String,
}

impl Change {
    fn new(resource: &str, action: Action, detail: impl Into<String>) -> Change {
        Change {
            resource: resource.to_string(),
            action,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Change {
    /// `created  role cai-lambda`, `updated  function cai-infer (memory 2048 -> 3008 MB)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8} {}", self.action.to_string(), self.resource)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// Why a deploy, destroy or scope read failed; always names the resource.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// An AWS call failed.
    #[error("{resource}: {operation} failed: {message}")]
    Aws {
        /// The resource, e.g. `function cai-infer`.
        resource: String,
        /// The API call, e.g. `lambda:CreateFunction`.
        operation: &'static str,
        /// AWS's error code and message.
        message: String,
    },
    /// A same-named resource exists without this deployment's tag.
    #[error(
        "{resource} exists but lacks tag {STACK_TAG}={stack}: it was not made by \
         `cai aws deploy --name {stack}`; choose another --name or remove it yourself"
    )]
    NotOurs {
        /// The resource.
        resource: String,
        /// The deployment name.
        stack: String,
    },
    /// The spec breaks a Lambda or IAM limit.
    #[error("{0}")]
    Invalid(String),
    /// A resource did not become ready, or is in a failed state.
    #[error("{resource}: {message}")]
    NotReady {
        /// The resource.
        resource: String,
        /// What it reported.
        message: String,
    },
}

/// Builds [`DeployError::Aws`] from an SDK error.
pub(crate) fn aws_error<E, R>(
    resource: &str,
    operation: &'static str,
    e: &aws_sdk_sts::error::SdkError<E, R>,
) -> DeployError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: fmt::Debug,
{
    DeployError::Aws {
        resource: resource.to_string(),
        operation,
        message: error_text(e),
    }
}

/// The error code of an SDK error, if AWS sent one.
pub(crate) fn code_of<E: ProvideErrorMetadata, R>(
    e: &aws_sdk_sts::error::SdkError<E, R>,
) -> Option<&str> {
    match e {
        aws_sdk_sts::error::SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Resource labels, shared with destroy so both print the same names.
pub(crate) fn role_label(name: &str) -> String {
    format!("role {name}")
}

/// `function NAME`.
pub(crate) fn function_label(name: &str) -> String {
    format!("function {name}")
}

/// `state machine NAME`.
pub(crate) fn state_machine_label(name: &str) -> String {
    format!("state machine {name}")
}

/// Creates or updates the deployment so it matches `spec`; returns one [`Change`] per
/// resource, roles first, then functions in workflow order, then the state machine.
pub async fn deploy(ctx: &AwsContext, spec: &DeploySpec) -> Result<Vec<Change>, DeployError> {
    spec.validate()?;
    let names = &spec.names;
    let (region, account) = (ctx.region.as_str(), ctx.account.as_str());
    let mut changes = Vec::new();

    let (lambda_role_arn, c) = ensure_role(
        ctx,
        names,
        &names.lambda_role(),
        &iam::lambda_trust_policy(),
        &iam::lambda_policy(&spec.scope, names, region, account),
    )
    .await?;
    changes.push(c);
    let (states_role_arn, c) = ensure_role(
        ctx,
        names,
        &names.states_role(),
        &iam::states_trust_policy(account),
        &iam::states_policy(&spec.scope, names, region, account),
    )
    .await?;
    changes.push(c);

    let sha = code_sha256(&spec.zip);
    for h in DEPLOYED_HANDLERS {
        changes.push(ensure_function(ctx, spec, h, &lambda_role_arn, &sha).await?);
    }
    changes.push(ensure_state_machine(ctx, spec, &states_role_arn).await?);
    Ok(changes)
}

/// The scope the deployment was made for, read from the init function's `CAI_SCOPE`; None
/// when that function does not exist (nothing deployed under this name in this region).
pub async fn deployed_scope(
    ctx: &AwsContext,
    names: &StackNames,
) -> Result<Option<Scope>, DeployError> {
    let name = names.function(Handler::Init);
    let resource = function_label(&name);
    let out = match ctx
        .lambda()
        .get_function()
        .function_name(&name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if code_of(&e) == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(aws_error(&resource, "lambda:GetFunction", &e)),
    };
    let text = out
        .configuration()
        .and_then(|c| c.environment())
        .and_then(|e| e.variables())
        .and_then(|v| v.get(ENV_SCOPE))
        .ok_or_else(|| DeployError::NotReady {
            resource: resource.clone(),
            message: format!("has no {ENV_SCOPE}: redeploy it with `cai aws deploy`"),
        })?;
    Scope::from_env(text)
        .map(Some)
        .map_err(|message| DeployError::NotReady { resource, message })
}

/// The zip's SHA-256 in base64, as Lambda reports it in `CodeSha256`, so deploy uploads code
/// only when it changed.
pub fn code_sha256(zip: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(zip))
}
