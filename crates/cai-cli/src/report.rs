//! `cai report`: one or more runs' result folders as one self-contained HTML page (and, with
//! `--figures`, each figure as an SVG file); and the `--report` of `cai run` / `cai aws run`,
//! which writes `report.html` next to the run's results.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use cai_report::{Options, RunData};
use cai_store::{BlockingStore, StoreConfig};
use cai_workflow::Payload;

/// The page's key under a run's result path.
pub const REPORT_NAME: &str = "report.html";

/// Flags of `cai report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Result folders to report on: BUCKET/RESULT_PATH (or s3://BUCKET/RESULT_PATH), as a
    /// payload's data_bucket and result_path; cai's or the original CAI's. Several runs get
    /// scaling figures (time, throughput and cost against data size and world size).
    #[arg(value_name = "BUCKET/RESULT_PATH", required = true)]
    pub runs: Vec<String>,
    /// Where buckets live: a directory (one subfolder per bucket), `s3` (real buckets, from
    /// the standard AWS environment) or `s3://BUCKET[/PREFIX]`.
    #[arg(long, default_value = cai_store::DEFAULT_LOCAL_ROOT, value_name = "DIR|s3|s3://B/P")]
    pub store: StoreConfig,
    /// The page to write (a local file).
    #[arg(long, default_value = REPORT_NAME, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write every figure as its own SVG file into this folder.
    #[arg(long, value_name = "DIR")]
    pub figures: Option<PathBuf>,
    /// Page title (default: the run, or "CAI runs compared").
    #[arg(long)]
    pub title: Option<String>,
}

/// `BUCKET/RESULT_PATH` or `s3://BUCKET/RESULT_PATH` as (bucket, result path).
pub fn parse_run(spec: &str) -> Result<(String, String)> {
    let rest = spec.strip_prefix("s3://").unwrap_or(spec);
    match rest.split_once('/') {
        Some((b, rp)) if !b.is_empty() && !rp.trim_matches('/').is_empty() => {
            Ok((b.to_string(), rp.trim_matches('/').to_string()))
        }
        _ => Err(anyhow!(
            "{spec:?}: expected BUCKET/RESULT_PATH (a payload's data_bucket and result_path), e.g. cosmicai-data/result-partition-100MB/1GB/1"
        )),
    }
}

fn options(runs: &[RunData], title: Option<String>) -> Options {
    let title = title.unwrap_or_else(|| match runs {
        [one] => format!("CAI run report: {}", one.label),
        _ => "CAI runs compared".to_string(),
    });
    Options {
        title,
        generated: format!(
            "{} UTC",
            cai_asl::rfc3339(std::time::SystemTime::now())
                .replace('T', " ")
                .trim_end_matches('Z')
                .split('.')
                .next()
                .unwrap_or_default()
        ),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Loads every run; errors name the run.
fn load(store: &BlockingStore, runs: &[(String, String)]) -> Result<Vec<RunData>> {
    runs.iter()
        .map(|(b, rp)| cai_report::load_run(store, b, rp).with_context(|| format!("run {b}/{rp}")))
        .collect()
}

/// Writes `bytes` to `path` atomically (temporary file beside it, then rename).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes).with_context(|| path.display().to_string())?;
    // A page to share: readable by all, as a plain file written here would be (the
    // temporary file starts private).
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| path.display().to_string())?;
    tmp.persist(path)
        .map_err(|e| anyhow!("{}: {}", path.display(), e.error))?;
    Ok(())
}

/// Runs `cai report`.
pub fn run(args: ReportArgs) -> Result<u8> {
    let t = Instant::now();
    let specs: Vec<(String, String)> = args
        .runs
        .iter()
        .map(|s| parse_run(s))
        .collect::<Result<_>>()?;
    let store = BlockingStore::open(args.store.clone()).context("--store")?;
    let runs = load(&store, &specs)?;
    let report = cai_report::build(&runs, &options(&runs, args.title))?;
    write_file(&args.out, report.html.as_bytes())?;
    if let Some(dir) = &args.figures {
        for (stem, f) in &report.figures {
            write_file(&dir.join(format!("{stem}.svg")), f.svg.as_bytes())?;
        }
    }
    eprintln!(
        "{} run(s), {} figures, {:.1} MB, {:.1} s",
        runs.len(),
        report.figures.len(),
        report.html.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    println!("{}", args.out.display());
    if runs.iter().any(RunData::untrained) {
        crate::common::untrained_banner("seed weights");
    }
    Ok(0)
}

/// Where `--report` puts the page: the run's result path in its store.
pub struct Target {
    store: StoreConfig,
    bucket: String,
    result_path: String,
}

impl Target {
    /// The report of `payload`'s run in `store`.
    pub fn new(store: &StoreConfig, payload: &Payload) -> Target {
        Target {
            store: store.clone(),
            bucket: payload.data_bucket.clone(),
            result_path: payload.result_path.trim_matches('/').to_string(),
        }
    }

    /// The report of the run a payload file's text describes, in real S3 buckets.
    pub fn on_s3(payload_text: &str) -> Result<Target> {
        let payload = Payload::parse(payload_text)?;
        Ok(Target::new(&StoreConfig::S3Buckets, &payload))
    }

    /// Writes the page next to the results and says where; a failure is reported, never
    /// fatal: the run's own outcome decides the exit status.
    pub fn write(&self) {
        print_outcome(&self.outcome());
    }

    /// Writes the page; the line saying where, or the warning saying why not.
    pub fn outcome(&self) -> Result<String, String> {
        self.try_write()
            .map(|at| format!("report: {at}"))
            .map_err(|e| format!("no report was written: {}", crate::common::error_chain(&e)))
    }

    fn try_write(&self) -> Result<String> {
        let store = BlockingStore::open(self.store.clone()).context("opening the store")?;
        let runs = load(&store, &[(self.bucket.clone(), self.result_path.clone())])?;
        let report = cai_report::build(&runs, &options(&runs, None))?;
        let key = format!("{}/{REPORT_NAME}", self.result_path);
        store
            .bucket(&self.bucket)?
            .put(&key, report.html.into_bytes())?;
        Ok(match &self.store {
            StoreConfig::Local { root } => root.join(&self.bucket).join(&key).display().to_string(),
            StoreConfig::S3Buckets => format!("s3://{}/{key}", self.bucket),
            StoreConfig::S3Root { bucket, prefix } if prefix.is_empty() => {
                format!("s3://{bucket}/{}/{key}", self.bucket)
            }
            StoreConfig::S3Root { bucket, prefix } => {
                format!("s3://{bucket}/{prefix}/{}/{key}", self.bucket)
            }
        })
    }
}

/// Prints what [`Target::outcome`] said: the line on stdout, a warning on stderr.
pub fn print_outcome(outcome: &Result<String, String>) {
    match outcome {
        Ok(line) => println!("{line}"),
        Err(warning) => eprintln!("warning: {warning}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_specs() {
        assert_eq!(
            parse_run("s3://b/r/1/").unwrap(),
            ("b".to_string(), "r/1".to_string())
        );
        assert_eq!(parse_run("b/r").unwrap().1, "r");
        assert!(parse_run("bucket-only").is_err());
        assert!(parse_run("b/").is_err());
    }
}
