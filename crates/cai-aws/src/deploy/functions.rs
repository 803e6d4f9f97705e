//! The four functions: their configuration compared with what Lambda reports, created or updated, and waited for.

use super::propagation::send_while_role_propagates;
use super::{
    aws_error, code_of, function_label, Action, Change, DeployError, DeploySpec, FUNCTION_READY,
    HANDLER, RUNTIME,
};
use crate::context::AwsContext;
use crate::names::STACK_TAG;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture as LambdaArch, Environment, EphemeralStorage, FunctionCode, FunctionConfiguration,
    LastUpdateStatus, Runtime, State,
};
use cai_workflow::handlers::Handler;
use cai_workflow::settings::Architecture;
use std::collections::HashMap;
use std::time::{Duration, Instant};

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
pub(super) async fn ensure_function(
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
    send_while_role_propagates(&label, "lambda:CreateFunction", || request.clone().send()).await?;
    Ok(())
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
