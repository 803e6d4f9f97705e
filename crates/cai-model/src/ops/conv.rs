//! Channels-last image ops for the Inception branch.

use super::slice;
use crate::kernels::activation::{self, Activation};
use crate::kernels::conv as k;
use crate::kernels::gemm::Out;
use crate::kernels::packed::PackedLinear;
use crate::kernels::written_vec;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

fn dims4(l: &Layout) -> Result<(usize, usize, usize, usize)> {
    l.shape().dims4()
}

struct ToNhwc;

impl CustomOp1 for ToNhwc {
    fn name(&self) -> &'static str {
        "cai-nchw-to-nhwc"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = dims4(l)?;
        let out = k::nchw_to_nhwc(slice(s, l, "image")?, b, c, h, w);
        Ok((CpuStorage::F32(out), Shape::from((b, h, w, c))))
    }
}

/// `[b, c, h, w] -> [b, h, w, c]`.
pub fn nchw_to_nhwc(x: &Tensor) -> Result<Tensor> {
    x.apply_op1_no_bwd(&ToNhwc)
}

struct AvgPool2;

impl CustomOp1 for AvgPool2 {
    fn name(&self) -> &'static str {
        "cai-avg-pool2"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = dims4(l)?;
        let out = k::avg_pool2(slice(s, l, "feature map")?, b, h, w, c);
        Ok((CpuStorage::F32(out), Shape::from((b, h / 2, w / 2, c))))
    }
}

/// 2x2 average pooling, stride 2, on NHWC.
pub fn avg_pool2(x: &Tensor) -> Result<Tensor> {
    x.apply_op1_no_bwd(&AvgPool2)
}

/// The weights of one Inception block, as [`inception`] consumes them.
pub struct InceptionWeights {
    /// Branch 1 and the 1x1 reductions of branches 2 and 3, fused (ReLU applied).
    pub pointwise: PackedLinear,
    /// Branch 1 output channels (the first columns of `pointwise`).
    pub b1: usize,
    /// Branch 2: 3x3 conv over the reduction at columns `b1..b1+b2_reduce`.
    pub branch2: PackedLinear,
    /// Branch 3: 5x5 conv over the next `b3_reduce` columns, if the block uses it.
    pub branch3: Option<PackedLinear>,
    /// Branch 4: 1x1 conv after 3x3 max pooling.
    pub branch4: PackedLinear,
}

impl InceptionWeights {
    /// Output channels: the four branches concatenated.
    pub fn out_channels(&self) -> usize {
        self.b1 + self.branch2.m() + self.branch3.as_ref().map_or(0, |b| b.m()) + self.branch4.m()
    }
}

struct Inception<'a>(&'a InceptionWeights);

impl CustomOp1 for Inception<'_> {
    fn name(&self) -> &'static str {
        "cai-inception"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let w = self.0;
        let (b, h, wd, c) = dims4(l)?;
        if c != w.pointwise.k() {
            bail!(
                "inception: input has {c} channels, weights expect {}",
                w.pointwise.k()
            );
        }
        let x = slice(s, l, "inception input")?;
        let px = b * h * wd;
        let fused = w.pointwise.forward_new(x, px, Activation::Relu);
        let fw = w.pointwise.m();
        let out_c = w.out_channels();
        // Every branch writes its columns of the output in place: no concatenation copy, and
        // no zero fill first.
        // SAFETY: branch 1 (copied first) and the products of branches 2, 3 and 4 write their
        // columns of every pixel, and their widths add up to `out_c`.
        let mut out = unsafe {
            written_vec(px * out_c, |dst| {
                for (o, f) in dst.chunks_exact_mut(out_c).zip(fused.chunks_exact(fw)) {
                    o[..w.b1].iter_mut().zip(&f[..w.b1]).for_each(|(o, v)| {
                        o.write(*v);
                    });
                }
                let mut col = w.b1;
                let mut reduce = w.b1;
                let mut conv = |lin: &PackedLinear, kernel: usize, col: usize, reduce: usize| {
                    let cr = lin.k() / (kernel * kernel);
                    // One image at a time, so its patch matrix (up to 400 KiB) is still in
                    // cache when the product reads it; the whole batch's would be tens of MiB.
                    let image = h * wd;
                    let maps = fused.chunks_exact(image * fw);
                    for (map, dst) in maps.zip(dst.chunks_exact_mut(image * out_c)) {
                        let cols = k::im2col_same(map, fw, reduce, 1, h, wd, cr, kernel);
                        let block = Out::uninit(dst, out_c, col);
                        lin.forward_strided(&cols, image, block, Activation::Identity);
                    }
                    cr
                };
                reduce += conv(&w.branch2, 3, col, reduce);
                col += w.branch2.m();
                if let Some(b3) = &w.branch3 {
                    conv(b3, 5, col, reduce);
                    col += b3.m();
                }
                let pooled = k::max_pool3_same(x, b, h, wd, c);
                let branch4 = Out::uninit(dst, out_c, col);
                w.branch4
                    .forward_strided(&pooled, px, branch4, Activation::Identity);
                debug_assert_eq!(col + w.branch4.m(), out_c);
            })
        };
        activation::apply(Activation::Relu, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((b, h, wd, out_c))))
    }
}

/// One Inception block on an NHWC map: `[b, h, w, cin] -> [b, h, w, out]`, branches
/// concatenated in order 1, 2, 3, 4, each followed by ReLU.
pub fn inception(x: &Tensor, w: &InceptionWeights) -> Result<Tensor> {
    x.apply_op1_no_bwd(&Inception(w))
}
