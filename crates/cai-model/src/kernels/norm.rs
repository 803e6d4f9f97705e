//! Layer normalisation over the last dimension.

use std::mem::MaybeUninit;

/// `(x[r] - mean) / sqrt(var + eps) * gamma + beta` for every row `r` of width `d`.
///
/// Two passes over a row in f32 with an f32 accumulator, as PyTorch's CPU kernel does, so
/// results agree to rounding.
pub fn layer_norm(x: &[f32], d: usize, gamma: &[f32], beta: &[f32], eps: f32) -> Vec<f32> {
    assert_eq!(gamma.len(), d);
    assert_eq!(beta.len(), d);
    assert!(
        d > 0 && x.len().is_multiple_of(d),
        "layer norm: rows of {d}"
    );
    // SAFETY: `rows` writes every row of width d, and x.len() is a whole number of rows.
    unsafe { super::written_vec(x.len(), |out| rows(x, d, gamma, beta, eps, out)) }
}

at_isa_level! {
    /// At the thread's ISA level (see `at_isa_level!`).
    fn rows(
        x: &[f32],
        d: usize,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        out: &mut [MaybeUninit<f32>],
    ) = rows_body;
}

#[inline(always)]
fn rows_body(
    x: &[f32],
    d: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [MaybeUninit<f32>],
) {
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean = super::sum(row) / d as f32;
        let mut centred = [0.0f32; 8];
        let chunks = row.chunks_exact(8);
        let tail: f32 = chunks
            .remainder()
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum();
        for c in chunks {
            for i in 0..8 {
                centred[i] += (c[i] - mean) * (c[i] - mean);
            }
        }
        let var = (centred.iter().sum::<f32>() + tail) / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, v), g), b) in o.iter_mut().zip(row).zip(gamma).zip(beta) {
            o.write((v - mean) * inv * g + b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_rows() {
        let x = [1.0, 2.0, 3.0, 4.0, -1.0, -1.0, 5.0, 9.0];
        let out = layer_norm(&x, 4, &[1.0; 4], &[0.0; 4], 1e-6);
        for row in out.chunks(4) {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| v * v).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4);
        }
        let shifted = layer_norm(&x, 4, &[2.0; 4], &[0.5; 4], 1e-6);
        for (s, o) in shifted.iter().zip(out) {
            assert!((s - (2.0 * o + 0.5)).abs() < 1e-5);
        }
    }
}
