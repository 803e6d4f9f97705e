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
