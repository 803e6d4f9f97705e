//! bf16 and int8 micro-kernels for x86-64: AVX512_BF16 `vdpbf16ps` and AVX512_VNNI
//! `vpdpbusd` (14 rows x 32 columns, as the f32 kernel); AVX2 `vpmaddubsw` + `vpmaddwd`
//! (4 x 16; 7-bit weights keep its 16-bit pair sums from saturating, so it computes exactly
//! what VNNI does) and AVX2 bf16 by widening to f32 (4 x 16, the same roundings as
//! `vdpbf16ps`).

use super::f32_x86::mask8;
use super::quant::QTile;
use std::arch::x86_64::*;

/// AVX-512 rows per tile.
pub const MR_512: usize = 14;
/// AVX2 bf16 rows per tile (8 accumulators, 4 unpacked B vectors, 2 A vectors, a mask).
pub const MR_AVX2_BF16: usize = 4;
/// AVX2 int8 rows per tile (8 accumulators, 2 B vectors, temporaries and the ones vector).
pub const MR_AVX2_I8: usize = 4;

/// The tile's row starts, computed once (not as a pointer chain inside the k loop).
#[inline(always)]
fn row_pointers<const MR: usize>(t: &QTile) -> [*const u8; MR] {
    std::array::from_fn(|i| t.a.wrapping_add(i * t.a_row))
}

#[inline(always)]
fn mask16(cols: usize) -> u16 {
    if cols >= 16 {
        u16::MAX
    } else {
        ((1u32 << cols) - 1) as u16
    }
}

/// # Safety
/// AVX512F/BW/BF16 must be available; pointers as [`QTile`] describes.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn bf16_tile<const MR: usize, const NV: usize>(t: &QTile) {
    let masks = [mask16(t.cols), mask16(t.cols.saturating_sub(16))];
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    if t.init {
        for (i, row) in acc.iter_mut().enumerate() {
            for (v, r) in row.iter_mut().enumerate() {
                *r = _mm512_maskz_loadu_ps(masks[v], t.c.add(i * t.ldc + v * 16));
            }
        }
    }
    let rows = row_pointers::<MR>(t);
    for u in 0..t.units {
        let mut bv = [_mm512_setzero_si512(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm512_load_si512(t.b.add(v * t.b_stride + u * 64) as *const _);
        }
        for (row, r) in acc.iter_mut().zip(&rows) {
            let pair = (r.add(4 * u) as *const i32).read_unaligned();
            let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_dpbf16_ps(*x, av, std::mem::transmute::<__m512i, __m512bh>(bv[v]));
            }
        }
    }
    for v in 0..NV {
        if !t.bias.is_null() {
            let bb = _mm512_maskz_loadu_ps(masks[v], t.bias.add(v * 16));
            for row in acc.iter_mut() {
                row[v] = _mm512_add_ps(row[v], bb);
            }
        }
        for (i, row) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(t.c.add(i * t.ldc + v * 16), masks[v], row[v]);
        }
    }
}

/// AVX512_BF16 tile of `mr` rows (1..=14) and up to 32 columns.
///
/// # Safety
/// As [`bf16_tile`].
pub unsafe fn bf16_avx512(mr: usize, t: &QTile) {
    macro_rules! go {
        ($($n:literal)*) => {
            match (mr, t.cols > 16) {
                $(($n, true) => bf16_tile::<$n, 2>(t), ($n, false) => bf16_tile::<$n, 1>(t),)*
                _ => unreachable!("bf16 tile of {mr} rows"),
            }
        };
    }
    go!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
}

/// # Safety
/// AVX512F/BW/VNNI must be available; pointers as [`QTile`] describes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_tile<const MR: usize, const NV: usize>(t: &QTile) {
    let masks = [mask16(t.cols), mask16(t.cols.saturating_sub(16))];
    let mut acc = [[_mm512_setzero_si512(); NV]; MR];
    let rows = row_pointers::<MR>(t);
    for u in 0..t.units {
        let mut bv = [_mm512_setzero_si512(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm512_load_si512(t.b.add(v * t.b_stride + u * 64) as *const _);
        }
        for (row, r) in acc.iter_mut().zip(&rows) {
            let av = _mm512_set1_epi32((r.add(4 * u) as *const i32).read_unaligned());
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_dpbusd_epi32(*x, av, bv[v]);
            }
        }
    }
    for v in 0..NV {
        let comp = _mm512_maskz_loadu_epi32(masks[v], t.comp.add(v * 16));
        let cs = _mm512_maskz_loadu_ps(masks[v], t.col_scale.add(v * 16));
        let bias = if t.bias.is_null() {
            _mm512_setzero_ps()
        } else {
            _mm512_maskz_loadu_ps(masks[v], t.bias.add(v * 16))
        };
        for (i, row) in acc.iter().enumerate() {
            let s = _mm512_cvtepi32_ps(_mm512_sub_epi32(row[v], comp));
            let rs = _mm512_set1_ps(*t.row_scale.add(i));
            let mut y = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(s, cs), rs), bias);
            let c = t.c.add(i * t.ldc + v * 16);
            if t.init {
                y = _mm512_add_ps(_mm512_maskz_loadu_ps(masks[v], c), y);
            }
            _mm512_mask_storeu_ps(c, masks[v], y);
        }
    }
}

/// AVX512_VNNI tile of `mr` rows (1..=14) and up to 32 columns.
///
/// # Safety
/// As [`vnni_tile`].
pub unsafe fn i8_vnni(mr: usize, t: &QTile) {
    macro_rules! go {
        ($($n:literal)*) => {
            match (mr, t.cols > 16) {
                $(($n, true) => vnni_tile::<$n, 2>(t), ($n, false) => vnni_tile::<$n, 1>(t),)*
                _ => unreachable!("int8 tile of {mr} rows"),
            }
        };
    }
    go!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
}

/// # Safety
/// AVX2 and FMA must be available; pointers as [`QTile`] describes, 16 columns at most.
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_tile<const MR: usize>(t: &QTile) {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let rows = row_pointers::<MR>(t);
    for u in 0..t.units {
        let b0 = _mm256_load_si256(t.b.add(u * 64) as *const _);
        let b1 = _mm256_load_si256(t.b.add(u * 64 + 32) as *const _);
        for (row, r) in acc.iter_mut().zip(&rows) {
            let av = _mm256_set1_epi32((r.add(4 * u) as *const i32).read_unaligned());
            // u8 x s7 pairs fit i16 exactly (2 * 255 * 63 < 32767); then pairs to i32.
            let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones);
            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones);
            row[0] = _mm256_add_epi32(row[0], p0);
            row[1] = _mm256_add_epi32(row[1], p1);
        }
    }
    for v in 0..2 {
        let m = mask8(t.cols.saturating_sub(8 * v));
        let comp = _mm256_maskload_epi32(t.comp.add(8 * v), m);
        let cs = _mm256_maskload_ps(t.col_scale.add(8 * v), m);
        let bias = if t.bias.is_null() {
            _mm256_setzero_ps()
        } else {
            _mm256_maskload_ps(t.bias.add(8 * v), m)
        };
        for (i, row) in acc.iter().enumerate() {
            let s = _mm256_cvtepi32_ps(_mm256_sub_epi32(row[v], comp));
            let rs = _mm256_set1_ps(*t.row_scale.add(i));
            let mut y = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(s, cs), rs), bias);
            let c = t.c.add(i * t.ldc + 8 * v);
            if t.init {
                y = _mm256_add_ps(_mm256_maskload_ps(c, m), y);
            }
            _mm256_maskstore_ps(c, m, y);
        }
    }
}

/// AVX2 int8 tile of `mr` rows (1..=4) and up to 16 columns.
///
/// # Safety
/// As [`avx2_tile`].
pub unsafe fn i8_avx2(mr: usize, t: &QTile) {
    match mr {
        1 => avx2_tile::<1>(t),
        2 => avx2_tile::<2>(t),
        3 => avx2_tile::<3>(t),
        4 => avx2_tile::<4>(t),
        _ => unreachable!("AVX2 int8 tile of {mr} rows"),
    }
}

/// # Safety
/// AVX2 and FMA must be available; pointers as [`QTile`] describes, 16 columns at most.
#[target_feature(enable = "avx2,fma")]
unsafe fn bf16_avx2_tile<const MR: usize>(t: &QTile) {
    // bf16 -> f32 is a 16-bit shift: the even element of a pair is the low half (shift it
    // up), the odd one the high half (mask the low half off). Products of two bf16 values
    // are exact in f32, so each FMA rounds exactly like `vdpbf16ps`'s two adds (odd first).
    let high = _mm256_set1_epi32(0xffff_0000u32 as i32);
    let masks = [mask8(t.cols), mask8(t.cols.saturating_sub(8))];
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    if t.init {
        for (i, row) in acc.iter_mut().enumerate() {
            for (v, r) in row.iter_mut().enumerate() {
                *r = _mm256_maskload_ps(t.c.add(i * t.ldc + 8 * v), masks[v]);
            }
        }
    }
    let rows = row_pointers::<MR>(t);
    for u in 0..t.units {
        let b0 = _mm256_load_si256(t.b.add(u * 64) as *const _);
        let b1 = _mm256_load_si256(t.b.add(u * 64 + 32) as *const _);
        let be = [
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(b0)),
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(b1)),
        ];
        let bo = [
            _mm256_castsi256_ps(_mm256_and_si256(b0, high)),
            _mm256_castsi256_ps(_mm256_and_si256(b1, high)),
        ];
        for (row, r) in acc.iter_mut().zip(&rows) {
            let pair = _mm256_set1_epi32((r.add(4 * u) as *const i32).read_unaligned());
            let ae = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(pair));
            let ao = _mm256_castsi256_ps(_mm256_and_si256(pair, high));
            for v in 0..2 {
                row[v] = _mm256_fmadd_ps(ao, bo[v], row[v]);
                row[v] = _mm256_fmadd_ps(ae, be[v], row[v]);
            }
        }
    }
    for v in 0..2 {
        let bias = if t.bias.is_null() {
            _mm256_setzero_ps()
        } else {
            _mm256_maskload_ps(t.bias.add(8 * v), masks[v])
        };
        for (i, row) in acc.iter().enumerate() {
            let y = _mm256_add_ps(row[v], bias);
            _mm256_maskstore_ps(t.c.add(i * t.ldc + 8 * v), masks[v], y);
        }
    }
}

/// AVX2 bf16 tile (for CPUs without AVX512_BF16) of `mr` rows (1..=4), up to 16 columns.
///
/// # Safety
/// As [`bf16_avx2_tile`].
pub unsafe fn bf16_avx2(mr: usize, t: &QTile) {
    match mr {
        1 => bf16_avx2_tile::<1>(t),
        2 => bf16_avx2_tile::<2>(t),
        3 => bf16_avx2_tile::<3>(t),
        4 => bf16_avx2_tile::<4>(t),
        _ => unreachable!("AVX2 bf16 tile of {mr} rows"),
    }
}
