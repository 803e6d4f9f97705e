//! `cai aws run` and `cai aws status`: start an execution of a deployed workflow (or pick
//! up one by ARN), follow it with a ranks bar, then print what `cai run` prints, with the
//! cost taken from what Lambda reported.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use cai_aws::context::AwsContext;
use cai_aws::execution::{
    self, AwsRunReport, ExecutionArn, FetchOptions, FollowProgress, MapCounts,
};
use cai_aws::names::{StackNames, DEFAULT_NAME};
use cai_store::{Store, StoreConfig};
use cai_workflow::layout;
use cai_workflow::lease::{self, LeaseError, LeaseRecord};
use cai_workflow::Payload;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Flags of `cai aws run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The workflow input: the same payload JSON `cai run` takes.
    #[arg(value_name = "PAYLOAD")]
    pub payload: PathBuf,
    /// The deployment (as given to `cai aws deploy --name`).
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    pub name: String,
    /// The region (default: the AWS environment's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The execution's name (default: cai-<unix seconds>-<4 hex>); unique per state machine.
    #[arg(long, value_name = "NAME")]
    pub execution_name: Option<String>,
    /// Print the execution ARN and exit without waiting (follow later with `cai aws status`).
    #[arg(long)]
    pub no_wait: bool,
    /// At the end, also write report.html (the run's figures, see `cai report`) next to its
    /// results in S3.
    #[arg(long, conflicts_with = "no_wait")]
    pub report: bool,
    /// Keep ranks that already have a valid result under result_path (as `cai run --resume`);
    /// also take over the result path's lease when its holder is provably gone (its execution
    /// no longer runs, or its lease expired).
    #[arg(long)]
    pub resume: bool,
    /// Take the result path's lease whoever holds it (you know its run is gone).
    #[arg(long)]
    pub break_lease: bool,
}

/// Flags of `cai aws status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The execution ARN `cai aws run` printed.
    #[arg(value_name = "EXECUTION_ARN")]
    pub arn: String,
    /// The region (default: the one in the ARN).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Print the current status and rank counts once instead of following to the end.
    #[arg(long)]
    pub no_wait: bool,
}

/// Runs `cai aws run`.
pub fn run(a: RunArgs, quiet: bool) -> Result<u8> {
    let names = StackNames::new(&a.name).map_err(|e| anyhow!(e))?;
    let text =
        std::fs::read_to_string(&a.payload).with_context(|| format!("{}", a.payload.display()))?;
    let report_target = a
        .report
        .then(|| crate::report::Target::on_s3(&text))
        .transpose()
        .with_context(|| format!("{}", a.payload.display()))?;
    let code = super::runtime()?.block_on(async {
        let ctx = AwsContext::load(a.region.as_deref()).await?;
        let take_over = check_lease(&ctx, &text, &a).await?;
        let input = execution_input(&text, a.resume, take_over.as_deref())
            .with_context(|| format!("{}", a.payload.display()))?;
        let started = execution::start(&ctx, &names, &input, a.execution_name.as_deref())
            .await
            .with_context(|| format!("{}", a.payload.display()))?;
        for note in [&started.concurrency_note, &started.definition_update]
            .into_iter()
            .flatten()
        {
            eprintln!("{note}");
        }
        if a.no_wait {
            println!("{}", started.execution_arn);
            return Ok(0);
        }
        if !quiet {
            eprintln!("started {}", started.execution_arn);
        }
        follow_and_print(&ctx, &names, &started.execution_arn, quiet).await
    })?;
    if let Some(target) = report_target {
        target.write();
    }
    Ok(code)
}

/// The early, friendly half of the result path's lease check (Initialize makes the
/// authoritative one, atomically, in the execution): reads `<result_path>/lease.json` and
/// refuses (exit 2) while another run holds it; returns the run id whose lease Initialize
/// should take over when `--break-lease` says so, or `--resume` finds its holder gone. For a
/// lease an execution holds, Step Functions decides: gone once the execution no longer runs
/// (so an execution stopped early is recognised before its lease expires, and a running one
/// whose generous expiry passed is still refused); otherwise the expiry, or a pid on this
/// host that no longer exists. A lease that cannot be read here (no S3 access from this
/// machine, a bucket this role cannot list) is left to Initialize.
async fn check_lease(ctx: &AwsContext, text: &str, a: &RunArgs) -> Result<Option<String>> {
    let Ok(payload) = Payload::parse(text) else {
        return Ok(None); // execution::start names what is wrong with it
    };
    let (bucket, result_path) = (&payload.data_bucket, &payload.result_path);
    let result = format!("{bucket}/{result_path}");
    let key = layout::lease_key(result_path);
    let store = Store::open(StoreConfig::S3Buckets).context("opening S3")?;
    let b = store.bucket(bucket)?;
    let bytes = match b.get_capped(&key, 64 << 10).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => {
            tracing::warn!("cannot read {bucket}/{key} ({e}); Initialize will check the lease");
            return Ok(None);
        }
    };
    let current: LeaseRecord = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) if a.break_lease => {
            eprintln!("removing {bucket}/{key}, which is not a lease cai wrote ({e}), as --break-lease asked");
            b.delete(&key).await?;
            return Ok(None);
        }
        Err(e) => {
            return Err(LeaseError::Unreadable {
                result,
                reason: e.to_string(),
            }
            .into())
        }
    };
    // Step Functions knows whether an execution still runs; the expiry is the fallback (for
    // a local holder, or when the execution cannot be described).
    let mut gone = current.gone(lease::now_unix());
    if let Some(arn) = current
        .execution
        .as_deref()
        .filter(|a| a.starts_with("arn:aws:states:"))
    {
        match execution::describe(ctx, arn).await {
            Ok(info) if info.ended() => gone = Some(format!("its execution is {}", info.status)),
            Ok(_) => gone = None,
            Err(e) => tracing::warn!("cannot describe {arn}: {e}"),
        }
    }
    let describe = format!(
        "run {} ({}, started {})",
        current.run_id,
        current.holder_text(),
        current.started
    );
    if a.break_lease {
        eprintln!("breaking the lease on {result} of {describe}, as --break-lease asked");
        return Ok(Some(current.run_id));
    }
    if let (true, Some(why)) = (a.resume, &gone) {
        eprintln!("taking over the lease on {result} of {describe}, which is gone: {why}");
        return Ok(Some(current.run_id));
    }
    Err(LeaseError::InUse {
        result,
        current: Box::new(current),
        gone,
    }
    .into())
}

/// The execution's input: the payload as written, plus `resume` and the lease to take over
/// (`cai_lease.take_over`) when asked; Initialize removes both before recording the payload.
fn execution_input(text: &str, resume: bool, take_over: Option<&str>) -> Result<String> {
    if !resume && take_over.is_none() {
        return Ok(text.to_string());
    }
    let mut v: serde_json::Value = serde_json::from_str(text)?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| anyhow!("the payload must be a JSON object"))?;
    if resume {
        obj.insert("resume".into(), true.into());
    }
    if let Some(id) = take_over {
        obj.insert("cai_lease".into(), serde_json::json!({ "take_over": id }));
    }
    Ok(v.to_string())
}

/// Runs `cai aws status`.
pub fn status(a: StatusArgs, quiet: bool) -> Result<u8> {
    let arn = ExecutionArn::parse(&a.arn)?;
    let names = StackNames::new(&arn.state_machine).map_err(|e| {
        anyhow!(
            "{}: state machine {:?} is not a cai deployment name: {e}",
            a.arn,
            arn.state_machine
        )
    })?;
    let region = a.region.clone().unwrap_or_else(|| arn.region.clone());
    super::runtime()?.block_on(async {
        let ctx = AwsContext::load(Some(&region)).await?;
        if a.no_wait {
            return print_status_once(&ctx, &a.arn).await;
        }
        follow_and_print(&ctx, &names, &a.arn, quiet).await
    })
}

/// `status --no-wait`: one line of status, one of rank counts.
async fn print_status_once(ctx: &AwsContext, arn: &str) -> Result<u8> {
    let info = execution::describe(ctx, arn).await?;
    println!("{}  {}", info.name, info.status);
    if let Some(e) = &info.error {
        println!("error: {e}: {}", info.cause.as_deref().unwrap_or(""));
    }
    match execution::map_counts(ctx, arn).await? {
        Some(c) => println!("ranks: {}", counts_text(&c)),
        None => println!("ranks: the Map has not started"),
    }
    Ok(0)
}

/// Follows to the end, fetches the results and prints them as `cai run` does; the exit
/// code is `cai run`'s (0 all ranks ok, 3 tolerated failures, 1 failed).
async fn follow_and_print(
    ctx: &AwsContext,
    names: &StackNames,
    arn: &str,
    quiet: bool,
) -> Result<u8> {
    let mut bar = RanksBar::new(quiet);
    let info = execution::follow(ctx, arn, execution::DEFAULT_POLL, &mut bar).await;
    bar.finish();
    let info = info?;
    let store = Store::open(StoreConfig::S3Buckets).context("opening S3 for the results")?;
    let rep = execution::fetch(ctx, names, &store, &info, &FetchOptions::default()).await?;
    print(&rep);
    Ok(u8::try_from(rep.report.exit_code()).unwrap_or(1))
}

/// The `cai run` report, then where the cost came from.
fn print(rep: &AwsRunReport) {
    crate::run::print_report_with(&rep.report, &rep.cost_source.describe());
    if rep.transitions_estimated {
        println!(
            "state transitions of the Map's child executions were estimated from its item counts (the child executions could not be listed)"
        );
    }
    println!("execution: {}", rep.execution_arn);
}

/// `done/total, running, failed` of the Map's items.
fn counts_text(c: &MapCounts) -> String {
    format!(
        "{}/{} done, {} running, {} failed",
        c.done(),
        c.total,
        c.running,
        c.unsuccessful()
    )
}

/// The ranks bar on stderr; hidden when quiet or stderr is not a terminal.
struct RanksBar {
    bar: ProgressBar,
}

impl RanksBar {
    fn new(quiet: bool) -> RanksBar {
        if quiet || !std::io::stderr().is_terminal() {
            return RanksBar {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} ranks  {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        RanksBar { bar }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl FollowProgress for RanksBar {
    fn update(&mut self, status: &str, counts: Option<&MapCounts>) {
        match counts {
            Some(c) => {
                self.bar.set_length(c.total);
                self.bar.set_position(c.done());
                self.bar.set_message(format!(
                    "{} running, {} failed  ({status})",
                    c.running,
                    c.unsuccessful()
                ));
            }
            None => self.bar.set_message(format!("{status}, Map not started")),
        }
    }
}
