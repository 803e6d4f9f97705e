"""The engines ``cai bench --compare`` times against cai, on the very same weights and inputs.

Why: the fair comparison for a performance-minded user is not only PyTorch eager but also
``torch.compile``, bf16 autocast and ONNX Runtime (fp32, and int8 by dynamic quantization),
each on one machine in the same run, so the ratios mean something on a noisy shared host.

Every engine is a function ``make(model, threads, batch_size, workdir) -> run(images, mags)``
returning a callable that predicts one batch; building it (export, quantization, compilation
on the warm-up pass) is not timed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

ENGINES = ("eager", "compile", "autocast_bf16", "ort_fp32", "ort_int8")


def _eager(model, threads, batch_size, workdir):
    return lambda img, mag: model(img, mag)


def _compile(model, threads, batch_size, workdir):
    compiled = torch.compile(model)
    return lambda img, mag: compiled(img, mag)


def _autocast(model, threads, batch_size, workdir):
    def run(img, mag):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(img, mag).float()

    return run


def _export_onnx(model, batch_size: int, path: Path) -> Path:
    """Exports once per work directory (the caller keeps it for the whole comparison)."""
    if path.exists():
        return path
    img = torch.zeros(batch_size, 5, 32, 32)
    mag = torch.zeros(batch_size, 5)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model,
        (img, mag),
        str(tmp),
        input_names=["images", "magnitudes"],
        output_names=["redshift"],
        dynamic_axes={"images": {0: "batch"}, "magnitudes": {0: "batch"}, "redshift": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    os.replace(tmp, path)
    return path


def _ort_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(img, mag):
        out = sess.run(None, {"images": img.numpy(), "magnitudes": mag.float().numpy()})[0]
        return torch.from_numpy(out)

    return run


def _ort_fp32(model, threads, batch_size, workdir):
    return _ort_session(_export_onnx(model, batch_size, Path(workdir) / "model.onnx"), threads)


def _ort_int8(model, threads, batch_size, workdir):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = _export_onnx(model, batch_size, Path(workdir) / "model.onnx")
    int8 = Path(workdir) / "model.int8.onnx"
    if not int8.exists():
        tmp = int8.with_suffix(".tmp.onnx")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, int8)
    return _ort_session(int8, threads)


def make(engine: str, model, threads: int, batch_size: int, workdir: str | None):
    """The batch predictor of ``engine``; ``workdir`` holds exported ONNX files."""
    if engine.startswith("ort") and not workdir:
        raise SystemExit(f"--engine {engine} needs --workdir (a folder for the ONNX export)")
    return {
        "eager": _eager,
        "compile": _compile,
        "autocast_bf16": _autocast,
        "ort_fp32": _ort_fp32,
        "ort_int8": _ort_int8,
    }[engine](model, threads, batch_size, workdir)


def sgemm_gflops(m: int = 1088, k: int = 192, n: int = 768, seconds: float = 1.0):
    """This machine's sgemm rate on the ViT's shape with PyTorch's BLAS on the current
    thread count (the yardstick for the model's GFLOP/s): (per wall second, per CPU second;
    the second is what a core does when other work shares the machine)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    c = torch.empty(m, n)
    for _ in range(20):
        torch.mm(a, b, out=c)
    reps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b, out=c)
        reps += 1
    flop = 2.0 * m * k * n * reps / 1e9
    return flop / (time.perf_counter() - t0), flop / (time.process_time() - c0)

