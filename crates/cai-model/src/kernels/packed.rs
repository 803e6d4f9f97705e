//! Linear-layer weights laid out once at load for the matrix-product kernel.
//!
//! PyTorch stores `Linear.weight` output-major (`[m, k]`); the `gemm` crate streams an
//! input-major (`[k, m]`) right-hand side fastest, so the transpose happens here, once,
//! instead of on every call. `gemm` picks AVX-512, AVX2/FMA or NEON kernels at run time, so
//! one binary runs on any x86-64 or ARM CPU. (A hand-written AVX2 6x16 kernel with
//! pre-packed panels was tried here and measured at 50-54 GFLOP/s against gemm's 77 on the
//! model's 1088x192x768 shape, so it was dropped.)

use super::activation::{self, Activation};
use super::matmul::linear_into;

/// A linear layer's weights: input-major `[k, m]` plus bias.
#[derive(Clone, Debug)]
pub struct PackedLinear {
    k: usize,
    m: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl PackedLinear {
    /// Packs PyTorch-layout weights `w[m][k]` and `bias[m]`.
    pub fn new(w: &[f32], bias: &[f32], k: usize, m: usize) -> Self {
        assert_eq!(w.len(), k * m, "weight is not {m}x{k}");
        assert_eq!(bias.len(), m, "bias is not {m} long");
        let mut weight = vec![0.0f32; k * m];
        for o in 0..m {
            for i in 0..k {
                weight[i * m + o] = w[o * k + i];
            }
        }
        Self {
            k,
            m,
            weight,
            bias: bias.to_vec(),
        }
    }

    /// Input features.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output features.
    pub fn m(&self) -> usize {
        self.m
    }

    /// `dst[n×m] = act(x[n×k] · W + b)`, or with `accumulate`, `dst = act(dst + x · W + b)`.
    pub fn forward(&self, x: &[f32], n: usize, dst: &mut [f32], accumulate: bool, act: Activation) {
        linear_into(
            x,
            n,
            self.k,
            &self.weight,
            self.m,
            Some(&self.bias),
            dst,
            accumulate,
        );
        activation::apply(act, dst);
    }

    /// Like [`Self::forward`] into a new vector, which starts as the bias rows (no zero fill).
    pub fn forward_new(&self, x: &[f32], n: usize, act: Activation) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * self.m);
        for _ in 0..n {
            out.extend_from_slice(&self.bias);
        }
        linear_into(x, n, self.k, &self.weight, self.m, None, &mut out, true);
        activation::apply(act, &mut out);
        out
    }

    /// Writes `x · W + b` into columns `col..col + m` of a row-major `dst` with `ld` columns
    /// (no activation): lets concatenated branch outputs land in place, with no copy.
    pub fn forward_strided(&self, x: &[f32], n: usize, dst: &mut [f32], ld: usize, col: usize) {
        super::matmul::linear_strided(x, n, self.k, &self.weight, self.m, &self.bias, dst, ld, col);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], n: usize, k: usize, w: &[f32], m: usize, b: &[f32]) -> Vec<f64> {
        (0..n)
            .flat_map(|i| {
                (0..m).map(move |j| {
                    b[j] as f64
                        + (0..k)
                            .map(|p| x[i * k + p] as f64 * w[j * k + p] as f64)
                            .sum::<f64>()
                })
            })
            .collect()
    }

    #[test]
    fn matches_naive_on_awkward_shapes() {
        for &(n, k, m) in &[
            (1, 1, 1),
            (7, 5, 17),
            (13, 300, 33),
            (100, 192, 576),
            (6, 600, 1),
            (97, 64, 1096),
        ] {
            let x: Vec<f32> = (0..n * k)
                .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.05)
                .collect();
            let w: Vec<f32> = (0..k * m)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.03)
                .collect();
            let b: Vec<f32> = (0..m).map(|i| i as f32 * 0.01 - 0.1).collect();
            let p = PackedLinear::new(&w, &b, k, m);
            let want = naive(&x, n, k, &w, m, &b);
            let mut got = vec![f32::NAN; n * m];
            p.forward(&x, n, &mut got, false, Activation::Identity);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-3 * (1.0 + w.abs()),
                    "{n}x{k}x{m}: {g} vs {w}"
                );
            }
            let mut acc = vec![2.0f32; n * m];
            p.forward(&x, n, &mut acc, true, Activation::Relu);
            for (g, w) in acc.iter().zip(&want) {
                let w = (w + 2.0).max(0.0);
                assert!(
                    (*g as f64 - w).abs() < 1e-3 * (1.0 + w.abs()),
                    "{n}x{k}x{m} accumulate: {g} vs {w}"
                );
            }
        }
    }
}
