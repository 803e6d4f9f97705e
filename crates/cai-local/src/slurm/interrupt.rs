//! Ctrl-C (SIGINT) and SIGTERM during a Slurm run cancel every job the run submitted that
//! has not finished (`scancel`), then the process exits with 128 + the signal, so nothing
//! keeps computing for a run nobody waits for; `cai run --resume` then keeps every rank
//! that completed and runs only the rest. The handler only records the signal (the one
//! async-signal-safe thing to do); a watcher thread does the cancelling.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use super::command;

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static OPEN: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());
static INSTALL: Once = Once::new();

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// Installs the handlers and the watcher (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a plain handler that only stores to an atomic; the sigaction struct
            // is zeroed (empty mask, no flags) and lives for the call.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        std::thread::spawn(|| loop {
            let sig = SIGNAL.load(Ordering::SeqCst);
            if sig != 0 {
                cancel_all_and_exit(sig);
            }
            std::thread::sleep(Duration::from_millis(50));
        });
    });
}

/// A job was submitted: cancel it on interrupt.
pub fn submitted(job: u64) {
    OPEN.lock().unwrap_or_else(|e| e.into_inner()).insert(job);
}

/// These jobs finished: nothing to cancel.
pub fn forget(jobs: &[u64]) {
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    for j in jobs {
        open.remove(j);
    }
}

fn cancel_all_and_exit(sig: i32) -> ! {
    let ids: Vec<String> = OPEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(u64::to_string)
        .collect();
    let name = if sig == libc::SIGINT {
        "interrupted"
    } else {
        "terminated"
    };
    if ids.is_empty() {
        eprintln!("\ncai: {name}; no Slurm job was left to cancel. `cai run --resume` picks up from here.");
    } else {
        match command::scancel(&ids) {
            Ok(()) => eprintln!(
                "\ncai: {name}: cancelled Slurm job(s) {}. `cai run --resume` keeps every rank that completed and runs the rest.",
                ids.join(", ")
            ),
            Err(e) => eprintln!(
                "\ncai: {name}: could not cancel Slurm job(s) {}: {e}; cancel them with scancel",
                ids.join(", ")
            ),
        }
    }
    std::process::exit(128 + sig)
}
