//! Plain-slice CPU kernels behind the model's fused operations.
//!
//! They work on row-major `f32` slices so they can be tested without candle and reused by
//! every op wrapper in [`crate::ops`]. Each is single-threaded on purpose: the predictor
//! parallelises over the batch, which scales better than splitting small matrices.

pub mod activation;
pub mod attention;
pub mod conv;
pub mod gemm;
pub mod norm;
pub mod packed;
pub mod pcm;
pub mod transpose;

use std::mem::MaybeUninit;

/// A new vector of `len` values, each written once by `write` (zero-filling every fresh
/// activation first measured ~4% of a forward pass).
///
/// # Safety
/// `write` must initialise every element of the slice it is given.
pub(crate) unsafe fn written_vec(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    write(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: every element was initialised (the caller's promise).
    unsafe { v.set_len(len) };
    v
}

/// Dot product with sixteen independent partial sums (a single running sum forces strict
/// left-to-right order, which cannot use SIMD lanes) and fused multiply-adds: for kernels
/// compiled with FMA, where `mul_add` is one instruction rather than a library call.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .fold(0.0f32, |s, (x, y)| x.mul_add(*y, s));
    for (x, y) in ac.zip(bc) {
        for i in 0..16 {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Sum with eight partial sums (see [`dot`]).
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let c = a.chunks_exact(8);
    let tail: f32 = c.remainder().iter().sum();
    for x in c {
        for i in 0..8 {
            acc[i] += x[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}
