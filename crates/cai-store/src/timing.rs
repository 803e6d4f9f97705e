//! A log of the requests one piece of work made to the store, so an invocation can report
//! how much of its time went to S3 (the original's `s3_*` result keys).

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What the requests of one log added up to. Times are seconds; stamps are Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RequestStats {
    /// Requests made.
    pub count: u64,
    /// Seconds spent in requests, summed.
    pub total_seconds: f64,
    /// Fastest request.
    pub min_seconds: f64,
    /// Slowest request.
    pub max_seconds: f64,
    /// When the first request was sent.
    pub first_request_unix: f64,
    /// When the last response arrived.
    pub last_response_unix: f64,
}

impl RequestStats {
    /// Mean seconds per request (0 without requests).
    pub fn mean_seconds(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_seconds / self.count as f64
        }
    }
}

/// Collects request timings from every thread that uses a recorded store handle (see
/// [`crate::BlockingStore::recorded`]).
#[derive(Debug, Default)]
pub struct RequestLog {
    stats: Mutex<RequestStats>,
}

impl RequestLog {
    /// The totals so far.
    pub fn stats(&self) -> RequestStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Times `f` as one request.
    pub(crate) fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let sent = unix_now();
        let t = Instant::now();
        let out = f();
        let seconds = t.elapsed().as_secs_f64();
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        if s.count == 0 {
            s.first_request_unix = sent;
            s.min_seconds = seconds;
        }
        s.count += 1;
        s.total_seconds += seconds;
        s.min_seconds = s.min_seconds.min(seconds);
        s.max_seconds = s.max_seconds.max(seconds);
        s.last_response_unix = s.last_response_unix.max(sent + seconds);
        out
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_extremes() {
        let log = RequestLog::default();
        assert_eq!(log.stats().mean_seconds(), 0.0);
        log.time(|| std::thread::sleep(std::time::Duration::from_millis(2)));
        log.time(|| ());
        let s = log.stats();
        assert_eq!(s.count, 2);
        assert!(s.max_seconds >= 0.002 && s.min_seconds < s.max_seconds);
        assert!((s.total_seconds - (s.min_seconds + s.max_seconds)).abs() < 1e-9);
        assert!(s.last_response_unix >= s.first_request_unix);
    }
}
