#!/usr/bin/env python3
"""Measures `cai run` over a synthetic set at several world sizes on this machine.

Makes the set once (`cai data synth` straight into the local store's bucket folder), runs one
execution per world size with the seed report's payload shape, and reads each run's
summary.json (written by Summarize, completed by the engine) to report wall time, samples/s,
per-rank peak RSS and the share of time not spent in inference.

    python3 bench/workflow_perf.py --cai target/release/cai --store /tmp/perf-store \
        --total-mb 1024 --partition-mb 100 --world-sizes 11,50,100 --batch-size 64

Two overhead figures are printed:
  rank overhead  = sum over ranks of (invocation wall - inference) / sum of invocation wall
                   (process start, model load, partition open, writing results);
  end-to-end     = 1 - sum of inference seconds / (execution wall x slots)
                   (adds planning, summarizing and slots left idle at the tail).
"""
import argparse
import json
import os
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cai", default="target/release/cai")
    ap.add_argument("--store", default="/tmp/cai-perf-store")
    ap.add_argument("--bucket", default="cosmicai-data")
    ap.add_argument("--prefix", default="100MB")
    ap.add_argument("--total-mb", type=float, default=1024)
    ap.add_argument("--partition-mb", type=float, default=100)
    ap.add_argument("--world-sizes", default="11,50,100")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", default="seed:0")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()

    data_dir = os.path.join(a.store, a.bucket, a.prefix)
    if not os.path.isdir(data_dir) or not os.listdir(data_dir):
        subprocess.run([a.cai, "-q", "data", "synth", "--out", data_dir, "--total-mb", str(a.total_mb),
                        "--partition-mb", str(a.partition_mb)], check=True)
    files = sorted(os.listdir(data_dir))
    size = sum(os.path.getsize(os.path.join(data_dir, f)) for f in files)
    print(f"set: {len(files)} partitions, {size / 2**20:.0f} MiB under {a.bucket}/{a.prefix}/", flush=True)

    rows = []
    for i, world in enumerate(int(w) for w in a.world_sizes.split(",")):
        payload = {
            "bucket": a.bucket, "batch_size": a.batch_size, "object_type": "folder",
            "S3_object_name": "Anomaly Detection", "script": "/tmp/Anomaly Detection/Inference/inference.py",
            "result_path": f"result-partition-{a.prefix}/perf/{i + 1}", "data_bucket": a.bucket,
            "data_prefix": a.prefix, "world_size": world, "model": a.model,
        }
        path = os.path.join(a.store, f"perf-payload-{world}.json")
        with open(path, "w") as f:
            json.dump(payload, f)
        t = time.time()
        proc = subprocess.run([a.cai, "-q", "run", path, "--store", a.store], capture_output=True, text=True)
        wall = time.time() - t
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            sys.exit(f"cai run failed for world {world}")
        with open(os.path.join(a.store, a.bucket, payload["result_path"], "summary.json")) as f:
            s = json.load(f)
        ex, tot = s["execution"], s["totals"]
        infer = [i for i in ex["invocations"] if i["handler"] == "infer"]
        with_data = [i for i in infer if i["peak_rss_mb"] > 20]
        slots = min(os.cpu_count() or 1, max(1, len(with_data)))
        rank_wall = sum(i["wall_seconds"] for i in with_data)
        row = {
            "world_size": world,
            "ranks_with_data": s["ranks"]["succeeded"],
            "samples": tot["samples"],
            "command_wall_s": wall,
            "execution_s": ex["duration_seconds"],
            "samples_per_s": tot["samples"] / ex["duration_seconds"],
            "rank_peak_rss_mb_max": max(i["peak_rss_mb"] for i in with_data),
            "rank_peak_rss_mb_mean": sum(i["peak_rss_mb"] for i in with_data) / len(with_data),
            "inference_s": tot["inference_seconds"],
            "rank_overhead_share": (rank_wall - tot["inference_seconds"]) / rank_wall,
            "end_to_end_non_inference_share": 1 - tot["inference_seconds"] / (ex["duration_seconds"] * slots),
            "slots": slots,
            "transitions": ex["state_transitions"],
            "cost_usd": s["performance"][0]["Cost ($)"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    print()
    print("world | ranks w/ data | samples | wall (s) | samples/s | rank peak RSS MB (max/mean) | rank overhead | end-to-end non-inference")
    for r in rows:
        print(f"{r['world_size']:5} | {r['ranks_with_data']:13} | {r['samples']:7} | {r['execution_s']:8.1f} | "
              f"{r['samples_per_s']:9.1f} | {r['rank_peak_rss_mb_max']:6.0f} / {r['rank_peak_rss_mb_mean']:6.0f} | "
              f"{100 * r['rank_overhead_share']:12.1f}% | {100 * r['end_to_end_non_inference_share']:23.1f}%")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
