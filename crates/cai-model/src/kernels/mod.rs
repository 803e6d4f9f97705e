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

/// A vector of `n` f32 for a kernel that writes every one of them before any is read (a
/// product's output, a normalised or attended copy of its input).
///
/// Why: `vec![0.0; n]` zero-fills memory the allocator hands straight back from the previous
/// batch's tensors, and that fill measured 4% of the fp32 forward pass (perf, AVX-512).
///
/// # Safety
/// The caller must write all `n` values before reading any of them or handing the vector
/// to anyone else; until then its contents are uninitialised.
#[allow(clippy::uninit_vec)] // the point of the function; callers promise the writes
pub(crate) unsafe fn output_vec(n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    // SAFETY: the capacity is `n`; the caller initialises every value before use.
    unsafe { v.set_len(n) };
    v
}

/// Dot product with eight independent partial sums, so the compiler can vectorise it (a
/// single running sum forces strict left-to-right order, which cannot use SIMD lanes).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
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
