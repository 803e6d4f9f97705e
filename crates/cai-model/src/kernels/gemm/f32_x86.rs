//! f32 micro-kernels for x86-64: AVX-512F (14 rows x 32 columns) and AVX2+FMA (6 x 16).
//!
//! Each computes one `MR x NR` tile of `C (+)= A · B` over `kc` steps, with A packed as
//! `[kc][MR]` (so the row values of one step are adjacent and broadcast straight from
//! memory) and B read from pre-packed 16-column panels. Accumulators stay in registers for
//! the whole `kc` loop; the bias is added on the way out. Register budget: AVX-512 has 32
//! vector registers (28 accumulators + 2 B vectors + broadcasts), AVX2 16 (12 + 2 + 1).

use super::Tile;
use std::arch::x86_64::*;

/// AVX-512: rows per tile.
pub const MR_512: usize = 14;
/// AVX2: rows per tile.
pub const MR_256: usize = 6;

#[inline(always)]
fn mask16(cols: usize) -> u16 {
    if cols >= 16 {
        u16::MAX
    } else {
        ((1u32 << cols) - 1) as u16
    }
}

/// # Safety
/// AVX-512F must be available; the tile's pointers must cover `MR` rows, `kc` steps and
/// `cols` columns (B panels are zero-padded to 16 columns).
#[target_feature(enable = "avx512f")]
unsafe fn tile512<const MR: usize, const NV: usize>(t: &Tile) {
    let masks = [mask16(t.cols), mask16(t.cols.saturating_sub(16))];
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    if t.init {
        for (i, row) in acc.iter_mut().enumerate() {
            for (v, r) in row.iter_mut().enumerate() {
                *r = _mm512_maskz_loadu_ps(masks[v], t.c.add(i * t.ldc + v * 16));
            }
        }
    }
    // Four k steps per iteration: each row's address is computed once for four broadcasts
    // (a row pointer chain per step measured as the loop's bottleneck).
    let (mut a, mut b) = (t.a, t.b);
    let mut left = t.kc;
    while left >= 4 {
        let mut rows = [a; MR];
        for (i, r) in rows.iter_mut().enumerate() {
            *r = a.add(i * t.a_row);
        }
        for u in 0..4 {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_load_ps(b.add(v * t.b_stride + 16 * u));
            }
            for (row, r) in acc.iter_mut().zip(&rows) {
                let av = _mm512_set1_ps(*r.add(u));
                for (v, x) in row.iter_mut().enumerate() {
                    *x = _mm512_fmadd_ps(av, bv[v], *x);
                }
            }
        }
        a = a.add(4);
        b = b.add(64);
        left -= 4;
    }
    for _ in 0..left {
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm512_load_ps(b.add(v * t.b_stride));
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(i * t.a_row));
            for (v, r) in row.iter_mut().enumerate() {
                *r = _mm512_fmadd_ps(av, bv[v], *r);
            }
        }
        a = a.add(1);
        b = b.add(16);
    }
    if !t.bias.is_null() {
        for v in 0..NV {
            let bb = _mm512_maskz_loadu_ps(masks[v], t.bias.add(v * 16));
            for row in acc.iter_mut() {
                row[v] = _mm512_add_ps(row[v], bb);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (v, r) in row.iter().enumerate() {
            _mm512_mask_storeu_ps(t.c.add(i * t.ldc + v * 16), masks[v], *r);
        }
    }
}

/// Runs an AVX-512 tile of `mr` rows (1..=14) and up to 32 columns.
///
/// # Safety
/// As [`tile512`].
pub unsafe fn tile_avx512(mr: usize, t: &Tile) {
    macro_rules! go {
        ($($n:literal)*) => {
            match (mr, t.cols > 16) {
                $(($n, true) => tile512::<$n, 2>(t), ($n, false) => tile512::<$n, 1>(t),)*
                _ => unreachable!("AVX-512 tile of {mr} rows"),
            }
        };
    }
    go!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
}

/// Lanes `0..cols` (at most 8) of an AVX2 load or store mask: the partial last columns of a
/// tile, shared by the f32 and int8 kernels.
#[inline(always)]
pub(super) unsafe fn mask8(cols: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(cols.min(8) as i32), idx)
}

/// # Safety
/// AVX2 and FMA must be available; pointers as for [`tile512`], 16 columns at most.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile256<const MR: usize>(t: &Tile) {
    let full = t.cols >= 16;
    let masks = [mask8(t.cols), mask8(t.cols.saturating_sub(8))];
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    if t.init {
        for (i, row) in acc.iter_mut().enumerate() {
            for (v, r) in row.iter_mut().enumerate() {
                let p = t.c.add(i * t.ldc + v * 8);
                *r = if full {
                    _mm256_loadu_ps(p)
                } else {
                    _mm256_maskload_ps(p, masks[v])
                };
            }
        }
    }
    let (mut a, mut b) = (t.a, t.b);
    let mut left = t.kc;
    while left >= 4 {
        let mut rows = [a; MR];
        for (i, r) in rows.iter_mut().enumerate() {
            *r = a.add(i * t.a_row);
        }
        for u in 0..4 {
            let b0 = _mm256_load_ps(b.add(16 * u));
            let b1 = _mm256_load_ps(b.add(16 * u + 8));
            for (row, r) in acc.iter_mut().zip(&rows) {
                let av = _mm256_broadcast_ss(&*r.add(u));
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        }
        a = a.add(4);
        b = b.add(64);
        left -= 4;
    }
    for _ in 0..left {
        let b0 = _mm256_load_ps(b);
        let b1 = _mm256_load_ps(b.add(8));
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(i * t.a_row));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
        a = a.add(1);
        b = b.add(16);
    }
    if !t.bias.is_null() {
        for v in 0..2 {
            let bb = _mm256_maskload_ps(t.bias.add(v * 8), masks[v]);
            for row in acc.iter_mut() {
                row[v] = _mm256_add_ps(row[v], bb);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (v, r) in row.iter().enumerate() {
            let p = t.c.add(i * t.ldc + v * 8);
            if full {
                _mm256_storeu_ps(p, *r);
            } else {
                _mm256_maskstore_ps(p, masks[v], *r);
            }
        }
    }
}

/// Runs an AVX2 tile of `mr` rows (1..=6) and up to 16 columns.
///
/// # Safety
/// As [`tile256`].
pub unsafe fn tile_avx2(mr: usize, t: &Tile) {
    match mr {
        1 => tile256::<1>(t),
        2 => tile256::<2>(t),
        3 => tile256::<3>(t),
        4 => tile256::<4>(t),
        5 => tile256::<5>(t),
        6 => tile256::<6>(t),
        _ => unreachable!("AVX2 tile of {mr} rows"),
    }
}
