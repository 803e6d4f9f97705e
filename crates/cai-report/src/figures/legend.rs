//! Legends and text boxes placed where they never cover data: a strip of entries above a
//! plot, and boxes of `key = value` lines in a corner the figure chooses. Drawn with plotters'
//! elements, laid out from estimated text widths.

use plotters::prelude::*;

use super::style;
use super::{Area, Drawn};

/// How an entry is drawn in front of its label.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// A filled square (bars, density cells).
    Swatch(RGBColor),
    /// A solid line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A filled circle (markers).
    Dot(RGBColor),
    /// A light band (a shaded range).
    Band(RGBColor),
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// How it is drawn.
    pub mark: Mark,
    /// What it means.
    pub label: String,
}

impl Entry {
    /// An entry.
    pub fn new(mark: Mark, label: impl Into<String>) -> Entry {
        Entry {
            mark,
            label: label.into(),
        }
    }
}

const MARK_W: i32 = 26;
const GAP: i32 = 8;
const SPACING: i32 = 26;
/// Height of one line of legend entries, px.
pub const LINE_H: i32 = 26;

/// Lines of entries needed to lay `entries` out in `width` px.
pub fn lines_needed(entries: &[Entry], width: i32) -> i32 {
    layout(entries, width).last().map_or(0, |e| e.1 + 1)
}

fn entry_width(e: &Entry) -> i32 {
    MARK_W + GAP + style::text_width(&e.label, 17.0)
}

/// (x, line) of each entry, left-aligned, wrapping at `width`.
fn layout(entries: &[Entry], width: i32) -> Vec<(i32, i32)> {
    let mut out = Vec::with_capacity(entries.len());
    let (mut x, mut line) = (0, 0);
    for e in entries {
        let w = entry_width(e);
        if x > 0 && x + w > width {
            x = 0;
            line += 1;
        }
        out.push((x, line));
        x += w + SPACING;
    }
    out
}

/// Draws `entries` in rows starting at (`x0`, `y0`) (top-left), wrapping at `width`.
pub fn strip(area: &Area<'_>, entries: &[Entry], x0: i32, y0: i32, width: i32) -> Drawn {
    for (e, (x, line)) in entries.iter().zip(layout(entries, width)) {
        let x = x0 + x;
        let y = y0 + line * LINE_H + LINE_H / 2;
        draw_mark(area, e.mark, x, y)?;
        area.draw(&Text::new(
            e.label.clone(),
            (x + MARK_W + GAP, y),
            style::left_middle(style::note()),
        ))?;
    }
    Ok(())
}

fn draw_mark(area: &Area<'_>, mark: Mark, x: i32, y: i32) -> Drawn {
    match mark {
        Mark::Swatch(c) => area.draw(&Rectangle::new(
            [(x + 4, y - 8), (x + MARK_W - 4, y + 8)],
            c.filled(),
        )),
        Mark::Band(c) => area.draw(&Rectangle::new(
            [(x, y - 9), (x + MARK_W, y + 9)],
            c.filled(),
        )),
        Mark::Line(c) => area.draw(&PathElement::new(
            vec![(x, y), (x + MARK_W, y)],
            c.stroke_width(3),
        )),
        Mark::Dashed(c) => {
            for k in 0..3 {
                let a = x + k * 10;
                area.draw(&PathElement::new(
                    vec![(a, y), (a + 6, y)],
                    c.stroke_width(3),
                ))?;
            }
            Ok(())
        }
        Mark::Dot(c) => area.draw(&Circle::new((x + MARK_W / 2, y), 5, c.filled())),
    }
}

/// Which corner of the plot a text box sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    /// Upper left.
    TopLeft,
    /// Upper right.
    TopRight,
}

/// Draws `lines` in a white box with a thin border inside the pixel rectangle `plot`
/// (x range, y range), in `corner`.
pub fn text_box(
    area: &Area<'_>,
    lines: &[String],
    plot: (std::ops::Range<i32>, std::ops::Range<i32>),
    corner: Corner,
) -> Drawn {
    let line_h = 22;
    let pad = 10;
    let w = lines
        .iter()
        .map(|l| style::text_width(l, 17.0))
        .max()
        .unwrap_or(0)
        + 2 * pad;
    let h = lines.len() as i32 * line_h + 2 * pad - 4;
    let x0 = match corner {
        Corner::TopLeft => plot.0.start + 12,
        Corner::TopRight => plot.0.end - 12 - w,
    };
    let y0 = plot.1.start + 12;
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        WHITE.mix(0.88).filled(),
    ))?;
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        style::GREY.stroke_width(1),
    ))?;
    for (i, l) in lines.iter().enumerate() {
        area.draw(&Text::new(
            l.clone(),
            (x0 + pad, y0 + pad + i as i32 * line_h + line_h / 2 - 2),
            style::left_middle(style::note()),
        ))?;
    }
    Ok(())
}
