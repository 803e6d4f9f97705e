//! Before any work: is there a Slurm cluster to talk to, do its settings accept our jobs,
//! and can its nodes see the store and the spool? A job array that fails 10,000 times on an
//! invalid partition, or computes results into a folder the submitting host never sees, is
//! worse than a refusal that says what to change.

use std::path::{Path, PathBuf};

use cai_store::StoreConfig;

use super::command;
use super::submit::site_args;
use super::SlurmOptions;

/// The default MaxArraySize, when scontrol does not say.
pub const DEFAULT_MAX_ARRAY_SIZE: u64 = 1001;

/// What the checks found out about the cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Array task ids must be below this (`MaxArraySize`).
    pub max_array_size: u64,
    /// The nodes of the partition.
    pub nodes: Vec<String>,
}

/// Everything the Slurm engine needs, checked: the options, the cluster, an absolute store
/// and spool root, and warnings for the user.
#[derive(Debug, Clone)]
pub struct SlurmSetup {
    /// The user's flags.
    pub options: SlurmOptions,
    /// What the cluster said.
    pub cluster: Cluster,
    /// The store, with a local root made absolute (jobs run in another directory).
    pub store: StoreConfig,
    /// Where the executions' spool folders go (absolute).
    pub spool_root: PathBuf,
    /// Things the user should know (a store on a node-local filesystem, ...).
    pub warnings: Vec<String>,
}

/// Checks the cluster and the folders; `Err` says why the run cannot go ahead.
/// `memory_mib` and `threads` are the inference jobs' `--mem` and `--cpus-per-task`.
pub fn prepare(
    options: SlurmOptions,
    store: &StoreConfig,
    memory_mib: u64,
    threads: usize,
) -> Result<SlurmSetup, String> {
    let version = command::run("sbatch", &["--version".to_string()]).map_err(|e| {
        format!("--engine slurm needs Slurm's commands (sbatch, squeue, scancel) on PATH: sbatch: {e} (on a laptop, scripts/slurm-local.sh install && scripts/slurm-local.sh start gives a one-node cluster)")
    })?;
    if !version.ok {
        return Err(format!("sbatch --version: {}", version.complaint()));
    }
    let nodes = nodes(&options)?;
    test_only(&options, memory_mib, threads)?;
    let cluster = Cluster {
        max_array_size: max_array_size(),
        nodes,
    };
    let store = match store {
        StoreConfig::Local { root } => StoreConfig::Local {
            root: absolute(root).map_err(|e| format!("--store {}: {e}", root.display()))?,
        },
        other => other.clone(),
    };
    let spool_root = match (&options.spool, &store) {
        (Some(dir), _) => absolute(dir).map_err(|e| format!("--spool {}: {e}", dir.display()))?,
        (None, StoreConfig::Local { root }) => root.join(".cai-slurm"),
        (None, _) => {
            absolute(Path::new(".cai-slurm")).map_err(|e| format!("the spool ./.cai-slurm: {e}"))?
        }
    };
    std::fs::create_dir_all(&spool_root)
        .map_err(|e| format!("the spool {}: {e}", spool_root.display()))?;
    let mut folders: Vec<(&str, &Path)> = vec![("the spool", &spool_root)];
    if let StoreConfig::Local { root } = &store {
        folders.push(("--store", root));
    }
    let warnings = share_warnings(&folders, &cluster.nodes, &host_name());
    Ok(SlurmSetup {
        options,
        cluster,
        store,
        spool_root,
        warnings,
    })
}

/// An absolute, existing path (created when missing).
fn absolute(p: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(p)?;
    std::fs::canonicalize(p)
}

/// The nodes of the partition (or of the default partitions); the controller must answer.
fn nodes(opts: &SlurmOptions) -> Result<Vec<String>, String> {
    let mut args = vec![
        "--noheader".to_string(),
        "--Node".into(),
        "--format=%N".into(),
    ];
    if let Some(p) = &opts.partition {
        args.push(format!("--partition={p}"));
    }
    let out = command::run("sinfo", &args).map_err(|e| format!("sinfo: {e}"))?;
    if !out.ok {
        return Err(format!(
            "cannot reach the Slurm controller: sinfo: {}",
            out.complaint()
        ));
    }
    let mut nodes: Vec<String> = out.stdout.split_whitespace().map(String::from).collect();
    nodes.sort();
    nodes.dedup();
    if nodes.is_empty() {
        return Err(match &opts.partition {
            Some(p) => format!("Slurm partition {p:?} has no nodes (sinfo)"),
            None => "the Slurm cluster has no nodes in its default partition (sinfo)".into(),
        });
    }
    Ok(nodes)
}

/// `sbatch --test-only` with the run's flags: an unknown partition, account or qos, or more
/// memory or CPUs than any node has, is refused now, in Slurm's words.
fn test_only(opts: &SlurmOptions, memory_mib: u64, threads: usize) -> Result<(), String> {
    let mut args = vec![
        "--test-only".to_string(),
        format!("--mem={memory_mib}M"),
        format!("--cpus-per-task={}", threads.max(1)),
        "--ntasks=1".into(),
        "--nodes=1".into(),
        "--output=/dev/null".into(),
    ];
    args.extend(site_args(opts));
    args.extend(opts.sbatch_args.iter().cloned());
    args.push("--wrap=true".into());
    let out = command::run("sbatch", &args).map_err(|e| format!("sbatch --test-only: {e}"))?;
    if out.ok {
        Ok(())
    } else {
        Err(format!(
            "Slurm refuses the jobs this run would submit (--mem={memory_mib}M, --cpus-per-task={threads}{}): {}",
            site_args(opts)
                .iter()
                .chain(&opts.sbatch_args)
                .map(|a| format!(", {a}"))
                .collect::<String>(),
            out.complaint()
        ))
    }
}

/// `MaxArraySize` from `scontrol show config`.
fn max_array_size() -> u64 {
    let Ok(out) = command::run("scontrol", &["show".to_string(), "config".into()]) else {
        return DEFAULT_MAX_ARRAY_SIZE;
    };
    parse_max_array_size(&out.stdout).unwrap_or(DEFAULT_MAX_ARRAY_SIZE)
}

/// The `MaxArraySize = N` line of `scontrol show config`.
pub fn parse_max_array_size(config: &str) -> Option<u64> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize").then(|| v.trim().parse().ok())?
    })
}

/// This host's short name.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is ours and its length is passed.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    name.split('.').next().unwrap_or("").to_string()
}

/// The kinds of filesystem a folder can be on, as far as sharing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// Local to this host (ext4, xfs, btrfs, tmpfs, overlay, zfs).
    Local,
    /// A network or cluster filesystem (NFS, Lustre, GPFS, BeeGFS, CephFS, SMB).
    Shared,
    /// Something else (FUSE, unknown): cannot tell.
    Unknown,
}

/// Which kind of filesystem `path` is on (statfs's magic number).
pub fn fs_kind(path: &Path) -> FsKind {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return FsKind::Unknown;
    };
    // SAFETY: a zeroed statfs is valid; statfs fills it from a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return FsKind::Unknown;
    }
    kind_of_magic(st.f_type as i64)
}

/// Classifies a statfs magic number.
pub fn kind_of_magic(magic: i64) -> FsKind {
    match magic as u32 {
        0xEF53 | 0x5846_5342 | 0x9123_683E | 0x0102_1994 | 0x794C_7630 | 0x2FC1_2FC1
        | 0xF2F5_2010 => FsKind::Local,
        0x6969 | 0x0BD0_0BD0 | 0x4750_4653 | 0x1983_0326 | 0x00C3_6400 | 0xFF53_4D42
        | 0xFE53_4D42 | 0x517B => FsKind::Shared,
        _ => FsKind::Unknown,
    }
}

/// Warnings for folders the nodes may not see: any folder under /tmp, /var/tmp, /dev/shm
/// (node-local on every cluster), or on a local filesystem, unless the cluster is this host
/// alone.
pub fn share_warnings(folders: &[(&str, &Path)], nodes: &[String], host: &str) -> Vec<String> {
    if !nodes.is_empty() && nodes.iter().all(|n| n == host || n == "localhost") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (what, dir) in folders {
        let scratch = ["/tmp", "/var/tmp", "/dev/shm"]
            .iter()
            .any(|p| dir.starts_with(p));
        let kind = fs_kind(dir);
        if scratch || kind == FsKind::Local {
            out.push(format!(
                "{what} {} is on {} of this host, but the jobs run on {}: they must see it at the same path. Use a shared folder (NFS, Lustre, GPFS, BeeGFS, CephFS){}",
                dir.display(),
                if scratch { "node-local scratch" } else { "a local filesystem" },
                summarize_nodes(nodes),
                if *what == "--store" { ", or --store s3" } else { ", with --spool DIR" }
            ));
        }
    }
    out
}

fn summarize_nodes(nodes: &[String]) -> String {
    match nodes {
        [] => "the cluster's nodes".into(),
        [one] => format!("node {one}"),
        many if many.len() <= 4 => format!("nodes {}", many.join(", ")),
        many => format!("{} nodes ({}, ...)", many.len(), many[..3].join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_array_size_is_read_from_scontrol() {
        let cfg = "MaxArraySize            = 100001\nMaxJobCount = 10000\n";
        assert_eq!(parse_max_array_size(cfg), Some(100_001));
        assert_eq!(parse_max_array_size("nothing"), None);
    }

    #[test]
    fn local_folders_warn_only_when_other_nodes_run_the_jobs() {
        let tmp = Path::new("/tmp/cai-store");
        let alone = share_warnings(&[("--store", tmp)], &["vm".into()], "vm");
        assert!(alone.is_empty(), "{alone:?}");
        let w = share_warnings(&[("--store", tmp)], &["n1".into(), "n2".into()], "login1");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("node-local scratch") && w[0].contains("--store s3"),
            "{}",
            w[0]
        );
        assert_eq!(kind_of_magic(0x6969), FsKind::Shared);
        assert_eq!(kind_of_magic(0x0BD0_0BD0), FsKind::Shared);
        assert_eq!(kind_of_magic(0xEF53), FsKind::Local);
        assert_eq!(kind_of_magic(0x6573_5546), FsKind::Unknown);
    }
}
