"""PyTorch reference runner for ``cai bench --compare-pytorch`` and memory comparisons.

Why: the Rust port claims speed and memory against the original Python stack, so the comparison
must run the *same* model the same way the original does (CPU, torch.load of pickled
partitions, DataLoader batches).  This script loads AstroMAE weights from any of the formats
the project handles and prints one JSON object with throughput, CPU time, peak RSS and the
latency to the first prediction.

Weights (``--weights``):
  * ``.safetensors`` (e.g. the seeded-random file ``cai`` writes) or a ``.pt`` state dict: the
    config is inferred from names and shapes (``config_from_state_dict`` in
    ``blocks.model_vit_inception``), heads = embed_dim // 64 unless the safetensors metadata has ``num_heads``;
  * a ``.pt`` holding a whole pickled module (plain or ``nn.DataParallel``, CUDA-tagged storages
    are mapped to CPU), unpickled with ``bench/reference`` on ``sys.path`` like the original;
  * nothing: a seeded-random full-size ViTAE model.

Inputs: ``--input`` partition files (``torch.load(weights_only=False)`` of a TensorDataset, as
the original does, or ``.safetensors`` with ``images``/``magnitudes``) or ``--synthetic N``.

Engines (``--engine``, see ``bench/engines.py``): ``eager`` (default), ``compile``,
``autocast_bf16``, ``ort_fp32``, ``ort_int8`` (ONNX Runtime on the model exported with
``torch.onnx.export``, dynamically quantized for int8; ``--workdir`` keeps the export).
``--mode sgemm`` prints the single-core sgemm GFLOP/s on 1088x192x768 instead.

Modes:
  * ``bench``: one warm-up pass over all inputs, then ``--repeats`` timed passes; reports the
    median samples/s.  CPU time covers the timed passes only.
  * ``predict``: the original's path: for each partition file, torch.load it, iterate a
    ``DataLoader(batch_size)`` once.  Used for the peak-RSS comparison on a real partition.

first_prediction_ms is measured from ``CAI_T0_NS`` (nanoseconds since the Unix epoch, set by
the caller just before spawning) or, if unset, from the script's first statement.
"""

import time

_T0_NS = time.time_ns()  # fallback "process start" for first_prediction_ms

import argparse
import json
import os
import resource
import statistics
import sys
from pathlib import Path

import torch
from torch import nn

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
sys.path.insert(0, str(REFERENCE_DIR))
sys.path.insert(0, str(REFERENCE_DIR.parent))

from engines import ENGINES, sgemm_gflops  # noqa: E402
from engines import make as make_engine  # noqa: E402
from blocks.model_vit_inception import (  # noqa: E402
    FULL_VITAE,
    ViT_Astro,
    config_from_state_dict,
    load_state_dict_checked,
    randomize_,
)

SYNTHETIC_SEED = 1234
RANDOM_WEIGHTS_SEED = 0


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def _unprefix(sd: dict) -> dict:
    """Drop the ``module.`` prefix that ``nn.DataParallel`` adds to every name."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd


def model_from_state_dict(sd: dict, num_heads: int | None = None) -> ViT_Astro:
    sd = _unprefix(sd)
    # `vis_inception.0` is the same module as `conv2d_init`; exporters that store each
    # tensor once (cai's safetensors export) name it only as conv2d_init.
    for leaf in ("weight", "bias"):
        alias, stem = f"inception_model.vis_inception.0.{leaf}", f"inception_model.conv2d_init.{leaf}"
        if alias not in sd and stem in sd:
            sd[alias] = sd[stem]
    model = ViT_Astro(config_from_state_dict(sd, num_heads))
    as_f32 = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    load_state_dict_checked(model, as_f32)
    return model.eval()


def load_model(path: str | None, num_heads: int | None = None) -> nn.Module:
    """Load a model in eval mode from safetensors, a state-dict .pt or a whole-module .pt."""
    if path is None:
        return randomize_(ViT_Astro(FULL_VITAE), RANDOM_WEIGHTS_SEED)
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
        if num_heads is None and "num_heads" in meta:
            num_heads = int(meta["num_heads"])
        return model_from_state_dict(sd, num_heads)
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, nn.DataParallel):
        obj = obj.module
    if isinstance(obj, nn.Module):
        return obj.float().eval()
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
        return model_from_state_dict(obj, num_heads)
    raise TypeError(f"{path}: expected a module or a state dict, found {type(obj).__name__}")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def synthetic_galaxies(n: int, seed: int, size: int = 32, bands: int = 5):
    """Plausible fake SDSS samples: (images f32 [n,5,32,32], magnitudes f64 [n,5], z f32 [n]).

    Each image is an elliptical exponential-profile blob near the centre, its brightness per band
    following a random colour, plus Gaussian sky noise; magnitudes lie in 14-24 and get fainter
    with redshift, z in 0-0.4.
    """
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    z = rand(n) * 0.4
    base_mag = 15.0 + 12.0 * z + rand(n) * 3.0
    colour = torch.cumsum(rand(n, bands) * 0.6 - 0.15, dim=1)
    mags = (base_mag[:, None] + colour - colour[:, 2:3]).clamp(14.0, 24.0)

    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cx, cy = (rand(n) - 0.5) * 3, (rand(n) - 0.5) * 3
    angle, axis = rand(n) * torch.pi, 0.4 + 0.6 * rand(n)
    radius = 1.5 + 3.5 * rand(n) * (0.45 - z) / 0.45
    dx, dy = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    u, v = dx * cos + dy * sin, (-dx * sin + dy * cos) / axis[:, None, None]
    profile = torch.exp(-torch.sqrt(u * u + v * v) / radius[:, None, None])
    flux = 10 ** (-0.4 * (mags - 22.5))  # nanomaggies
    surface = flux[:, :, None, None] / (2 * torch.pi * radius**2)[:, None, None, None]
    images = surface * profile[:, None]
    images = images + 0.01 * torch.randn(images.shape, generator=g, dtype=torch.float64)
    return images.float(), mags, z.float()


def load_partition(path: str):
    """(images, magnitudes, redshift-or-None) from a partition .pt or a .safetensors file."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        t = load_file(path)
        return t["images"], t["magnitudes"], t.get("redshifts")
    ds = torch.load(path, map_location="cpu", weights_only=False)
    tensors = ds.tensors
    return tensors[0], tensors[1], tensors[2] if len(tensors) > 2 else None


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


class FirstOutputClock:
    """Records the wall time from the reference start to the first model output."""

    def __init__(self):
        env = os.environ.get("CAI_T0_NS")
        self.t0_ns = int(env) if env else _T0_NS
        self.ms = None

    def mark(self):
        if self.ms is None:
            self.ms = (time.time_ns() - self.t0_ns) / 1e6


def run_bench(predict, images, mags, batch_size: int, repeats: int, clock: FirstOutputClock):
    n = images.shape[0]

    def one_pass() -> float:
        total = 0.0
        for start in range(0, n, batch_size):
            out = predict(images[start:start + batch_size], mags[start:start + batch_size])
            clock.mark()
            total += float(out.sum())
        return total

    prediction_sum = one_pass()  # warm-up
    rates = []
    cpu0 = time.process_time()
    for _ in range(repeats):
        t = time.perf_counter()
        one_pass()
        rates.append(n / (time.perf_counter() - t))
    cpu_s = time.process_time() - cpu0
    return rates, cpu_s, n * repeats, prediction_sum


def run_predict(model, paths: list[str], batch_size: int, clock: FirstOutputClock):
    """The original's loop: torch.load each partition, DataLoader batches, every sample once."""
    from torch.utils.data import DataLoader, TensorDataset

    samples, prediction_sum = 0, 0.0
    cpu0, t = time.process_time(), time.perf_counter()
    for path in paths:
        if path.endswith(".safetensors"):
            images, mags, _ = load_partition(path)
            dataset = TensorDataset(images, mags)
        else:
            dataset = torch.load(path, map_location="cpu", weights_only=False)
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            out = model([batch[0], batch[1]])
            clock.mark()
            prediction_sum += float(out.sum())
            samples += out.shape[0]
    elapsed = time.perf_counter() - t
    return [samples / elapsed], time.process_time() - cpu0, samples, prediction_sum


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", help="safetensors, state-dict .pt or whole-module .pt "
                   "(default: seeded-random full-size ViTAE)")
    p.add_argument("--num-heads", type=int, help="override the inferred attention head count")
    src = p.add_mutually_exclusive_group(required="sgemm" not in (argv or sys.argv))
    src.add_argument("--input", nargs="+", metavar="FILE",
                     help="partition .pt or .safetensors files")
    src.add_argument("--synthetic", type=int, metavar="N", help="N synthetic samples (fixed seed)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--threads", type=int, help="intra- and inter-op threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes after the warm-up (bench)")
    p.add_argument("--mode", choices=("bench", "predict", "sgemm"), default="bench")
    p.add_argument("--engine", choices=ENGINES, default="eager")
    p.add_argument("--workdir", help="folder for the ONNX export (ort engines)")
    args = p.parse_args(argv)
    if args.mode == "predict" and args.input is None:
        p.error("--mode predict needs --input files")

    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    clock = FirstOutputClock()
    if args.mode == "sgemm":
        wall, cpu = sgemm_gflops()
        print(json.dumps({"mode": "sgemm", "shape": [1088, 192, 768], "gflops": wall,
                          "gflops_per_cpu_s": cpu, "threads": torch.get_num_threads(),
                          "torch": torch.__version__}))
        return

    with torch.inference_mode():
        model = load_model(args.weights, args.num_heads)
        if args.mode == "predict":
            rates, cpu_s, samples, pred_sum = run_predict(model, args.input, args.batch_size, clock)
        else:
            if args.synthetic is not None:
                images, mags, _ = synthetic_galaxies(args.synthetic, SYNTHETIC_SEED)
            else:
                parts = [load_partition(f) for f in args.input]
                images = torch.cat([pt[0] for pt in parts])
                mags = torch.cat([pt[1] for pt in parts])
            predict = make_engine(args.engine, model, torch.get_num_threads(),
                                  args.batch_size, args.workdir)
            rates, cpu_s, samples, pred_sum = run_bench(
                predict, images, mags, args.batch_size, args.repeats, clock
            )

    result = {
        "mode": args.mode,
        "engine": args.engine,
        "samples_per_sec": statistics.median(rates),
        "samples_per_sec_repeats": rates,
        "cpu_ms_per_sample": 1000.0 * cpu_s / samples,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "first_prediction_ms": clock.ms,
        "samples_timed": samples,
        "batch_size": args.batch_size,
        "prediction_sum": pred_sum,
        "parameters": sum(t.numel() for t in model.parameters()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
