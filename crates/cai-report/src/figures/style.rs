//! One look for every figure: the Okabe-Ito colour-blind-safe palette, type sizes that stay
//! readable when a figure is shrunk onto a slide, thin light grid lines.

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Font family: the browser's (or the SVG viewer's) sans-serif.
pub const FONT: &str = "sans-serif";
/// Figure width, px (the page shows figures at about this size).
pub const WIDTH: u32 = 960;

/// Text and axes.
pub const INK: RGBColor = RGBColor(33, 33, 33);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(226, 226, 226);
/// Okabe-Ito blue.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
/// Okabe-Ito sky blue.
pub const SKY: RGBColor = RGBColor(86, 180, 233);
/// Okabe-Ito bluish green.
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
/// Okabe-Ito orange.
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
/// Okabe-Ito vermillion.
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
/// Okabe-Ito reddish purple.
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
/// Okabe-Ito yellow.
pub const YELLOW: RGBColor = RGBColor(240, 228, 66);
/// Neutral grey for "the rest".
pub const GREY: RGBColor = RGBColor(187, 187, 187);
/// A shaded range behind data.
pub const BAND: RGBColor = RGBColor(222, 222, 222);
/// Dark grey for handlers other than inference.
pub const DARK: RGBColor = RGBColor(85, 85, 85);
/// Series colours in order, for lines that have no meaning of their own.
pub const SERIES: [RGBColor; 7] = [BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, DARK];

/// The axes of every chart: titles and tick labels in the house type, x ticks written as the
/// page writes numbers, no minor grid, a faint major one. Callers add their titles and their
/// own y labels (or none).
pub fn axes<'m, 'a, 'b, X, Y, DB>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged,
    DB: DrawingBackend,
{
    mesh.axis_desc_style(axis_title())
        .label_style(ticks())
        .x_label_formatter(&tick_label)
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
}

/// A tick value as the page writes numbers.
pub fn tick_label(v: &f64) -> String {
    crate::format::tick(*v)
}

/// A tick on a rank axis: whole ranks only (a rank has no fractions).
pub fn rank_label(v: &f64) -> String {
    if v.fract() == 0.0 {
        crate::format::tick(*v)
    } else {
        String::new()
    }
}

/// Axis titles.
pub fn axis_title() -> TextStyle<'static> {
    (FONT, 21).into_font().color(&INK)
}

/// Tick labels.
pub fn ticks() -> TextStyle<'static> {
    (FONT, 18).into_font().color(&INK)
}

/// Legends, boxes and annotations.
pub fn note() -> TextStyle<'static> {
    (FONT, 17).into_font().color(&INK)
}

/// Panel titles in multi-panel figures.
pub fn panel_title() -> TextStyle<'static> {
    (FONT, 20).into_font().style(FontStyle::Bold).color(&INK)
}

/// A warning line (untrained weights).
pub fn warning() -> TextStyle<'static> {
    (FONT, 20)
        .into_font()
        .style(FontStyle::Bold)
        .color(&VERMILLION)
}

/// `style` anchored at its left end, vertically centred.
pub fn left_middle(style: TextStyle<'static>) -> TextStyle<'static> {
    style.pos(Pos::new(HPos::Left, VPos::Center))
}

/// `style` anchored at its centre.
pub fn centred(style: TextStyle<'static>) -> TextStyle<'static> {
    style.pos(Pos::new(HPos::Center, VPos::Center))
}

/// `style` anchored at its right end, vertically centred.
pub fn right_middle(style: TextStyle<'static>) -> TextStyle<'static> {
    style.pos(Pos::new(HPos::Right, VPos::Center))
}

/// Rough width of `text` in px at plotters size `size` (SVG text is laid out by the
/// viewer; DejaVu/Liberation Sans average about 0.55 em a character).
pub fn text_width(text: &str, size: f64) -> i32 {
    let chars = crate::figures::rich::visible_chars(text);
    (chars as f64 * size / 1.24 * 0.56).ceil() as i32
}
