//! The local engine: executes the workflow's Amazon States Language definition on this
//! machine, with every Task invocation a separate OS process of the `cai` binary (as Lambda
//! runs each invocation in its own sandbox), its memory limit and timeout enforced and its
//! wall time, CPU time and peak RSS measured by the kernel; or, with the same interpreter,
//! with the invocations dispatched to a Slurm cluster ([`slurm`]).
#![warn(missing_docs)]

pub mod capacity;
pub mod errors;
pub mod invoker;
pub mod lease;
pub mod process;
pub mod procfs;
pub mod progress;
pub mod report;
pub mod run;
pub mod slurm;
pub mod store_s3;
pub mod throttle;
pub mod worker;

pub use capacity::Capacity;
pub use invoker::{Backend, Invoker, Measured, ProcessBackend, Served};
pub use run::{run_workflow, RunOptions, RunReport, WhileOwned};
