//! The AArch64 NEON f32 micro-kernel: 6 rows x 16 columns (24 accumulators of the 32
//! vector registers, 4 for the B panel row, the rest for broadcasts).

use super::Tile;
use std::arch::aarch64::*;

/// Rows per tile.
pub const MR: usize = 6;

/// # Safety
/// NEON must be available; pointers as for the x86 kernels, 16 columns at most.
#[target_feature(enable = "neon")]
unsafe fn tile_n<const R: usize>(t: &Tile) {
    let full = t.cols >= 16;
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    let mut buf = [0.0f32; 16];
    if t.init {
        for (i, row) in acc.iter_mut().enumerate() {
            let p = t.c.add(i * t.ldc);
            let src = if full {
                p as *const f32
            } else {
                buf = [0.0; 16];
                std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), t.cols);
                buf.as_ptr()
            };
            for (v, r) in row.iter_mut().enumerate() {
                *r = vld1q_f32(src.add(4 * v));
            }
        }
    }
    let (mut a, mut b) = (t.a, t.b);
    for _ in 0..t.kc {
        let bv = [
            vld1q_f32(b),
            vld1q_f32(b.add(4)),
            vld1q_f32(b.add(8)),
            vld1q_f32(b.add(12)),
        ];
        for (i, row) in acc.iter_mut().enumerate() {
            let av = vld1q_dup_f32(a.add(i * t.a_row));
            for (r, w) in row.iter_mut().zip(bv) {
                *r = vfmaq_f32(*r, av, w);
            }
        }
        a = a.add(1);
        b = b.add(16);
    }
    if !t.bias.is_null() {
        buf = [0.0; 16];
        std::ptr::copy_nonoverlapping(t.bias, buf.as_mut_ptr(), t.cols.min(16));
        for v in 0..4 {
            let bb = vld1q_f32(buf.as_ptr().add(4 * v));
            for row in acc.iter_mut() {
                row[v] = vaddq_f32(row[v], bb);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        let p = t.c.add(i * t.ldc);
        if full {
            for (v, r) in row.iter().enumerate() {
                vst1q_f32(p.add(4 * v), *r);
            }
        } else {
            for (v, r) in row.iter().enumerate() {
                vst1q_f32(buf.as_mut_ptr().add(4 * v), *r);
            }
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, t.cols);
        }
    }
}

/// Runs a NEON tile of `mr` rows (1..=6) and up to 16 columns.
///
/// # Safety
/// As [`tile_n`].
pub unsafe fn tile(mr: usize, t: &Tile) {
    match mr {
        1 => tile_n::<1>(t),
        2 => tile_n::<2>(t),
        3 => tile_n::<3>(t),
        4 => tile_n::<4>(t),
        5 => tile_n::<5>(t),
        6 => tile_n::<6>(t),
        _ => unreachable!("NEON tile of {mr} rows"),
    }
}
