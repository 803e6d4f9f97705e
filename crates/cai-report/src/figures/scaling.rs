//! Figures for several runs: wall time, throughput, summed inference rate and cost against
//! data size (or world size), one line per partition size through the mean of the runs at
//! each size, every run a marker, as in the original's scaling study. The x axis turns
//! logarithmic when it spans more than a factor of 20.

use std::collections::BTreeMap;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

use super::legend::{self, Entry, Mark};
use super::{canvas, style, Area, Drawn, Figure};
use crate::error::ReportError;
use crate::scaling::ScalePoint;

/// What the x axis is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// Input data read.
    DataSize,
    /// Ranks.
    WorldSize,
}

impl Against {
    fn x(self, p: &ScalePoint) -> f64 {
        match self {
            Against::DataSize => p.data_gb,
            Against::WorldSize => p.world,
        }
    }

    fn desc(self) -> &'static str {
        match self {
            Against::DataSize => "Data size (GB)",
            Against::WorldSize => "World size (ranks)",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Against::DataSize => "scaling-data-size",
            Against::WorldSize => "scaling-world-size",
        }
    }
}

type Metric = fn(&ScalePoint) -> Option<f64>;

const METRICS: [(&str, Metric); 4] = [
    ("Wall time (s)", |p| p.wall),
    ("Throughput (samples/s)", |p| p.throughput),
    ("Summed rank rate (samples/s)", |p| Some(p.inference_rate)),
    ("Cost (US$)", |p| p.cost),
];

/// Series name -> its colour, in first-seen order.
fn colours(points: &[ScalePoint]) -> BTreeMap<String, RGBColor> {
    let mut names: Vec<&str> = Vec::new();
    for p in points {
        if !names.contains(&p.series.as_str()) {
            names.push(&p.series);
        }
    }
    names.sort_by_key(|n| (n.contains("original"), partition_mb(n), n.to_string()));
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), style::SERIES[i % style::SERIES.len()]))
        .collect()
}

/// `100MB` -> 100, for ordering series by partition size.
fn partition_mb(name: &str) -> u64 {
    name.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(u64::MAX)
}

/// Means per x of one series' values: (x, mean).
fn means(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut by: BTreeMap<u64, (f64, f64, usize)> = BTreeMap::new();
    for &(x, y) in points {
        let e = by.entry(x.to_bits()).or_insert((x, 0.0, 0));
        e.1 += y;
        e.2 += 1;
    }
    let mut out: Vec<(f64, f64)> = by.values().map(|&(x, s, n)| (x, s / n as f64)).collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

#[allow(clippy::too_many_arguments)]
fn panel<X>(
    area: &Area<'_>,
    xr: X,
    x_desc: &str,
    y_desc: &str,
    series: &BTreeMap<String, Vec<(f64, f64)>>,
    colours: &BTreeMap<String, RGBColor>,
    top: f64,
) -> Drawn
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(22)
        .x_label_area_size(58)
        .y_label_area_size(84)
        .build_cartesian_2d(xr, 0f64..top)?;
    style::axes(&mut chart.configure_mesh())
        .x_desc(x_desc)
        .y_desc(y_desc)
        .y_label_formatter(&style::tick_label)
        .draw()?;
    if series.is_empty() {
        let plot = chart.plotting_area().get_pixel_range();
        area.draw(&Text::new(
            "not recorded for these runs",
            (
                (plot.0.start + plot.0.end) / 2 - area.get_base_pixel().0,
                (plot.1.start + plot.1.end) / 2 - area.get_base_pixel().1,
            ),
            style::centred(style::note()),
        ))?;
    }
    for (name, pts) in series {
        let c = colours[name];
        chart.draw_series(LineSeries::new(means(pts), c.stroke_width(2)))?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
    }
    Ok(())
}

/// The figure against `against`; None with fewer than two runs.
pub fn figure(points: &[ScalePoint], against: Against) -> Result<Option<Figure>, ReportError> {
    if points.len() < 2 {
        return Ok(None);
    }
    let colours = colours(points);
    let entries: Vec<Entry> = colours
        .iter()
        .map(|(n, c)| Entry::new(Mark::Line(*c), format!("partition {n}")))
        .collect();
    let xs: Vec<f64> = points.iter().map(|p| against.x(p)).collect();
    let (xmin, xmax) = xs
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let log = xmin > 0.0 && xmax / xmin > 20.0;
    let w = style::WIDTH;
    let lines = legend::lines_needed(&entries, w as i32 - 100);
    let head = 10 + lines * legend::LINE_H;
    let h = 840 + head as u32;
    let svg = canvas(against.id(), w, h, |root| {
        legend::strip(root, &entries, 90, 10, w as i32 - 100)?;
        let (_, body) = root.split_vertically(head);
        for (area, (y_desc, metric)) in body.split_evenly((2, 2)).iter().zip(METRICS) {
            let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for p in points {
                if let Some(y) = metric(p) {
                    series
                        .entry(p.series.clone())
                        .or_default()
                        .push((against.x(p), y));
                }
            }
            let top = series
                .values()
                .flatten()
                .map(|p| p.1)
                .fold(0.0, f64::max)
                .max(1e-9)
                * 1.15;
            if log {
                let r = (xmin / 1.3)..(xmax * 1.3);
                panel(
                    area,
                    r.log_scale(),
                    against.desc(),
                    y_desc,
                    &series,
                    &colours,
                    top,
                )?;
            } else {
                let pad = ((xmax - xmin) * 0.06).max(xmax * 0.05).max(0.5);
                let r = (xmin - pad).max(0.0)..(xmax + pad);
                panel(area, r, against.desc(), y_desc, &series, &colours, top)?;
            }
        }
        Ok(())
    })?;
    let what = match against {
        Against::DataSize => "data size (input bytes read, 10^9 bytes a GB)",
        Against::WorldSize => "world size (ranks planned)",
    };
    Ok(Some(Figure {
        id: against.id().into(),
        title: match against {
            Against::DataSize => "Scaling with data size".into(),
            Against::WorldSize => "Scaling with world size".into(),
        },
        caption: format!(
            "Each marker is a run, each line joins the mean of the runs of one partition size at each {what}. Wall time is the execution's start to end; throughput is samples over wall time; the summed rank rate adds every rank's samples per second of inference (what the original's stats.py sums as throughput, and the only one of the four its result folders allow); cost is the projection in the seed report's table. Panels without a series had nothing recorded for these runs."
        ),
        svg,
    }))
}
