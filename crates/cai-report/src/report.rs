//! From loaded runs to the finished report: which figures each run allows (and why the others
//! are skipped), the comparison figures for several runs, then the page.

use rayon::prelude::*;

use crate::accuracy::Metrics;
use crate::error::ReportError;
use crate::figures::scaling::Against;
use crate::figures::{self, Figure};
use crate::page;
use crate::run::{Origin, RunData};
use crate::scaling;
use crate::timeline;

/// What the page says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Page title.
    pub title: String,
    /// When it was made (shown as given).
    pub generated: String,
    /// The cai version that made it.
    pub version: String,
}

/// A figure slot: drawn, or skipped with the reason.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The figure.
    Drawn(Figure),
    /// Not drawn: title and why.
    Skipped(String, String),
}

/// One run's part of the page.
#[derive(Debug, Clone)]
pub struct RunSection<'a> {
    /// The run.
    pub run: &'a RunData,
    /// The metrics shown (Summarize's exact ones when present).
    pub metrics: Option<Metrics>,
    /// Accuracy figures.
    pub accuracy: Vec<Slot>,
    /// Execution figures (timeline, per-rank, store requests).
    pub execution: Vec<Slot>,
    /// The cost figure.
    pub cost: Slot,
}

/// The finished report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The self-contained HTML page.
    pub html: String,
    /// Every figure drawn, with the file stem `--figures` saves it under.
    pub figures: Vec<(String, Figure)>,
}

/// Builds the report of `runs` (at least one).
pub fn build(runs: &[RunData], opts: &Options) -> Result<Report, ReportError> {
    let sections: Vec<RunSection<'_>> = runs.par_iter().map(section).collect::<Result<_, _>>()?;
    let mut comparison = Vec::new();
    if runs.len() > 1 {
        let points = scaling::points(runs);
        for against in [Against::DataSize, Against::WorldSize] {
            if let Some(f) = figures::scaling::figure(&points, against)? {
                comparison.push(f);
            }
        }
    }
    let mut saved: Vec<(String, Figure)> = comparison
        .iter()
        .map(|f| (f.id.clone(), f.clone()))
        .collect();
    for (i, s) in sections.iter().enumerate() {
        let drawn = s
            .accuracy
            .iter()
            .chain(&s.execution)
            .chain(std::iter::once(&s.cost));
        for slot in drawn {
            if let Slot::Drawn(f) = slot {
                let stem = if runs.len() == 1 {
                    f.id.clone()
                } else {
                    format!("run{}-{}", i + 1, f.id)
                };
                saved.push((stem, f.clone()));
            }
        }
    }
    let html = page::render(&sections, &comparison, opts);
    Ok(Report {
        html,
        figures: saved,
    })
}

fn section(run: &RunData) -> Result<RunSection<'_>, ReportError> {
    let untrained = run.untrained();
    let metrics = run
        .summary
        .as_ref()
        .and_then(|s| s.accuracy.as_ref())
        .copied()
        .or_else(|| run.accuracy.as_ref().map(|a| a.metrics));
    let accuracy = match &run.accuracy {
        Some(acc) => {
            let m = metrics.unwrap_or(acc.metrics);
            vec![
                Slot::Drawn(figures::density::figure(acc, &m, untrained)?),
                Slot::Drawn(figures::dz::figure(acc, &m, untrained)?),
            ]
        }
        None => {
            let why = match run.origin {
                Origin::Original => "The original CAI discards its predictions, so there is nothing to compare with the true redshifts.".to_string(),
                Origin::Cai if run.ranks.is_empty() => "No rank finished, so there are no predictions.".to_string(),
                Origin::Cai => "The predictions carry no true (spectroscopic) redshifts, or none could be read: see the notes.".to_string(),
            };
            vec![Slot::Skipped(
                "Predicted against spectroscopic redshift; Δz histogram".into(),
                why,
            )]
        }
    };
    let mut execution = Vec::new();
    match timeline::timeline(run).map(|t| figures::timeline::figure(&t)).transpose()? {
        Some(Some(f)) => execution.push(Slot::Drawn(f)),
        _ => execution.push(Slot::Skipped(
            "Invocation timeline".into(),
            match run.origin {
                Origin::Original => "The original records no invocation times.".into(),
                Origin::Cai => "The run has no execution record (summary.json from the engine) and its ranks recorded no start times.".into(),
            },
        )),
    }
    match figures::ranks::figure(run)? {
        Some(f) => execution.push(Slot::Drawn(f)),
        None => execution.push(Slot::Skipped(
            "Per-rank throughput and memory".into(),
            "No rank has a result.".into(),
        )),
    }
    if let Some(f) = figures::s3::figure(run)? {
        execution.push(Slot::Drawn(f));
    }
    let cost = match run.performance() {
        Some(p) => Slot::Drawn(figures::cost::figure(p)?),
        None => Slot::Skipped(
            "Cost breakdown".into(),
            match run.origin {
                Origin::Original => {
                    "The original's result folder records no billed durations.".into()
                }
                Origin::Cai => {
                    "summary.json has no performance table (the engine adds it after the run)."
                        .into()
                }
            },
        ),
    };
    Ok(RunSection {
        run,
        metrics,
        accuracy,
        execution,
        cost,
    })
}
