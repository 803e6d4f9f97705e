//! Branch 1: the MAE-pretrained ViT encoder with ViTAE (or plain) blocks, and its head.

use super::layers::{FoldedConv, LayerNorm, Linear};
use super::params::Scope;
use crate::config::{AstroMaeConfig, BlockVariant};
use crate::kernels::activation::Activation;
use crate::kernels::packed::PackedLinear;
use crate::kernels::pcm::Grouped;
use crate::ops::{self, PcmShape};
use candle_core::{Device, Result, Tensor};

/// `patch_embed.proj`: an 8x8 stride-8 conv, run as a matrix product over patches.
pub struct PatchEmbed {
    proj: Linear,
    patch: usize,
    in_chans: usize,
}

impl PatchEmbed {
    /// Loads `proj.weight [d, c, p, p]` and `proj.bias`.
    pub fn new(mut vb: Scope<'_>, cfg: &AstroMaeConfig) -> Result<Self> {
        let (c, p, d) = (cfg.in_chans, cfg.patch_size, cfg.embed_dim);
        let conv = FoldedConv::conv(vb.pp("proj"), d, c, p)?;
        Ok(Self {
            proj: Linear::from_rows(&conv.weight, &conv.bias, c * p * p, d)?,
            patch: p,
            in_chans: c,
        })
    }

    /// `[b, c, h, w] -> [b, patches, d]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let (p, c) = (self.patch, self.in_chans);
        let (gh, gw) = (h / p, w / p);
        let patches = x
            .reshape((b, c, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b, gh * gw, c * p * p))?;
        self.proj.forward(&patches, Activation::Identity)
    }
}

/// `attn`: fused qkv projection (with `q_bias`, zero k bias, `v_bias` for ViTAE), attention
/// over all tokens, output projection.
pub struct Attention {
    qkv: Linear,
    proj: Linear,
    num_heads: usize,
    scale: f32,
}

impl Attention {
    /// Loads `qkv`, its biases, and `proj`.
    pub fn new(mut vb: Scope<'_>, cfg: &AstroMaeConfig) -> Result<Self> {
        let d = cfg.embed_dim;
        let qkv_w = vb.take("qkv.weight", &[3 * d, d])?;
        let qkv_b = match cfg.block {
            BlockVariant::Vitae { .. } => {
                let mut b = vec![0.0f32; 3 * d];
                b[..d].copy_from_slice(&vb.take("q_bias", &[d])?);
                b[2 * d..].copy_from_slice(&vb.take("v_bias", &[d])?);
                b
            }
            BlockVariant::Plain => vb.take("qkv.bias", &[3 * d])?,
        };
        let head_dim = d / cfg.num_heads;
        Ok(Self {
            qkv: Linear::from_rows(&qkv_w, &qkv_b, d, 3 * d)?,
            proj: Linear::new(vb.pp("proj"), d, d)?,
            num_heads: cfg.num_heads,
            scale: (head_dim as f32).powf(-0.5),
        })
    }

    pub(crate) fn visit(&mut self, f: &mut dyn FnMut(&mut PackedLinear)) {
        f(self.qkv.packed_mut());
        f(self.proj.packed_mut());
    }

    /// `residual += proj(attention(qkv(x)))`.
    pub fn accumulate(&self, residual: &Tensor, x: &Tensor) -> Result<()> {
        let qkv = self.qkv.forward(x, Activation::Identity)?;
        let heads = ops::attention(&qkv, self.num_heads, self.scale)?;
        self.proj.accumulate(residual, &heads)
    }
}

/// `PCM`: `Conv1x1(groups) -> BatchNorm -> SiLU -> Conv1x1(groups)` on the patch tokens.
pub struct Pcm {
    packed: Tensor,
    shape: PcmShape,
}

impl Pcm {
    /// Loads `0` (conv), `1` (batch norm, folded into 0) and `3` (conv).
    pub fn new(
        mut vb: Scope<'_>,
        cfg: &AstroMaeConfig,
        hidden: usize,
        g_in: usize,
        g_out: usize,
    ) -> Result<Self> {
        let d = cfg.embed_dim;
        let first = FoldedConv::conv(vb.pp("0"), hidden, d / g_in, 1)?
            .fold_batch_norm(vb.pp("1"), cfg.bn_eps)?;
        let second = FoldedConv::conv(vb.pp("3"), d, hidden / g_out, 1)?;
        let shape = PcmShape {
            first: Grouped {
                cin: d,
                cout: hidden,
                groups: g_in,
            },
            second: Grouped {
                cin: hidden,
                cout: d,
                groups: g_out,
            },
        };
        let packed: Vec<f32> = [first.weight, first.bias, second.weight, second.bias].concat();
        let n = packed.len();
        Ok(Self {
            packed: Tensor::from_vec(packed, n, &Device::Cpu)?,
            shape,
        })
    }

    /// `x` with `PCM(x[:, 1:])` added to its patch tokens.
    pub fn residual(&self, x: &Tensor) -> Result<Tensor> {
        ops::pcm_residual(x, &self.packed, self.shape)
    }
}

/// `mlp`: `fc1 -> GELU -> fc2`.
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    /// Loads `fc1` and `fc2`.
    pub fn new(mut vb: Scope<'_>, cfg: &AstroMaeConfig) -> Result<Self> {
        Ok(Self {
            fc1: Linear::new(vb.pp("fc1"), cfg.embed_dim, cfg.mlp_hidden)?,
            fc2: Linear::new(vb.pp("fc2"), cfg.mlp_hidden, cfg.embed_dim)?,
        })
    }

    pub(crate) fn visit(&mut self, f: &mut dyn FnMut(&mut PackedLinear)) {
        f(self.fc1.packed_mut());
        f(self.fc2.packed_mut());
    }

    /// `residual += fc2(gelu(fc1(x)))`.
    pub fn accumulate(&self, residual: &Tensor, x: &Tensor) -> Result<()> {
        let h = self.fc1.forward(x, Activation::Gelu)?;
        self.fc2.accumulate(residual, &h)
    }
}

/// `blocks.{i}`: a pre-norm transformer block, ViTAE NormalCell when `PCM` is present.
pub struct Block {
    norm1: LayerNorm,
    attn: Attention,
    pcm: Option<Pcm>,
    norm2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    /// Loads one block.
    pub fn new(mut vb: Scope<'_>, cfg: &AstroMaeConfig) -> Result<Self> {
        let d = cfg.embed_dim;
        let pcm = match cfg.block {
            BlockVariant::Vitae {
                pcm_hidden,
                pcm_groups_in,
                pcm_groups_out,
            } => Some(Pcm::new(
                vb.pp("PCM"),
                cfg,
                pcm_hidden,
                pcm_groups_in,
                pcm_groups_out,
            )?),
            BlockVariant::Plain => None,
        };
        Ok(Self {
            norm1: LayerNorm::new(vb.pp("norm1"), d, cfg.ln_eps)?,
            attn: Attention::new(vb.pp("attn"), cfg)?,
            pcm,
            norm2: LayerNorm::new(vb.pp("norm2"), d, cfg.ln_eps)?,
            mlp: Mlp::new(vb.pp("mlp"), cfg)?,
        })
    }

    pub(crate) fn visit(&mut self, f: &mut dyn FnMut(&mut PackedLinear)) {
        self.attn.visit(f);
        self.mlp.visit(f);
    }

    /// `x = input + attn(norm1(input)); x[:,1:] += PCM(input[:,1:]); x = x + mlp(norm2(x))`
    /// (the PCM term is added first: it builds the new residual stream from the input, so
    /// the input needs no copy).
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let x = match &self.pcm {
            Some(pcm) => pcm.residual(input)?,
            None => input.copy()?,
        };
        self.attn.accumulate(&x, &self.norm1.forward(input)?)?;
        self.mlp.accumulate(&x, &self.norm2.forward(&x)?)?;
        Ok(x)
    }
}

/// The whole ViT branch: tokens, blocks, mean-pooled patch tokens, `fc_norm`, `head`,
/// `vit_block`.
pub struct VitBranch {
    patch_embed: PatchEmbed,
    cls_pos: Tensor,
    patch_pos: Tensor,
    blocks: Vec<Block>,
    fc_norm: LayerNorm,
    head: Linear,
    vit_block_0: Linear,
    vit_block_2: Linear,
}

impl VitBranch {
    /// Loads the encoder and its head from the checkpoint's top level.
    pub fn new(vb: &mut Scope<'_>, cfg: &AstroMaeConfig) -> Result<Self> {
        let d = cfg.embed_dim;
        let n = cfg.num_patches();
        let cls = vb.take("cls_token", &[1, 1, d])?;
        let pos = vb.take("pos_embed", &[1, n + 1, d])?;
        // The class token's position row is constant: add it once here.
        let cls_pos: Vec<f32> = cls.iter().zip(&pos[..d]).map(|(c, p)| c + p).collect();
        let blocks = (0..cfg.depth)
            .map(|i| Block::new(vb.pp(&format!("blocks.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch_embed: PatchEmbed::new(vb.pp("patch_embed"), cfg)?,
            cls_pos: Tensor::from_vec(cls_pos, (1, 1, d), &Device::Cpu)?,
            patch_pos: Tensor::from_vec(pos[d..].to_vec(), (1, n, d), &Device::Cpu)?,
            blocks,
            fc_norm: LayerNorm::new(vb.pp("fc_norm"), d, cfg.ln_eps)?,
            head: Linear::new(vb.pp("head"), d, cfg.head_out)?,
            vit_block_0: Linear::new(vb.pp("vit_block.0"), cfg.head_out, cfg.vit_hidden)?,
            vit_block_2: Linear::new(vb.pp("vit_block.2"), cfg.vit_hidden, cfg.vit_hidden)?,
        })
    }

    /// Calls `f` on every product of the transformer blocks.
    pub(crate) fn visit_blocks(&mut self, f: &mut dyn FnMut(&mut PackedLinear)) {
        for b in &mut self.blocks {
            b.visit(f);
        }
    }

    /// `[b, c, h, w] -> [b, vit_hidden]`.
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let b = images.dim(0)?;
        let patches = self
            .patch_embed
            .forward(images)?
            .broadcast_add(&self.patch_pos)?;
        let d = patches.dim(2)?;
        let cls = self.cls_pos.broadcast_as((b, 1, d))?;
        let mut x = Tensor::cat(&[&cls, &patches], 1)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let t = x.dim(1)?;
        let pooled = x.narrow(1, 1, t - 1)?.mean(1)?;
        let h = self
            .head
            .forward(&self.fc_norm.forward(&pooled)?, Activation::Identity)?;
        let h = self.vit_block_0.forward(&h, Activation::Relu)?;
        self.vit_block_2.forward(&h, Activation::Identity)
    }
}
