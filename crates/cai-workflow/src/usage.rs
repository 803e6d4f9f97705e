//! What the operating system says a process used: CPU time and peak resident memory, the
//! same figures Lambda bills and reports ("Max Memory Used").

/// CPU seconds (user + system) and peak RSS of this process so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size in MB (10^6 bytes).
    pub peak_rss_mb: f64,
}

/// Reads `getrusage(RUSAGE_SELF)`.
pub fn self_usage() -> Usage {
    rusage(libc::RUSAGE_SELF)
}

fn rusage(who: libc::c_int) -> Usage {
    // SAFETY: getrusage writes a plain struct we own; zeroed is a valid initial value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to `ru`, valid `who`.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Usage::default();
    }
    from_rusage(&ru)
}

/// Converts a kernel `rusage` (Linux reports ru_maxrss in KiB).
pub fn from_rusage(ru: &libc::rusage) -> Usage {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu_seconds: secs(ru.ru_utime) + secs(ru.ru_stime),
        peak_rss_mb: ru.ru_maxrss as f64 * 1024.0 / 1e6,
    }
}
