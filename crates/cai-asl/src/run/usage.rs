//! What distributed-Map child executions used, per execution type, because AWS bills
//! STANDARD children per state transition and EXPRESS children per request and per
//! GB-second of duration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// AWS rounds each EXPRESS execution's duration up to this increment when billing.
const BILLING_INCREMENT: Duration = Duration::from_millis(100);

/// Usage of the distributed-Map child executions of one execution type, summed over
/// every Map run of an execution (nested distributed Maps included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildUsage {
    /// Child executions started (one per batch when the Map has an ItemBatcher).
    pub executions: u64,
    /// Their state transitions, counted like [`crate::Execution::transitions`].
    pub transitions: u64,
    /// Their summed wall-clock durations.
    pub duration: Duration,
    /// Their summed durations, each rounded up to 100 ms as AWS bills EXPRESS
    /// executions.
    pub billed_duration: Duration,
}

/// Thread-safe accumulator behind a [`ChildUsage`].
#[derive(Debug, Default)]
pub(crate) struct UsageCounter {
    executions: AtomicU64,
    pub transitions: AtomicU64,
    nanos: AtomicU64,
    billed_ms: AtomicU64,
}

impl UsageCounter {
    /// Records one finished child execution that ran for `d`.
    pub(crate) fn record(&self, d: Duration) {
        self.executions.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        let step = BILLING_INCREMENT.as_nanos() as u64;
        let increments = nanos.div_ceil(step).max(1);
        let billed_ms = increments.saturating_mul(BILLING_INCREMENT.as_millis() as u64);
        self.billed_ms.fetch_add(billed_ms, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ChildUsage {
        ChildUsage {
            executions: self.executions.load(Ordering::Relaxed),
            transitions: self.transitions.load(Ordering::Relaxed),
            duration: Duration::from_nanos(self.nanos.load(Ordering::Relaxed)),
            billed_duration: Duration::from_millis(self.billed_ms.load(Ordering::Relaxed)),
        }
    }
}
