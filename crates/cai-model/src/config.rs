//! The AstroMAE architecture's sizes, read from a checkpoint's tensor names and shapes.
//!
//! Nothing is hard-coded to the published size: reduced test models and future checkpoints
//! with other depths or widths load the same way. Where a tensor needed to read a size is
//! missing, the published size is assumed so that validation can then list every problem
//! at once instead of stopping at the first.

use crate::weights::RawWeights;

/// Which transformer block the checkpoint uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockVariant {
    /// ViTAE NormalCell: `qkv` without bias plus `q_bias`/`v_bias`, and a PCM conv branch.
    Vitae {
        /// Hidden channels of the PCM (768 in the published model).
        pcm_hidden: usize,
        /// Groups of the first PCM conv.
        pcm_groups_in: usize,
        /// Groups of the second PCM conv.
        pcm_groups_out: usize,
    },
    /// Plain timm ViT block: `qkv` with a full bias, no PCM.
    Plain,
}

/// Channel widths of one Inception block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InceptionBlockConfig {
    /// Input channels.
    pub cin: usize,
    /// Branch 1 (1x1) output channels.
    pub b1: usize,
    /// Branch 2 1x1 reduction, then 3x3 output channels.
    pub b2_reduce: usize,
    /// Branch 2 output channels.
    pub b2: usize,
    /// Branch 3 1x1 reduction (5x5 follows).
    pub b3_reduce: usize,
    /// Branch 3 output channels.
    pub b3: usize,
    /// Branch 4 (max-pool then 1x1) output channels.
    pub b4: usize,
    /// False for the last block, whose forward pass skips branch 3 though its weights exist.
    pub uses_b3: bool,
}

impl InceptionBlockConfig {
    /// Channels the block outputs.
    pub fn out_channels(&self) -> usize {
        self.b1 + self.b2 + if self.uses_b3 { self.b3 } else { 0 } + self.b4
    }
}

/// Positions of the Inception blocks in `inception_model.vis_inception` (a Sequential).
pub const INCEPTION_SLOTS: [usize; 5] = [2, 3, 5, 6, 8];

/// Every size the forward pass needs.
#[derive(Clone, Debug, PartialEq)]
pub struct AstroMaeConfig {
    /// Image bands (5: u, g, r, i, z).
    pub in_chans: usize,
    /// Image side in pixels (32).
    pub img_size: usize,
    /// ViT patch side (8).
    pub patch_size: usize,
    /// Token width (192).
    pub embed_dim: usize,
    /// Transformer blocks (12).
    pub depth: usize,
    /// Attention heads (3).
    pub num_heads: usize,
    /// Hidden width of each block's MLP (768).
    pub mlp_hidden: usize,
    /// Block flavour.
    pub block: BlockVariant,
    /// Output width of `head` (192).
    pub head_out: usize,
    /// Hidden/output width of `vit_block` (1096).
    pub vit_hidden: usize,
    /// Output channels of `conv2d_init` (32).
    pub inception_stem: usize,
    /// The five Inception blocks.
    pub inception: [InceptionBlockConfig; 5],
    /// Hidden/output width of the Inception branch's final MLP (1096).
    pub inception_hidden: usize,
    /// Magnitudes per sample (5).
    pub mag_in: usize,
    /// Widths of the magnitude MLP's layers (1024 x 5).
    pub mag_layers: Vec<usize>,
    /// Hidden width of `concat_block` (1024).
    pub concat_hidden: usize,
    /// LayerNorm epsilon (1e-6).
    pub ln_eps: f32,
    /// BatchNorm epsilon (PyTorch's default, 1e-5).
    pub bn_eps: f32,
}

impl AstroMaeConfig {
    /// The published fine-tune model (ViTAE blocks, 15,902,889 parameters).
    pub fn published() -> Self {
        let inc = |cin, c, uses_b3| InceptionBlockConfig {
            cin,
            b1: c,
            b2_reduce: c,
            b2: c,
            b3_reduce: c,
            b3: c,
            b4: c,
            uses_b3,
        };
        Self {
            in_chans: 5,
            img_size: 32,
            patch_size: 8,
            embed_dim: 192,
            depth: 12,
            num_heads: 3,
            mlp_hidden: 768,
            block: BlockVariant::Vitae {
                pcm_hidden: 768,
                pcm_groups_in: 48,
                pcm_groups_out: 48,
            },
            head_out: 192,
            vit_hidden: 1096,
            inception_stem: 32,
            inception: [
                inc(32, 16, true),
                inc(64, 16, true),
                inc(64, 8, true),
                inc(32, 8, true),
                inc(32, 4, false),
            ],
            inception_hidden: 1096,
            mag_in: 5,
            mag_layers: vec![1024; 5],
            concat_hidden: 1024,
            ln_eps: 1e-6,
            bn_eps: 1e-5,
        }
    }

    /// Patch tokens per image (16).
    pub fn num_patches(&self) -> usize {
        (self.img_size / self.patch_size).pow(2)
    }

    /// Side of the feature map at the end of the Inception branch (32 / 2 / 2 / 2 = 4).
    pub fn inception_final_side(&self) -> usize {
        self.img_size / 8
    }

    /// Floating-point operations (a multiply-add counts 2) of one sample's forward pass:
    /// every product, convolution, attention and PCM; element-wise work is not counted.
    /// ~0.22 GFLOP for the published model; `cai bench` divides by it to report GFLOP/s.
    pub fn flops_per_sample(&self) -> f64 {
        let lin = |rows: usize, k: usize, m: usize| 2.0 * (rows * k * m) as f64;
        let d = self.embed_dim;
        let n = self.num_patches();
        let t = n + 1;
        let p = self.patch_size;
        let mut f = lin(n, self.in_chans * p * p, d);
        let mut block = lin(t, d, 3 * d) + lin(t, d, d) + lin(t, d, self.mlp_hidden) * 2.0;
        block += 2.0 * lin(t, d, t); // q·kᵀ and p·v over all heads
        if let BlockVariant::Vitae {
            pcm_hidden,
            pcm_groups_in,
            pcm_groups_out,
        } = self.block
        {
            block += lin(n, d / pcm_groups_in.max(1), pcm_hidden);
            block += lin(n, pcm_hidden / pcm_groups_out.max(1), d);
        }
        f += block * self.depth as f64;
        f += lin(1, d, self.head_out) + lin(1, self.head_out, self.vit_hidden);
        f += lin(1, self.vit_hidden, self.vit_hidden);
        let mut side = self.img_size / 2;
        f += lin(side * side, self.in_chans, self.inception_stem);
        for (i, b) in self.inception.iter().enumerate() {
            if i == 2 || i == 4 {
                side /= 2;
            }
            let px = side * side;
            let reduce3 = if b.uses_b3 { b.b3_reduce } else { 0 };
            f += lin(px, b.cin, b.b1 + b.b2_reduce + reduce3 + b.b4);
            f += lin(px, 9 * b.b2_reduce, b.b2);
            if b.uses_b3 {
                f += lin(px, 25 * b.b3_reduce, b.b3);
            }
        }
        let flat = self.inception[4].out_channels() * side * side;
        f += lin(1, flat, self.inception_hidden)
            + lin(1, self.inception_hidden, self.inception_hidden);
        let mut din = self.mag_in;
        for &w in &self.mag_layers {
            f += lin(1, din, w);
            din = w;
        }
        let concat = self.vit_hidden + self.inception_hidden + din;
        f + lin(1, concat, self.concat_hidden) + lin(1, self.concat_hidden, 1)
    }

    /// Reads the sizes from a checkpoint, filling gaps from [`Self::published`].
    pub fn infer(w: &RawWeights) -> Self {
        let d = Self::published();
        let dim = |name: &str, axis: usize, default: usize| {
            w.shape(name)
                .and_then(|s| s.get(axis).copied())
                .unwrap_or(default)
        };
        let embed_dim = dim(
            "patch_embed.proj.weight",
            0,
            dim("pos_embed", 2, d.embed_dim),
        );
        let in_chans = dim("patch_embed.proj.weight", 1, d.in_chans);
        let patch_size = dim("patch_embed.proj.weight", 2, d.patch_size);
        let tokens = dim("pos_embed", 1, d.num_patches() + 1);
        let grid = ((tokens.saturating_sub(1)) as f64).sqrt().round() as usize;
        let img_size = if grid > 0 {
            grid * patch_size
        } else {
            d.img_size
        };
        let depth = (0..)
            .take_while(|i| {
                w.tensors
                    .keys()
                    .any(|k| k.starts_with(&format!("blocks.{i}.")))
            })
            .count();
        let block = if w.shape("blocks.0.attn.q_bias").is_some()
            || w.shape("blocks.0.PCM.0.weight").is_some()
        {
            let pcm_hidden = dim("blocks.0.PCM.0.weight", 0, 4 * embed_dim);
            let in_per_group = dim("blocks.0.PCM.0.weight", 1, 4).max(1);
            let hid_per_group = dim("blocks.0.PCM.3.weight", 1, 16).max(1);
            BlockVariant::Vitae {
                pcm_hidden,
                pcm_groups_in: (embed_dim / in_per_group).max(1),
                pcm_groups_out: (pcm_hidden / hid_per_group).max(1),
            }
        } else {
            BlockVariant::Plain
        };
        let num_heads = w.num_heads.unwrap_or_else(|| (embed_dim / 64).max(1));
        let inception = std::array::from_fn(|i| {
            let p = format!("inception_model.vis_inception.{}", INCEPTION_SLOTS[i]);
            let def = d.inception[i];
            let out = |branch: &str, default: usize| {
                dim(&format!("{p}.{branch}.conv.weight"), 0, default)
            };
            InceptionBlockConfig {
                cin: dim(&format!("{p}.branch1.conv.weight"), 1, def.cin),
                b1: out("branch1", def.b1),
                b2_reduce: out("branch2.0", def.b2_reduce),
                b2: out("branch2.1", def.b2),
                b3_reduce: out("branch3.0", def.b3_reduce),
                b3: out("branch3.1", def.b3),
                b4: out("branch4.1", def.b4),
                uses_b3: i != 4,
            }
        });
        let mag_layers: Vec<usize> = (0..)
            .map(|i| format!("inception_model.magnitude_block.{}.weight", 2 * i))
            .take_while(|n| w.shape(n).is_some())
            .map(|n| w.shape(&n).map(|s| s[0]).unwrap_or(0))
            .collect();
        Self {
            in_chans,
            img_size,
            patch_size,
            embed_dim,
            depth: if depth == 0 { d.depth } else { depth },
            num_heads,
            mlp_hidden: dim("blocks.0.mlp.fc1.weight", 0, 4 * embed_dim),
            block,
            head_out: dim("head.weight", 0, embed_dim),
            vit_hidden: dim(
                "vit_block.2.weight",
                0,
                dim("vit_block.0.weight", 0, d.vit_hidden),
            ),
            inception_stem: dim("inception_model.conv2d_init.weight", 0, d.inception_stem),
            inception,
            inception_hidden: dim(
                "inception_model.vis_inception.12.weight",
                0,
                dim(
                    "inception_model.vis_inception.10.weight",
                    0,
                    d.inception_hidden,
                ),
            ),
            mag_in: dim("inception_model.magnitude_block.0.weight", 1, d.mag_in),
            mag_layers: if mag_layers.is_empty() {
                d.mag_layers
            } else {
                mag_layers
            },
            concat_hidden: dim("concat_block.0.weight", 0, d.concat_hidden),
            ln_eps: d.ln_eps,
            bn_eps: d.bn_eps,
        }
    }
}
