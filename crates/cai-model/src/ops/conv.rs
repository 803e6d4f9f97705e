//! Channels-last image ops for the Inception branch.

use super::slice;
use crate::kernels::conv as k;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use std::ops::Range;

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
        let mut out = vec![0.0f32; b * c * h * w];
        k::nchw_to_nhwc(slice(s, l, "image")?, b, c, h, w, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((b, h, w, c))))
    }
}

/// `[b, c, h, w] -> [b, h, w, c]`.
pub fn nchw_to_nhwc(x: &Tensor) -> Result<Tensor> {
    x.apply_op1_no_bwd(&ToNhwc)
}

struct Im2Col {
    k: usize,
    channels: Range<usize>,
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "cai-im2col"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = dims4(l)?;
        let x = slice(s, l, "feature map")?;
        let r = self.channels.clone();
        if r.end > c || r.is_empty() {
            bail!("im2col: channels {r:?} outside a {c}-channel map");
        }
        let cc = r.len();
        // Gather the channel range first when it is not the whole map.
        let owned;
        let src = if cc == c {
            x
        } else {
            owned = x
                .chunks_exact(c)
                .flat_map(|px| px[r.clone()].iter().copied())
                .collect::<Vec<_>>();
            &owned
        };
        let mut out = vec![0.0f32; b * h * w * self.k * self.k * cc];
        k::im2col_same(src, b, h, w, cc, self.k, &mut out);
        Ok((
            CpuStorage::F32(out),
            Shape::from((b, h, w, self.k * self.k * cc)),
        ))
    }
}

/// `k x k` same-padded neighbourhoods of channels `channels` of an NHWC map:
/// `[b, h, w, c] -> [b, h, w, k*k*|channels|]`, ready for a matrix product.
pub fn im2col(x: &Tensor, k: usize, channels: Range<usize>) -> Result<Tensor> {
    x.apply_op1_no_bwd(&Im2Col { k, channels })
}

struct MaxPool3;

impl CustomOp1 for MaxPool3 {
    fn name(&self) -> &'static str {
        "cai-max-pool3"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = dims4(l)?;
        let mut out = vec![0.0f32; b * h * w * c];
        k::max_pool3_same(slice(s, l, "feature map")?, b, h, w, c, &mut out);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// 3x3 max pooling, stride 1, padding 1, on NHWC.
pub fn max_pool3(x: &Tensor) -> Result<Tensor> {
    x.apply_op1_no_bwd(&MaxPool3)
}

struct AvgPool2;

impl CustomOp1 for AvgPool2 {
    fn name(&self) -> &'static str {
        "cai-avg-pool2"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = dims4(l)?;
        let mut out = vec![0.0f32; b * (h / 2) * (w / 2) * c];
        k::avg_pool2(slice(s, l, "feature map")?, b, h, w, c, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((b, h / 2, w / 2, c))))
    }
}

/// 2x2 average pooling, stride 2, on NHWC.
pub fn avg_pool2(x: &Tensor) -> Result<Tensor> {
    x.apply_op1_no_bwd(&AvgPool2)
}
