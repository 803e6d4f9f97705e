//! One invocation as one child process: the event goes in on stdin, the result comes back on
//! stdout (Lambda's error body and exit status 1 for a handler error). The parent enforces
//! the memory limit (RSS polled from /proc, and the kernel's peak RSS checked at exit) and the
//! timeout, and reads wall time, CPU time and peak RSS from `wait4`.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to run one invocation.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The executable (the `cai` binary itself).
    pub program: PathBuf,
    /// Its arguments (`handler <name>`).
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Memory limit in MiB (what Lambda calls MB).
    pub memory_mb: u64,
    /// Wall-clock limit.
    pub timeout: Option<Duration>,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal (not by us).
    Signaled(i32),
    /// Killed by us: resident memory went over the limit.
    OutOfMemory,
    /// Killed by us: the timeout passed.
    TimedOut,
}

/// What the kernel and the pipes reported.
#[derive(Debug, Clone)]
pub struct ProcessOutcome {
    /// How it ended.
    pub ending: Ending,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// The last 16 KiB written to stderr.
    pub stderr_tail: String,
    /// Wall seconds from spawn to reap.
    pub wall_seconds: f64,
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size, MiB.
    pub peak_rss_mib: f64,
}

const STDERR_TAIL: usize = 16 << 10;
/// Largest result accepted on stdout: Lambda's synchronous response limit.
const MAX_STDOUT: usize = 6 << 20;

/// Runs the process to completion under the spec's limits.
pub fn run(spec: &ProcessSpec, input: &[u8]) -> std::io::Result<ProcessOutcome> {
    let started = Instant::now();
    let mut child = Command::new(&spec.program)
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a kill reaches anything it started too (a grandchild
        // holding the pipes open would otherwise keep the invocation alive).
        .process_group(0)
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // A child that dies early closes the pipe; that is reported by its exit, not here.
        let _ = stdin.write_all(&input);
    });
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stdout)
            .take(MAX_STDOUT as u64 + 1)
            .read_to_end(&mut buf);
        // Drain the rest so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut tail: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&chunk[..n]);
            if tail.len() > 2 * STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        let start = tail.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&tail[start..]).into_owned()
    });

    let limit_bytes = spec.memory_mb.saturating_mul(1 << 20);
    let mut killed: Option<Ending> = None;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our child; pointers are to locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break (status, ru);
        }
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if killed.is_none() {
            if crate::procfs::resident_bytes(pid).is_some_and(|rss| rss > limit_bytes) {
                killed = Some(Ending::OutOfMemory);
            } else if spec.timeout.is_some_and(|t| started.elapsed() >= t) {
                killed = Some(Ending::TimedOut);
            }
            if killed.is_some() {
                // SAFETY: signalling our own unreaped child's process group.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
        }
        let elapsed = started.elapsed();
        std::thread::sleep(if elapsed < Duration::from_millis(200) {
            Duration::from_millis(2)
        } else {
            Duration::from_millis(10)
        });
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    // Whatever the invocation left behind dies with it, as in a Lambda sandbox.
    // SAFETY: the group is the one we created for this child.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr_tail = err_reader.join().unwrap_or_default();
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let peak_rss_mib = usage.ru_maxrss as f64 / 1024.0;
    let ending = match killed {
        Some(k) => k,
        None if libc::WIFEXITED(status) => Ending::Exited(libc::WEXITSTATUS(status)),
        None if libc::WIFSIGNALED(status) => Ending::Signaled(libc::WTERMSIG(status)),
        None => Ending::Signaled(0),
    };
    // A spike between two polls still counts: the kernel's peak is authoritative.
    let ending = if peak_rss_mib > spec.memory_mb as f64 && ending != Ending::TimedOut {
        Ending::OutOfMemory
    } else {
        ending
    };
    Ok(ProcessOutcome {
        ending,
        stdout,
        stderr_tail,
        wall_seconds,
        cpu_seconds: secs(usage.ru_utime) + secs(usage.ru_stime),
        peak_rss_mib,
    })
}
