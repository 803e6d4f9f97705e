//! How many invocations this machine can run at once, and with how many threads each, so
//! the cores are used and neither cores nor memory are oversubscribed.

/// The machine's budget for invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Invocations running at once.
    pub slots: usize,
    /// Threads per inference invocation.
    pub threads: usize,
}

/// Logical cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Memory the kernel says can be used without swapping, MiB (MemAvailable).
pub fn available_mib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

impl Capacity {
    /// Plans for `ranks` ranks with data, each allowed `memory_mib`: one slot per core (a
    /// process per core outruns one process with many threads on this model), no more slots
    /// than 80% of available memory holds at the limit, no more than the ranks; leftover
    /// cores become threads. `slots` / `threads` override.
    pub fn plan(
        ranks: usize,
        memory_mib: u64,
        slots: Option<usize>,
        threads: Option<usize>,
    ) -> Capacity {
        let cores = cores();
        let by_memory =
            available_mib().map_or(usize::MAX, |m| ((m * 8 / 10) / memory_mib.max(1)) as usize);
        let slots = slots
            .unwrap_or_else(|| cores.min(by_memory).min(ranks.max(1)))
            .max(1);
        let threads = threads.unwrap_or_else(|| (cores / slots).max(1)).max(1);
        Capacity { slots, threads }
    }
}
