//! Process-level measurements: CPU time and peak RSS from `getrusage`, and the CPU model.

use serde::Serialize;

/// CPU seconds (user + system) and peak resident set of this process.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// User + system CPU seconds so far.
    pub cpu_s: f64,
    /// Peak resident set size in MiB.
    pub max_rss_mb: f64,
}

/// Reads `getrusage(RUSAGE_SELF)`; child processes (the PyTorch script) are not included.
pub fn usage() -> Usage {
    // SAFETY: getrusage only writes the struct we pass, which is plain data.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Usage {
        cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_mb: ru.ru_maxrss as f64 / 1024.0,
    }
}

/// The machine's CPU, so benchmark numbers can be compared across hosts.
#[derive(Clone, Debug, Serialize)]
pub struct CpuInfo {
    /// `model name` from /proc/cpuinfo.
    pub model: String,
    /// AVX-512F detected at run time.
    pub avx512f: bool,
    /// AVX2 detected at run time.
    pub avx2: bool,
    /// Logical CPUs available to this process.
    pub logical_cpus: usize,
}

/// Reads the CPU model and the SIMD features the kernels can use.
pub fn cpu_info() -> CpuInfo {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    #[cfg(target_arch = "x86_64")]
    let (avx512f, avx2) = (
        std::arch::is_x86_feature_detected!("avx512f"),
        std::arch::is_x86_feature_detected!("avx2"),
    );
    #[cfg(not(target_arch = "x86_64"))]
    let (avx512f, avx2) = (false, false);
    CpuInfo {
        model,
        avx512f,
        avx2,
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Median of a non-empty list (mean of the middle two for even lengths); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
