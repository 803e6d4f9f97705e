//! Element-wise activations, vectorised at the thread's ISA level.
//!
//! `erf` and `exp` are written as polynomials so the compiler can vectorise the loops; calls
//! into libm would keep them scalar. Accuracy is ~1e-7 absolute, the same class as PyTorch's
//! own vectorised versions.

use crate::isa::{self, Isa};

#[cfg(target_arch = "x86_64")]
mod x86;

/// Which activation a fused linear applies to its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// No activation: plain affine output.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// GELU in its exact (erf) form, as `nn.GELU()` defaults to.
    Gelu,
    /// `x * sigmoid(x)`.
    Silu,
}

/// Applies `act` to every element in place.
pub fn apply(act: Activation, xs: &mut [f32]) {
    match act {
        Activation::Identity => {}
        Activation::Relu => relu(xs),
        Activation::Gelu | Activation::Silu => transcendental(act, xs),
    }
}

at_isa_level! {
    /// At the thread's ISA level (see `at_isa_level!`).
    fn relu(xs: &mut [f32]) = relu_body;
}

#[inline(always)]
fn relu_body(xs: &mut [f32]) {
    for x in xs {
        *x = x.max(0.0);
    }
}

/// GELU or SiLU (`act`) at the thread's ISA level: the intrinsic forms on AVX2 and AVX-512,
/// the portable loops otherwise (so the scalar level stays the reference).
fn transcendental(act: Activation, xs: &mut [f32]) {
    let gelu = act == Activation::Gelu;
    match isa::current() {
        // SAFETY: the level is only ever set to one this CPU supports (`Isa::supported`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if gelu => unsafe { x86::gelu_avx512(xs) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::silu_avx512(xs) },
        // SAFETY: as above; AVX2 implies FMA at this level.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if gelu => unsafe { x86::gelu_avx2(xs) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::silu_avx2(xs) },
        _ if gelu => gelu_portable(xs),
        _ => silu_portable(xs),
    }
}

fn gelu_portable(xs: &mut [f32]) {
    for x in xs {
        *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

fn silu_portable(xs: &mut [f32]) {
    for x in xs {
        *x /= 1.0 + exp(-*x);
    }
}

/// `e^x` for f32 by range reduction and a degree-6 polynomial; branch-free so it vectorises.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.7);
    // floor(v + 0.5) rather than round(): it maps to one vector instruction.
    let k = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - k * 0.693_145_75 - k * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67 + r * (0.041_666_5 + r * (0.008_333_4 + r * 0.001_388_9)))));
    // Build 2^k from its exponent bits. `as i32` would saturate-check each lane and stop the
    // loop vectorising; the clamp above keeps k + 127 within 0..=255, so no check is needed.
    // SAFETY: k + 127 is finite and in 0..=255 after the clamp.
    let biased: i32 = unsafe { (k + 127.0).to_int_unchecked() };
    let bits = (biased as u32) << 23;
    p * f32::from_bits(bits)
}

#[allow(clippy::excessive_precision)] // the published coefficients, kept as printed
/// Error function (Abramowitz & Stegun 7.1.26 refined to f32 accuracy with `exp` above).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    // Numerical Recipes' erfc Chebyshev fit: relative error < 1.2e-7 everywhere.
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp(poly);
    let r = 1.0 - erfc;
    if x < 0.0 {
        -r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        for i in -800..800 {
            let x = i as f32 * 0.1;
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            assert!(rel < 3e-7, "exp({x}) rel err {rel}");
        }
    }

    #[test]
    fn erf_is_accurate() {
        // Reference values of erf from a table (Abramowitz & Stegun, table 7.1).
        let table = [
            (0.0, 0.0),
            (0.1, 0.112_462_916),
            (0.5, 0.520_499_878),
            (1.0, 0.842_700_793),
            (2.0, 0.995_322_265),
            (3.0, 0.999_977_910),
        ];
        for (x, want) in table {
            assert!((erf(x) as f64 - want).abs() < 2e-7, "erf({x})");
            assert!((erf(-x) as f64 + want).abs() < 2e-7, "erf(-{x})");
        }
    }

    #[test]
    fn gelu_agrees_on_every_level() {
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.003 + 0.0007).collect();
        let mut want = xs.clone();
        gelu_portable(&mut want);
        for level in Isa::available() {
            let mut got = xs.clone();
            isa::with_isa(level, || apply(Activation::Gelu, &mut got));
            for ((g, w), x) in got.iter().zip(&want).zip(&xs) {
                assert!(
                    (g - w).abs() <= 2e-7 * (1.0 + x.abs()),
                    "{level}: gelu({x}) {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn silu_agrees_on_every_level() {
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.03 + 0.0007).collect();
        let mut want = xs.clone();
        silu_portable(&mut want);
        for level in Isa::available() {
            let mut got = xs.clone();
            isa::with_isa(level, || apply(Activation::Silu, &mut got));
            for ((g, w), x) in got.iter().zip(&want).zip(&xs) {
                assert!(
                    (g - w).abs() <= 4e-7 * (1.0 + x.abs()),
                    "{level}: silu({x}) {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn activations_match_definitions() {
        let xs: Vec<f32> = (-40..40).map(|i| i as f32 * 0.2).collect();
        let mut s = xs.clone();
        apply(Activation::Silu, &mut s);
        let mut r = xs.clone();
        apply(Activation::Relu, &mut r);
        for (i, &x) in xs.iter().enumerate() {
            let xd = x as f64;
            let sig = 1.0 / (1.0 + (-xd).exp());
            assert!((s[i] as f64 - xd * sig).abs() < 1e-6);
            assert_eq!(r[i], x.max(0.0));
        }
        // GELU(x) = x * Phi(x); reference values of the normal CDF.
        let mut g = vec![-1.0f32, 0.0, 1.0, 2.0];
        apply(Activation::Gelu, &mut g);
        for (got, want) in g
            .iter()
            .zip([-0.158_655_25f64, 0.0, 0.841_344_75, 1.954_499_74])
        {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
