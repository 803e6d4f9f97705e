//! What the user reads at the end: the execution summary the Step Functions console shows,
//! and the seed report's table (World size | Partition | Requests | Duration (s) | Memory (GB)
//! | Cost ($)).

use std::fmt::Write;

use std::collections::BTreeSet;

use cai_workflow::cluster::ClusterUsage;
use cai_workflow::cost::{PerformanceRow, SEED_TABLE_COLUMNS};

use crate::run::RunReport;

/// Console-style execution summary lines: (label, value).
pub fn execution_lines(r: &RunReport) -> Vec<(String, String)> {
    let e = &r.execution;
    let mut lines = vec![
        ("Execution status".to_string(), title_case(&e.status)),
        ("Execution name".to_string(), e.name.clone()),
        (
            "State transitions".to_string(),
            e.state_transitions.to_string(),
        ),
        ("Start time".to_string(), e.start.clone()),
        ("End time".to_string(), e.end.clone()),
        ("Duration".to_string(), hms(e.duration_seconds)),
    ];
    if let Some(err) = &e.error {
        lines.push(("Error".into(), err.clone()));
    }
    if let Some(s) = &r.summary {
        lines.push((
            "Ranks ok/with data".into(),
            format!(
                "{}/{}{}, {} failed, {} empty",
                s.ranks.succeeded,
                s.ranks.planned - s.ranks.empty,
                if s.ranks.resumed > 0 {
                    format!(" ({} resumed)", s.ranks.resumed)
                } else {
                    String::new()
                },
                s.ranks.failed,
                s.ranks.empty
            ),
        ));
        lines.push(("Samples".into(), s.totals.samples.to_string()));
        lines.push((
            "Samples/s".into(),
            format!(
                "{:.1} (wall)",
                s.totals.samples as f64 / e.duration_seconds.max(1e-9)
            ),
        ));
        lines.push((
            "Peak RSS / rank".into(),
            format!("{:.0} MB max", s.totals.max_peak_rss_mb),
        ));
        lines.push(("Precision".into(), s.precision.to_string()));
    }
    match &e.cluster {
        Some(c) => lines.extend(cluster_lines(c, r.capacity.threads)),
        None => lines.push((
            "Slots x threads".into(),
            format!("{} x {}", r.capacity.slots, r.capacity.threads),
        )),
    }
    let infer: Vec<_> = e
        .invocations
        .iter()
        .filter(|i| i.handler == "infer")
        .collect();
    let cold = infer.iter().filter(|i| i.cold == Some(true)).count();
    let warm = infer.iter().filter(|i| i.cold == Some(false)).count();
    if cold + warm > 0 {
        lines.push((
            "Cold / warm starts".into(),
            format!("{cold} / {warm} inference invocations"),
        ));
    }
    if let Some(n) = e.throttled.filter(|&n| n > 0) {
        lines.push((
            "Throttled".into(),
            format!("{n} invocations throttled and retried"),
        ));
    }
    if let Some(b) = e.largest_state_bytes {
        lines.push((
            "Largest state".into(),
            format!("{b} bytes (Step Functions' limit: 262144)"),
        ));
    }
    lines
}

/// A cluster run's lines: its jobs, their queue waits, and the core-hours the cluster
/// charges (beside the Lambda-equivalent cost in the table).
fn cluster_lines(c: &ClusterUsage, cpus: usize) -> Vec<(String, String)> {
    let arrays: BTreeSet<&str> = c
        .jobs
        .iter()
        .filter_map(|j| j.job_id.split_once('_').map(|(a, _)| a))
        .collect();
    let mut waits = c.queued_seconds();
    waits.sort_by(f64::total_cmp);
    let mut lines = vec![(
        format!("{} jobs", title_case(&c.scheduler)),
        format!(
            "{} ({} in {} array(s)), {cpus} CPU(s) each",
            c.jobs.len(),
            c.jobs.iter().filter(|j| j.job_id.contains('_')).count(),
            arrays.len()
        ),
    )];
    if let (Some(first), Some(last)) = (waits.first(), waits.last()) {
        lines.push((
            "Queue wait".into(),
            format!(
                "{:.1} s median, {first:.1} s min, {last:.1} s max (submission to start)",
                waits[waits.len() / 2]
            ),
        ));
    }
    lines.push((
        "Core-hours".into(),
        format!("{:.4} (CPUs x wall on the cluster)", c.core_hours),
    ));
    lines
}

/// The execution summary as a block of text.
pub fn execution_text(r: &RunReport) -> String {
    let lines = execution_lines(r);
    let w = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines.iter().fold(String::new(), |mut out, (k, v)| {
        let _ = writeln!(out, "{k:<w$}  {v}");
        out
    })
}

/// Several executions' summaries as columns, one per run.
pub fn executions_side_by_side(reports: &[&RunReport]) -> String {
    let columns: Vec<Vec<(String, String)>> = reports.iter().map(|r| execution_lines(r)).collect();
    let labels: Vec<String> = columns
        .first()
        .map(|c| c.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let lw = labels.iter().map(String::len).max().unwrap_or(0);
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| c.iter().map(|(_, v)| v.len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for label in &labels {
        let _ = write!(out, "{label:<lw$}");
        for (c, w) in columns.iter().zip(&widths) {
            let v = c
                .iter()
                .find(|(k, _)| k == label)
                .map_or("", |(_, v)| v.as_str());
            let _ = write!(out, "  | {v:<w$}");
        }
        out.push('\n');
    }
    out
}

/// The seed report's performance table, one row per run.
pub fn performance_table(rows: &[&PerformanceRow]) -> String {
    let header = SEED_TABLE_COLUMNS;
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.world_size.to_string(),
                r.partition.clone(),
                r.requests.to_string(),
                format!("{:.2}", r.duration_seconds),
                format!("{:.2}", r.memory_gb),
                format!("{:.6}", r.cost_usd),
            ]
        })
        .collect();
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, c: &[String]| {
        let parts: Vec<String> = c
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:>width$}", width = w[i]))
            .collect();
        let _ = writeln!(out, "{}", parts.join(" | "));
    };
    line(&mut out, &header.map(String::from));
    let _ = writeln!(
        out,
        "{}",
        w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for c in &cells {
        line(&mut out, c);
    }
    out
}

/// Where a Slurm run's durations come from.
pub const SLURM_COST_SOURCE: &str = "the Lambda-equivalent cost of the same invocations, from the handlers' wall times on the cluster's nodes; the cluster itself charges the core-hours above.";

/// Where a local run's durations come from.
pub const LOCAL_COST_SOURCE: &str = "projected from this machine's timings, not billed by AWS.";

/// The cost formula in words, printed under the table; `source` says where the durations
/// and memory came from (this machine, or what Lambda reported).
pub fn cost_note(rows: &[&PerformanceRow], source: &str) -> String {
    let mut s = format!(
        "Cost = Requests x $0.20/1M + Duration x Memory x $/GB-s (x86 $0.0000166667, arm64 $0.0000133334) + state transitions x $0.000025;\n{source}",
    );
    for r in rows {
        let _ = write!(
            s,
            "\n  world {}: compute ${:.6} + requests ${:.6} + {} transitions ${:.6}",
            r.world_size, r.compute_usd, r.request_usd, r.state_transitions, r.transition_usd
        );
    }
    s
}

/// "SUCCEEDED" -> "Succeeded", as the console writes it.
fn title_case(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut c = lower.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_ascii_uppercase().to_string() + c.as_str()
    })
}

/// Seconds as the console's HH:MM:SS.mmm.
pub fn hms(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}
