//! The progress bar while ranks run: done of planned, running, failed attempts, samples/s.
//! Hidden when quiet or when stderr is not a terminal, so logs and pipes stay clean.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shared by the invoker (which sees results) and the run loop.
pub struct Progress {
    bar: ProgressBar,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: u64,
    done: u64,
    failed_attempts: u64,
    failed_ranks: u64,
    samples: u64,
    since: Option<Instant>,
    /// (queued, running) jobs on a cluster, when the invocations run on one.
    queue: Option<(u64, u64)>,
}

impl Progress {
    /// A bar on stderr, or a hidden one.
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len} ranks  {msg}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        };
        Progress {
            bar,
            state: Mutex::new(State::default()),
        }
    }

    /// Initialize has planned `ranks` ranks with data.
    pub fn planned(&self, ranks: u64) {
        self.bar.set_length(ranks);
        self.update(|s| s.since = Some(Instant::now()));
    }

    /// An inference invocation started.
    pub fn started(&self) {
        self.update(|s| s.running += 1);
    }

    /// An inference invocation succeeded with `samples` predicted (0 for empty ranks, which
    /// are not counted as ranks with data).
    pub fn finished(&self, samples: u64) {
        self.update(|s| {
            s.running = s.running.saturating_sub(1);
            if samples > 0 {
                s.done += 1;
                s.samples += samples;
            }
        });
    }

    /// An inference attempt failed (it may still be retried).
    pub fn attempt_failed(&self, rank: Option<u64>, error: &str) {
        self.update(|s| {
            s.running = s.running.saturating_sub(1);
            s.failed_attempts += 1;
        });
        let who = rank.map_or_else(|| "a rank".to_string(), |r| format!("rank {r}"));
        self.bar
            .println(format!("  {who}: attempt failed with {error}"));
    }

    /// A rank failed for good (after retries).
    pub fn rank_failed(&self) {
        self.update(|s| s.failed_ranks += 1);
    }

    /// A cluster's view: `queued` jobs wait for the scheduler, `running` run (the Slurm
    /// engine polls squeue for these).
    pub fn queue(&self, queued: u64, running: u64) {
        self.update(|s| s.queue = Some((queued, running)));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let Ok(mut s) = self.state.lock() else { return };
        f(&mut s);
        let rate = s
            .since
            .map(|t| s.samples as f64 / t.elapsed().as_secs_f64().max(1e-3))
            .unwrap_or(0.0);
        self.bar.set_position(s.done);
        let running = match s.queue {
            Some((queued, running)) => format!("slurm: queued {queued}, running {running}"),
            None => format!("running {}", s.running),
        };
        self.bar.set_message(format!(
            "{running}  failed {} (attempts {})  {:.0} samples/s",
            s.failed_ranks, s.failed_attempts, rate
        ));
    }
}
