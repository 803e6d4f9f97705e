//! Test-only fault injection for the inference handler, so the fault-tolerance tests can
//! kill, hang, crash or bloat a chosen rank on a chosen attempt through the very process path
//! a real failure takes. Active only when the `CAI_FAULT` environment variable is set:
//! a comma-separated list of `ACTION@RANK` or `ACTION@RANK#ATTEMPT` (1-based attempt; without
//! it, every attempt), ACTION one of `panic`, `kill` (SIGKILL itself mid-partition), `hang`
//! (sleeps past any timeout), `oom` (allocates until the memory limit stops it), `error`
//! (returns a handler error).

use crate::error::{kind, HandlerError};

/// The environment variable holding the fault plan.
pub const ENV: &str = "CAI_FAULT";

/// What to do to the chosen rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Panic before inference.
    Panic,
    /// SIGKILL itself after the first batch has been predicted.
    Kill,
    /// Sleep for an hour.
    Hang,
    /// Allocate and touch memory without bound.
    Oom,
    /// Return an `cai.InjectedFault` handler error.
    Error,
}

/// The fault planned for `rank` on 1-based `attempt`, if any.
pub fn planned(rank: u64, attempt: u64) -> Option<Fault> {
    let spec = std::env::var(ENV).ok()?;
    spec.split(',').find_map(|item| {
        let (action, target) = item.trim().split_once('@')?;
        let (r, a) = match target.split_once('#') {
            Some((r, a)) => (r.parse::<u64>().ok()?, Some(a.parse::<u64>().ok()?)),
            None => (target.parse::<u64>().ok()?, None),
        };
        if r != rank || a.is_some_and(|a| a != attempt) {
            return None;
        }
        match action {
            "panic" => Some(Fault::Panic),
            "kill" => Some(Fault::Kill),
            "hang" => Some(Fault::Hang),
            "oom" => Some(Fault::Oom),
            "error" => Some(Fault::Error),
            _ => None,
        }
    })
}

/// Acts out a fault that strikes before inference; `Kill` is left to [`mid_partition`].
pub fn before_inference(fault: Option<Fault>) -> Result<(), HandlerError> {
    match fault {
        Some(Fault::Panic) => panic!("injected panic ({ENV})"),
        Some(Fault::Hang) => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            Ok(())
        }
        Some(Fault::Oom) => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(vec![1u8; 16 << 20]);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        Some(Fault::Error) => Err(HandlerError::new(
            kind::INJECTED,
            format!("injected error ({ENV})"),
        )),
        Some(Fault::Kill) | None => Ok(()),
    }
}

/// Kills the process mid-partition when planned, leaving whatever it had half-done.
pub fn mid_partition(fault: Option<Fault>) {
    if fault == Some(Fault::Kill) {
        // SAFETY: raising a signal on ourselves; SIGKILL cannot be caught.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}
