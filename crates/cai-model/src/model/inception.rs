//! Branch 2: the Inception network on the image, run channels-last.

use super::layers::{FoldedConv, Linear};
use super::params::Scope;
use crate::config::{AstroMaeConfig, InceptionBlockConfig, INCEPTION_SLOTS};
use crate::kernels::activation::Activation;
use crate::kernels::packed::PackedLinear;
use crate::ops::{self, InceptionWeights};
use candle_core::{Result, Tensor};

/// One Inception block. The 1x1 convolutions that read the block input (branch 1 and the
/// reductions of branches 2 and 3) are fused into a single matrix product, and every branch
/// writes its channels of the output in place.
pub struct Inception {
    weights: InceptionWeights,
}

impl Inception {
    /// Loads `branch1`, `branch2.{0,1}`, `branch3.{0,1}` (when used) and `branch4.1`.
    pub fn new(mut vb: Scope<'_>, cfg: InceptionBlockConfig, eps: f32) -> Result<Self> {
        let c = cfg.cin;
        let b1 = FoldedConv::conv_block(vb.pp("branch1"), cfg.b1, c, 1, eps)?;
        let b2r = FoldedConv::conv_block(vb.pp("branch2.0"), cfg.b2_reduce, c, 1, eps)?;
        let b2 = FoldedConv::conv_block(vb.pp("branch2.1"), cfg.b2, cfg.b2_reduce, 3, eps)?;
        let mut weight = [b1.weight, b2r.weight].concat();
        let mut bias = [b1.bias, b2r.bias].concat();
        let branch3 = if cfg.uses_b3 {
            let b3r = FoldedConv::conv_block(vb.pp("branch3.0"), cfg.b3_reduce, c, 1, eps)?;
            let b3 = FoldedConv::conv_block(vb.pp("branch3.1"), cfg.b3, cfg.b3_reduce, 5, eps)?;
            weight.extend(b3r.weight);
            bias.extend(b3r.bias);
            Some(b3.into_nhwc_packed(cfg.b3_reduce, 5))
        } else {
            None
        };
        let b4 = FoldedConv::conv_block(vb.pp("branch4.1"), cfg.b4, c, 1, eps)?;
        let width = bias.len();
        Ok(Self {
            weights: InceptionWeights {
                pointwise: PackedLinear::new(&weight, &bias, c, width),
                b1: cfg.b1,
                branch2: b2.into_nhwc_packed(cfg.b2_reduce, 3),
                branch3,
                branch4: b4.into_nhwc_packed(c, 1),
            },
        })
    }

    /// `[b, h, w, cin] -> [b, h, w, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::inception(x, &self.weights)
    }
}

/// `inception_model` minus the magnitude MLP: stem, five Inception blocks with pooling,
/// flatten, and the two linear layers at `vis_inception.10` and `.12`.
pub struct InceptionBranch {
    stem: Linear,
    blocks: Vec<Inception>,
    fc1: Linear,
    fc2: Linear,
}

impl InceptionBranch {
    /// Loads `inception_model.conv2d_init` and `inception_model.vis_inception.*`.
    pub fn new(mut vb: Scope<'_>, cfg: &AstroMaeConfig) -> Result<Self> {
        let stem = FoldedConv::conv(vb.pp("conv2d_init"), cfg.inception_stem, cfg.in_chans, 1)?;
        let blocks = INCEPTION_SLOTS
            .iter()
            .zip(&cfg.inception)
            .map(|(slot, b)| {
                Inception::new(vb.pp(&format!("vis_inception.{slot}")), *b, cfg.bn_eps)
            })
            .collect::<Result<Vec<_>>>()?;
        // PyTorch flattens NCHW (c, y, x); our map is NHWC (y, x, c): permute fc1's columns.
        let side = cfg.inception_final_side();
        let c = cfg.inception[4].out_channels();
        let din = c * side * side;
        let fc1 = FoldedConv {
            weight: vb.take("vis_inception.10.weight", &[cfg.inception_hidden, din])?,
            bias: vb.take("vis_inception.10.bias", &[cfg.inception_hidden])?,
        };
        let mut w = vec![0.0f32; fc1.weight.len()];
        for o in 0..cfg.inception_hidden {
            for ch in 0..c {
                for p in 0..side * side {
                    w[o * din + p * c + ch] = fc1.weight[o * din + ch * side * side + p];
                }
            }
        }
        Ok(Self {
            stem: stem.into_nhwc_linear(cfg.in_chans, 1)?,
            blocks,
            fc1: Linear::from_rows(&w, &fc1.bias, din, cfg.inception_hidden)?,
            fc2: Linear::new(
                vb.pp("vis_inception.12"),
                cfg.inception_hidden,
                cfg.inception_hidden,
            )?,
        })
    }

    /// `[b, c, h, w] -> [b, inception_hidden]`.
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let b = images.dim(0)?;
        // The stem is a 1x1 conv followed by 2x2 average pooling; both are linear, so
        // pooling first gives the same result on a quarter of the pixels.
        let x = ops::avg_pool2(&ops::nchw_to_nhwc(images)?)?;
        let x = self.stem.forward(&x, Activation::Identity)?;
        let x = self.blocks[1].forward(&self.blocks[0].forward(&x)?)?;
        let x = ops::avg_pool2(&x)?;
        let x = self.blocks[3].forward(&self.blocks[2].forward(&x)?)?;
        let x = ops::avg_pool2(&x)?;
        let x = self.blocks[4].forward(&x)?;
        let x = x.reshape((b, ()))?;
        let x = self.fc1.forward(&x, Activation::Relu)?;
        self.fc2.forward(&x, Activation::Identity)
    }
}
