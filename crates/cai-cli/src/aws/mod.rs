//! `cai aws ...`: the same workflow on AWS Step Functions + Lambda. Each subcommand lives in
//! its own file; this one only dispatches.

mod deploy;
mod execution;
mod package;

use anyhow::Result;

/// The `cai aws` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum AwsCommand {
    /// Build the Lambda deployment zip (the `cai` binary as `bootstrap`).
    Package(package::PackageArgs),
    /// Create or update the roles, functions and state machine (idempotent; prints changes).
    Deploy(deploy::DeployArgs),
    /// Remove exactly what `cai aws deploy --name N` created.
    Destroy(deploy::DestroyArgs),
    /// Start an execution from a payload, follow it, and print the summary and cost.
    Run(execution::RunArgs),
    /// Follow an execution started earlier (by ARN) to the end and print its summary.
    Status(execution::StatusArgs),
}

/// Runs one `cai aws` subcommand; returns the process exit code.
pub fn run(cmd: AwsCommand, quiet: bool) -> Result<u8> {
    match cmd {
        AwsCommand::Package(a) => package::run(a, quiet),
        AwsCommand::Deploy(a) => deploy::deploy(a, quiet),
        AwsCommand::Destroy(a) => deploy::destroy(a, quiet),
        AwsCommand::Run(a) => execution::run(a, quiet),
        AwsCommand::Status(a) => execution::status(a, quiet),
    }
}

/// A runtime for the SDK's async calls; commands are otherwise synchronous.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
