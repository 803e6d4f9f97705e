//! Figure: predicted against spectroscopic redshift as a binned 2D density (never a point per
//! sample, so a million samples draw as fast as a hundred), with the 1:1 line, the
//! |Δz| = 0.15 outlier bounds and the metrics box.

use plotters::prelude::*;

use super::legend::{self, Corner, Entry, Mark};
use super::{canvas, style, Figure};
use crate::accuracy::{AccuracyData, Metrics, CELL, OUTLIER_DZ};
use crate::error::ReportError;
use crate::format;

/// Colour levels of the density (logarithmic in counts).
const LEVELS: usize = 9;

/// The fine cells rebinned for display.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// True-redshift axis range.
    pub x: (f64, f64),
    /// Predicted-redshift axis range.
    pub y: (f64, f64),
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Counts, row-major from the lowest prediction.
    pub counts: Vec<u32>,
    /// Samples outside the drawn ranges.
    pub outside: u64,
}

impl Grid {
    /// Cell width along x.
    pub fn wx(&self) -> f64 {
        (self.x.1 - self.x.0) / self.nx as f64
    }

    /// Cell height along y.
    pub fn wy(&self) -> f64 {
        (self.y.1 - self.y.0) / self.ny as f64
    }

    /// Largest count in a cell.
    pub fn max(&self) -> u32 {
        self.counts.iter().copied().max().unwrap_or(0)
    }
}

/// Axis ranges and bins for `acc`: x covers every true redshift; y covers x's range and the
/// central 99% of predictions (within four x-spans either side, so a wild untrained model
/// cannot squash the plot); cells are square in data units.
pub fn grid(acc: &AccuracyData) -> Grid {
    let (tmin, tmax) = acc.true_range;
    let step = |v: f64| {
        if v <= 1.0 {
            0.1
        } else if v <= 3.0 {
            0.25
        } else {
            0.5
        }
    };
    let x0 = if tmin >= 0.0 {
        0.0
    } else {
        (tmin / 0.1).floor() * 0.1
    };
    let mut x1 = (tmax / step(tmax)).ceil() * step(tmax);
    if x1 <= x0 {
        x1 = x0 + 0.1;
    }
    let sx = x1 - x0;
    let (plo, phi) = (
        acc.prediction_quantile(0.005),
        acc.prediction_quantile(0.995),
    );
    let y0 = x0.min((plo / 0.05).floor() * 0.05).max(x0 - 4.0 * sx);
    let y1 = x1.max((phi / 0.05).ceil() * 0.05).min(x1 + 4.0 * sx);
    let n = acc.metrics.count as f64;
    let nx = ((n.sqrt() / 2.0).round() as usize).clamp(20, 80);
    let ny = (((y1 - y0) / (sx / nx as f64)).round() as usize).clamp(1, 4 * nx);
    let mut g = Grid {
        x: (x0, x1),
        y: (y0, y1),
        nx,
        ny,
        counts: vec![0; nx * ny],
        outside: 0,
    };
    let (wx, wy) = (g.wx(), g.wy());
    for &(t, p, c) in &acc.cells {
        let (tc, pc) = ((t as f64 + 0.5) * CELL, (p as f64 + 0.5) * CELL);
        let ix = ((tc - x0) / wx).floor();
        let iy = ((pc - y0) / wy).floor();
        if ix < 0.0 || iy < 0.0 || ix as usize >= nx || iy as usize >= ny {
            g.outside += c as u64;
        } else {
            g.counts[iy as usize * nx + ix as usize] += c;
        }
    }
    g
}

/// Count edges of the colour levels: level k holds counts in `[e[k], e[k+1])`.
pub fn level_edges(max: u32) -> Vec<u32> {
    let top = max as f64 + 1.0;
    let mut e: Vec<u32> = (0..=LEVELS)
        .map(|k| top.powf(k as f64 / LEVELS as f64).round() as u32)
        .collect();
    e[0] = 1;
    e[LEVELS] = max + 1;
    e.dedup();
    e
}

fn level_colour(k: usize, levels: usize) -> RGBColor {
    let h = if levels <= 1 {
        0.55
    } else {
        0.95 * k as f64 / (levels - 1) as f64
    };
    ViridisRGB::get_color(h)
}

/// Runs of equal level along each row: `(row, first column, past-the-end column, level)`.
fn runs(g: &Grid, edges: &[u32]) -> Vec<(usize, usize, usize, usize)> {
    let level = |c: u32| (c > 0).then(|| edges.partition_point(|&b| b <= c) - 1);
    let mut out = Vec::new();
    for iy in 0..g.ny {
        let row = &g.counts[iy * g.nx..(iy + 1) * g.nx];
        let mut ix = 0;
        while ix < g.nx {
            let Some(l) = level(row[ix]) else {
                ix += 1;
                continue;
            };
            let start = ix;
            while ix < g.nx && level(row[ix]) == Some(l) {
                ix += 1;
            }
            out.push((iy, start, ix, l));
        }
    }
    out
}

/// The segment of `y = a x + b` inside the box, if any.
fn clip(a: f64, b: f64, x: (f64, f64), y: (f64, f64)) -> Option<Vec<(f64, f64)>> {
    let xa = x.0.max((y.0 - b) / a);
    let xb = x.1.min((y.1 - b) / a);
    (xb > xa).then(|| vec![(xa, a * xa + b), (xb, a * xb + b)])
}

/// The figure.
pub fn figure(acc: &AccuracyData, m: &Metrics, untrained: bool) -> Result<Figure, ReportError> {
    let id = "accuracy-density";
    let g = grid(acc);
    let edges = level_edges(g.max());
    let levels = edges.len() - 1;
    let cells = runs(&g, &edges);
    let entries = vec![
        Entry::new(Mark::Line(style::INK), "1:1  (z_{phot} = z_{spec})"),
        Entry::new(
            Mark::Dashed(style::VERMILLION),
            "|Δz| = 0.15  (outlier bounds)",
        ),
    ];
    let stats = vec![
        format!("N = {}", format::thousands(m.count)),
        format!("MAE = {}", format::sig(m.mae, 3)),
        format!("MSE = {}", format::sig(m.mse, 3)),
        format!("Bias = {}", format::sig(m.bias, 3)),
        format!("σ_{{NMAD}} = {}", format::sig(m.nmad, 3)),
        format!("R² = {}", format::sig(m.r2, 4)),
        format!("η_{{out}} = {}", format::percent(m.outlier_fraction)),
    ];
    let (w, h) = (style::WIDTH, 820);
    let svg = canvas(id, w, h, |root| {
        let warn_h = if untrained { 30 } else { 0 };
        let head_h = 10 + warn_h + legend::LINE_H;
        if untrained {
            root.draw(&Text::new(
                "UNTRAINED (seeded) WEIGHTS: these predictions are meaningless",
                (90, 10 + warn_h / 2),
                style::left_middle(style::warning()),
            ))?;
        }
        legend::strip(root, &entries, 90, 10 + warn_h, w as i32 - 100)?;
        let (main, bar) = root.split_horizontally(w - 130);
        let (_, body) = main.split_vertically(head_h);
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(64)
            .y_label_area_size(84)
            .build_cartesian_2d(g.x.0..g.x.1, g.y.0..g.y.1)?;
        style::axes(&mut chart.configure_mesh())
            .x_desc("Spectroscopic redshift  z_{spec}")
            .y_desc("Predicted redshift  z_{phot}")
            .y_label_formatter(&style::tick_label)
            .draw()?;
        let (wx, wy) = (g.wx(), g.wy());
        chart.draw_series(cells.iter().map(|&(iy, a, b, l)| {
            let x = |i: usize| g.x.0 + i as f64 * wx;
            let y = |i: usize| g.y.0 + i as f64 * wy;
            Rectangle::new(
                [(x(a), y(iy)), (x(b), y(iy + 1))],
                level_colour(l, levels).filled(),
            )
        }))?;
        for (a, b) in [
            (1.0 + OUTLIER_DZ, OUTLIER_DZ),
            (1.0 - OUTLIER_DZ, -OUTLIER_DZ),
        ] {
            if let Some(pts) = clip(a, b, g.x, g.y) {
                chart.draw_series(DashedLineSeries::new(
                    pts,
                    10,
                    6,
                    style::VERMILLION.stroke_width(2),
                ))?;
            }
        }
        if let Some(pts) = clip(1.0, 0.0, g.x, g.y) {
            chart.draw_series(LineSeries::new(pts, style::INK.stroke_width(2)))?;
        }
        let plot = chart.plotting_area().get_pixel_range();
        legend::text_box(root, &stats, plot.clone(), Corner::TopLeft)?;

        // Colour bar, aligned with the plot.
        let top = plot.1.start;
        let bottom = h as i32 - plot.1.end;
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(top)
            .margin_bottom(bottom)
            .margin_right(8)
            .right_y_label_area_size(84)
            .build_cartesian_2d(0f64..1f64, (1f64..edges[levels] as f64).log_scale())?;
        cb.configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .disable_x_axis()
            .y_desc("Samples per cell")
            .y_labels(0)
            .draw()?;
        cb.draw_series((0..levels).map(|k| {
            Rectangle::new(
                [(0.0, edges[k] as f64), (1.0, edges[k + 1] as f64)],
                level_colour(k, levels).filled(),
            )
        }))?;
        // The levels' own edges as ticks (plotters' log ticks fall between them); the top
        // one reads "up to the largest count".
        let mut last = i32::MAX;
        for (k, &e) in edges.iter().enumerate() {
            let (px, py) = cb.backend_coord(&(1.0, e as f64));
            if last - py < 16 {
                continue;
            }
            last = py;
            // The top edge only when it says more than the last level's own edge.
            if k == levels && edges[levels - 1] == g.max() {
                continue;
            }
            let label = if k == levels { g.max() } else { e };
            root.draw(&PathElement::new(vec![(px, py), (px + 6, py)], style::INK))?;
            root.draw(&Text::new(
                format::thousands(label as u64),
                (px + 10, py),
                style::left_middle(style::ticks()),
            ))?;
        }
        Ok(())
    })?;
    let mut caption = format!(
        "Each cell ({} in z_{{spec}} by {} in z_{{phot}}) counts the samples that fall in it; colour is logarithmic in the count, white means none. Solid line: perfect prediction; dashed: the catastrophic-outlier bounds |Δz| = 0.15, with Δz = (z_{{phot}} − z_{{spec}}) / (1 + z_{{spec}}). Metrics over all {} labelled samples.",
        format::sig(g.wx(), 2),
        format::sig(g.wy(), 2),
        format::thousands(m.count)
    );
    if g.outside > 0 {
        caption.push_str(&format!(
            " {} samples fall outside the plotted range and are counted in the metrics only.",
            format::thousands(g.outside)
        ));
    }
    Ok(Figure {
        id: id.into(),
        title: "Predicted against spectroscopic redshift".into(),
        caption,
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accuracy::Accumulator;

    #[test]
    fn grid_keeps_every_sample_and_levels_cover_the_max() {
        let mut a = Accumulator::default();
        for i in 0..5000 {
            let t = (i % 400) as f32 / 1000.0;
            a.add(t + ((i % 11) as f32 - 5.0) / 500.0, Some(t));
        }
        let acc = a.finish().unwrap();
        let g = grid(&acc);
        assert_eq!(g.x, (0.0, 0.4));
        let inside: u64 = g.counts.iter().map(|&c| c as u64).sum();
        assert_eq!(inside + g.outside, 5000);
        let e = level_edges(g.max());
        assert_eq!(e[0], 1);
        assert_eq!(*e.last().unwrap(), g.max() + 1);
        assert!(e.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(level_edges(1), vec![1, 2]);
    }

    #[test]
    fn clipped_lines_stay_in_the_box() {
        let pts = clip(1.15, 0.15, (0.0, 1.0), (0.0, 1.0)).unwrap();
        assert!((pts[1].1 - 1.0).abs() < 1e-12);
        assert!(clip(1.0, 5.0, (0.0, 1.0), (0.0, 1.0)).is_none());
    }
}
