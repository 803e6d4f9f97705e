#!/usr/bin/env python3
"""Write small real `torch.save` files for the cai-torchfile / cai-data tests.

Usage:
    python3 tools/make_torchfile_fixtures.py            # (re)write fixtures/torchfile/
    python3 tools/make_torchfile_fixtures.py --check DIR
        load every *.pt in DIR with real torch and compare it with DIR/expected.json
        (used once to verify files written by our Rust writer).

The fixtures are committed, so `cargo test` never needs Python.
"""
import json
import os
import sys

import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torchfile")


def describe(t):
    """Expected facts about one tensor, in logical (row-major) order."""
    flat = t.detach().reshape(-1).to(torch.float64)
    d = {
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "sum": float(flat.sum()),
        "first": [float(x) for x in flat[:8]],
    }
    if flat.numel() <= 64:
        d["values"] = [float(x) for x in flat]
    return d


def dataset(n, hw, gen, img_dtype=torch.float32):
    images = torch.randn(n, 5, hw, hw, generator=gen).to(img_dtype)
    mags = (18 + 2 * torch.rand(n, 5, generator=gen)).to(torch.float64)
    z = (0.4 * torch.rand(n, generator=gen)).to(torch.float32)
    return images, mags, z


class Attn(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim, bias=False)


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attn(dim, 2)
        self.register_buffer("scale", torch.tensor([0.5, 2.0]))
        self.register_parameter("unused", None)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(4), Block(4)])
        self.head = nn.Linear(4, 1)


def make():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    expected = {}

    def save(name, obj, tensors, protocol=2, **kw):
        path = os.path.join(OUT, name)
        torch.save(obj, path, pickle_protocol=protocol, **kw)
        expected[name] = {k: describe(v) for k, v in tensors.items()}
        size = os.path.getsize(path)
        assert size < 200_000, (name, size)

    # TensorDataset partitions in the original layout, protocols 2..5.
    for p in (2, 3, 4, 5):
        hw = 32 if p == 2 else 8
        im, mg, z = dataset(3 if p == 2 else 4, hw, gen)
        save(f"dataset_p{p}.pt", torch.utils.data.TensorDataset(im, mg, z),
             {"0": im, "1": mg, "2": z}, protocol=p)

    # A dataset made of views and unusual dtypes.
    base = torch.randn(6, 8, 8, 5, generator=gen).to(torch.float16)
    images = base.permute(0, 3, 1, 2)[1:5]                 # non-contiguous, offset
    magstore = torch.randn(10, 6, generator=gen).to(torch.float64)
    mags = magstore[3:7, 1:6]                                # offset + row stride 6
    zs = torch.arange(12, dtype=torch.int64)[2::3]           # stride 3, offset 2
    save("dataset_views.pt", torch.utils.data.TensorDataset(images, mags, zs),
         {"0": images, "1": mags, "2": zs}, protocol=4)

    # Plain containers that cai-data also accepts.
    im, mg, z = dataset(2, 4, gen)
    save("tuple_dataset.pt", (im, mg, z), {"0": im, "1": mg, "2": z})
    im, mg, z = dataset(2, 4, gen, img_dtype=torch.bfloat16)
    save("dict_dataset.pt", {"images": im, "magnitudes": mg, "redshifts": z},
         {"images": im, "magnitudes": mg, "redshifts": z}, protocol=3)

    # Every storage dtype we convert.
    src = torch.tensor([[1.5, -2.25, 3.0], [0.125, 65504.0 / 1024, -7.0]])
    dtypes = {
        "f16": src.to(torch.float16), "bf16": src.to(torch.bfloat16),
        "f32": src.clone(), "f64": src.to(torch.float64) / 3,
        "i64": (src * 4).to(torch.int64), "i32": (src * 8).to(torch.int32),
        "i16": (src * 2).to(torch.int16), "u8": src.abs().to(torch.uint8),
        "i8": src.to(torch.int8), "bool": src > 0,
    }
    save("dtypes.pt", dtypes, dtypes, protocol=2)

    # Views of one shared storage.
    store = torch.arange(48, dtype=torch.float32).reshape(6, 8)
    views = {
        "full": store, "offset": store[2:], "transposed": store.t(),
        "strided": store[:, ::3], "column": store[:, 5], "scalar": store[3, 4],
        "empty": store[:0], "other_dtype": torch.ones(3, dtype=torch.float64),
    }
    save("views.pt", views, views, protocol=5)

    # A state_dict (OrderedDict with _metadata).
    torch.manual_seed(7)
    model = Tiny()
    sd = model.state_dict()
    save("state_dict.pt", sd, dict(sd), protocol=2)

    # A whole pickled nn.Module inside DataParallel, saved as if from a GPU.
    torch.manual_seed(7)
    dp = nn.DataParallel(Tiny())
    orig = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        save("module_dp.pt", dp, dict(dp.state_dict()), protocol=2)
    finally:
        torch.serialization.location_tag = orig
    expected["module_dp.pt"]["__attrs__"] = {"module.blocks.0.attn.num_heads": 2}

    # Legacy (pre-1.6, non-zip) format: must be rejected with a clear error.
    path = os.path.join(OUT, "legacy.pt")
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    expected["legacy.pt"] = {"__error__": "legacy"}

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    print("wrote", len(expected), "fixtures to", os.path.normpath(OUT))


def check(directory):
    """Load files our writer produced with real torch and compare them."""
    with open(os.path.join(directory, "expected.json")) as f:
        expected = json.load(f)
    failures = 0
    for name, tensors in sorted(expected.items()):
        obj = torch.load(os.path.join(directory, name), weights_only=False)
        if isinstance(obj, torch.utils.data.TensorDataset):
            got = {str(i): t for i, t in enumerate(obj.tensors)}
        else:
            got = dict(obj)
        for key, want in tensors.items():
            d = describe(got[key])
            ok = (d["dtype"] == want["dtype"] and d["shape"] == want["shape"]
                  and abs(d["sum"] - want["sum"]) <= 1e-6 * max(1.0, abs(want["sum"])))
            print(("ok  " if ok else "FAIL"), name, key, d["dtype"], d["shape"], d["sum"])
            failures += not ok
    if failures:
        sys.exit(f"{failures} mismatches")
    print("all files load in torch", torch.__version__)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        make()
