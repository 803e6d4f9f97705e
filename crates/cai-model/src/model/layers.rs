//! Building blocks shared by the three branches: linear layers, layer norm, and
//! convolutions with their batch norm folded in.

use super::params::Scope;
use crate::kernels::activation::Activation;
use crate::kernels::packed::PackedLinear;
use crate::ops;
use candle_core::{Device, Result, Tensor};

/// A `nn.Linear`, packed once for the matrix-product kernel chosen at run time.
pub struct Linear {
    w: PackedLinear,
}

impl Linear {
    /// Loads `weight [dout, din]` and `bias [dout]`.
    pub fn new(mut vb: Scope<'_>, din: usize, dout: usize) -> Result<Self> {
        let w = vb.take("weight", &[dout, din])?;
        let b = vb.take("bias", &[dout])?;
        Self::from_rows(&w, &b, din, dout)
    }

    /// Packs a PyTorch-layout weight (`[dout, din]`, row per output) and bias.
    pub fn from_rows(w: &[f32], b: &[f32], din: usize, dout: usize) -> Result<Self> {
        Ok(Self {
            w: PackedLinear::new(w, b, din, dout),
        })
    }

    /// `act(x · Wᵀ + b)`.
    pub fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        ops::linear(x, &self.w, act)
    }

    /// The packed weights (to re-pack them at another precision).
    pub(crate) fn packed_mut(&mut self) -> &mut PackedLinear {
        &mut self.w
    }

    /// `residual += x · Wᵀ + b`, in place.
    pub fn accumulate(&self, residual: &Tensor, x: &Tensor) -> Result<()> {
        ops::linear_accumulate(residual, x, &self.w)
    }
}

/// `nn.LayerNorm` over the last dimension.
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    /// Loads `weight [d]` and `bias [d]`.
    pub fn new(mut vb: Scope<'_>, d: usize, eps: f32) -> Result<Self> {
        let w = vb.take("weight", &[d])?;
        let b = vb.take("bias", &[d])?;
        Ok(Self {
            weight: Tensor::from_vec(w, d, &Device::Cpu)?,
            bias: Tensor::from_vec(b, d, &Device::Cpu)?,
            eps,
        })
    }

    /// Normalises `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// A convolution's weights after folding: `[cout, cin/groups * k * k]` plus bias.
pub struct FoldedConv {
    /// Weights, PyTorch layout flattened per output channel.
    pub weight: Vec<f32>,
    /// Bias per output channel.
    pub bias: Vec<f32>,
}

impl FoldedConv {
    /// Loads a `Conv2d` (`weight [cout, cin_g, k, k]`, `bias [cout]`).
    pub fn conv(mut vb: Scope<'_>, cout: usize, cin_g: usize, k: usize) -> Result<Self> {
        Ok(Self {
            weight: vb.take("weight", &[cout, cin_g, k, k])?,
            bias: vb.take("bias", &[cout])?,
        })
    }

    /// Folds an eval-mode `BatchNorm2d` that follows the conv into its weights and bias:
    /// `bn(conv(x)) = conv'(x)` with `w' = w·γ/σ`, `b' = (b − μ)·γ/σ + β`.
    pub fn fold_batch_norm(mut self, mut vb: Scope<'_>, eps: f32) -> Result<Self> {
        let c = self.bias.len();
        let gamma = vb.take("weight", &[c])?;
        let beta = vb.take("bias", &[c])?;
        let mean = vb.take("running_mean", &[c])?;
        let var = vb.take("running_var", &[c])?;
        let per = self.weight.len() / c.max(1);
        for o in 0..c {
            let s = gamma[o] / (var[o] + eps).sqrt();
            self.weight[o * per..(o + 1) * per]
                .iter_mut()
                .for_each(|w| *w *= s);
            self.bias[o] = (self.bias[o] - mean[o]) * s + beta[o];
        }
        Ok(self)
    }

    /// Loads PyTorch's `ConvBlock` (conv, then batch norm; the ReLU is applied by the caller).
    pub fn conv_block(
        mut vb: Scope<'_>,
        cout: usize,
        cin: usize,
        k: usize,
        eps: f32,
    ) -> Result<Self> {
        let conv = Self::conv(vb.pp("conv"), cout, cin, k)?;
        conv.fold_batch_norm(vb.pp("bn"), eps)
    }

    /// Reorders `[cout, cin, k, k]` into rows ordered (ky, kx, cin) to match NHWC im2col,
    /// giving a [`Linear`] over neighbourhood vectors.
    pub fn into_nhwc_linear(self, cin: usize, k: usize) -> Result<Linear> {
        Ok(Linear {
            w: self.into_nhwc_packed(cin, k),
        })
    }

    /// [`Self::into_nhwc_linear`] as bare packed weights, for ops that take several.
    pub fn into_nhwc_packed(self, cin: usize, k: usize) -> PackedLinear {
        let cout = self.bias.len();
        let din = cin * k * k;
        let mut w = vec![0.0f32; cout * din];
        for o in 0..cout {
            for c in 0..cin {
                for ky in 0..k {
                    for kx in 0..k {
                        w[o * din + (ky * k + kx) * cin + c] =
                            self.weight[((o * cin + c) * k + ky) * k + kx];
                    }
                }
            }
        }
        PackedLinear::new(&w, &self.bias, din, cout)
    }
}
