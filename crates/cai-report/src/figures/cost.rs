//! Figure: the run's cost broken down into Lambda compute, Lambda requests and Step
//! Functions state transitions, each bar labelled with its dollars (the page shows the seed
//! report's table beside it).

use plotters::prelude::*;

use cai_workflow::cost::PerformanceRow;

use super::{canvas, style, Figure};
use crate::error::ReportError;
use crate::format;

/// The figure.
pub fn figure(p: &PerformanceRow) -> Result<Figure, ReportError> {
    let id = "cost";
    let parts = [
        (
            format!(
                "Compute ({} GB-s)",
                format::sig(p.duration_seconds * p.memory_gb, 3)
            ),
            p.compute_usd,
            style::BLUE,
        ),
        (
            format!("Requests ({})", format::thousands(p.requests)),
            p.request_usd,
            style::ORANGE,
        ),
        (
            format!("Transitions ({})", format::thousands(p.state_transitions)),
            p.transition_usd,
            style::GREEN,
        ),
    ];
    let top = parts.iter().map(|q| q.1).fold(0.0, f64::max).max(1e-9) * 1.3;
    let (w, h) = (640, 300);
    let svg = canvas(id, w, h, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(14)
            .margin_right(30)
            .x_label_area_size(64)
            .y_label_area_size(200)
            .build_cartesian_2d(0f64..top, 0f64..3.0)?;
        style::axes(&mut chart.configure_mesh())
            .x_desc("Projected cost (US$)")
            .y_labels(0)
            .disable_y_mesh()
            .draw()?;
        let plot = chart.plotting_area().get_pixel_range();
        for (i, (label, usd, colour)) in parts.iter().enumerate() {
            let y = 2.0 - i as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.22), (*usd, y + 0.78)],
                colour.filled(),
            )))?;
            let (bx, by) = chart.backend_coord(&(*usd, y + 0.5));
            root.draw(&Text::new(
                format::usd(*usd),
                (bx + 8, by),
                style::left_middle(style::note()),
            ))?;
            root.draw(&Text::new(
                label.clone(),
                (plot.0.start - 10, by),
                style::right_middle(style::ticks()),
            ))?;
        }
        Ok(())
    })?;
    Ok(Figure {
        id: id.into(),
        title: "Cost breakdown".into(),
        caption: format!(
            "Total {}: compute is the billed duration ({} s over {} requests) times the {} GB configured per function at the GB-second price; requests at $0.20 per million; Step Functions Standard state transitions at $0.000025 each.",
            format::usd(p.cost_usd),
            format::sig(p.duration_seconds, 4),
            format::thousands(p.requests),
            format::sig(p.memory_gb, 3)
        ),
        svg,
    })
}
