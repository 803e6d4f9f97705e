//! The portable f32 micro-kernel (4 rows x 16 columns): the `scalar` level, and the
//! reference the SIMD kernels are tested against. Plain Rust the compiler may vectorise
//! with the baseline instruction set only.

use super::Tile;

/// Rows per tile.
pub const MR: usize = 4;

/// Runs a tile of `mr` rows (1..=4) and up to 16 columns.
///
/// # Safety
/// The tile's pointers must cover `mr` rows, `kc` steps and `cols` columns.
pub unsafe fn tile(mr: usize, t: &Tile) {
    let mut acc = [[0.0f32; 16]; MR];
    if t.init {
        for (i, row) in acc.iter_mut().enumerate().take(mr) {
            for (j, v) in row.iter_mut().enumerate().take(t.cols) {
                *v = *t.c.add(i * t.ldc + j);
            }
        }
    }
    for p in 0..t.kc {
        let b = std::slice::from_raw_parts(t.b.add(p * 16), 16);
        for (i, row) in acc.iter_mut().enumerate().take(mr) {
            let a = *t.a.add(i * t.a_row + p);
            for (r, w) in row.iter_mut().zip(b) {
                *r += a * w;
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (j, v) in row.iter().enumerate().take(t.cols) {
            let bias = if t.bias.is_null() {
                0.0
            } else {
                *t.bias.add(j)
            };
            *t.c.add(i * t.ldc + j) = v + bias;
        }
    }
}
