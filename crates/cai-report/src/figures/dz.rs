//! Figure: the histogram of Δz = (z_phot - z_spec) / (1 + z_spec), with the median, the
//! median ± σ_NMAD band and the |Δz| = 0.15 outlier bounds marked.

use plotters::prelude::*;

use super::legend::{self, Corner, Entry, Mark};
use super::{canvas, style, Figure};
use crate::accuracy::{AccuracyData, DzHistogram, Metrics, DZ_BIN, DZ_SPAN, OUTLIER_DZ};
use crate::error::ReportError;
use crate::format;

/// The fine histogram rebinned for display.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    /// The axis covers [-span, span].
    pub span: f64,
    /// Counts of equal bins across the span.
    pub counts: Vec<u64>,
    /// Samples beyond the span, either side.
    pub outside: u64,
}

/// Bins for `h`: the span shows the outlier bounds and 98% of the samples (within the fine
/// histogram's own span); bins of about σ_NMAD / 3, so the core is resolved, but no more
/// than 2√N of them (30 to 300).
pub fn bins(h: &DzHistogram, n: u64, nmad: f64) -> Bins {
    let q = h.quantile(0.01).abs().max(h.quantile(0.99).abs());
    let span = format::nice_ceil((1.3 * q).max(0.2)).min(DZ_SPAN);
    let by_n = 2.0 * (n as f64).sqrt();
    let by_width = if nmad > 0.0 {
        2.0 * span / (nmad / 3.0)
    } else {
        by_n
    };
    let nb = (by_width.min(by_n).ceil() as usize).clamp(30, 300);
    let width = 2.0 * span / nb as f64;
    let mut counts = vec![0u64; nb];
    let mut outside = h.below + h.above;
    for (i, &c) in h.counts.iter().enumerate().filter(|(_, &c)| c > 0) {
        let v = DzHistogram::centre(i);
        let k = ((v + span) / width).floor();
        if k < 0.0 || k as usize >= nb {
            outside += c as u64;
        } else {
            counts[k as usize] += c as u64;
        }
    }
    Bins {
        span,
        counts,
        outside,
    }
}

/// The figure.
pub fn figure(acc: &AccuracyData, m: &Metrics, untrained: bool) -> Result<Figure, ReportError> {
    let id = "accuracy-dz";
    let b = bins(&acc.dz, m.count, m.nmad);
    let median = acc.dz.quantile(0.5);
    let width = 2.0 * b.span / b.counts.len() as f64;
    let top = b.counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.12;
    let entries = vec![
        Entry::new(Mark::Swatch(style::BLUE), "samples per bin"),
        Entry::new(Mark::Line(style::INK), "median Δz"),
        Entry::new(Mark::Band(style::BAND), "median ± σ_{NMAD}"),
        Entry::new(Mark::Dashed(style::VERMILLION), "|Δz| = 0.15"),
    ];
    let mut stats = vec![
        format!("σ_{{NMAD}} = {}", format::sig(m.nmad, 3)),
        format!("Bias = {}", format::sig(m.bias, 3)),
        format!("median Δz = {}", format::sig(median, 2)),
        format!("η_{{out}} = {}", format::percent(m.outlier_fraction)),
    ];
    if b.outside > 0 {
        stats.push(format!(
            "beyond ±{}: {}",
            format::tick(b.span),
            format::thousands(b.outside)
        ));
    }
    let (w, h) = (style::WIDTH, 560);
    let nmad_lo = (median - m.nmad).max(-b.span);
    let nmad_hi = (median + m.nmad).min(b.span);
    let svg =
        canvas(id, w, h, |root| {
            let warn_h = if untrained { 30 } else { 0 };
            if untrained {
                root.draw(&Text::new(
                    "UNTRAINED (seeded) WEIGHTS: this spread is meaningless",
                    (90, 10 + warn_h / 2),
                    style::left_middle(style::warning()),
                ))?;
            }
            legend::strip(root, &entries, 90, 10 + warn_h, w as i32 - 100)?;
            let (_, body) = root.split_vertically(10 + warn_h + legend::LINE_H);
            let mut chart = ChartBuilder::on(&body)
                .margin(10)
                .margin_right(24)
                .x_label_area_size(64)
                .y_label_area_size(90)
                .build_cartesian_2d(-b.span..b.span, 0f64..top)?;
            style::axes(&mut chart.configure_mesh())
                .x_desc("Δz = (z_{phot} − z_{spec}) / (1 + z_{spec})")
                .y_desc("Samples per bin")
                .y_label_formatter(&style::tick_label)
                .draw()?;
            if nmad_hi > nmad_lo {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(nmad_lo, 0.0), (nmad_hi, top)],
                    style::BAND.filled(),
                )))?;
            }
            chart.draw_series(b.counts.iter().enumerate().filter(|(_, &c)| c > 0).map(
                |(i, &c)| {
                    let x0 = -b.span + i as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], style::BLUE.filled())
                },
            ))?;
            for x in [-OUTLIER_DZ, OUTLIER_DZ] {
                if x.abs() < b.span {
                    chart.draw_series(DashedLineSeries::new(
                        vec![(x, 0.0), (x, top)],
                        10,
                        6,
                        style::VERMILLION.stroke_width(2),
                    ))?;
                }
            }
            chart.draw_series(LineSeries::new(
                vec![(median, 0.0), (median, top)],
                style::INK.stroke_width(2),
            ))?;
            let plot = chart.plotting_area().get_pixel_range();
            let corner = if median > 0.0 {
                Corner::TopLeft
            } else {
                Corner::TopRight
            };
            legend::text_box(root, &stats, plot, corner)?;
            Ok(())
        })?;
    Ok(Figure {
        id: id.into(),
        title: "Distribution of the normalised redshift error Δz".into(),
        caption: format!(
            "Histogram of Δz over {} labelled samples in bins of {}. The grey band is the median ± σ_{{NMAD}} (σ_{{NMAD}} = 1.48 × median |Δz − median Δz|, the field's robust scatter); the dashed lines are the catastrophic-outlier bounds |Δz| = 0.15 (η_{{out}} is the fraction beyond them).{}",
            format::thousands(m.count),
            format::sig(width, 2),
            if b.outside > 0 {
                format!(
                    " {} samples lie beyond the plotted ±{} (fine bins of {} cover ±{}).",
                    format::thousands(b.outside),
                    format::tick(b.span),
                    format::tick(DZ_BIN),
                    format::tick(DZ_SPAN)
                )
            } else {
                String::new()
            }
        ),
        svg,
    })
}
