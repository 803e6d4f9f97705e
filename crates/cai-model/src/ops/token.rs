//! Token-wise transformer ops: layer norm, attention and the ViTAE PCM branch.

use super::slice;
use crate::kernels::{attention as att, norm, pcm, written_vec};
use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor,
};

struct LayerNorm(f32);

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "cai-layer-norm"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(xs, xl, "layer norm input")?;
        let (g, b) = (
            slice(gs, gl, "layer norm weight")?,
            slice(bs, bl, "layer norm bias")?,
        );
        let d = g.len();
        if xl.dims().last() != Some(&d) || b.len() != d {
            bail!("layer norm: input {:?} vs weight [{d}]", xl.dims());
        }
        let out = norm::layer_norm(x, d, g, b, self.0);
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }
}

/// Layer norm over the last dimension.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    x.apply_op3_no_bwd(weight, bias, &LayerNorm(eps))
}

struct Attention {
    heads: usize,
    scale: f32,
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "cai-attention"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, t, d3) = l.shape().dims3()?;
        if d3 % 3 != 0 {
            bail!("attention: qkv width {d3} is not a multiple of 3");
        }
        let d = d3 / 3;
        if d % self.heads != 0 {
            bail!(
                "attention: {d} channels do not split into {} heads",
                self.heads
            );
        }
        let out = att::attention(slice(s, l, "qkv")?, b, t, d, self.heads, self.scale);
        Ok((CpuStorage::F32(out), Shape::from((b, t, d))))
    }
}

/// Multi-head attention from a fused `qkv` projection `[b, t, 3d]` to `[b, t, d]`.
pub fn attention(qkv: &Tensor, heads: usize, scale: f32) -> Result<Tensor> {
    qkv.apply_op1_no_bwd(&Attention { heads, scale })
}

/// Sizes of the two grouped convolutions of a PCM branch.
#[derive(Clone, Copy, Debug)]
pub struct PcmShape {
    /// First conv (batch norm folded in).
    pub first: pcm::Grouped,
    /// Second conv.
    pub second: pcm::Grouped,
}

impl PcmShape {
    /// Length of the packed parameter vector `[w1, b1, w2, b2]`.
    pub fn packed_len(&self) -> usize {
        self.first.weight_len() + self.first.cout + self.second.weight_len() + self.second.cout
    }
}

struct PcmResidual(PcmShape);

impl CustomOp2 for PcmResidual {
    fn name(&self) -> &'static str {
        "cai-pcm-residual"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, t, d) = xl.shape().dims3()?;
        if t < 1 {
            bail!("pcm: input {:?} has no tokens", xl.dims());
        }
        let p = slice(ps, pl, "pcm weights")?;
        let s = self.0;
        if p.len() != s.packed_len() || s.first.cin != d {
            bail!("pcm: packed weights of {} values do not fit {s:?}", p.len());
        }
        let (w1, rest) = p.split_at(s.first.weight_len());
        let (b1, rest) = rest.split_at(s.first.cout);
        let (w2, b2) = rest.split_at(s.second.weight_len());
        let x = slice(xs, xl, "pcm input")?;
        // SAFETY: every sample's class row is copied and its t - 1 patch rows written.
        let out = unsafe {
            written_vec(b * t * d, |out| {
                for (y, x) in out.chunks_exact_mut(t * d).zip(x.chunks_exact(t * d)) {
                    // The class token (row 0 of each sample) does not go through the PCM.
                    let (cls, patches) = y.split_at_mut(d);
                    cls.iter_mut().zip(x).for_each(|(o, v)| {
                        o.write(*v);
                    });
                    pcm::pcm_residual(&x[d..], patches, t - 1, s.first, w1, b1, s.second, w2, b2);
                }
            })
        };
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }
}

/// `x` with `PCM(x[:, 1:])` added to its patch tokens, as a new tensor (the start of a
/// ViTAE block's residual stream), with PCM weights packed as `[w1, b1, w2, b2]`.
pub fn pcm_residual(x: &Tensor, packed: &Tensor, shape: PcmShape) -> Result<Tensor> {
    x.apply_op2_no_bwd(packed, &PcmResidual(shape))
}
