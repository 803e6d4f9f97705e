//! The engine's hold on the result path while an execution runs: the lease taken before the
//! execution starts (see `cai_workflow::lease` for the object and the protocol), renewed by a
//! thread every [`RENEW_EVERY`] and released when the run ends, whatever its outcome (also
//! when the engine unwinds from a panic). A process killed outright cannot release it: its
//! lease names a pid that no longer exists, which `--resume` takes over.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use cai_workflow::lease::{Lease, LeaseError, RENEW_EVERY};

/// A lease being renewed in the background; [`HeldLease::finish`] stops and releases it.
pub struct HeldLease {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<(Lease, Option<LeaseError>)>>,
}

impl HeldLease {
    /// Starts renewing `lease` every [`RENEW_EVERY`].
    pub fn start(lease: Lease) -> HeldLease {
        Self::start_every(lease, RENEW_EVERY)
    }

    /// Starts renewing `lease` every `period`.
    pub fn start_every(mut lease: Lease, period: Duration) -> HeldLease {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cai-lease".into())
            .spawn(move || {
                let mut lost = None;
                // Until told to stop (or the engine is gone): a renewal every period.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    if lost.is_some() {
                        continue;
                    }
                    match lease.renew() {
                        Ok(()) => tracing::debug!("renewed the lease on {}", lease.result()),
                        Err(e @ LeaseError::Store { .. }) => {
                            // Worth another try at the next tick: the lease lasts four of them.
                            tracing::warn!("renewing: {e}");
                        }
                        Err(e) => {
                            tracing::error!("{e}; this run's results may be overwritten");
                            lost = Some(e);
                        }
                    }
                }
                (lease, lost)
            })
            .expect("start the lease renewal thread");
        HeldLease {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops renewing and releases the lease if it is still this run's. Returns why it was
    /// not (taken over or removed while the run went on), for the report's warnings.
    pub fn finish(mut self) -> Option<String> {
        self.stop_and_release()
    }

    fn stop_and_release(&mut self) -> Option<String> {
        drop(self.stop.take());
        let thread = self.thread.take()?;
        let (lease, lost) = match thread.join() {
            Ok(v) => v,
            Err(_) => return Some("the lease renewal thread panicked".into()),
        };
        if let Some(e) = lost {
            return Some(e.to_string());
        }
        let result = lease.result().to_string();
        match lease.release() {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "the lease on {result} was no longer this run's at the end; left in place"
            )),
            Err(e) => Some(format!("releasing the lease: {e}")),
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if let Some(w) = self.stop_and_release() {
            tracing::warn!("{w}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cai_store::{BlockingStore, StoreConfig};
    use cai_workflow::lease::{self, Holder, Takeover};

    fn store(dir: &std::path::Path) -> BlockingStore {
        BlockingStore::open(StoreConfig::Local {
            root: dir.to_path_buf(),
        })
        .unwrap()
    }

    fn take(store: &BlockingStore, run: &str) -> Lease {
        let holder = Holder::this_process();
        lease::acquire(store, "bkt", "r/1", run, &holder, &Takeover::Never)
            .unwrap()
            .lease
    }

    #[test]
    fn renewed_while_held_and_released_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let mut first = take(&s, "run-a").record().clone();
        // Backdate it, so a renewal visibly moves the expiry.
        first.expires_unix -= 100;
        let path = dir.path().join("bkt/r/1/lease.json");
        std::fs::write(&path, serde_json::to_vec(&first).unwrap()).unwrap();
        let held = HeldLease::start_every(take(&s, "run-a"), Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(200));
        let now = lease::read(&s, "bkt", "r/1").unwrap().unwrap().unwrap();
        assert_eq!(now.run_id, "run-a");
        assert!(now.expires_unix > first.expires_unix, "{now:?}");
        assert_eq!(held.finish(), None);
        assert!(!path.exists(), "released");
    }

    #[test]
    fn a_takeover_is_reported_and_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let held = HeldLease::start_every(take(&s, "run-a"), Duration::from_millis(20));
        let holder = Holder::this_process();
        let other = lease::acquire(&s, "bkt", "r/1", "run-b", &holder, &Takeover::Break(None));
        assert!(other.unwrap().took_over.is_some());
        std::thread::sleep(Duration::from_millis(200));
        let lost = held.finish().expect("the loss is reported");
        assert!(lost.contains("run run-b"), "{lost}");
        let now = lease::read(&s, "bkt", "r/1").unwrap().unwrap().unwrap();
        assert_eq!(now.run_id, "run-b", "the other run's lease stays");
    }
}
