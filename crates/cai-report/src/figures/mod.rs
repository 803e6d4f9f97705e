//! The figures, one file each, drawn with plotters' SVG backend. Every figure is an SVG
//! string with its id, title and caption; the page inlines them and `--figures` writes them
//! as files.

pub mod cost;
pub mod density;
pub mod dz;
pub mod legend;
pub mod ranks;
pub mod rich;
pub mod s3;
pub mod scaling;
pub mod series;
pub mod style;
pub mod timeline;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::ReportError;

/// A drawing area of the SVG backend in pixel coordinates.
pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// What drawing on an SVG area returns.
pub type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// One figure, ready to inline or save.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Stable id, also the file name under `--figures` (e.g. `accuracy-density`).
    pub id: String,
    /// Title shown above it.
    pub title: String,
    /// Caption: what is drawn and how to read it.
    pub caption: String,
    /// The standalone SVG document.
    pub svg: String,
}

/// Draws a `width` x `height` px SVG with `draw` on a white background and returns it, with
/// the subscripts set.
pub fn canvas(
    id: &str,
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> Drawn,
) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let result = root
            .fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present());
        result.map_err(|e| ReportError::Draw {
            figure: id.to_string(),
            why: e.to_string(),
        })?;
    }
    Ok(rich::subscripts(&svg))
}
