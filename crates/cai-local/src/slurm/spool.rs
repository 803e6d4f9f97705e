//! The shared folder through which the engine and its jobs talk: each invocation's event goes
//! in as a file, and the job's wrapper (`cai slurm-task`) writes what happened as another,
//! because a batch job has no stdin or stdout the engine could hold. It must be on a
//! filesystem the nodes share at the same path (the store's folder by default); see
//! [`super::check`].
//!
//! ```text
//! <spool root>/<execution>-<pid>/
//!   env.json                 the environment every handler gets (CAI_STORE, ...)
//!   jobs/<s>.sh              the batch script of submission s
//!   in/<s>.<index>.json      an event (index: the array task id, 0 for a plain job)
//!   out/<s>.<index>.json     its outcome, written atomically by the wrapper (TaskRecord)
//!   log/<job>_<task>.log     Slurm's output file of each job (the wrapper's own messages)
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::task::TaskRecord;

/// One execution's folder in the spool.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader on any node sees the whole file or none.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl Spool {
    /// Creates `<root>/<execution>-<pid>` and its subfolders.
    pub fn create(root: &Path, execution: &str) -> std::io::Result<Spool> {
        let dir = root.join(format!("{execution}-{}", std::process::id()));
        for sub in ["in", "out", "log", "jobs"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        Ok(Spool { dir })
    }

    /// A spool over an existing folder (the wrapper's view).
    pub fn open(dir: &Path) -> Spool {
        Spool {
            dir: dir.to_path_buf(),
        }
    }

    /// The execution's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where submission `s`'s task `index` reads its event.
    pub fn event_path(&self, s: u64, index: u64) -> PathBuf {
        self.dir.join("in").join(format!("{s}.{index}.json"))
    }

    /// Where submission `s`'s task `index` reports its outcome.
    pub fn record_path(&self, s: u64, index: u64) -> PathBuf {
        self.dir.join("out").join(format!("{s}.{index}.json"))
    }

    /// Submission `s`'s batch script.
    pub fn script_path(&self, s: u64) -> PathBuf {
        self.dir.join("jobs").join(format!("{s}.sh"))
    }

    /// Slurm's `--output` pattern: one log per array task or job.
    pub fn log_pattern(&self, array: bool) -> PathBuf {
        self.dir
            .join("log")
            .join(if array { "%A_%a.log" } else { "%j.log" })
    }

    /// A job's log (`job` as `12_3` or `12`).
    pub fn log_path(&self, job: &str) -> PathBuf {
        self.dir.join("log").join(format!("{job}.log"))
    }

    /// The environment file every task applies to its handler.
    pub fn env_path(&self) -> PathBuf {
        self.dir.join("env.json")
    }

    /// Writes the handlers' environment.
    pub fn write_env(&self, env: &[(String, String)]) -> std::io::Result<()> {
        write_json(&self.env_path(), &env)
    }

    /// Writes an event for submission `s`, task `index`.
    pub fn write_event(
        &self,
        s: u64,
        index: u64,
        event: &serde_json::Value,
    ) -> std::io::Result<()> {
        write_json(&self.event_path(s, index), event)
    }

    /// The task's outcome, once its wrapper wrote one.
    pub fn read_record(&self, s: u64, index: u64) -> Option<TaskRecord> {
        let text = std::fs::read(self.record_path(s, index)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The last lines of a job's Slurm log (what the wrapper or Slurm said when there is no
    /// outcome), at most 4 KiB.
    pub fn log_tail(&self, job: &str) -> String {
        let Ok(mut f) = std::fs::File::open(self.log_path(job)) else {
            return String::new();
        };
        let len = f.metadata().map_or(0, |m| m.len());
        let _ = std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(len.saturating_sub(4096)));
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    }

    /// Removes the execution's folder (after a clean run: nothing left to look at).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}
