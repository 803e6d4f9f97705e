//! The workflow's handlers over Lambda's own protocols, so the same code runs in a Lambda
//! sandbox and is driven from this machine: [`runtime`] serves init/infer/failure/summarize
//! as a custom runtime (`bootstrap`), [`invoke`] calls them through the Invoke API, and
//! [`report`] reads what Lambda says an invocation cost.
#![warn(missing_docs)]

pub mod invoke;
pub mod report;
pub mod runtime;
