//! cai on AWS Step Functions + Lambda: the least-privilege IAM policies, an idempotent deploy
//! and an exact destroy of the roles, functions and state machine, executions followed to the
//! end with the costs Lambda reported, and the deployment zip.
#![warn(missing_docs)]

pub mod context;
pub mod deploy;
pub mod destroy;
pub mod execution;
pub mod iam;
pub mod logs;
pub mod names;
pub mod package;
