#!/usr/bin/env python3
"""Measures `cai run` at large world sizes: one-sample partitions, one rank per file.

For each world size it runs `cai demo --files N --samples-per-file 1 --world-sizes N` in a
fresh store (what anyone can run to reproduce it) and reads the run's summary.json to report:

  wall                 the execution's duration (Initialize to the end of Summarize);
  cold / warm overhead per inference invocation: its wall time minus the inference time the
                       rank recorded (process or worker start, model load, partition open,
                       writing the results), median over cold and over warm invocations;
  summarize            Summarize's wall time and peak RSS;
  largest state        the largest input, output or result any state handled (bytes; Step
                       Functions refuses anything over 262,144).

    python3 bench/workflow_scale.py --cai target/release/cai --world-sizes 11,100,1000,10000

Add --cold to compare with one process per invocation (`cai demo --cold`).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def one(cai, world, cold, keep):
    store = tempfile.mkdtemp(prefix=f"cai-scale-{world}-")
    try:
        t = time.time()
        args = [cai, "-q", "demo", "--store", store, "--files", str(world),
                "--samples-per-file", "1", "--world-sizes", str(world)]
        if cold:
            args.append("--cold")
        proc = subprocess.run(args, capture_output=True, text=True)
        total = time.time() - t
        if proc.returncode != 0:
            raise SystemExit(f"world {world}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        root = os.path.join(store, "cai-demo", "result-partition-100MB", "demo", "1")
        with open(os.path.join(root, "summary.json")) as f:
            s = json.load(f)
        ex = s["execution"]
        inv = ex["invocations"]
        infer = [i for i in inv if i["handler"] == "infer"]
        inference = {}
        with open(os.path.join(root, "combined_data.json")) as f:
            for r in json.load(f):
                inference[r["rank"]] = r["timings"]["inference"]
        over = {True: [], False: []}
        for i in infer:
            if i.get("cold") is None:
                continue
            over[i["cold"]].append(i["wall_seconds"] - inference.get(i["rank"], 0.0))
        summ = [i for i in inv if i["handler"] == "summarize"]
        return {
            "world": world,
            "ranks_ok": s["ranks"]["succeeded"],
            "samples": s["totals"]["samples"],
            "wall_s": ex["duration_seconds"],
            "demo_total_s": total,
            "cold_invocations": len(over[True]),
            "warm_invocations": len(over[False]),
            "cold_overhead_ms": 1000 * median(over[True]),
            "warm_overhead_ms": 1000 * median(over[False]),
            "summarize_s": summ[-1]["wall_seconds"] if summ else None,
            "summarize_peak_mb": summ[-1]["peak_rss_mb"] if summ else None,
            "largest_state_bytes": ex.get("largest_state_bytes"),
            "state_transitions": ex["state_transitions"],
        }
    finally:
        if not keep:
            shutil.rmtree(store, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cai", default="target/release/cai")
    ap.add_argument("--world-sizes", default="11,100,1000,10000")
    ap.add_argument("--cold", action="store_true", help="one process per invocation")
    ap.add_argument("--keep", action="store_true", help="keep the stores")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    rows = [one(a.cai, int(w), a.cold, a.keep) for w in a.world_sizes.split(",")]
    cols = ["world", "ranks_ok", "wall_s", "cold_invocations", "warm_invocations",
            "cold_overhead_ms", "warm_overhead_ms", "summarize_s", "summarize_peak_mb",
            "largest_state_bytes", "state_transitions"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
