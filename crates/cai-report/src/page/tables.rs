//! The page's tables: a run's facts, the seed report's performance table, failed ranks, and
//! the runs side by side.

use std::fmt::Write as _;

use cai_workflow::cost::{PerformanceRow, SEED_TABLE_COLUMNS};

use super::html::{escape, text};
use crate::accuracy::Metrics;
use crate::format;
use crate::run::{Origin, RunData};

/// Failed ranks listed before "and N more".
const FAILED_SHOWN: usize = 50;

fn row(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "<tr><th>{}</th><td>{value}</td></tr>", escape(key));
}

/// Key facts of one run.
pub fn facts(run: &RunData, metrics: Option<&Metrics>) -> String {
    let mut t = String::from("<table class=\"facts\">\n");
    let writer = match run.origin {
        Origin::Cai => "cai",
        Origin::Original => "the original CAI (combined_data.json only)",
    };
    row(
        &mut t,
        "Results",
        &format!("<code>{}</code>, written by {writer}", escape(&run.label)),
    );
    if let Some(s) = &run.summary {
        let exec = s
            .execution
            .as_ref()
            .map(|e| format!(", execution {}", escape(&e.status)))
            .unwrap_or_default();
        row(&mut t, "Status", &format!("{}{exec}", escape(&s.status)));
        let r = &s.ranks;
        row(
            &mut t,
            "Ranks",
            &format!(
                "{} planned ({} without data); {} succeeded{}, {} failed",
                format::thousands(r.planned),
                format::thousands(r.empty),
                format::thousands(r.succeeded),
                if r.resumed > 0 {
                    format!(
                        " ({} kept from an earlier execution)",
                        format::thousands(r.resumed)
                    )
                } else {
                    String::new()
                },
                format::thousands(r.failed)
            ),
        );
    } else {
        row(
            &mut t,
            "Ranks",
            &format!("{} with results", format::thousands(run.ranks.len() as u64)),
        );
    }
    row(
        &mut t,
        "Samples",
        &format!(
            "{} ({} of input)",
            format::thousands(run.samples() as u64),
            format::bytes(run.data_bytes())
        ),
    );
    if let Some(e) = run.summary.as_ref().and_then(|s| s.execution.as_ref()) {
        row(
            &mut t,
            "Execution",
            &format!(
                "{} from {} to {}; {} state transitions",
                format::secs(e.duration_seconds),
                escape(&e.start),
                escape(&e.end),
                format::thousands(e.state_transitions)
            ),
        );
    }
    if let Some(w) = run.wall_seconds() {
        row(
            &mut t,
            "Throughput",
            &format!(
                "{} samples/s of wall time",
                format::sig(run.samples() / w, 3)
            ),
        );
    }
    let rate: f64 = run.ranks.iter().map(|r| r.sample_persec).sum();
    row(
        &mut t,
        "Summed rank rate",
        &format!(
            "{} samples/s of inference, over all ranks",
            format::sig(rate, 3)
        ),
    );
    let peak = run
        .ranks
        .iter()
        .filter_map(|r| r.peak_rss_mb)
        .fold(0.0, f64::max);
    if peak > 0.0 {
        let configured = run
            .plan
            .as_ref()
            .map(|p| format!(" (of {} MB configured)", format::thousands(p.memory_mb)))
            .unwrap_or_default();
        row(
            &mut t,
            "Peak memory",
            &format!("{} MB, largest rank{configured}", format::sig(peak, 3)),
        );
    }
    if let Some(p) = &run.plan {
        let flag = if run.untrained() {
            " <strong>(untrained: seeded random weights)</strong>"
        } else {
            ""
        };
        row(
            &mut t,
            "Model",
            &format!("<code>{}</code>{flag}", escape(&p.model)),
        );
    }
    if let Some(p) = run.performance() {
        row(&mut t, "Projected cost", &escape(&format::usd(p.cost_usd)));
    }
    if let Some(m) = metrics {
        row(
            &mut t,
            "Accuracy",
            &text(&format!(
                "MAE {}, MSE {}, Bias {}, σ_{{NMAD}} {}, R² {}, outliers {} (N = {})",
                format::sig(m.mae, 3),
                format::sig(m.mse, 3),
                format::sig(m.bias, 3),
                format::sig(m.nmad, 3),
                format::sig(m.r2, 4),
                format::percent(m.outlier_fraction),
                format::thousands(m.count)
            )),
        );
    }
    t.push_str("</table>\n");
    t
}

/// The seed report's table: `World size | Partition | Requests | Duration (s) | Memory (GB)
/// | Cost ($)`, one row per run.
pub fn seed(rows: &[(&str, &PerformanceRow)], with_label: bool) -> String {
    let mut t = String::from("<table class=\"seed\">\n<tr>");
    if with_label {
        t.push_str("<th>Run</th>");
    }
    for h in SEED_TABLE_COLUMNS {
        let _ = write!(t, "<th class=\"num\">{h}</th>");
    }
    t.push_str("</tr>\n");
    for (label, p) in rows {
        t.push_str("<tr>");
        if with_label {
            let _ = write!(t, "<td><code>{}</code></td>", escape(label));
        }
        let _ = writeln!(
            t,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.6}</td></tr>",
            p.world_size,
            escape(&p.partition),
            p.requests,
            p.duration_seconds,
            p.memory_gb,
            p.cost_usd
        );
    }
    t.push_str("</table>\n");
    t
}

/// Ranks that ended without a result, with why.
pub fn failed(run: &RunData) -> Option<String> {
    let s = run.summary.as_ref()?;
    if s.failed_ranks.is_empty() {
        return None;
    }
    let mut t = String::from(
        "<table class=\"failed\">\n<tr><th class=\"num\">Rank</th><th>Partitions</th><th>Error</th><th class=\"num\">Attempts</th><th>Cause</th></tr>\n",
    );
    for f in s.failed_ranks.iter().take(FAILED_SHOWN) {
        let _ = writeln!(
            t,
            "<tr><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
            f.rank,
            escape(&f.data_path.keys().join(", ")),
            escape(&f.error),
            f.attempts,
            escape(&f.cause)
        );
    }
    t.push_str("</table>\n");
    if s.failed_ranks.len() > FAILED_SHOWN {
        let _ = writeln!(
            t,
            "<p>… and {} more (summary.json lists them all).</p>",
            format::thousands((s.failed_ranks.len() - FAILED_SHOWN) as u64)
        );
    }
    Some(t)
}

/// The runs side by side.
pub fn comparison(runs: &[&RunData]) -> String {
    // One bucket for all: said once in the header, the rows show result paths.
    let bucket = |l: &str| l.split('/').next().unwrap_or("").to_string();
    let common = runs
        .iter()
        .all(|r| bucket(&r.label) == bucket(&runs[0].label))
        .then(|| bucket(&runs[0].label));
    let head = match &common {
        Some(b) => format!("Result path in <code>{}</code>", escape(b)),
        None => "Run".to_string(),
    };
    let mut t = format!("<table class=\"compare\">\n<tr><th>#</th><th>{head}</th><th>Writer</th><th>Partition</th><th class=\"num\">World size</th><th class=\"num\">Samples</th><th class=\"num\">Data</th><th class=\"num\">Wall (s)</th><th class=\"num\">Throughput (samples/s)</th><th class=\"num\">Summed rank rate (samples/s)</th><th class=\"num\">Cost ($)</th></tr>\n");
    for (i, r) in runs.iter().enumerate() {
        let shown = match &common {
            Some(b) => r.label[b.len()..].trim_start_matches('/'),
            None => r.label.as_str(),
        };
        let wall = r.wall_seconds();
        let dash = || "–".to_string();
        let _ = writeln!(
            t,
            "<tr><td><a href=\"#run-{n}\">{n}</a></td><td class=\"run\"><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(shown),
            match r.origin {
                Origin::Cai => "cai",
                Origin::Original => "original",
            },
            escape(&r.partition()),
            format::thousands(r.world_size()),
            format::thousands(r.samples() as u64),
            format::bytes(r.data_bytes()),
            wall.map_or_else(dash, |w| format::sig(w, 4)),
            wall.map_or_else(dash, |w| format::sig(r.samples() / w, 4)),
            format::sig(r.ranks.iter().map(|k| k.sample_persec).sum::<f64>(), 4),
            r.performance().map_or_else(dash, |p| format!("{:.6}", p.cost_usd)),
            n = i + 1
        );
    }
    t.push_str("</table>\n");
    t
}
