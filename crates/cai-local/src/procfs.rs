//! What Linux's /proc says about a child process: resident memory now, its peak since the
//! last reset, and its CPU time, so the engine can enforce and bill each invocation of a
//! long-lived worker the way Lambda does ("Max Memory Used" per invocation).

/// Current resident bytes, from /proc/<pid>/statm.
pub fn resident_bytes(pid: libc::pid_t) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Resets the kernel's peak-RSS mark (VmHWM) so the next reading covers one invocation.
/// Best effort: without permission the peak simply covers the worker's whole life.
pub fn reset_peak_rss(pid: libc::pid_t) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), b"5");
}

/// Peak resident memory since the last reset (VmHWM), MiB.
pub fn peak_rss_mib(pid: libc::pid_t) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU seconds of the whole process (all threads), from /proc/<pid>/stat.
pub fn cpu_seconds(pid: libc::pid_t) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing paren are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as libc::pid_t;
        assert!(resident_bytes(me).unwrap() > 0);
        assert!(peak_rss_mib(me).unwrap() > 0.0);
        let burn: u64 = (0..20_000_000u64).fold(0, |a, x| a.wrapping_add(x * x));
        assert!(burn > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(resident_bytes(-5).is_none());
    }
}
