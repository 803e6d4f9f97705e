//! Figure: the invocation timeline, a bar per attempt on a row per worker slot (or rank),
//! coloured by phase for successful inference and by outcome otherwise. However many ranks,
//! it stays small and readable: beyond a few hundred rows, neighbouring ranks share a row
//! that shows their mean phases over the span from their first start to their last end
//! (failed attempts still drawn one by one), and once there are thousands of segments, those
//! closer than a pixel on the same row and colour merge.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::legend::{self, Entry, Mark};
use super::{canvas, style, Figure};
use crate::error::ReportError;
use crate::format;
use crate::timeline::{Bar, Phases, Status, Timeline};

/// Most rows drawn; more numbered rows are grouped.
const MAX_ROWS: usize = 200;
/// Segments above which those less than a pixel apart merge.
const MERGE_ABOVE: usize = 4000;

/// What a segment shows, in legend order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Span,
    ModelLoad,
    Fetch,
    Inference,
    Write,
    Rest,
    OkUnsplit,
    Handler,
    Retried,
    Failed,
}

impl Class {
    fn colour(self) -> RGBColor {
        match self {
            Class::Span => style::BAND,
            Class::ModelLoad => style::PURPLE,
            Class::Fetch => style::SKY,
            Class::Inference => style::BLUE,
            Class::Write => style::GREEN,
            Class::Rest => style::GREY,
            Class::OkUnsplit => RGBColor(120, 160, 200),
            Class::Handler => style::DARK,
            Class::Retried => style::ORANGE,
            Class::Failed => style::VERMILLION,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Class::Span => "first start to last end of the row's ranks",
            Class::ModelLoad => "model load",
            Class::Fetch => "fetch",
            Class::Inference => "inference",
            Class::Write => "write",
            Class::Rest => "rest of invocation",
            Class::OkUnsplit => "succeeded (no phase timings)",
            Class::Handler => "Initialize / Summarize / RecordFailure",
            Class::Retried => "failed, retried",
            Class::Failed => "failed for good",
        }
    }

    /// Fraction of the row pitch left empty above and below the bar.
    fn inset(self) -> f64 {
        match self {
            Class::Span => 0.08,
            _ => 0.2,
        }
    }
}

/// Phase segments from `start`, ending at `end` (the rest is "rest of invocation").
fn phase_segments(start: f64, end: f64, p: &Phases) -> Vec<(f64, f64, Class)> {
    let mut out = Vec::with_capacity(5);
    let mut t = start;
    for (secs, class) in [
        (p.model_load, Class::ModelLoad),
        (p.fetch, Class::Fetch),
        (p.inference, Class::Inference),
        (p.write, Class::Write),
    ] {
        let e = (t + secs.max(0.0)).min(end);
        if e > t {
            out.push((t, e, class));
        }
        t = e;
    }
    if end > t {
        out.push((t, end, Class::Rest));
    }
    out
}

/// The bar's segments: phases in order for a split success, one segment otherwise.
fn segments(b: &Bar) -> Vec<(f64, f64, Class)> {
    let whole = |c| vec![(b.start, b.end, c)];
    match (b.status, b.infer, b.phases) {
        (Status::Failed, _, _) => whole(Class::Failed),
        (Status::Retried, _, _) => whole(Class::Retried),
        (Status::Ok, false, _) => whole(Class::Handler),
        (Status::Ok, true, None) => whole(Class::OkUnsplit),
        (Status::Ok, true, Some(p)) => phase_segments(b.start, b.end, &p),
    }
}

/// Display rows: which display row each row goes to, the display labels, and whether
/// numbered rows were grouped (`group` per display row).
struct Rows {
    of: Vec<usize>,
    labels: Vec<String>,
    group: usize,
    grouped: Vec<bool>,
}

fn rows(t: &Timeline) -> Rows {
    let n = t.numbered.len();
    let group = n.div_ceil(MAX_ROWS).max(1);
    let mut of = Vec::with_capacity(t.rows.len());
    let mut labels = Vec::new();
    let mut grouped = Vec::new();
    if group == 1 {
        for label in &t.rows {
            of.push(labels.len());
            labels.push(label.clone());
            grouped.push(false);
        }
        return Rows {
            of,
            labels,
            group,
            grouped,
        };
    }
    // Grouped: Initialize, RecordFailure and Summarize share one row on top, so that each
    // keeps a readable label.
    let others = t.rows.len() > n;
    if others {
        labels.push("other handlers".to_string());
        grouped.push(false);
    }
    let number = |s: &str| s.rsplit(' ').next().unwrap_or(s).to_string();
    let noun = if t.row_axis == "Rank" {
        "ranks"
    } else {
        "slots"
    };
    for (i, label) in t.rows.iter().enumerate() {
        if !t.numbered.contains(&i) {
            of.push(0);
            continue;
        }
        let k = i - t.numbered.start;
        if k.is_multiple_of(group) {
            let last = (t.numbered.start + k + group).min(t.numbered.end) - 1;
            labels.push(format!(
                "{noun} {}–{}",
                number(label),
                number(&t.rows[last])
            ));
            grouped.push(true);
        }
        of.push(labels.len() - 1);
    }
    Rows {
        of,
        labels,
        group,
        grouped,
    }
}

/// A grouped row's successful attempts: first start, last end, sum of starts, sum of ends,
/// sums of the four phases, count.
type GroupSums = (f64, f64, f64, f64, [f64; 4], usize);

/// Every segment to draw, as (display row, class) -> intervals.
fn layout(t: &Timeline, r: &Rows) -> BTreeMap<(usize, Class), Vec<(f64, f64)>> {
    let mut by: BTreeMap<(usize, Class), Vec<(f64, f64)>> = BTreeMap::new();
    // Grouped rows: span and mean phases of their successful attempts.
    let mut acc: BTreeMap<usize, GroupSums> = BTreeMap::new();
    for b in &t.bars {
        let d = r.of[b.row];
        let ok = b.status == Status::Ok;
        if r.grouped[d] && ok {
            let e = acc
                .entry(d)
                .or_insert((f64::INFINITY, 0.0, 0.0, 0.0, [0.0; 4], 0));
            e.0 = e.0.min(b.start);
            e.1 = e.1.max(b.end);
            e.2 += b.start;
            e.3 += b.end;
            if let Some(p) = b.phases {
                for (s, v) in
                    e.4.iter_mut()
                        .zip([p.model_load, p.fetch, p.inference, p.write])
                {
                    *s += v;
                }
            }
            e.5 += 1;
            continue;
        }
        for (x0, x1, c) in segments(b) {
            by.entry((d, c)).or_default().push((x0, x1));
        }
    }
    for (d, (first, last, starts, ends, phases, n)) in acc {
        let n = n as f64;
        by.entry((d, Class::Span)).or_default().push((first, last));
        let p = Phases {
            model_load: phases[0] / n,
            fetch: phases[1] / n,
            inference: phases[2] / n,
            write: phases[3] / n,
        };
        for (x0, x1, c) in phase_segments(starts / n, ends / n, &p) {
            by.entry((d, c)).or_default().push((x0, x1));
        }
    }
    by
}

/// Merges overlapping intervals per row and class; with many, also those nearly touching.
fn merge(by: &mut BTreeMap<(usize, Class), Vec<(f64, f64)>>, span: f64) -> bool {
    let count: usize = by.values().map(Vec::len).sum();
    let tol = if count > MERGE_ABOVE {
        span / 1500.0
    } else {
        0.0
    };
    for v in by.values_mut() {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
        for &(a, b) in v.iter() {
            match out.last_mut() {
                Some(last) if a <= last.1 + tol => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        *v = out;
    }
    tol > 0.0
}

/// The figure; None when there is nothing to draw.
pub fn figure(t: &Timeline) -> Result<Option<Figure>, ReportError> {
    if t.bars.is_empty() {
        return Ok(None);
    }
    let id = "timeline";
    let span = t.bars.iter().map(|b| b.end).fold(0.0, f64::max).max(1e-3) * 1.02;
    let r = rows(t);
    let nd = r.labels.len();
    let mut segs = layout(t, &r);
    let merged = merge(&mut segs, span);
    let classes: Vec<Class> = {
        let mut c: Vec<Class> = segs.keys().map(|k| k.1).collect();
        c.sort();
        c.dedup();
        c
    };
    let entries: Vec<Entry> = classes
        .iter()
        .map(|c| {
            let mark = if *c == Class::Span {
                Mark::Band(c.colour())
            } else {
                Mark::Swatch(c.colour())
            };
            Entry::new(mark, c.label())
        })
        .collect();
    let w = style::WIDTH;
    let pitch = match nd {
        0..=12 => 34.0,
        13..=40 => 20.0,
        _ => (640.0 / nd as f64).max(2.0),
    };
    let lines = legend::lines_needed(&entries, w as i32 - 170);
    let head = 10 + lines * legend::LINE_H;
    let h = (head as f64 + 110.0 + nd as f64 * pitch).clamp(260.0, 960.0) as u32;
    let every = nd.div_ceil(24).max(1);
    let svg = canvas(id, w, h, |root| {
        legend::strip(root, &entries, 160, 10, w as i32 - 170)?;
        let (_, body) = root.split_vertically(head);
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(64)
            .y_label_area_size(150)
            .build_cartesian_2d(0f64..span, 0f64..nd as f64)?;
        style::axes(&mut chart.configure_mesh())
            .x_desc(t.time_axis)
            .y_desc(t.row_axis)
            .y_labels(0)
            .disable_y_mesh()
            .draw()?;
        let thin = pitch < 6.0;
        let y_of = |row: usize| nd as f64 - row as f64;
        for ((row, class), v) in &segs {
            let inset = if thin { 0.0 } else { class.inset() };
            chart.draw_series(v.iter().map(|&(x0, x1)| {
                Rectangle::new(
                    [(x0, y_of(*row) - 1.0 + inset), (x1, y_of(*row) - inset)],
                    class.colour().filled(),
                )
            }))?;
        }
        let plot = chart.plotting_area().get_pixel_range();
        // Labels every `every` rows, and the ungrouped row on top of grouped ones with
        // room around it.
        let clear = if r.group > 1 && !r.grouped[0] {
            (18.0 / pitch).ceil() as usize
        } else {
            0
        };
        let ticks: Vec<usize> = (0..nd)
            .filter(|&d| r.group == 1 || r.grouped[d])
            .step_by(every)
            .filter(|&d| d >= clear)
            .chain((clear > 0).then_some(0))
            .collect();
        for d in ticks {
            let (_, py) = chart.backend_coord(&(0.0, y_of(d) - 0.5));
            root.draw(&Text::new(
                r.labels[d].clone(),
                (plot.0.start - 8, py),
                style::right_middle(style::ticks()),
            ))?;
        }
        Ok(())
    })?;
    let mut caption = format!(
        "One bar per invocation attempt, from its start to its end, on one row per {}. Successful inference attempts are split into the phases their rank result recorded (model load, fetch, inference, write); grey is the rest of the invocation (process start and exit, result upload).",
        t.row_axis.to_lowercase()
    );
    if r.group > 1 {
        caption.push_str(&format!(
            " The {} {}s are drawn {} to a row: the light band runs from the first start to the last end among them, the bar shows their mean start and mean phases; failed attempts are drawn one by one.",
            format::thousands(t.numbered.len() as u64),
            t.row_axis.to_lowercase(),
            r.group
        ));
    }
    if merged {
        caption.push_str(" Segments of one colour less than a pixel apart are drawn as one.");
    }
    if let Some(n) = &t.note {
        caption.push(' ');
        caption.push_str(n);
    }
    Ok(Some(Figure {
        id: id.into(),
        title: "Invocation timeline".into(),
        caption,
        svg,
    }))
}
