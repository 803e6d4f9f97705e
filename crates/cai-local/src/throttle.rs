//! A concurrency quota the local engine can impose on inference invocations, answering those
//! over it as Lambda answers an account over its concurrency: at once, with
//! `Lambda.TooManyRequestsException`, nothing run and nothing billed. Tests use it (through
//! `CAI_FAULT=quota:N`) to show that the definition's throttle retries absorb throttling with
//! every sample counted once.

use std::sync::atomic::{AtomicUsize, Ordering};

use cai_asl::TaskFailure;

use crate::errors::failure;

/// The fault-plan entry (in `CAI_FAULT`, beside the handler faults) that sets a quota.
pub const QUOTA_PREFIX: &str = "quota:";

/// At most `limit` invocations at once; `None` means no quota.
#[derive(Debug, Default)]
pub struct Quota {
    limit: Option<usize>,
    running: AtomicUsize,
    throttled: AtomicUsize,
}

/// Holds one place under the quota until dropped.
pub struct Place<'a>(&'a Quota);

impl Quota {
    /// A quota of `limit` concurrent invocations.
    pub fn new(limit: Option<usize>) -> Quota {
        Quota {
            limit,
            ..Quota::default()
        }
    }

    /// The quota in a `CAI_FAULT` plan (`...,quota:N,...`), if any.
    pub fn from_fault_plan(plan: Option<&str>) -> Quota {
        let limit = plan.and_then(|p| {
            p.split(',')
                .find_map(|item| item.trim().strip_prefix(QUOTA_PREFIX)?.parse().ok())
        });
        Quota::new(limit)
    }

    /// A place, or the throttle Lambda would answer.
    pub fn enter(&self) -> Result<Place<'_>, TaskFailure> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        if self.limit.is_some_and(|l| now > l) {
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(failure(
                "Lambda.TooManyRequestsException",
                format!(
                    "Rate Exceeded. (the local concurrency quota of {} invocations is in use)",
                    self.limit.unwrap_or(0)
                ),
            ));
        }
        Ok(Place(self))
    }

    /// Invocations answered with a throttle so far.
    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::Relaxed)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_quota_is_throttled() {
        let q = Quota::from_fault_plan(Some("kill@3,quota:2"));
        let a = q.enter().unwrap();
        let _b = q.enter().unwrap();
        let e = q.enter().err().unwrap();
        assert_eq!(e.error, "Lambda.TooManyRequestsException");
        drop(a);
        assert!(q.enter().is_ok());
        assert_eq!(q.throttled(), 1);
        let free = Quota::from_fault_plan(Some("kill@3"));
        let places: Vec<_> = (0..100).map(|_| free.enter().unwrap()).collect();
        assert_eq!(places.len(), 100);
    }
}
