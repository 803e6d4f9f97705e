//! `cai asl`: prints the workflow's state machine definition, the very document `cai run`
//! executes and `cai aws deploy` installs, to read or to edit and pass to `--definition`.

use std::path::PathBuf;

use anyhow::Result;
use cai_workflow::definition::{generate, Functions};

/// Flags of `cai asl`.
#[derive(clap::Args, Debug)]
pub struct AslArgs {
    /// Take MaxConcurrency, retry, tolerated failures and timeout from this payload
    /// (default: cai's defaults).
    #[arg(value_name = "PAYLOAD")]
    pub payload: Option<PathBuf>,
    /// Function ARN prefix, e.g. `arn:aws:lambda:us-east-1:123456789012:function:`.
    #[arg(long, default_value = cai_workflow::definition::LOCAL_ARN_PREFIX)]
    pub arn_prefix: String,
    /// Function-name stem: functions are `<stack>-init`, `<stack>-infer`, ...
    #[arg(long, default_value = cai_workflow::definition::DEFAULT_STACK)]
    pub stack: String,
}

/// Runs `cai asl`.
pub fn run(args: AslArgs) -> Result<()> {
    let settings = match &args.payload {
        Some(p) => crate::run::read_payload(p)?.0.settings,
        None => crate::demo::default_settings(),
    };
    let def = generate(
        &settings,
        &Functions {
            arn_prefix: args.arn_prefix,
            stack: args.stack,
        },
    );
    println!("{}", serde_json::to_string_pretty(&def)?);
    Ok(())
}
