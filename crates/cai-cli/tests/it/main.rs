//! The integration tests of `cai-cli` in one test binary, so the crate and its
//! dependencies link once rather than once per file.

mod common;
mod common_lambda;
mod common_workflow;

mod aws_cli;
mod commands;
mod lambda_emulator;
mod predict;
mod report;
mod run_ownership;
mod workflow_faults;
mod workflow_inputs;
mod workflow_resume;
mod workflow_run;
mod workflow_scale;
mod workflow_slurm;
