//! Where each invocation sat in time: one bar per attempt, on a row per worker slot (local
//! engine) or per rank (AWS, where every invocation has its own container). Built from the
//! execution record's start offsets when the engine recorded them; else from the ranks'
//! recorded start times; else laid end to end with a note saying so.

use std::collections::{BTreeSet, HashMap};

use cai_workflow::cost::InvocationStat;

use crate::run::RunData;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// It succeeded.
    Ok,
    /// It failed and the rank was tried again.
    Retried,
    /// It failed and was the rank's last attempt.
    Failed,
}

/// Seconds of each phase of a successful inference invocation, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phases {
    /// Loading the weights.
    pub model_load: f64,
    /// Fetching and opening partitions.
    pub fetch: f64,
    /// Running the model.
    pub inference: f64,
    /// Writing predictions and the result.
    pub write: f64,
}

/// One attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Row index (0 at the top).
    pub row: usize,
    /// Start, seconds on the figure's time axis.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// How it ended.
    pub status: Status,
    /// True for an inference invocation (others: Initialize, Summarize, failure handler).
    pub infer: bool,
    /// Phase split, for successful inference attempts whose timings were recorded.
    pub phases: Option<Phases>,
}

/// The timeline of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// What a row is (`Worker slot` or `Rank`).
    pub row_axis: &'static str,
    /// What time zero is.
    pub time_axis: &'static str,
    /// Row labels, top to bottom.
    pub rows: Vec<String>,
    /// The rows that are numbered slots or ranks (the others are Initialize, Summarize,
    /// RecordFailure): only these are grouped when there are too many to draw.
    pub numbered: std::ops::Range<usize>,
    /// Every attempt drawn.
    pub bars: Vec<Bar>,
    /// How the bars were placed when not from recorded start times.
    pub note: Option<String>,
}

/// The run's timeline; None when nothing about its invocations was recorded.
pub fn timeline(run: &RunData) -> Option<Timeline> {
    let invocations: &[InvocationStat] = run
        .summary
        .as_ref()
        .and_then(|s| s.execution.as_ref())
        .map_or(&[], |e| &e.invocations[..]);
    let phases = phases_by_rank(run);
    let mut infer = invocations
        .iter()
        .filter(|i| i.handler == "infer")
        .peekable();
    let timed = infer.peek().is_some() && infer.all(|i| i.started_seconds.is_some());
    if timed {
        return Some(from_offsets(invocations, &phases));
    }
    if run.ranks.iter().any(|r| r.started_unix.is_some()) {
        return Some(from_rank_starts(run, &phases));
    }
    if invocations.iter().any(|i| i.handler == "infer") {
        return Some(end_to_end(invocations, &phases));
    }
    None
}

/// Phases of the attempt that produced each rank's result: (attempt, phases).
fn phases_by_rank(run: &RunData) -> HashMap<u64, (u64, Phases)> {
    run.ranks
        .iter()
        .filter_map(|r| {
            let t = r.timings.as_ref()?;
            Some((
                r.rank,
                (
                    r.attempts.unwrap_or(1),
                    Phases {
                        model_load: t.model_load,
                        fetch: t.fetch,
                        inference: t.inference,
                        write: t.write,
                    },
                ),
            ))
        })
        .collect()
}

/// Ok, or whether a later attempt of the same handler and rank exists.
fn status(i: &InvocationStat, all: &[InvocationStat]) -> Status {
    if i.outcome == "ok" {
        return Status::Ok;
    }
    let later = all
        .iter()
        .any(|o| o.handler == i.handler && o.rank == i.rank && o.attempt > i.attempt);
    if later {
        Status::Retried
    } else {
        Status::Failed
    }
}

fn phases_of(i: &InvocationStat, phases: &HashMap<u64, (u64, Phases)>) -> Option<Phases> {
    if i.handler != "infer" || i.outcome != "ok" {
        return None;
    }
    let (attempt, p) = phases.get(&i.rank?)?;
    (*attempt == i.attempt as u64).then_some(*p)
}

/// Display name of a non-inference handler's row.
fn handler_row(handler: &str) -> String {
    match handler {
        "init" => "Initialize".into(),
        "summarize" => "Summarize".into(),
        "failure" => "RecordFailure".into(),
        other => other.to_string(),
    }
}

/// Row keys sort: Initialize first, then slots or ranks, then the failure handler and
/// Summarize.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum RowKey {
    First(String),
    Numbered(u64),
    Last(u8, String),
}

fn row_key(i: &InvocationStat, by_worker: bool) -> RowKey {
    let numbered = if by_worker { i.worker } else { i.rank };
    match (i.handler.as_str(), numbered) {
        (_, Some(n)) if by_worker || i.handler == "infer" => RowKey::Numbered(n),
        ("init", _) => RowKey::First(handler_row("init")),
        ("summarize", _) => RowKey::Last(2, handler_row("summarize")),
        (h, _) => RowKey::Last(1, handler_row(h)),
    }
}

fn from_offsets(invocations: &[InvocationStat], phases: &HashMap<u64, (u64, Phases)>) -> Timeline {
    let by_worker = invocations.iter().any(|i| i.worker.is_some());
    let keys: BTreeSet<RowKey> = invocations.iter().map(|i| row_key(i, by_worker)).collect();
    let index: HashMap<&RowKey, usize> = keys.iter().enumerate().map(|(n, k)| (k, n)).collect();
    let first = keys
        .iter()
        .take_while(|k| matches!(k, RowKey::First(_)))
        .count();
    let count = keys
        .iter()
        .filter(|k| matches!(k, RowKey::Numbered(_)))
        .count();
    let rows = keys
        .iter()
        .map(|k| match k {
            RowKey::Numbered(n) if by_worker => format!("slot {}", n + 1),
            RowKey::Numbered(n) => format!("rank {n}"),
            RowKey::First(s) | RowKey::Last(_, s) => s.clone(),
        })
        .collect();
    let bars = invocations
        .iter()
        .map(|i| {
            let start = i.started_seconds.unwrap_or(0.0);
            Bar {
                row: index[&row_key(i, by_worker)],
                start,
                end: start + i.wall_seconds,
                status: status(i, invocations),
                infer: i.handler == "infer",
                phases: phases_of(i, phases),
            }
        })
        .collect();
    Timeline {
        row_axis: if by_worker { "Worker slot" } else { "Rank" },
        time_axis: "Time since the execution started (s)",
        rows,
        numbered: first..first + count,
        bars,
        note: None,
    }
}

fn from_rank_starts(run: &RunData, phases: &HashMap<u64, (u64, Phases)>) -> Timeline {
    let t0 = run
        .ranks
        .iter()
        .filter_map(|r| r.started_unix)
        .fold(f64::INFINITY, f64::min);
    let placed: Vec<_> = run
        .ranks
        .iter()
        .filter_map(|r| Some((r, r.started_unix?, r.wall_seconds?)))
        .collect();
    let rows: Vec<String> = placed
        .iter()
        .map(|(r, _, _)| format!("rank {}", r.rank))
        .collect();
    let bars = placed
        .iter()
        .enumerate()
        .map(|(n, (r, start, wall))| Bar {
            row: n,
            start: start - t0,
            end: start - t0 + wall,
            status: Status::Ok,
            infer: true,
            phases: phases.get(&r.rank).map(|p| p.1),
        })
        .collect();
    Timeline {
        row_axis: "Rank",
        time_axis: "Time since the first rank started (s)",
        numbered: 0..rows.len(),
        rows,
        bars,
        note: Some(
            "The execution record has no start offsets, so each rank's successful attempt is placed by the start time in its result; failed earlier attempts are not shown."
                .into(),
        ),
    }
}

fn end_to_end(invocations: &[InvocationStat], phases: &HashMap<u64, (u64, Phases)>) -> Timeline {
    let mut infer: Vec<&InvocationStat> = invocations
        .iter()
        .filter(|i| i.handler == "infer")
        .collect();
    infer.sort_by_key(|i| (i.rank, i.attempt));
    let ranks: BTreeSet<u64> = infer.iter().filter_map(|i| i.rank).collect();
    let index: HashMap<u64, usize> = ranks.iter().enumerate().map(|(n, r)| (*r, n)).collect();
    let mut cursor: HashMap<u64, f64> = HashMap::new();
    let bars = infer
        .iter()
        .filter_map(|i| {
            let rank = i.rank?;
            let start = cursor.entry(rank).or_insert(0.0);
            let bar = Bar {
                row: index[&rank],
                start: *start,
                end: *start + i.wall_seconds,
                status: status(i, invocations),
                infer: true,
                phases: phases_of(i, phases),
            };
            *start += i.wall_seconds;
            Some(bar)
        })
        .collect();
    Timeline {
        row_axis: "Rank",
        time_axis: "Seconds from the rank's first attempt (attempts laid end to end)",
        rows: ranks.iter().map(|r| format!("rank {r}")).collect(),
        numbered: 0..ranks.len(),
        bars,
        note: Some(
            "Start times were not recorded for this run, so each rank's attempts are laid end to end from zero: the bars show how long each took, not when it ran."
                .into(),
        ),
    }
}
