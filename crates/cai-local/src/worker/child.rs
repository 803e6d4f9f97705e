//! One warm worker process (`cai worker`): started once, then serving invocation after
//! invocation as a warm Lambda container does. The engine enforces each invocation's memory
//! limit (resident memory polled from /proc, the kernel's per-invocation peak checked after)
//! and timeout, and kills the whole worker when either is passed or it misbehaves; the next
//! invocation then gets a fresh (cold) worker.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol::{Response, MAX_LINE_BYTES};
use crate::procfs;

/// The last bytes a worker wrote to stderr, and how many it wrote in all.
#[derive(Default)]
struct StderrTail {
    buf: Vec<u8>,
    total: u64,
}

const STDERR_TAIL: usize = 16 << 10;

impl StderrTail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.total += bytes.len() as u64;
        if self.buf.len() > 2 * STDERR_TAIL {
            self.buf.drain(..self.buf.len() - STDERR_TAIL);
        }
    }

    /// What was written since `mark` (a `total` taken earlier), at most the kept tail.
    fn since(&self, mark: u64) -> String {
        let new = (self.total - mark).min(self.buf.len() as u64) as usize;
        let start = self.buf.len() - new.min(STDERR_TAIL);
        String::from_utf8_lossy(&self.buf[start..]).into_owned()
    }
}

/// How a worker's invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ending {
    /// The worker answered.
    Answered(Response),
    /// The worker died (exit status or signal, as text).
    Died(String),
    /// Killed: resident memory over the limit.
    OutOfMemory,
    /// Killed: past the timeout.
    TimedOut,
    /// Killed: it answered something that is not a response.
    Garbled(String),
}

/// One invocation as the engine saw it.
pub(crate) struct Report {
    pub ending: Ending,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
    pub stderr: String,
}

/// A running worker process.
pub(crate) struct Worker {
    /// Engine-wide worker number (the timeline's row).
    pub id: u64,
    /// The handler it serves and its inference threads: a worker is reused only for these.
    pub key: (&'static str, usize),
    pid: libc::pid_t,
    stdin: Option<ChildStdin>,
    lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<StderrTail>>,
    alive: bool,
}

/// Starting a worker: the executable and its environment.
pub(crate) struct Spawn<'a> {
    pub program: &'a PathBuf,
    pub env: &'a [(String, String)],
}

impl Worker {
    /// Starts `program worker` in its own process group.
    pub fn start(
        spawn: &Spawn<'_>,
        id: u64,
        key: (&'static str, usize),
    ) -> std::io::Result<Worker> {
        let mut child = Command::new(spawn.program)
            .arg("worker")
            .envs(spawn.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a kill reaches anything it started too.
            .process_group(0)
            .spawn()?;
        let pid = child.id() as libc::pid_t;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match (&mut reader)
                    .take(MAX_LINE_BYTES as u64)
                    .read_line(&mut line)
                {
                    Ok(0) => break,
                    Ok(_) => {
                        if tx.send(Ok(line)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(StderrTail::default()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr_pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(&chunk[..n]);
            }
        });
        // The child's handle is not kept: the worker is reaped with waitpid by pid.
        let stdin = child.stdin.take();
        drop(child);
        Ok(Worker {
            id,
            key,
            pid,
            stdin,
            lines,
            stderr,
            alive: true,
        })
    }

    /// True while the worker can serve another invocation.
    pub fn healthy(&self) -> bool {
        self.alive
    }

    /// Sends one request line and waits for the answer within `memory_mib` and `timeout`.
    pub fn invoke(&mut self, request: &[u8], memory_mib: u64, timeout: Option<Duration>) -> Report {
        let started = Instant::now();
        procfs::reset_peak_rss(self.pid);
        let cpu_before = procfs::cpu_seconds(self.pid).unwrap_or(0.0);
        let mark = self.stderr.lock().unwrap_or_else(|e| e.into_inner()).total;
        let sent = self.stdin.as_mut().map(|s| {
            s.write_all(request)
                .and_then(|()| s.write_all(b"\n"))
                .and_then(|()| s.flush())
        });
        let ending = match sent {
            Some(Ok(())) => self.wait_answer(started, memory_mib, timeout),
            _ => self.reap("it stopped reading requests"),
        };
        let limit = memory_mib as f64;
        let peak = procfs::peak_rss_mib(self.pid).unwrap_or(0.0);
        let cpu_after = procfs::cpu_seconds(self.pid).unwrap_or(cpu_before);
        // A spike between two polls still counts: the kernel's peak is authoritative.
        let ending = match ending {
            Ending::Answered(_) if peak > limit => {
                self.kill();
                Ending::OutOfMemory
            }
            other => other,
        };
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .since(mark);
        Report {
            ending,
            wall_seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: (cpu_after - cpu_before).max(0.0),
            peak_rss_mib: peak,
            stderr,
        }
    }

    fn wait_answer(
        &mut self,
        started: Instant,
        memory_mib: u64,
        timeout: Option<Duration>,
    ) -> Ending {
        let limit_bytes = memory_mib.saturating_mul(1 << 20);
        loop {
            let poll = if started.elapsed() < Duration::from_millis(200) {
                Duration::from_millis(2)
            } else {
                Duration::from_millis(10)
            };
            match self.lines.recv_timeout(poll) {
                Ok(Ok(line)) => {
                    return match serde_json::from_str::<Response>(line.trim_end()) {
                        Ok(r) => Ending::Answered(r),
                        Err(e) => {
                            self.kill();
                            let mut shown = line;
                            shown.truncate(200);
                            Ending::Garbled(format!("{e}: {shown:?}"))
                        }
                    };
                }
                Ok(Err(e)) => return self.reap(&format!("its response pipe failed: {e}")),
                Err(RecvTimeoutError::Disconnected) => {
                    return self.reap("it closed its response pipe")
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if procfs::resident_bytes(self.pid).is_some_and(|rss| rss > limit_bytes) {
                self.kill();
                return Ending::OutOfMemory;
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                self.kill();
                return Ending::TimedOut;
            }
        }
    }

    /// The worker is gone or going: waits for it and says how it ended.
    fn reap(&mut self, why: &str) -> Ending {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let mut status = 0;
            // SAFETY: pid is our own child; status is a local.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                self.alive = false;
                // Whatever it left behind dies with it, as in a Lambda sandbox.
                // SAFETY: signalling the process group we created for it.
                unsafe { libc::kill(-self.pid, libc::SIGKILL) };
                return Ending::Died(describe(status));
            }
            if r < 0 || Instant::now() >= deadline {
                self.kill();
                return Ending::Died(format!("{why} and did not exit"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills the worker and everything it started, and reaps it.
    pub fn kill(&mut self) {
        if !self.alive {
            return;
        }
        self.alive = false;
        self.stdin = None;
        // SAFETY: signalling the process group we created for this child, then reaping it.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}

impl Drop for Worker {
    /// Closing stdin asks the worker to exit; one that lingers is killed.
    fn drop(&mut self) {
        if !self.alive {
            return;
        }
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            let mut status = 0;
            // SAFETY: pid is our own child.
            if unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } == self.pid {
                self.alive = false;
                // SAFETY: the group we created for it.
                unsafe { libc::kill(-self.pid, libc::SIGKILL) };
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill();
    }
}

fn describe(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        "an unknown ending".into()
    }
}
