//! Figure: time each rank spent in store (S3) requests, from the timing keys the original's
//! newer worker introduced (`s3_num_requests`, `s3_total_time`, ...), drawn when any rank
//! recorded them.

use plotters::prelude::*;

use super::legend;
use super::{canvas, series, style, Figure};
use crate::error::ReportError;
use crate::format;
use crate::run::RunData;

/// The figure; None when no rank recorded store requests.
pub fn figure(run: &RunData) -> Result<Option<Figure>, ReportError> {
    let rows: Vec<(f64, f64, f64, u64)> = run
        .ranks
        .iter()
        .filter_map(|r| {
            let s = r.s3.as_ref()?;
            Some((
                r.rank as f64,
                s.s3_total_time,
                s.s3_max_time,
                s.s3_num_requests,
            ))
        })
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let id = "s3";
    let top = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-6) * 1.15;
    let max_rank = rows.iter().map(|r| r.0).fold(0.0, f64::max);
    let pad = (max_rank * 0.02).max(0.5);
    let rank_ticks = super::ranks::rank_ticks(max_rank);
    let mut entries = series::entries(rows.len(), "total time in requests", style::SKY);
    entries.extend(series::entries(
        rows.len(),
        "slowest request",
        style::ORANGE,
    ));
    let w = style::WIDTH;
    let head = 10 + legend::lines_needed(&entries, w as i32 - 100) * legend::LINE_H;
    let h = 430 + head as u32;
    let svg = canvas(id, w, h, |root| {
        legend::strip(root, &entries, 90, 10, w as i32 - 100)?;
        let (_, body) = root.split_vertically(head);
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(64)
            .y_label_area_size(90)
            .build_cartesian_2d(-pad..max_rank + pad, 0f64..top)?;
        style::axes(&mut chart.configure_mesh())
            .x_desc("Rank")
            .y_desc("Store request time (s)")
            .x_labels(rank_ticks)
            .x_label_formatter(&style::rank_label)
            .y_label_formatter(&style::tick_label)
            .draw()?;
        for (pick, colour) in [(1usize, style::SKY), (2, style::ORANGE)] {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| (r.0, if pick == 1 { r.1 } else { r.2 }))
                .collect();
            series::draw(&mut chart, &pts, colour)?;
        }
        Ok(())
    })?;
    let requests: u64 = rows.iter().map(|r| r.3).sum();
    let total: f64 = rows.iter().map(|r| r.1).sum();
    Ok(Some(Figure {
        id: id.into(),
        title: "Store (S3) requests per rank".into(),
        caption: format!(
            "{} requests by {} ranks took {} in all ({} per request on average), as recorded under the original's keys s3_num_requests and s3_total_time; orange is each rank's slowest request (s3_max_time).",
            format::thousands(requests),
            format::thousands(rows.len() as u64),
            format::secs(total),
            format::secs(total / requests.max(1) as f64)
        ),
        svg,
    }))
}
