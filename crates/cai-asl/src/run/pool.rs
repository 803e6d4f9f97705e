//! A bounded pool of scoped threads for Map items.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `job(0..n)` on at most `workers` threads, starting items in index order.
/// A job returns its result and whether to stop starting new items (running ones
/// finish). Slots of items never started stay `None`.
pub(crate) fn run<T: Send>(
    n: usize,
    workers: usize,
    job: impl Fn(usize) -> (T, bool) + Sync,
) -> Vec<Option<T>> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let work = || loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= n {
            break;
        }
        let (result, halt) = job(i);
        if halt {
            stop.store(true, Ordering::SeqCst);
        }
        slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
    };
    let workers = workers.clamp(1, n.max(1));
    if workers == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(work);
            }
        });
    }
    slots.into_inner().unwrap_or_else(|e| e.into_inner())
}
