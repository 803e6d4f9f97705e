"""Generate the model and partition fixtures for the Rust parity tests (``fixtures/``).

Why: the Rust loaders must read every format the original world produces (safetensors, torch
state dicts, a pickled whole ``nn.DataParallel`` module with CUDA-tagged storages, TensorDataset
partitions pickled with protocol 2 and 4, strided tensor views) and the Rust model must match
PyTorch's predictions.  The real checkpoint is 60 MB and not available, so this script builds a
*reduced* AstroMAE with the reference implementation in ``bench/reference`` (same tensor names,
smaller widths), saves it in each format, and records PyTorch's float32 predictions for every
model file x partition file in ``fixtures/model/expected.json``.  Full-size name/shape listings
let the Rust side check the full configuration without big files.

Everything is seeded, so rerunning reproduces the same tensors and predictions:
    python3 tools/make_fixtures.py
Needs torch, numpy and safetensors (pip install safetensors).
"""

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # pytorch_ref also puts bench/reference on sys.path

from pytorch_ref import load_model, load_partition, synthetic_galaxies  # noqa: E402
from blocks.model_vit_inception import (  # noqa: E402
    FULL_VIT,
    FULL_VITAE,
    AstroConfig,
    ViT_Astro,
    randomize_,
)

MODEL_DIR = ROOT / "fixtures" / "model"
PART_DIR = ROOT / "fixtures" / "partitions"
MAX_FILE_BYTES = 2 * 1024 * 1024

SMALL = dict(
    embed_dim=128,
    depth=2,
    num_heads=2,  # head_dim 64, which is what loaders assume without metadata
    mlp_hidden=128,
    vit_hidden=96,
    inception_hidden=96,
    mag_hidden=64,
    concat_hidden=64,
)  # inception widths, stem, patch size and image size as in the full model
SMALL_VITAE = AstroConfig(block="vitae", **SMALL)
SMALL_VIT = AstroConfig(block="vit", **SMALL)
WEIGHT_SEEDS = {"vitae": 101, "vit": 102}
P2_SEED, P4_SEED = 11, 12
P2_N, P4_N = 24, 20


@contextmanager
def cuda_location_tags():
    """Make torch.save record every storage as 'cuda:0', as a checkpoint saved on a GPU does."""
    original = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        yield
    finally:
        torch.serialization.location_tag = original


def save_safetensors(model: ViT_Astro, path: Path, num_heads: int):
    # Clone: the state dict holds conv2d_init twice (also as vis_inception.0), and
    # safetensors refuses tensors that share memory; both names are kept, as in the checkpoint.
    tensors = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"num_heads": str(num_heads), "format": "pt"})
    sort_safetensors_metadata(path)


def sort_safetensors_metadata(path: Path):
    """Rewrite the header with its metadata keys sorted, so that regenerating gives
    byte-identical files (the safetensors writer emits metadata in hash-map order)."""
    with open(path, "r+b") as f:
        length = int.from_bytes(f.read(8), "little")
        raw = f.read(length)
        header = json.loads(raw)
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (length - len(text))  # same keys and values: same length as before
        assert len(text) == length and json.loads(text) == json.loads(raw)
        f.seek(8)
        f.write(text)


def save_dataparallel(model: ViT_Astro, path: Path):
    with cuda_location_tags():
        torch.save(nn.DataParallel(model), path)


def scale_output_to_redshifts_(model: ViT_Astro) -> None:
    """Shrink the last layer so random-weight outputs look like redshifts (about 0-0.5).

    Parity is checked to 1e-5 in absolute terms; with outputs of order 10 that would demand
    better than f32 relative precision, so the fixtures keep outputs at the scale of real z.
    """
    with torch.no_grad():
        model.concat_block[2].weight.mul_(0.02)
        model.concat_block[2].bias.fill_(0.15)


def write_models() -> dict:
    """Save both reduced variants in every format; return {file name: config/param info}."""
    info = {}
    for cfg in (SMALL_VITAE, SMALL_VIT):
        model = randomize_(ViT_Astro(cfg), WEIGHT_SEEDS[cfg.block])
        scale_output_to_redshifts_(model)
        stem = f"small-{cfg.block}"
        save_safetensors(model, MODEL_DIR / f"{stem}.safetensors", cfg.num_heads)
        save_dataparallel(model, MODEL_DIR / f"{stem}.dataparallel.pt")
        files = [f"{stem}.safetensors", f"{stem}.dataparallel.pt"]
        if cfg.block == "vitae":
            torch.save(model.state_dict(), MODEL_DIR / f"{stem}.state_dict.pt")
            files.append(f"{stem}.state_dict.pt")
        params = sum(p.numel() for p in model.parameters())
        for name in files:
            info[name] = {"variant": cfg.block, "weight_seed": WEIGHT_SEEDS[cfg.block],
                          "parameters": params}
    return info


def write_partitions() -> dict:
    """Two TensorDataset pickles (protocol 2, contiguous; protocol 4, strided views) and a
    safetensors copy of the protocol-4 data."""
    images, mags, z = synthetic_galaxies(P2_N, P2_SEED)
    torch.save(TensorDataset(images, mags, z), PART_DIR / "small-p2.pt", pickle_protocol=2)

    images, mags, z = synthetic_galaxies(P4_N, P4_SEED)
    # Views into bigger storages, as slicing a large dataset leaves them:
    # images at a non-zero storage offset, magnitudes a column slice (stride 7, offset 1),
    # redshift every other element of a [N, 2] tensor (stride 2).
    big_images = torch.zeros(P4_N + 3, *images.shape[1:])
    big_images[2:P4_N + 2] = images
    big_mags = torch.full((P4_N, 7), -1.0, dtype=torch.float64)
    big_mags[:, 1:6] = mags
    big_z = torch.full((P4_N, 2), -1.0)
    big_z[:, 0] = z
    views = (big_images[2:P4_N + 2], big_mags[:, 1:6], big_z[:, 0])
    assert views[0].storage_offset() > 0 and not views[1].is_contiguous()
    assert views[2].stride() == (2,)
    torch.save(TensorDataset(*views), PART_DIR / "small-p4.pt", pickle_protocol=4)
    save_file({"images": images, "magnitudes": mags, "redshifts": z},
              str(PART_DIR / "small.safetensors"))

    return {
        "small-p2.pt": {"samples": P2_N, "seed": P2_SEED, "pickle_protocol": 2, "views": False},
        "small-p4.pt": {"samples": P4_N, "seed": P4_SEED, "pickle_protocol": 4, "views": True},
        "small.safetensors": {"samples": P4_N, "seed": P4_SEED, "same_data_as": "small-p4.pt"},
    }


def check_partitions():
    """The pickles must round-trip with their views intact and match the safetensors copy."""
    p4 = torch.load(PART_DIR / "small-p4.pt", weights_only=False).tensors
    assert p4[0].storage_offset() == 2 * 5 * 32 * 32 and p4[1].stride() == (7, 1)
    assert p4[1].dtype == torch.float64 and p4[2].stride() == (2,)
    st = load_partition(str(PART_DIR / "small.safetensors"))
    for a, b in zip(p4, st):
        assert torch.equal(a, b)


@torch.no_grad()
def predictions(model_files, partition_files) -> dict:
    """PyTorch float32 eval-mode predictions for every model file x partition file, each file
    loaded through the same code path as bench/pytorch_ref.py (so the loaders are tested too)."""
    out = {}
    for mf in model_files:
        model = load_model(str(MODEL_DIR / mf))
        assert not model.training
        out[mf] = {}
        for pf in partition_files:
            images, mags, _ = load_partition(str(PART_DIR / pf))
            out[mf][pf] = [float(v) for v in model(images, mags).flatten()]
    return out


def check_dataparallel_pickle(name: str):
    """The whole-module pickle must record CUDA storages and the original's class path."""
    import zipfile

    with zipfile.ZipFile(MODEL_DIR / name) as z:
        pickle_bytes = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    assert b"cuda:0" in pickle_bytes and b"blocks.model_vit_inception" in pickle_bytes
    assert b"ViT_Astro" in pickle_bytes
    module = torch.load(MODEL_DIR / name, map_location="cpu", weights_only=False)
    assert isinstance(module, nn.DataParallel) and type(module.module).__name__ == "ViT_Astro"


def write_full_shapes():
    for cfg, name in ((FULL_VITAE, "full-vitae-shapes.json"), (FULL_VIT, "full-vit-shapes.json")):
        model = ViT_Astro(cfg)
        doc = {
            "config": cfg.to_dict(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "parameters_note": "sum of numel over model.parameters(): includes cls_token and "
            "pos_embed (frozen Parameters), excludes BatchNorm running stats/num_batches_tracked; "
            "conv2d_init counted once although the state dict also names it vis_inception.0",
            "tensors": [
                {"name": k, "shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")}
                for k, v in model.state_dict().items()
            ],
        }
        (MODEL_DIR / name).write_text(json.dumps(doc, indent=1) + "\n")


def main():
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    PART_DIR.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # keep the recorded float32 predictions reproducible

    model_info = write_models()
    partition_info = write_partitions()
    check_partitions()
    for name in model_info:
        if name.endswith(".dataparallel.pt"):
            check_dataparallel_pickle(name)
    preds = predictions(sorted(model_info), sorted(partition_info))
    ref = preds["small-vitae.safetensors"]
    for mf in model_info:
        if model_info[mf]["variant"] == "vitae":
            assert preds[mf] == ref, f"{mf} predicts differently from small-vitae.safetensors"

    expected = {
        "generator": "tools/make_fixtures.py",
        "torch": torch.__version__,
        "dtype": "float32",
        "configs": {"vitae": SMALL_VITAE.to_dict(), "vit": SMALL_VIT.to_dict()},
        "models": model_info,
        "partitions": partition_info,
        "predictions": preds,
    }
    (MODEL_DIR / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    write_full_shapes()

    for path in sorted(list(MODEL_DIR.iterdir()) + list(PART_DIR.iterdir())):
        size = path.stat().st_size
        assert size < MAX_FILE_BYTES, f"{path} is {size} bytes"
        print(f"{size:>9}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
