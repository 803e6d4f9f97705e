//! The AstroMAE fine-tune model, module by module; names mirror the checkpoint's.

mod inception;
mod layers;
mod params;
mod vit;

pub use inception::{Inception, InceptionBranch};
pub use layers::{FoldedConv, LayerNorm, Linear};
pub use params::{Params, Scope};
pub use vit::{Attention, Block, Mlp, PatchEmbed, Pcm, VitBranch};

use crate::config::AstroMaeConfig;
use crate::kernels::activation::Activation;
use crate::kernels::packed::PackedLinear;
use crate::precision::Precision;
use candle_core::{Result, Tensor};

/// Branch 3: `inception_model.magnitude_block`, an MLP over the five magnitudes.
pub struct MagnitudeBranch {
    layers: Vec<Linear>,
}

impl MagnitudeBranch {
    /// Loads `magnitude_block.{0,2,4,...}`.
    pub fn new(mut vb: Scope<'_>, cfg: &AstroMaeConfig) -> Result<Self> {
        let mut din = cfg.mag_in;
        let mut layers = Vec::new();
        for (i, &dout) in cfg.mag_layers.iter().enumerate() {
            layers.push(Linear::new(vb.pp(&(2 * i).to_string()), din, dout)?);
            din = dout;
        }
        Ok(Self { layers })
    }

    /// `[b, 5] -> [b, 1024]`: ReLU between layers, none after the last.
    pub fn forward(&self, mags: &Tensor) -> Result<Tensor> {
        let mut x = mags.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let act = if i + 1 == self.layers.len() {
                Activation::Identity
            } else {
                Activation::Relu
            };
            x = layer.forward(&x, act)?;
        }
        Ok(x)
    }
}

/// The whole model: three branches concatenated, then `concat_block`.
pub struct AstroMae {
    config: AstroMaeConfig,
    vit: VitBranch,
    inception: InceptionBranch,
    magnitude: MagnitudeBranch,
    concat_0: Linear,
    concat_2: Linear,
    precision: Precision,
}

impl AstroMae {
    /// Builds the model from validated parameters (see [`crate::load_model`]).
    pub fn new(params: &mut Params, cfg: &AstroMaeConfig) -> Result<Self> {
        let mut root = params.pp("");
        let vit = VitBranch::new(&mut root, cfg)?;
        let inception = InceptionBranch::new(root.pp("inception_model"), cfg)?;
        let magnitude = MagnitudeBranch::new(root.pp("inception_model.magnitude_block"), cfg)?;
        let mag_out = cfg.mag_layers.last().copied().unwrap_or(cfg.mag_in);
        let concat_in = cfg.vit_hidden + cfg.inception_hidden + mag_out;
        Ok(Self {
            config: cfg.clone(),
            vit,
            inception,
            magnitude,
            concat_0: Linear::new(root.pp("concat_block.0"), concat_in, cfg.concat_hidden)?,
            concat_2: Linear::new(root.pp("concat_block.2"), cfg.concat_hidden, 1)?,
            precision: Precision::Fp32,
        })
    }

    /// Re-packs the transformer blocks' four products (`qkv`, `proj`, `fc1`, `fc2`: 84% of
    /// the model's FLOPs) at `p`: bf16 or int8 weights, activations converted at each
    /// product's input. Everything else stays f32: layer norms, softmax, attention, the PCM,
    /// the residual stream, the patch embedding and every head (ViT, Inception, magnitudes,
    /// `concat_block`). Measured on the fixtures, quantizing those as well multiplies the
    /// error against fp32 by 5-10 (the Inception convolutions and the magnitude MLP most)
    /// for a few percent of the FLOPs.
    pub fn set_precision(&mut self, p: Precision) {
        if p == self.precision {
            return;
        }
        self.vit
            .visit_blocks(&mut |l: &mut PackedLinear| *l = l.to_precision(p));
        self.precision = p;
    }

    /// The precision of the matrix products.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The sizes this model was built with.
    pub fn config(&self) -> &AstroMaeConfig {
        &self.config
    }

    /// Images `[b, 5, 32, 32]` and magnitudes `[b, 5]` (f32, contiguous) to redshift `[b, 1]`.
    pub fn forward(&self, images: &Tensor, magnitudes: &Tensor) -> Result<Tensor> {
        let v = self.vit.forward(images)?;
        let i = self.inception.forward(images)?;
        let m = self.magnitude.forward(magnitudes)?;
        let x = Tensor::cat(&[&v, &i, &m], 1)?;
        let x = self.concat_0.forward(&x, Activation::Relu)?;
        self.concat_2.forward(&x, Activation::Identity)
    }
}
