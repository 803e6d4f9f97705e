//! GELU and SiLU written with x86 intrinsics: every constant held in a register, the
//! division done as a reciprocal estimate plus one Newton step, and (at AVX-512) `2^k` by
//! `vscalefps`. Left to the compiler, the polynomial loops re-broadcast their constants
//! from memory on every step and divide in full; GELU alone took 5% of a forward pass so.
//!
//! erf uses Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, the class of the portable
//! version's 1.2e-7), with `exp` by range reduction and a degree-6 polynomial.

use std::arch::x86_64::*;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
const EXP_POLY: [f32; 7] = [
    0.001_388_9,
    0.008_333_4,
    0.041_666_5,
    0.166_666_67,
    0.5,
    1.0,
    1.0,
];
/// A&S 7.1.26: `erf(z) = 1 - t·(a1 + t·(a2 + ...)) · e^{-z²}`, `t = 1 / (1 + P·z)`.
#[allow(clippy::excessive_precision)] // the published coefficients, kept as printed
const AS_P: f32 = 0.327_591_1;
#[allow(clippy::excessive_precision)] // as above
const AS_A: [f32; 5] = [
    1.061_405_429,
    -1.453_152_027,
    1.421_413_741,
    -0.284_496_736,
    0.254_829_592,
];

/// One vector type's worth of operations (AVX-512 or AVX2), so GELU and SiLU are written once.
macro_rules! kernels {
    ($feat:literal, $v:ty, $w:expr, $set1:ident, $load:ident, $store:ident, $fmadd:ident,
     $fnmadd:ident, $mul:ident, $add:ident, $sub:ident, $min:ident, $max:ident,
     $rcp:ident, $exp2:ident, $abs:ident, $copysign:ident,
     $gelu:ident, $silu:ident) => {
        /// `1/d` from the estimate plus one Newton step (~23 bits).
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn recip(d: $v) -> $v {
            let r = $rcp(d);
            let e = $fnmadd(d, r, $set1(1.0));
            $fmadd(r, e, r)
        }

        /// `e^x` for `x <= 0` (and the few positive values a clamp below 88 lets through).
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn exp(x: $v, c: &[$v; 7]) -> $v {
            let x = $max($min(x, $set1(88.0)), $set1(-87.0));
            let (k, r) = $exp2(x);
            let mut p = c[0];
            for ci in &c[1..] {
                p = $fmadd(p, r, *ci);
            }
            scale(p, k)
        }

        /// GELU in place, `$w` values per step.
        ///
        /// # Safety
        /// The CPU must have the features named above.
        #[target_feature(enable = $feat)]
        pub unsafe fn $gelu(xs: &mut [f32]) {
            let ec = EXP_POLY.map(|v| $set1(v));
            let ac = AS_A.map(|v| $set1(v));
            let (one, half, p) = ($set1(1.0), $set1(0.5), $set1(AS_P));
            let inv_sqrt2 = $set1(std::f32::consts::FRAC_1_SQRT_2);
            let one_value = |x: $v| {
                let xs = $mul(x, inv_sqrt2);
                let z = $abs(xs);
                let t = recip($fmadd(p, z, one));
                let mut poly = ac[0];
                for a in &ac[1..] {
                    poly = $fmadd(poly, t, *a);
                }
                poly = $mul(poly, t);
                let e = exp($mul($sub($set1(0.0), z), z), &ec);
                let erf = $copysign($fnmadd(poly, e, one), xs);
                let hx = $mul(half, x);
                $fmadd(hx, erf, hx)
            };
            let mut chunks = xs.chunks_exact_mut(2 * $w);
            for c in &mut chunks {
                let (a, b) = ($load(c.as_ptr()), $load(c.as_ptr().add($w)));
                let (a, b) = (one_value(a), one_value(b));
                $store(c.as_mut_ptr(), a);
                $store(c.as_mut_ptr().add($w), b);
            }
            tail(chunks.into_remainder(), one_value);
        }

        /// SiLU (`x·sigmoid(x)`) in place.
        ///
        /// # Safety
        /// The CPU must have the features named above.
        #[target_feature(enable = $feat)]
        pub unsafe fn $silu(xs: &mut [f32]) {
            let ec = EXP_POLY.map(|v| $set1(v));
            let one = $set1(1.0);
            let one_value = |x: $v| {
                let e = exp($sub($set1(0.0), x), &ec);
                $mul(x, recip($add(one, e)))
            };
            let mut chunks = xs.chunks_exact_mut($w);
            for c in &mut chunks {
                $store(c.as_mut_ptr(), one_value($load(c.as_ptr())));
            }
            tail(chunks.into_remainder(), one_value);
        }

        /// The last `< $w` values, through a full vector on the stack.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn tail(rest: &mut [f32], f: impl Fn($v) -> $v) {
            if rest.is_empty() {
                return;
            }
            let mut buf = [0.0f32; $w];
            buf[..rest.len()].copy_from_slice(rest);
            $store(buf.as_mut_ptr(), f($load(buf.as_ptr())));
            rest.copy_from_slice(&buf[..rest.len()]);
        }
    };
}

mod avx512 {
    use super::*;

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn exp2_512(x: __m512) -> (__m512, __m512) {
        // k = round(x·log2 e); r = x - k·ln 2 in two parts.
        let k = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_HI), x);
        (k, _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_LO), r))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn scale(p: __m512, k: __m512) -> __m512 {
        _mm512_scalef_ps(p, k)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn abs512(x: __m512) -> __m512 {
        _mm512_abs_ps(x)
    }

    /// `|m|` with the sign of `s`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn copysign512(m: __m512, s: __m512) -> __m512 {
        let sign = _mm512_set1_epi32(i32::MIN);
        // (m & !sign) | (s & sign), as one ternary logic op.
        _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0xE4>(
            _mm512_castps_si512(s),
            _mm512_castps_si512(m),
            sign,
        ))
    }

    kernels!(
        "avx512f",
        __m512,
        16,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_fnmadd_ps,
        _mm512_mul_ps,
        _mm512_add_ps,
        _mm512_sub_ps,
        _mm512_min_ps,
        _mm512_max_ps,
        _mm512_rcp14_ps,
        exp2_512,
        abs512,
        copysign512,
        gelu,
        silu
    );
}

mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn exp2_256(x: __m256) -> (__m256, __m256) {
        let k = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_HI), x);
        (k, _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_LO), r))
    }

    /// `p · 2^k` through the exponent bits (k is within -126..=127 after the clamp).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn scale(p: __m256, k: __m256) -> __m256 {
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(k),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(p, _mm256_castsi256_ps(bits))
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn abs256(x: __m256) -> __m256 {
        _mm256_andnot_ps(_mm256_set1_ps(-0.0), x)
    }

    /// `|m|` with the sign of `s`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn copysign256(m: __m256, s: __m256) -> __m256 {
        let sign = _mm256_set1_ps(-0.0);
        _mm256_or_ps(_mm256_andnot_ps(sign, m), _mm256_and_ps(sign, s))
    }

    kernels!(
        "avx2,fma",
        __m256,
        8,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_fnmadd_ps,
        _mm256_mul_ps,
        _mm256_add_ps,
        _mm256_sub_ps,
        _mm256_min_ps,
        _mm256_max_ps,
        _mm256_rcp_ps,
        exp2_256,
        abs256,
        copysign256,
        gelu,
        silu
    );
}

pub use avx2::{gelu as gelu_avx2, silu as silu_avx2};
pub use avx512::{gelu as gelu_avx512, silu as silu_avx512};
