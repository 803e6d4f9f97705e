//! `cai aws deploy`: creates or updates, idempotently, the two roles, the four functions and
//! the state machine of one deployment, and returns what changed (printing nothing itself).
//!
//! Everything created carries the tag [`STACK_TAG`]`=<name>`; a same-named resource without
//! it was not made by deploy, and deploy refuses to take it over (destroy skips it).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture as LambdaArch, Environment, EphemeralStorage, FunctionCode, FunctionConfiguration,
    LastUpdateStatus, Runtime, State,
};
use aws_sdk_sfn::types::StateMachineType;
use aws_sdk_sts::error::ProvideErrorMetadata;
use cai_workflow::handlers::Handler;
use cai_workflow::order::FileOrder;
use cai_workflow::settings::{Architecture, ModelLocation, RetryPolicy, RunSettings};
use serde_json::Value;

use crate::context::{error_text, AwsContext};
use crate::iam::{self, Scope};
use crate::names::{StackNames, DEPLOYED_HANDLERS, STACK_TAG};

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
const IAM_PROPAGATION: Duration = Duration::from_secs(30);

/// How long a function may stay Pending or InProgress after a create or an update.
const FUNCTION_READY: Duration = Duration::from_secs(300);

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
        &iam::states_policy(names, region, account),
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

// ---------------------------------------------------------------------------------------
// Roles

/// Creates the role with its trust and inline policy, or brings both up to date.
async fn ensure_role(
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
fn policy_json(text: &str) -> Value {
    let decoded = percent_decode(text);
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(text))
        .unwrap_or(Value::Null)
}

/// Decodes `%XX` escapes (IAM returns policy documents URL-encoded per RFC 3986).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------------
// Functions

/// The spec's function configuration, for comparison with what Lambda reports.
struct WantedConfig {
    memory: i32,
    timeout: i32,
    ephemeral: i32,
    env: HashMap<String, String>,
}

impl WantedConfig {
    fn of(spec: &DeploySpec, h: Handler) -> WantedConfig {
        WantedConfig {
            memory: spec.memory_mb as i32,
            timeout: spec.timeout_seconds as i32,
            ephemeral: spec.ephemeral_mb as i32,
            env: spec.environment(h).into_iter().collect(),
        }
    }

    /// What differs from the function's current configuration, one phrase each.
    fn diffs(&self, c: &FunctionConfiguration, role_arn: &str) -> Vec<String> {
        let mut d = Vec::new();
        let memory = c.memory_size().unwrap_or_default();
        if memory != self.memory {
            d.push(format!("memory {memory} -> {} MB", self.memory));
        }
        let timeout = c.timeout().unwrap_or_default();
        if timeout != self.timeout {
            d.push(format!("timeout {timeout} -> {} s", self.timeout));
        }
        let ephemeral = c.ephemeral_storage().map(|e| e.size()).unwrap_or(512);
        if ephemeral != self.ephemeral {
            d.push(format!(
                "ephemeral storage {ephemeral} -> {} MB",
                self.ephemeral
            ));
        }
        if c.role() != Some(role_arn) {
            d.push("role".into());
        }
        if c.runtime().map(|r| r.as_str()) != Some(RUNTIME) {
            d.push(format!("runtime -> {RUNTIME}"));
        }
        if c.handler() != Some(HANDLER) {
            d.push(format!("handler -> {HANDLER}"));
        }
        let env = c.environment().and_then(|e| e.variables());
        if env != Some(&self.env) {
            let changed: Vec<&str> = self
                .env
                .iter()
                .filter(|(k, v)| env.and_then(|e| e.get(*k)) != Some(*v))
                .map(|(k, _)| k.as_str())
                .collect();
            d.push(if changed.is_empty() {
                "environment".into()
            } else {
                format!("environment {}", changed.join(", "))
            });
        }
        d
    }

    fn environment(&self) -> Environment {
        Environment::builder()
            .set_variables(Some(self.env.clone()))
            .build()
    }

    fn ephemeral_storage(&self) -> Result<EphemeralStorage, DeployError> {
        EphemeralStorage::builder()
            .size(self.ephemeral)
            .build()
            .map_err(|e| DeployError::Invalid(e.to_string()))
    }
}

/// Lambda's name for an architecture.
fn lambda_arch(a: Architecture) -> LambdaArch {
    match a {
        Architecture::X86_64 => LambdaArch::X8664,
        Architecture::Arm64 => LambdaArch::Arm64,
    }
}

/// Creates one handler's function, or updates its configuration and code where they differ.
async fn ensure_function(
    ctx: &AwsContext,
    spec: &DeploySpec,
    h: Handler,
    role_arn: &str,
    sha: &str,
) -> Result<Change, DeployError> {
    let name = spec.names.function(h);
    let label = function_label(&name);
    let wanted = WantedConfig::of(spec, h);
    let current = match ctx
        .lambda()
        .get_function()
        .function_name(&name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {
            create_function(ctx, spec, &name, &wanted, role_arn).await?;
            wait_ready(ctx, &name).await?;
            return Ok(Change::new(&label, Action::Created, ""));
        }
        Err(e) => return Err(aws_error(&label, "lambda:GetFunction", &e)),
    };
    let ours = current
        .tags()
        .and_then(|t| t.get(STACK_TAG))
        .is_some_and(|v| v == spec.names.name());
    if !ours {
        return Err(DeployError::NotOurs {
            resource: label,
            stack: spec.names.name().into(),
        });
    }
    let config = current
        .configuration()
        .cloned()
        .unwrap_or_else(|| FunctionConfiguration::builder().build());
    let mut diffs = wanted.diffs(&config, role_arn);
    if !diffs.is_empty() {
        update_configuration(ctx, &name, &wanted, role_arn).await?;
        wait_ready(ctx, &name).await?;
    }
    let arch = config
        .architectures()
        .first()
        .cloned()
        .unwrap_or(LambdaArch::X8664);
    let arch_wanted = lambda_arch(spec.architecture);
    let code_differs = config.code_sha256() != Some(sha);
    if arch != arch_wanted {
        diffs.push(format!(
            "architecture {} -> {}",
            arch.as_str(),
            arch_wanted.as_str()
        ));
    }
    if code_differs {
        diffs.push("code".into());
    }
    if code_differs || arch != arch_wanted {
        ctx.lambda()
            .update_function_code()
            .function_name(&name)
            .zip_file(Blob::new(spec.zip.clone()))
            .architectures(arch_wanted)
            .send()
            .await
            .map_err(|e| aws_error(&label, "lambda:UpdateFunctionCode", &e))?;
        wait_ready(ctx, &name).await?;
    }
    Ok(if diffs.is_empty() {
        Change::new(&label, Action::Unchanged, "")
    } else {
        Change::new(&label, Action::Updated, diffs.join(", "))
    })
}

/// CreateFunction, retried while a new role is not yet assumable (IAM propagation).
async fn create_function(
    ctx: &AwsContext,
    spec: &DeploySpec,
    name: &str,
    wanted: &WantedConfig,
    role_arn: &str,
) -> Result<(), DeployError> {
    let label = function_label(name);
    let request = ctx
        .lambda()
        .create_function()
        .function_name(name)
        .runtime(Runtime::from(RUNTIME))
        .handler(HANDLER)
        .role(role_arn)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(spec.zip.clone()))
                .build(),
        )
        .memory_size(wanted.memory)
        .timeout(wanted.timeout)
        .ephemeral_storage(wanted.ephemeral_storage()?)
        .architectures(lambda_arch(spec.architecture))
        .environment(wanted.environment())
        .description(format!("cai {} handler", name))
        .tags(STACK_TAG, spec.names.name());
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        match request.clone().send().await {
            Ok(_) => return Ok(()),
            Err(e) if propagating(&e) && started.elapsed() < IAM_PROPAGATION => {
                tracing::debug!("{label}: role not assumable yet, retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            Err(e) => return Err(aws_error(&label, "lambda:CreateFunction", &e)),
        }
    }
}

/// True for the errors a just-created role gives until IAM has propagated it: Lambda's
/// "The role defined for the function cannot be assumed by Lambda" and Step Functions'
/// "... is not authorized to assume the provided role".
fn propagating<E: ProvideErrorMetadata, R>(e: &aws_sdk_sts::error::SdkError<E, R>) -> bool {
    let aws_sdk_sts::error::SdkError::ServiceError(s) = e else {
        return false;
    };
    let code = s.err().code().unwrap_or_default();
    let message = s.err().message().unwrap_or_default().to_ascii_lowercase();
    let about_role = message.contains("role") || message.contains("assume");
    match code {
        "AccessDeniedException" | "AccessDenied" => true,
        "InvalidParameterValueException" | "InvalidArn" => about_role,
        _ => false,
    }
}

/// UpdateFunctionConfiguration with every field deploy manages.
async fn update_configuration(
    ctx: &AwsContext,
    name: &str,
    wanted: &WantedConfig,
    role_arn: &str,
) -> Result<(), DeployError> {
    ctx.lambda()
        .update_function_configuration()
        .function_name(name)
        .runtime(Runtime::from(RUNTIME))
        .handler(HANDLER)
        .role(role_arn)
        .memory_size(wanted.memory)
        .timeout(wanted.timeout)
        .ephemeral_storage(wanted.ephemeral_storage()?)
        .environment(wanted.environment())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            aws_error(
                &function_label(name),
                "lambda:UpdateFunctionConfiguration",
                &e,
            )
        })
}

/// Polls GetFunction until the function is Active and its last update Successful (real
/// Lambda refuses a second update while one is InProgress; moto is ready at once).
async fn wait_ready(ctx: &AwsContext, name: &str) -> Result<(), DeployError> {
    let label = function_label(name);
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        let out = ctx
            .lambda()
            .get_function()
            .function_name(name)
            .send()
            .await
            .map_err(|e| aws_error(&label, "lambda:GetFunction", &e))?;
        let Some(c) = out.configuration() else {
            return Ok(());
        };
        let state = c.state().cloned();
        let update = c.last_update_status().cloned();
        if state == Some(State::Failed) || update == Some(LastUpdateStatus::Failed) {
            let reason = c
                .last_update_status_reason()
                .or(c.state_reason())
                .unwrap_or("no reason given");
            return Err(DeployError::NotReady {
                resource: label,
                message: format!("Lambda reports the function failed: {reason}"),
            });
        }
        let busy = state == Some(State::Pending) || update == Some(LastUpdateStatus::InProgress);
        if !busy {
            return Ok(());
        }
        if started.elapsed() > FUNCTION_READY {
            return Err(DeployError::NotReady {
                resource: label,
                message: format!("still not ready after {} s", FUNCTION_READY.as_secs()),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(4));
    }
}

// ---------------------------------------------------------------------------------------
// State machine

/// Creates the state machine, or updates its definition and role where they differ.
async fn ensure_state_machine(
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
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        match request.clone().send().await {
            Ok(_) => return Ok(()),
            Err(e) if propagating(&e) && started.elapsed() < IAM_PROPAGATION => {
                tracing::debug!("{label}: role not assumable yet, retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            Err(e) => return Err(aws_error(&label, "states:CreateStateMachine", &e)),
        }
    }
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

// ---------------------------------------------------------------------------------------
// Code hash

/// The zip's SHA-256 in base64, as Lambda reports it in `CodeSha256`, so deploy uploads code
/// only when it changed.
pub fn code_sha256(zip: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(zip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DeploySpec {
        DeploySpec {
            names: StackNames::new("cai").unwrap(),
            scope: Scope::new("cosmicai-data", &["100MB".into()], &["result".into()], &[]).unwrap(),
            zip: vec![1, 2, 3],
            memory_mb: 2048,
            timeout_seconds: 900,
            ephemeral_mb: 2048,
            architecture: Architecture::X86_64,
            settings: DeploySpec::default_settings(900, 2048, Architecture::X86_64),
        }
    }

    #[test]
    fn sha256_matches_known_digests() {
        assert_eq!(
            code_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            code_sha256(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        // Two blocks (56..64 bytes of padding spill over).
        assert_eq!(
            code_sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "JI1qYdIGOLjlwCaTDD5gOaM85Flk/yFn9uzt1BnbBsE="
        );
    }

    #[test]
    fn iam_documents_are_url_decoded_before_comparing() {
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "a b"}]});
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22a%20b%22%7D%5D%7D";
        assert_eq!(policy_json(encoded), doc);
        assert_eq!(policy_json(&doc.to_string()), doc);
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn environment_names_handler_store_and_scope() {
        let s = spec();
        let env = s.environment(Handler::Infer);
        assert_eq!(env[ENV_HANDLER], "infer");
        assert_eq!(env[ENV_STORE], "s3");
        assert_eq!(Scope::from_env(&env[ENV_SCOPE]).unwrap(), s.scope);
        s.validate().unwrap();
    }

    #[test]
    fn validate_refuses_lambda_limits() {
        let mut s = spec();
        s.ephemeral_mb = 100;
        assert!(s.validate().unwrap_err().to_string().contains("ephemeral"));
        let mut s = spec();
        s.memory_mb = 20_000;
        assert!(s.validate().unwrap_err().to_string().contains("memory"));
        let mut s = spec();
        let many: Vec<String> = (0..300).map(|i| format!("prefix-number-{i}")).collect();
        s.scope = Scope::new("cosmicai-data", &many, &["result".into()], &[]).unwrap();
        assert!(s.validate().unwrap_err().to_string().contains("4 KB"));
    }

    #[test]
    fn changes_print_as_one_line() {
        let c = Change::new("role cai-lambda", Action::Created, "");
        assert_eq!(c.to_string(), "created  role cai-lambda");
        let c = Change::new(
            "function cai-infer",
            Action::Updated,
            "memory 2048 -> 3008 MB",
        );
        assert_eq!(
            c.to_string(),
            "updated  function cai-infer (memory 2048 -> 3008 MB)"
        );
        let c = Change::new("state machine cai", Action::Unchanged, "");
        assert_eq!(c.to_string(), "unchanged state machine cai");
    }
}
