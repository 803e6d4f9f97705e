//! The process runner on plain shell commands: results, exit statuses, signals, the timeout
//! and the memory limit are each reported as what they are, with the kernel's measurements.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cai_local::process::{run, Ending, ProcessSpec};

fn sh(script: &str, memory_mb: u64, timeout: Option<Duration>) -> ProcessSpec {
    ProcessSpec {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script.into()],
        env: vec![("CAI_TEST_VALUE".into(), "42".into())],
        memory_mb,
        timeout,
    }
}

#[test]
fn stdin_goes_in_and_stdout_comes_back() {
    let out = run(
        &sh("cat; printf \" $CAI_TEST_VALUE\"", 512, None),
        b"{\"x\":1}",
    )
    .unwrap();
    assert_eq!(out.ending, Ending::Exited(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "{\"x\":1} 42");
    assert!(out.wall_seconds > 0.0);
    assert!(out.peak_rss_mib > 0.0);
}

#[test]
fn exit_status_and_stderr_tail_are_kept() {
    let out = run(&sh("echo boom >&2; exit 7", 512, None), b"").unwrap();
    assert_eq!(out.ending, Ending::Exited(7));
    assert!(out.stderr_tail.contains("boom"), "{}", out.stderr_tail);
}

#[test]
fn a_signal_is_reported_as_a_signal() {
    let out = run(&sh("kill -9 $$", 512, None), b"").unwrap();
    assert_eq!(out.ending, Ending::Signaled(9));
}

#[test]
fn the_timeout_kills_the_process() {
    let t = Instant::now();
    let out = run(&sh("sleep 30", 512, Some(Duration::from_millis(500))), b"").unwrap();
    assert_eq!(out.ending, Ending::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn going_over_the_memory_limit_is_out_of_memory() {
    // The shell holds ~200 MB in a variable; the limit is 64 MiB.
    let script = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 2; echo ${#x}";
    let out = run(&sh(script, 64, Some(Duration::from_secs(60))), b"").unwrap();
    assert_eq!(
        out.ending,
        Ending::OutOfMemory,
        "peak {} MiB",
        out.peak_rss_mib
    );
}

#[test]
fn cpu_time_is_measured() {
    let out = run(
        &sh(
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
            512,
            None,
        ),
        b"",
    )
    .unwrap();
    assert_eq!(out.ending, Ending::Exited(0));
    assert!(out.cpu_seconds > 0.05, "{}", out.cpu_seconds);
}
