"""PyTorch reference of the AstroMAE redshift model (ViT + Inception + magnitudes).

Why this exists: the Rust/candle port in this repository must reproduce the original model's
numbers and must load the original's checkpoint, a pickled ``nn.DataParallel`` of the whole
module.  This file rebuilds the network from the public description (see
``shared/reference/astromae.md``) with the *same module tree*, so that

* ``state_dict()`` names are exactly the checkpoint's names (``blocks.3.attn.q_bias``,
  ``inception_model.vis_inception.8.branch3.1.bn.running_var``, ...);
* a whole module pickled from here records ``blocks.model_vit_inception.ViT_Astro`` as its class,
  as the original does (put ``bench/reference`` on ``sys.path`` to unpickle it);
* one class covers the full size and the reduced sizes used for test fixtures, through
  :class:`AstroConfig`.

Two encoder block variants are supported because the real checkpoint's block type is inferred,
not known: ``"vitae"`` (ViTAE NormalCell: qkv without bias plus ``q_bias``/``v_bias`` and a
parallel convolution module ``PCM``) and ``"vit"`` (plain timm block, qkv with a full bias).

Numerics follow the original: pre-norm blocks, LayerNorm eps 1e-6, exact (erf) GELU,
attention scale ``head_dim ** -0.5``, BatchNorm in eval mode (running statistics), magnitudes
cast to float32 inside the model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-6


@dataclass
class AstroConfig:
    """Every size of the model.  The defaults are the published full-size model."""

    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_hidden: int = 768
    patch_size: int = 8
    in_chans: int = 5
    img_size: int = 32
    block: str = "vitae"  # "vitae" (NormalCell with PCM) or "vit" (plain timm Block)
    # PCM (ViTAE only): Conv2d(dim -> pcm_hidden, 1x1, groups) -> BN -> SiLU -> Conv2d(back).
    # None means "as ViTAE ties them": pcm_hidden = mlp_hidden, pcm_groups = embed_dim // 4.
    pcm_hidden: int | None = None
    pcm_groups: int | None = None
    vit_hidden: int = 1096  # vit_block: Linear(embed_dim -> h) -> ReLU -> Linear(h -> h)
    inception_stem: int = 32  # conv2d_init output channels
    # Branch width of the five Inception modules; the last one concatenates only 3 branches.
    inception_widths: tuple[int, ...] = (16, 16, 8, 8, 4)
    inception_hidden: int = 1096  # Linear(flatten -> h) -> ReLU -> Linear(h -> h)
    mag_in: int = 5
    mag_hidden: int = 1024  # five Linear layers, ReLU between them
    concat_hidden: int = 1024  # Linear(concat -> h) -> ReLU -> Linear(h -> 1)

    def __post_init__(self):
        if self.block not in ("vitae", "vit"):
            raise ValueError(f"block must be 'vitae' or 'vit', not {self.block!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError("embed_dim must be a multiple of num_heads")
        if self.img_size % self.patch_size or self.img_size % 8:
            raise ValueError("img_size must be a multiple of patch_size and of 8")
        if len(self.inception_widths) != 5:
            raise ValueError("inception_widths needs 5 entries")
        self.inception_widths = tuple(int(w) for w in self.inception_widths)
        if self.pcm_hidden is None:
            self.pcm_hidden = self.mlp_hidden
        if self.pcm_groups is None:
            self.pcm_groups = self.embed_dim // 4

    @property
    def grid(self) -> int:
        """Patch tokens per side."""
        return self.img_size // self.patch_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["inception_widths"] = list(self.inception_widths)
        return d


FULL_VITAE = AstroConfig()
FULL_VIT = AstroConfig(block="vit")


# --------------------------------------------------------------------------------------------
# ViT encoder
# --------------------------------------------------------------------------------------------


def sincos_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position table [1, 1 + grid*grid, dim], cls row all zero.

    Half the channels encode the column index, half the row index; each half is
    [sin(pos * w_k), cos(pos * w_k)] with w_k = 10000 ** (-k / (dim/4)).  Trained checkpoints
    store the table, so loaders copy it rather than recompute it.
    """
    if dim % 4:
        raise ValueError("sin-cos position embedding needs dim % 4 == 0")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    pos = torch.arange(grid, dtype=torch.float64)
    rows, cols = torch.meshgrid(pos, pos, indexing="ij")  # token t = row * grid + col

    def encode(p: torch.Tensor) -> torch.Tensor:
        angles = p.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    table = torch.cat([encode(cols), encode(rows)], dim=1)
    table = torch.cat([torch.zeros(1, dim, dtype=torch.float64), table], dim=0)
    return table.float().unsqueeze(0)


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens, via a strided convolution (``proj``)."""

    def __init__(self, cfg: AstroConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, H*W, C], row-major tokens


class Attention(nn.Module):
    """Multi-head self-attention.

    ``split_bias=True`` is the ViTAE/BEiT layout: ``qkv`` has no bias and learned ``q_bias`` and
    ``v_bias`` are concatenated around a zero k bias.  ``split_bias=False`` is timm's layout
    (``qkv.bias`` covers q, k and v).
    """

    def __init__(self, dim: int, num_heads: int, split_bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=not split_bias)
        if split_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = None
            self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
            qkv = F.linear(x, self.qkv.weight, bias)
        else:
            qkv = self.qkv(x)
        qkv = qkv.reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each [B, heads, N, head_dim]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # erf form
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Plain pre-norm transformer block (timm ``Block`` layout)."""

    def __init__(self, cfg: AstroConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=LN_EPS)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads, split_bias=False)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=LN_EPS)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class NormalCell(nn.Module):
    """ViTAE NormalCell: attention plus a parallel convolution module (PCM) on patch tokens.

    x = x + attn(norm1(x)); x[:, 1:] += PCM(patch tokens of the block's input as a HxW map);
    x = x + mlp(norm2(x)).  The cls token (index 0) bypasses the PCM.
    """

    def __init__(self, cfg: AstroConfig):
        super().__init__()
        dim, hidden, groups = cfg.embed_dim, cfg.pcm_hidden, cfg.pcm_groups
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, cfg.num_heads, split_bias=True)
        self.PCM = nn.Sequential(
            nn.Conv2d(dim, hidden, 1, groups=groups),
            nn.BatchNorm2d(hidden),
            nn.SiLU(),
            nn.Conv2d(hidden, dim, 1, groups=groups),
        )
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, cfg.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        side = math.isqrt(n - 1)
        patches = x[:, 1:].transpose(1, 2).reshape(b, c, side, side)
        conv = self.PCM(patches).flatten(2).transpose(1, 2)  # back to [B, N-1, C]
        x = x + self.attn(self.norm1(x))
        x = torch.cat([x[:, :1], x[:, 1:] + conv], dim=1)
        return x + self.mlp(self.norm2(x))


# --------------------------------------------------------------------------------------------
# Inception + magnitude branches
# --------------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """Conv2d (with bias) -> BatchNorm2d -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class InceptionBlock(nn.Module):
    """Four parallel branches of ``width`` channels each, concatenated on channels.

    branch1: 1x1; branch2: 1x1 -> 3x3; branch3: 1x1 -> 5x5; branch4: maxpool 3x3 -> 1x1.
    With ``skip_branch3`` (the last module of the original) branch3 keeps its weights but is
    left out of the forward pass, so the output has 3 * width channels.
    """

    def __init__(self, cin: int, width: int, skip_branch3: bool = False):
        super().__init__()
        self.skip_branch3 = skip_branch3
        self.branch1 = ConvBlock(cin, width, 1)
        self.branch2 = nn.Sequential(ConvBlock(cin, width, 1), ConvBlock(width, width, 3))
        self.branch3 = nn.Sequential(ConvBlock(cin, width, 1), ConvBlock(width, width, 5))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), ConvBlock(cin, width, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1, self.branch2, self.branch4]
        if not self.skip_branch3:
            branches.insert(2, self.branch3)
        return torch.cat([branch(x) for branch in branches], dim=1)


class InceptionMagnitudeModel(nn.Module):
    """Image Inception branch and magnitude MLP; returns their outputs concatenated.

    ``vis_inception`` is indexed as in the original checkpoint:
    [0 conv2d_init (the same module object), 1 avgpool, 2 Inc, 3 Inc, 4 avgpool, 5 Inc, 6 Inc,
    7 avgpool, 8 Inc(skip branch3), 9 flatten, 10 Linear, 11 ReLU, 12 Linear].
    """

    def __init__(self, cfg: AstroConfig):
        super().__init__()
        w = cfg.inception_widths
        self.conv2d_init = nn.Conv2d(cfg.in_chans, cfg.inception_stem, 1)
        final_side = cfg.img_size // 8  # three 2x2 average pools
        flat = 3 * w[4] * final_side * final_side
        self.vis_inception = nn.Sequential(
            self.conv2d_init,
            nn.AvgPool2d(2),
            InceptionBlock(cfg.inception_stem, w[0]),
            InceptionBlock(4 * w[0], w[1]),
            nn.AvgPool2d(2),
            InceptionBlock(4 * w[1], w[2]),
            InceptionBlock(4 * w[2], w[3]),
            nn.AvgPool2d(2),
            InceptionBlock(4 * w[3], w[4], skip_branch3=True),
            nn.Flatten(),
            nn.Linear(flat, cfg.inception_hidden),
            nn.ReLU(),
            nn.Linear(cfg.inception_hidden, cfg.inception_hidden),
        )
        h = cfg.mag_hidden
        self.magnitude_block = nn.Sequential(
            nn.Linear(cfg.mag_in, h), nn.ReLU(),
            nn.Linear(h, h), nn.ReLU(),
            nn.Linear(h, h), nn.ReLU(),
            nn.Linear(h, h), nn.ReLU(),
            nn.Linear(h, h),
        )  # fmt: skip

    def forward(self, x_img: torch.Tensor, x_mag: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.vis_inception(x_img), self.magnitude_block(x_mag.float())], dim=1)


# --------------------------------------------------------------------------------------------
# Whole model
# --------------------------------------------------------------------------------------------


class ViT_Astro(nn.Module):  # noqa: N801  (the original's class name; pickles record it)
    """AstroMAE fine-tune model: image [B,C,H,W] float32 + magnitudes [B,5] -> redshift [B,1]."""

    def __init__(self, cfg: AstroConfig = FULL_VITAE):
        super().__init__()
        self.config = cfg.to_dict()  # plain dict, so a pickled module needs no extra class
        dim = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        # Frozen in the original but a Parameter, so it counts in parameters() and state_dict().
        self.pos_embed = nn.Parameter(sincos_pos_embed(dim, cfg.grid), requires_grad=False)
        block = NormalCell if cfg.block == "vitae" else Block
        self.blocks = nn.ModuleList([block(cfg) for _ in range(cfg.depth)])
        self.fc_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, dim)
        self.vit_block = nn.Sequential(
            nn.Linear(dim, cfg.vit_hidden), nn.ReLU(), nn.Linear(cfg.vit_hidden, cfg.vit_hidden)
        )
        self.inception_model = InceptionMagnitudeModel(cfg)
        concat = cfg.vit_hidden + cfg.inception_hidden + cfg.mag_hidden
        self.concat_block = nn.Sequential(
            nn.Linear(concat, cfg.concat_hidden), nn.ReLU(), nn.Linear(cfg.concat_hidden, 1)
        )

    def encode(self, x_img: torch.Tensor) -> torch.Tensor:
        """ViT branch: mean of the patch tokens (cls excluded) -> fc_norm -> head -> vit_block."""
        x = self.patch_embed(x_img)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.fc_norm(x[:, 1:].mean(dim=1))
        return self.vit_block(self.head(x))

    def forward(self, x_img, x_mag: torch.Tensor | None = None) -> torch.Tensor:
        """``model(img, mag)`` or, as the original is called, ``model([img, mag])``."""
        if x_mag is None:
            x_img, x_mag = x_img
        features = torch.cat([self.encode(x_img), self.inception_model(x_img, x_mag)], dim=1)
        return self.concat_block(features)


# --------------------------------------------------------------------------------------------
# Helpers shared by the fixture generator and the benchmark
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def randomize_(model: ViT_Astro, seed: int) -> ViT_Astro:
    """Seeded random weights that keep activations at a sane scale (for tests and benchmarks).

    Linear/conv weights are He-normal (std sqrt(2 / fan_in)) so the ReLU stacks neither blow
    up nor collapse to their biases; biases, cls_token, q/v biases are small.  LayerNorm and
    BatchNorm affine are 1 +- 0.2 / +- 0.1, BN running_mean small and running_var in
    [0.5, 1.5], so eval-mode BatchNorm is genuinely exercised.  pos_embed keeps its table.
    """
    g = torch.Generator().manual_seed(seed)

    def normal(t: torch.Tensor, std: float):
        t.copy_(torch.randn(t.shape, generator=g) * std)

    def uniform(t: torch.Tensor, lo: float, hi: float):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            normal(module.weight, math.sqrt(2.0 / fan_in))
            if module.bias is not None:
                normal(module.bias, 0.02)
        elif isinstance(module, nn.LayerNorm):
            uniform(module.weight, 0.8, 1.2)
            uniform(module.bias, -0.1, 0.1)
        elif isinstance(module, nn.BatchNorm2d):
            uniform(module.weight, 0.8, 1.2)
            uniform(module.bias, -0.1, 0.1)
            uniform(module.running_mean, -0.1, 0.1)
            uniform(module.running_var, 0.5, 1.5)
            module.num_batches_tracked.fill_(1000)
        elif isinstance(module, Attention) and module.q_bias is not None:
            normal(module.q_bias, 0.02)
            normal(module.v_bias, 0.02)
    normal(model.cls_token, 0.02)
    return model.eval()


def config_from_state_dict(sd: dict, num_heads: int | None = None) -> AstroConfig:
    """Infer the configuration from tensor names and shapes (no ``module.`` prefix).

    depth = number of ``blocks.{i}``; dims from weight shapes; variant "vitae" when the blocks
    carry ``attn.q_bias`` or ``PCM``; heads = embed_dim // 64 unless ``num_heads`` is given.
    Raises KeyError naming the first tensor it needs but cannot find.
    """

    def shape(name: str) -> tuple[int, ...]:
        if name not in sd:
            raise KeyError(f"tensor {name!r} needed to infer the model config is missing")
        return tuple(sd[name].shape)

    dim, in_chans, patch, _ = shape("patch_embed.proj.weight")
    tokens = shape("pos_embed")[1] - 1
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    vitae = "blocks.0.attn.q_bias" in sd or "blocks.0.PCM.0.weight" in sd
    inc = "inception_model.vis_inception."
    kwargs = {}
    if vitae:
        pcm_hidden, per_group, _, _ = shape("blocks.0.PCM.0.weight")
        kwargs = {"pcm_hidden": pcm_hidden, "pcm_groups": dim // per_group}
    return AstroConfig(
        embed_dim=dim,
        depth=depth,
        num_heads=num_heads or max(1, dim // 64),
        mlp_hidden=shape("blocks.0.mlp.fc1.weight")[0],
        patch_size=patch,
        in_chans=in_chans,
        img_size=math.isqrt(tokens) * patch,
        block="vitae" if vitae else "vit",
        vit_hidden=shape("vit_block.0.weight")[0],
        inception_stem=shape("inception_model.conv2d_init.weight")[0],
        inception_widths=tuple(
            shape(f"{inc}{i}.branch1.conv.weight")[0] for i in (2, 3, 5, 6, 8)
        ),
        inception_hidden=shape(f"{inc}10.weight")[0],
        mag_in=shape("inception_model.magnitude_block.0.weight")[1],
        mag_hidden=shape("inception_model.magnitude_block.0.weight")[0],
        concat_hidden=shape("concat_block.0.weight")[0],
        **kwargs,
    )


def load_state_dict_checked(model: nn.Module, sd: dict) -> None:
    """Strict load that reports every missing, unexpected and mis-shaped tensor at once.

    Only BatchNorm ``num_batches_tracked`` counters may be absent (writers other than PyTorch
    may drop them; eval mode never reads them): the model keeps its own.
    """
    own = model.state_dict()
    sd = {**{k: v for k, v in own.items() if k.endswith("num_batches_tracked")}, **sd}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        lines = []
        groups = (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        for title, items in groups:
            if items:
                lines.append(f"{title} ({len(items)}): " + ", ".join(items))
        raise ValueError("checkpoint does not match the model:\n  " + "\n  ".join(lines))
    model.load_state_dict(sd, strict=True)
