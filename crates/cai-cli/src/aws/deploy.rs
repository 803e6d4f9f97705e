//! `cai aws deploy` and `cai aws destroy`: turn flags into a deployment spec, call
//! `cai_aws::deploy`/`destroy`, and print one line per resource.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use cai_aws::context::AwsContext;
use cai_aws::deploy::{self as aws_deploy, Change, DeploySpec};
use cai_aws::iam::Scope;
use cai_aws::names::{StackNames, DEFAULT_NAME};
use cai_workflow::payload::DEFAULT_MODEL_TAIL;
use cai_workflow::settings::{Architecture, DEFAULT_MEMORY_MB};
use cai_workflow::Payload;

/// `/tmp` per function: the weights (~0.35 GB for a ViT-Base), one partition (100 MB-1 GB in
/// the original's data sets) and the predictions file must fit at once. 2 GB leaves room for
/// the 1 GB partitions; storage above 512 MB costs about $0.0000000309 per GB-s, well under a
/// thousandth of the memory's price at 2 GB.
const DEFAULT_EPHEMERAL_MB: u64 = 2048;

/// The original's model folder in the model bucket.
const DEFAULT_MODEL_FOLDER: &str = "Anomaly Detection";

/// Flags of `cai aws deploy`.
#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// The model bucket (payload `bucket`); also the data bucket unless --data-bucket is given.
    #[arg(long, value_name = "BUCKET")]
    pub bucket: Option<String>,
    /// The bucket with the partitions and results (payload `data_bucket`).
    #[arg(long, value_name = "BUCKET")]
    pub data_bucket: Option<String>,
    /// A folder of the data bucket the functions may read partitions from (repeatable;
    /// default: the whole data bucket).
    #[arg(long = "data-prefix", value_name = "PREFIX")]
    pub data_prefixes: Vec<String>,
    /// A folder of the data bucket results may be written under (repeatable; default `result`).
    #[arg(long = "result-prefix", value_name = "PREFIX")]
    pub result_prefixes: Vec<String>,
    /// The weights key in the model bucket (default: the original's
    /// `Anomaly Detection/Fine_Tune_Model/...pt`).
    #[arg(long, value_name = "KEY")]
    pub model_key: Option<String>,
    /// A payload to deploy for: its data_prefix, result_path and model join the scope
    /// (repeatable).
    #[arg(long = "payload", value_name = "FILE")]
    pub payloads: Vec<PathBuf>,
    /// The region (default: the AWS environment's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The deployment name; every resource name derives from it.
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    pub name: String,
    /// Memory per function (MB).
    #[arg(long, default_value_t = DEFAULT_MEMORY_MB, value_name = "MB")]
    pub memory_mb: u64,
    /// Function timeout (seconds, at most 900).
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub timeout_seconds: u64,
    /// `/tmp` size per function (MB, 512-10240); weights and a partition are downloaded there.
    #[arg(long, default_value_t = DEFAULT_EPHEMERAL_MB, value_name = "MB")]
    pub ephemeral_mb: u64,
    /// The functions' CPU architecture (must match the zip).
    #[arg(long, default_value = "x86_64", value_name = "x86_64|arm64")]
    pub arch: Architecture,
    /// The deployment zip (default target/lambda/cai-<arch>.zip, written by `cai aws package`).
    #[arg(long, value_name = "FILE")]
    pub zip: Option<PathBuf>,
}

/// Flags of `cai aws destroy`.
#[derive(clap::Args, Debug)]
pub struct DestroyArgs {
    /// The deployment name given to `cai aws deploy`.
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    pub name: String,
    /// The region (default: the AWS environment's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

/// Runs `cai aws deploy`.
pub fn deploy(a: DeployArgs, quiet: bool) -> Result<u8> {
    let names = StackNames::new(&a.name).map_err(|e| anyhow!(e))?;
    let payloads = read_payloads(&a.payloads)?;
    let scope = scope_of(&a, &payloads, quiet)?;
    let zip_path = a
        .zip
        .clone()
        .unwrap_or_else(|| cai_aws::package::default_zip_path(a.arch));
    let zip = read_zip(&zip_path, a.arch, a.zip.is_some())?;
    let spec = DeploySpec {
        names,
        scope,
        zip,
        memory_mb: a.memory_mb,
        timeout_seconds: a.timeout_seconds,
        ephemeral_mb: a.ephemeral_mb,
        architecture: a.arch,
        settings: DeploySpec::default_settings(a.timeout_seconds, a.memory_mb, a.arch),
    };
    super::runtime()?.block_on(async {
        let ctx = AwsContext::load(a.region.as_deref()).await?;
        let changes = aws_deploy::deploy(&ctx, &spec)
            .await
            .with_context(|| format!("deploying {:?} in {}", a.name, ctx.region))?;
        print_changes(&changes, quiet);
        Ok(0)
    })
}

/// Runs `cai aws destroy`.
pub fn destroy(a: DestroyArgs, quiet: bool) -> Result<u8> {
    let names = StackNames::new(&a.name).map_err(|e| anyhow!(e))?;
    super::runtime()?.block_on(async {
        let ctx = AwsContext::load(a.region.as_deref()).await?;
        let changes = cai_aws::destroy::destroy(&ctx, &names)
            .await
            .with_context(|| format!("destroying {:?} in {}", a.name, ctx.region))?;
        print_changes(&changes, quiet);
        Ok(0)
    })
}

/// One line per resource; with --quiet only what changed or was skipped.
fn print_changes(changes: &[Change], quiet: bool) {
    use cai_aws::deploy::Action;
    for c in changes {
        if quiet && matches!(c.action, Action::Unchanged | Action::Absent) {
            continue;
        }
        println!("{c}");
    }
}

/// Parses each `--payload` file, naming the file on error.
fn read_payloads(paths: &[PathBuf]) -> Result<Vec<Payload>> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
            Payload::parse(&text).with_context(|| format!("{}", p.display()))
        })
        .collect()
}

/// The scope from the flags and payloads. The data bucket is --data-bucket, else --bucket,
/// else the first payload's. Data prefixes, result prefixes and models are the flags' plus
/// each payload's; with neither --data-prefix nor a payload the whole data bucket is deployed
/// (said in a note, since it is wider than a run needs), and with neither --result-prefix nor
/// a payload results go under `result`.
fn scope_of(a: &DeployArgs, payloads: &[Payload], quiet: bool) -> Result<Scope> {
    let data_bucket = a
        .data_bucket
        .clone()
        .or_else(|| a.bucket.clone())
        .or_else(|| payloads.first().map(|p| p.data_bucket.clone()))
        .context("no data bucket: pass --bucket B (or --data-bucket D, or --payload FILE)")?;
    let mut data = a.data_prefixes.clone();
    let mut results = a.result_prefixes.clone();
    if results.is_empty() && payloads.is_empty() {
        results.push("result".into());
    }
    let mut models = Vec::new();
    match (&a.bucket, &a.model_key) {
        (Some(bucket), key) => {
            let default = format!("{DEFAULT_MODEL_FOLDER}/{DEFAULT_MODEL_TAIL}");
            models.push(format!("{bucket}/{}", key.clone().unwrap_or(default)));
        }
        (None, Some(_)) => bail!("--model-key needs --bucket (the model bucket)"),
        (None, None) => {}
    }
    for (p, path) in payloads.iter().zip(&a.payloads) {
        if p.data_bucket != data_bucket {
            bail!(
                "{}: field `data_bucket` is {:?} but the deployment's data bucket is {:?} (one deployment serves one data bucket)",
                path.display(),
                p.data_bucket,
                data_bucket
            );
        }
        data.push(p.data_prefix.clone());
        results.push(p.result_path.clone());
        models.push(p.settings.model.to_string());
    }
    if data.is_empty() && !quiet {
        eprintln!(
            "note: no --data-prefix or --payload: the functions may read all of bucket {data_bucket:?}"
        );
    }
    Scope::new(&data_bucket, &data, &results, &models)
        .map_err(|e| anyhow!(e))
        .context("the deployment scope")
}

/// Reads the zip, saying how to make it when the default one is missing.
fn read_zip(path: &std::path::Path, arch: Architecture, explicit: bool) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => bail!(
            "{} not found: run `cai aws package --arch {}` first (or pass --zip FILE)",
            path.display(),
            arch.as_str()
        ),
        Err(e) => Err(e).with_context(|| format!("{}", path.display())),
    }
}
