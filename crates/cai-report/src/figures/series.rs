//! Per-rank values drawn so they stay legible and small at any rank count: a marker per
//! rank for a few hundred, else the range (min to max) and median of each bin of
//! neighbouring ranks.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::legend::{Entry, Mark};
use super::Drawn;

/// Ranks up to which every rank gets a marker.
pub const MARKERS_UP_TO: usize = 300;
/// Bins drawn beyond that.
const BINS: usize = 160;

/// A chart with f64 axes on the SVG backend.
pub type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Ranks per bin for `n` ranks (1: markers).
pub fn per_bin(n: usize) -> usize {
    if n <= MARKERS_UP_TO {
        1
    } else {
        n.div_ceil(BINS)
    }
}

/// (first x, last x, min, median, max) of consecutive bins of `k` points (sorted by x).
fn bins(points: &[(f64, f64)], k: usize) -> Vec<(f64, f64, f64, f64, f64)> {
    points
        .chunks(k)
        .map(|c| {
            let mut ys: Vec<f64> = c.iter().map(|p| p.1).collect();
            ys.sort_by(f64::total_cmp);
            (
                c[0].0,
                c[c.len() - 1].0,
                ys[0],
                ys[ys.len() / 2],
                ys[ys.len() - 1],
            )
        })
        .collect()
}

/// Draws `points` (sorted by x) in `colour`.
pub fn draw(chart: &mut Chart<'_, '_>, points: &[(f64, f64)], colour: RGBColor) -> Drawn {
    let k = per_bin(points.len());
    if k == 1 {
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        return Ok(());
    }
    let b = bins(points, k);
    let light = colour.mix(0.3);
    chart
        .draw_series(b.iter().map(|&(x0, x1, lo, _, hi)| {
            Rectangle::new([(x0, lo), (x1 + 1.0, hi)], light.filled())
        }))?;
    chart.draw_series(LineSeries::new(
        b.iter()
            .map(|&(x0, x1, _, m, _)| ((x0 + x1 + 1.0) / 2.0, m)),
        colour.stroke_width(2),
    ))?;
    Ok(())
}

/// Legend entries for `n` points of `what` in `colour`.
pub fn entries(n: usize, what: &str, colour: RGBColor) -> Vec<Entry> {
    let k = per_bin(n);
    if k == 1 {
        return vec![Entry::new(Mark::Dot(colour), what.to_string())];
    }
    vec![
        Entry::new(Mark::Line(colour), format!("{what}: median of {k} ranks")),
        Entry::new(
            Mark::Band(RGBColor(blend(colour.0), blend(colour.1), blend(colour.2))),
            "min to max",
        ),
    ]
}

/// A channel mixed 30 % with white (what `mix(0.3)` looks like on the page).
fn blend(c: u8) -> u8 {
    (0.3 * c as f64 + 0.7 * 255.0).round() as u8
}
