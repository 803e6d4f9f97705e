//! Weights packed once at load into the micro-kernels' panel layout.
//!
//! A linear layer `y = x · Wᵀ + b` (PyTorch's `weight` is `[m, k]`, one row per output) is
//! stored as `ceil(m / 16)` panels of 16 output columns; panel `j` holds `k` rows of 16
//! consecutive columns (zero past `m`), so a micro-kernel streams it with one aligned vector
//! load per step and nothing is re-packed per call. The same layout serves every ISA: AVX2
//! and NEON kernels read one panel at a time, AVX-512 kernels two side by side.

use super::aligned::Aligned;

/// Output columns per panel.
pub const PANEL: usize = 16;

/// f32 weights in panels of [`PANEL`] columns, plus the bias.
#[derive(Clone, Debug)]
pub struct PackedF32 {
    k: usize,
    m: usize,
    data: Aligned<f32>,
    bias: Vec<f32>,
}

impl PackedF32 {
    /// Packs PyTorch-layout weights `w[m][k]` (row per output) and `bias[m]`.
    pub fn from_rows(w: &[f32], bias: &[f32], k: usize, m: usize) -> Self {
        assert_eq!(w.len(), k * m, "weight is not {m}x{k}");
        assert_eq!(bias.len(), m, "bias is not {m} long");
        let panels = m.div_ceil(PANEL);
        let mut data = Aligned::zeroed(panels * k * PANEL);
        let d = data.as_mut_slice();
        for o in 0..m {
            let (panel, col) = (o / PANEL, o % PANEL);
            let base = panel * k * PANEL + col;
            for (p, v) in w[o * k..(o + 1) * k].iter().enumerate() {
                d[base + p * PANEL] = *v;
            }
        }
        Self {
            k,
            m,
            data,
            bias: bias.to_vec(),
        }
    }

    /// Back to PyTorch's `[m][k]` layout (the inverse of [`Self::from_rows`]): lets a model
    /// loaded in f32 be re-packed at another precision without keeping a second copy.
    pub fn to_rows(&self) -> Vec<f32> {
        let (k, m) = (self.k, self.m);
        let d = self.data.as_slice();
        let mut w = vec![0.0f32; k * m];
        for o in 0..m {
            let base = (o / PANEL) * k * PANEL + o % PANEL;
            for p in 0..k {
                w[o * k + p] = d[base + p * PANEL];
            }
        }
        w
    }

    /// Input features.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output features.
    pub fn m(&self) -> usize {
        self.m
    }

    /// The bias.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// The packed panels (`ceil(m/16) * k * 16` values).
    pub fn panels(&self) -> &[f32] {
        self.data.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        for (k, m) in [(1, 1), (3, 17), (192, 576), (5, 1096), (7, 33)] {
            let w: Vec<f32> = (0..k * m).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..m).map(|i| i as f32).collect();
            let p = PackedF32::from_rows(&w, &b, k, m);
            assert_eq!(p.to_rows(), w, "{k}x{m}");
            assert_eq!(p.panels().len(), m.div_ceil(PANEL) * k * PANEL);
            assert_eq!(p.panels().as_ptr() as usize % 64, 0);
        }
    }
}
