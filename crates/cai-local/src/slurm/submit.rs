//! Building and making sbatch submissions: one job array for a Map's ranks, or one plain job
//! (a retry, Summarize). `memory_mb` is `--mem`, the invocation's threads are
//! `--cpus-per-task`, the timeout is `--time` (Slurm counts whole minutes, so the wrapper
//! enforces the exact seconds and `--time` is the next whole minute plus one, a backstop
//! that never fires first), and the Map's MaxConcurrency is the array's `%` limit.
//! `--no-requeue`: a job Slurm would requeue by itself (node failure, preemption) ends
//! instead, and the definition's Retry policy resubmits it, so every attempt is counted and
//! every attempt is one job. `--export=ALL`: the handler sees the engine's environment
//! (store credentials, `CAI_FAULT` in the tests). The user's `--sbatch-arg`s come last, so
//! they can override any of these.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::command;
use super::SlurmOptions;

/// One submission's settings.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// `--job-name`.
    pub name: String,
    /// The batch script.
    pub script: PathBuf,
    /// `--output` (and error) file pattern.
    pub log: PathBuf,
    /// `--chdir`: the spool, which the nodes see (the submitting directory may not exist
    /// there).
    pub chdir: PathBuf,
    /// `--array` spec, for an array.
    pub array: Option<String>,
    /// `--dependency=afterany:JOB`: the previous chunk of a Map too large for one array.
    pub after: Option<u64>,
    /// `--cpus-per-task`.
    pub cpus: usize,
    /// `--mem`, MiB.
    pub memory_mib: u64,
    /// The invocation's timeout (`--time` is derived from it).
    pub timeout: Option<Duration>,
}

/// `--time` in minutes for a timeout: the whole minutes it spans, plus one.
pub fn time_limit_minutes(timeout: Duration) -> u64 {
    timeout.as_secs().div_ceil(60) + 1
}

/// The cluster-wide flags: partition, account, qos and the user's own.
pub fn site_args(opts: &SlurmOptions) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(p) = &opts.partition {
        args.push(format!("--partition={p}"));
    }
    if let Some(a) = &opts.account {
        args.push(format!("--account={a}"));
    }
    if let Some(q) = &opts.qos {
        args.push(format!("--qos={q}"));
    }
    args
}

/// sbatch's arguments for `spec` (the script last).
pub fn sbatch_args(opts: &SlurmOptions, spec: &JobSpec) -> Vec<String> {
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name={}", spec.name),
        format!("--cpus-per-task={}", spec.cpus.max(1)),
        format!("--mem={}M", spec.memory_mib),
        "--ntasks=1".into(),
        "--nodes=1".into(),
        format!("--output={}", spec.log.display()),
        format!("--chdir={}", spec.chdir.display()),
        "--export=ALL".into(),
        "--no-requeue".into(),
    ];
    if let Some(t) = spec.timeout {
        args.push(format!("--time={}", time_limit_minutes(t)));
    }
    if let Some(a) = &spec.array {
        args.push(format!("--array={a}"));
    }
    if let Some(j) = spec.after {
        args.push(format!("--dependency=afterany:{j}"));
    }
    args.extend(site_args(opts));
    args.extend(opts.sbatch_args.iter().cloned());
    args.push(spec.script.display().to_string());
    args
}

/// Submits; returns the job id. The error is sbatch's own message.
pub fn sbatch(args: &[String]) -> Result<u64, String> {
    let out = command::run("sbatch", args).map_err(|e| format!("sbatch: {e}"))?;
    if !out.ok {
        return Err(format!("sbatch: {}", out.complaint()));
    }
    // `--parsable` prints `JOBID` or `JOBID;CLUSTER`.
    let id = out.stdout.trim().split(';').next().unwrap_or("");
    id.parse()
        .map_err(|_| format!("sbatch printed {:?}, not a job id", out.stdout.trim()))
}

/// A sorted list of task ids as an `--array` spec (`0-4,6,9-12`), with `%limit` when the
/// Map limits its concurrency.
pub fn array_spec(indices: &[u64], limit: u64) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    let mut spec = parts.join(",");
    if limit > 0 {
        spec.push_str(&format!("%{limit}"));
    }
    spec
}

/// Quotes a word for /bin/sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The batch script of a submission: runs the wrapper, `cai slurm-task`, on its event.
pub fn script_text(
    program: &Path,
    spool: &Path,
    submission: u64,
    index: Option<u64>,
    handler: &str,
    threads: usize,
    timeout: Option<Duration>,
) -> String {
    let mut cmd = vec![
        "exec".to_string(),
        sh_quote(&program.display().to_string()),
        "slurm-task".into(),
        sh_quote(&spool.display().to_string()),
        submission.to_string(),
        format!("--handler={handler}"),
        format!("--threads={threads}"),
    ];
    if let Some(i) = index {
        cmd.push(format!("--index={i}"));
    }
    if let Some(t) = timeout {
        cmd.push(format!("--timeout-ms={}", t.as_millis()));
    }
    format!(
        "#!/bin/sh\n# cai run --engine slurm: the {handler} handler, submission {submission}{}.\n{}\n",
        if index.is_none() { " (one task per rank: SLURM_ARRAY_TASK_ID)" } else { "" },
        cmd.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_compress_ranges_and_carry_the_limit() {
        assert_eq!(array_spec(&[0, 1, 2, 3, 4], 2), "0-4%2");
        assert_eq!(array_spec(&[0, 1, 2, 5, 7, 8], 0), "0-2,5,7-8");
        assert_eq!(array_spec(&[9], 0), "9");
        assert_eq!(array_spec(&[], 0), "");
    }

    #[test]
    fn time_limits_round_up_to_whole_minutes_plus_one() {
        assert_eq!(time_limit_minutes(Duration::from_secs(3)), 2);
        assert_eq!(time_limit_minutes(Duration::from_secs(60)), 2);
        assert_eq!(time_limit_minutes(Duration::from_secs(900)), 16);
        assert_eq!(time_limit_minutes(Duration::from_secs(901)), 17);
    }

    #[test]
    fn sbatch_gets_memory_cpus_time_array_and_the_users_flags_last() {
        let opts = SlurmOptions {
            partition: Some("cpu".into()),
            account: Some("astro".into()),
            qos: None,
            sbatch_args: vec!["--time=2:00:00".into()],
            spool: None,
        };
        let spec = JobSpec {
            name: "cai-x-infer".into(),
            script: "/s/jobs/1.sh".into(),
            log: "/s/log/%A_%a.log".into(),
            chdir: "/s".into(),
            array: Some("0-9%4".into()),
            after: Some(41),
            cpus: 2,
            memory_mib: 2048,
            timeout: Some(Duration::from_secs(900)),
        };
        let a = sbatch_args(&opts, &spec);
        for want in [
            "--mem=2048M",
            "--cpus-per-task=2",
            "--time=16",
            "--array=0-9%4",
            "--dependency=afterany:41",
            "--partition=cpu",
            "--account=astro",
            "--no-requeue",
            "--export=ALL",
        ] {
            assert!(a.iter().any(|x| x == want), "{want} in {a:?}");
        }
        let user = a.iter().position(|x| x == "--time=2:00:00").unwrap();
        let ours = a.iter().position(|x| x == "--time=16").unwrap();
        assert!(user > ours, "the user's flags override ours");
        assert_eq!(a.last().unwrap(), "/s/jobs/1.sh");
    }

    #[test]
    fn scripts_quote_paths() {
        let s = script_text(
            Path::new("/opt/it's/cai"),
            Path::new("/shared/spool x"),
            3,
            None,
            "infer",
            1,
            Some(Duration::from_secs(3)),
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains(r"'/opt/it'\''s/cai' slurm-task '/shared/spool x' 3 --handler=infer --threads=1 --timeout-ms=3000"), "{s}");
    }
}
