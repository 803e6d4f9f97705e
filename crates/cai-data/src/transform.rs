//! Streaming split and format conversion of partition files.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::format::Format;
use crate::partition::{Partition, Which};
use crate::writer::PartitionWriter;
use crate::Progress;

/// Rows copied per read/write step.
const STEP_ROWS: usize = 512;

/// Splits `input` (either format) into `1.<ext> .. K.<ext>` of about `partition_mb`
/// MiB each, in the input's format; returns the paths written.
pub fn split(
    input: &Path,
    out_dir: &Path,
    partition_mb: f64,
    progress: Progress,
) -> Result<Vec<PathBuf>, DataError> {
    let src = Partition::open(input)?;
    if partition_mb <= 0.0 {
        return Err(DataError::Invalid("partition size must be positive".into()));
    }
    let [c, h, w] = src.image_shape();
    let sample =
        c * h * w * 4 + src.magnitude_width() * 8 + if src.has_redshifts() { 4 } else { 0 };
    let per = ((partition_mb * (1u64 << 20) as f64) / sample as f64)
        .floor()
        .max(1.0) as usize;
    std::fs::create_dir_all(out_dir).map_err(|e| DataError::io(out_dir.display(), e))?;
    let mut paths = Vec::new();
    for (k, start) in (0..src.len()).step_by(per).enumerate() {
        let path = out_dir.join(format!("{}.{}", k + 1, src.format().extension()));
        let rows = start..(start + per).min(src.len());
        copy_rows(&src, rows.clone(), &path, src.format())?;
        progress(rows.end as u64, src.len() as u64);
        paths.push(path);
    }
    Ok(paths)
}

/// Converts between `.pt` and `.safetensors`; the output format follows `output`'s
/// extension.
pub fn convert(input: &Path, output: &Path, progress: Progress) -> Result<(), DataError> {
    let format = Format::from_extension(output).ok_or_else(|| {
        DataError::Invalid(format!(
            "{}: output extension must be .pt or .safetensors",
            output.display()
        ))
    })?;
    let src = Partition::open(input)?;
    copy_rows(&src, 0..src.len(), output, format)?;
    progress(src.len() as u64, src.len() as u64);
    Ok(())
}

/// Writes rows `rows` of `src` to `path`, one tensor after another, `STEP_ROWS` at a time.
fn copy_rows(
    src: &Partition,
    rows: Range<usize>,
    path: &Path,
    format: Format,
) -> Result<(), DataError> {
    let mut w = PartitionWriter::create(
        path,
        format,
        rows.len(),
        src.image_shape(),
        src.magnitude_width(),
        src.has_redshifts(),
    )?;
    let mut f32s: Vec<f32> = Vec::new();
    let mut f64s: Vec<f64> = Vec::new();
    let steps = || {
        (rows.start..rows.end)
            .step_by(STEP_ROWS)
            .map(|s| s..(s + STEP_ROWS).min(rows.end))
    };
    for r in steps() {
        src.read_tensor(Which::Images, r, &mut f32s)?;
        w.write_f32(&f32s)?;
    }
    for r in steps() {
        src.read_tensor(Which::Magnitudes, r, &mut f64s)?;
        w.write_f64(&f64s)?;
    }
    if src.has_redshifts() {
        for r in steps() {
            src.read_tensor(Which::Redshifts, r, &mut f32s)?;
            w.write_f32(&f32s)?;
        }
    }
    w.finish()
}
