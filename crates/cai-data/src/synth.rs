//! Deterministic synthetic partitions in the original layout, generated in parallel:
//! partition `k` depends only on `(seed, k)`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::DataError;
use crate::format::Format;
use crate::galaxy::{self, BANDS, SIDE};
use crate::writer::PartitionWriter;
use crate::Progress;

/// Bytes one sample occupies on disk: 5x32x32 float32 + 5 float64 + 1 float32.
pub const SAMPLE_BYTES: usize = BANDS * SIDE * SIDE * 4 + BANDS * 8 + 4;
const MIB: f64 = (1u64 << 20) as f64;
/// Samples generated per image write.
const CHUNK: usize = 256;

/// Writes `1.<ext> .. K.<ext>` totalling about `total_mb` MiB in partitions of about
/// `partition_mb` MiB; returns the paths in order.
pub fn synth(
    out_dir: &Path,
    total_mb: f64,
    partition_mb: f64,
    seed: u64,
    format: Format,
    progress: Progress,
) -> Result<Vec<PathBuf>, DataError> {
    if !(total_mb > 0.0 && partition_mb > 0.0) {
        return Err(DataError::Invalid("sizes must be positive".into()));
    }
    let total = ((total_mb * MIB) / SAMPLE_BYTES as f64).round().max(1.0) as usize;
    let per = ((partition_mb * MIB) / SAMPLE_BYTES as f64)
        .floor()
        .max(1.0) as usize;
    let count = total.div_ceil(per);
    std::fs::create_dir_all(out_dir).map_err(|e| DataError::io(out_dir.display(), e))?;
    let done = AtomicU64::new(0);
    let paths: Vec<PathBuf> = (0..count)
        .map(|k| out_dir.join(format!("{}.{}", k + 1, format.extension())))
        .collect();
    paths.par_iter().enumerate().try_for_each(|(k, path)| {
        let rows = per.min(total - k * per);
        synth_partition(path, k as u64, rows, seed, format)?;
        let d = done.fetch_add(rows as u64, Ordering::Relaxed) + rows as u64;
        progress(d, total as u64);
        Ok::<_, DataError>(())
    })?;
    Ok(paths)
}

/// Writes one synthetic partition of `rows` samples, reproducibly from `(seed, index)`.
pub fn synth_partition(
    path: &Path,
    index: u64,
    rows: usize,
    seed: u64,
    format: Format,
) -> Result<(), DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let mut w = PartitionWriter::create(path, format, rows, [BANDS, SIDE, SIDE], BANDS, true)?;
    let mut mags = vec![0f64; rows * BANDS];
    let mut zs = vec![0f32; rows];
    let mut images = vec![0f32; CHUNK * BANDS * SIDE * SIDE];
    let per_image = BANDS * SIDE * SIDE;
    for start in (0..rows).step_by(CHUNK) {
        let n = CHUNK.min(rows - start);
        for i in 0..n {
            let row = start + i;
            zs[row] = galaxy::draw(
                &mut rng,
                &mut images[i * per_image..(i + 1) * per_image],
                &mut mags[row * BANDS..(row + 1) * BANDS],
            );
        }
        w.write_f32(&images[..n * per_image])?;
    }
    w.write_f64(&mags)?;
    w.write_f32(&zs)?;
    w.finish()
}
