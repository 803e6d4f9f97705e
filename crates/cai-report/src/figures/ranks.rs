//! Figure: per-rank inference throughput (samples/s) and peak memory, one above the other on
//! a shared rank axis; a marker per rank for a few hundred ranks, the median and range of
//! bins of neighbouring ranks beyond.

use plotters::prelude::*;

use super::legend::{self, Entry, Mark};
use super::{canvas, series, style, Area, Drawn, Figure};
use crate::error::ReportError;
use crate::format;
use crate::run::{Origin, RunData};

/// One panel's series.
struct Panel<'a> {
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    y_desc: &'a str,
    reference: Option<(f64, RGBColor)>,
}

/// Tick count for a rank axis ending at `max`: one per rank for a few, about ten beyond
/// (labels only on whole ranks).
pub fn rank_ticks(max: f64) -> usize {
    (max.max(0.0) as usize + 2).clamp(2, 11)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn draw_panel(area: &Area<'_>, p: &Panel<'_>, x: (f64, f64), x_desc: &str) -> Drawn {
    let rank_ticks = rank_ticks(x.1);
    let top = p
        .points
        .iter()
        .map(|q| q.1)
        .chain(p.reference.map(|r| r.0))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.12;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(24)
        .x_label_area_size(if x_desc.is_empty() { 30 } else { 64 })
        .y_label_area_size(90)
        .build_cartesian_2d(x.0..x.1, 0f64..top)?;
    style::axes(&mut chart.configure_mesh())
        .x_desc(x_desc)
        .y_desc(p.y_desc)
        .x_labels(rank_ticks)
        .x_label_formatter(&style::rank_label)
        .y_label_formatter(&style::tick_label)
        .draw()?;
    if let Some((y, c)) = p.reference {
        chart.draw_series(DashedLineSeries::new(
            vec![(x.0, y), (x.1, y)],
            10,
            6,
            c.stroke_width(2),
        ))?;
    }
    series::draw(&mut chart, &p.points, p.colour)
}

/// The figure; None without ranks.
pub fn figure(run: &RunData) -> Result<Option<Figure>, ReportError> {
    if run.ranks.is_empty() {
        return Ok(None);
    }
    let id = "ranks";
    let original = run.origin == Origin::Original;
    let x_desc = if original {
        "Result record (the original records no rank)"
    } else {
        "Rank"
    };
    let rate: Vec<(f64, f64)> = run
        .ranks
        .iter()
        .map(|r| (r.rank as f64, r.sample_persec))
        .collect();
    let rate_median = median(rate.iter().map(|p| p.1).collect());
    let memory: Vec<(f64, f64)> = run
        .ranks
        .iter()
        .filter_map(|r| Some((r.rank as f64, r.peak_rss_mb?)))
        .collect();
    let peak = memory.iter().map(|p| p.1).fold(0.0, f64::max);
    let configured = run.plan.as_ref().map(|p| p.memory_mb as f64);
    let show_limit = configured.filter(|&c| c <= 4.0 * peak);
    let max_rank = run.ranks.iter().map(|r| r.rank).max().unwrap_or(0) as f64;
    let pad = (max_rank * 0.02).max(0.5);
    let x = (-pad, max_rank + pad);

    let mut entries = series::entries(rate.len(), "samples/s of inference", style::BLUE);
    entries.push(Entry::new(
        Mark::Dashed(style::INK),
        format!("median {} samples/s", format::sig(rate_median, 3)),
    ));
    if !memory.is_empty() {
        entries.extend(series::entries(memory.len(), "peak memory", style::GREEN));
        if let Some(c) = show_limit {
            entries.push(Entry::new(
                Mark::Dashed(style::VERMILLION),
                format!("configured {} MB", format::thousands(c as u64)),
            ));
        }
    }
    let w = style::WIDTH;
    let lines = legend::lines_needed(&entries, w as i32 - 100);
    let head = 10 + lines * legend::LINE_H;
    let h = if memory.is_empty() { 420 } else { 720 } + head as u32;
    let svg = canvas(id, w, h, |root| {
        legend::strip(root, &entries, 90, 10, w as i32 - 100)?;
        let (_, body) = root.split_vertically(head);
        let rate_panel = Panel {
            points: rate.clone(),
            colour: style::BLUE,
            y_desc: "Inference rate (samples/s)",
            reference: Some((rate_median, style::INK)),
        };
        if memory.is_empty() {
            return draw_panel(&body, &rate_panel, x, x_desc);
        }
        let (upper, lower) = body.split_vertically((h - head as u32) / 2 - 17);
        draw_panel(&upper, &rate_panel, x, "")?;
        let mem_panel = Panel {
            points: memory.clone(),
            colour: style::GREEN,
            y_desc: "Peak memory (MB)",
            reference: show_limit.map(|c| (c, style::VERMILLION)),
        };
        draw_panel(&lower, &mem_panel, x, x_desc)
    })?;
    let mut caption = format!(
        "Top: each rank's inference rate (samples predicted per second of inference). {} ranks; median {} samples/s, range {} to {}.",
        format::thousands(run.ranks.len() as u64),
        format::sig(rate_median, 3),
        format::sig(rate.iter().map(|p| p.1).fold(f64::INFINITY, f64::min), 3),
        format::sig(rate.iter().map(|p| p.1).fold(0.0, f64::max), 3),
    );
    if memory.is_empty() {
        if original {
            caption.push_str(" The original's total_cpu_memory is its profiler's cumulative allocation, not a peak, so no memory panel is drawn.");
        }
    } else {
        caption.push_str(&format!(
            " Bottom: peak resident memory of each rank's invocation as the operating system measured it (largest {} MB)",
            format::sig(peak, 3)
        ));
        match configured {
            Some(c) if show_limit.is_some() => caption.push_str(&format!(
                ", against the {} MB configured per invocation (what Lambda bills).",
                format::thousands(c as u64)
            )),
            Some(c) => caption.push_str(&format!(
                "; {} MB is configured per invocation (what Lambda bills), far above the scale.",
                format::thousands(c as u64)
            )),
            None => caption.push('.'),
        }
    }
    Ok(Some(Figure {
        id: id.into(),
        title: if memory.is_empty() {
            "Per-rank throughput".into()
        } else {
            "Per-rank throughput and memory".into()
        },
        caption,
        svg,
    }))
}
