//! 16 x 16 transposes between token-major rows and the tokens-as-lanes layout the PCM and
//! attention kernels compute in. Element by element, these moves took more of the PCM's
//! time than its multiply-adds; in registers they are 64 shuffles per tile at AVX-512, 96 at AVX2.

use crate::isa::{self, Isa};

/// Rows and columns of one tile.
pub const N: usize = 16;

/// `out[c][r] = src[r * stride + c]` for `r, c < 16`.
pub fn transpose16(src: &[f32], stride: usize, out: &mut [[f32; N]; N]) {
    assert!(
        stride >= N && src.len() >= (N - 1) * stride + N,
        "transpose: source too short"
    );
    match isa::current() {
        // SAFETY: the level is only ever one this CPU supports; `src` covers 16 rows of 16
        // (asserted) and `out` is 16 x 16.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::transpose16_avx512(src.as_ptr(), stride, out) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::transpose16_avx2(src.as_ptr(), stride, out) },
        _ => {
            for (c, col) in out.iter_mut().enumerate() {
                for (r, v) in col.iter_mut().enumerate() {
                    *v = src[r * stride + c];
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::N;
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512F must be available; `src` must cover 16 rows of 16 values, `stride` apart.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose16_avx512(src: *const f32, stride: usize, out: &mut [[f32; N]; N]) {
        let r: [__m512; N] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * stride)));
        // Pairs of rows interleaved within each 128-bit lane ...
        let t: [__m512; N] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // ... then 4 x 4 blocks: u[4q + j], lane L, holds rows 4q..4q+4 of column 4L + j ...
        let u: [__m512; N] = std::array::from_fn(|i| {
            let (q, j) = (i / 4, i % 4);
            let (a, b) = (t[4 * q + j / 2], t[4 * q + 2 + j / 2]);
            if j % 2 == 0 {
                _mm512_shuffle_ps::<0x44>(a, b)
            } else {
                _mm512_shuffle_ps::<0xEE>(a, b)
            }
        });
        // ... then the 128-bit lanes gathered: column 4L + j is lane L of u[j], u[4 + j],
        // u[8 + j], u[12 + j].
        for j in 0..4 {
            let a = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
            let b = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
            let c = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
            let d = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
            _mm512_storeu_ps(out[j].as_mut_ptr(), _mm512_shuffle_f32x4::<0x88>(a, c));
            _mm512_storeu_ps(out[4 + j].as_mut_ptr(), _mm512_shuffle_f32x4::<0x88>(b, d));
            _mm512_storeu_ps(out[8 + j].as_mut_ptr(), _mm512_shuffle_f32x4::<0xDD>(a, c));
            _mm512_storeu_ps(out[12 + j].as_mut_ptr(), _mm512_shuffle_f32x4::<0xDD>(b, d));
        }
    }

    /// # Safety
    /// AVX2 must be available; `src` as for [`transpose16_avx512`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn transpose16_avx2(src: *const f32, stride: usize, out: &mut [[f32; N]; N]) {
        for rb in [0, 8] {
            for cb in [0, 8] {
                let r: [__m256; 8] =
                    std::array::from_fn(|i| _mm256_loadu_ps(src.add((rb + i) * stride + cb)));
                let t: [__m256; 8] = std::array::from_fn(|i| {
                    let (a, b) = (r[i & !1], r[i | 1]);
                    if i % 2 == 0 {
                        _mm256_unpacklo_ps(a, b)
                    } else {
                        _mm256_unpackhi_ps(a, b)
                    }
                });
                // u[4q + j], lane L: rows 4q..4q+4 of column 4L + j.
                let u: [__m256; 8] = std::array::from_fn(|i| {
                    let (q, j) = (i / 4, i % 4);
                    let (a, b) = (t[4 * q + j / 2], t[4 * q + 2 + j / 2]);
                    if j % 2 == 0 {
                        _mm256_shuffle_ps::<0x44>(a, b)
                    } else {
                        _mm256_shuffle_ps::<0xEE>(a, b)
                    }
                });
                for j in 0..4 {
                    let lo = _mm256_permute2f128_ps::<0x20>(u[j], u[4 + j]);
                    let hi = _mm256_permute2f128_ps::<0x31>(u[j], u[4 + j]);
                    _mm256_storeu_ps(out[cb + j][rb..].as_mut_ptr(), lo);
                    _mm256_storeu_ps(out[cb + 4 + j][rb..].as_mut_ptr(), hi);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_transposes() {
        let stride = 21;
        let src: Vec<f32> = (0..15 * stride + 16).map(|i| i as f32).collect();
        for level in Isa::available() {
            let mut out = [[0.0; N]; N];
            isa::with_isa(level, || transpose16(&src, stride, &mut out));
            for (c, col) in out.iter().enumerate() {
                for (r, v) in col.iter().enumerate() {
                    assert_eq!(*v, src[r * stride + c], "{level}: row {r} column {c}");
                }
            }
        }
    }
}
