#!/usr/bin/env python3
"""The same payload on the local engine and on Slurm (`cai run --engine slurm`): wall time and
what Slurm adds per rank.

Makes a synthetic set (`cai data synth`) in a store folder, runs the seed report's payload shape
with the local engine (warm workers, the default, and `--cold`: a fresh process per rank, as
every Slurm job is) and on the Slurm cluster `sinfo` reaches (for this machine:
`scripts/slurm-local.sh start; source ~/.cache/cai-tools/slurm/env`), the same number of ranks at
once and one thread each, and reads the runs' summary.json.

    python3 bench/slurm_overhead.py --cai target/release/cai --files 20 --samples 16

Per-rank overhead on Slurm, from `execution.cluster.jobs` (every job's submission, start and end
as the engine and the job's own wrapper recorded them):
  first start    = submission to start of the array's first tasks: the scheduler's latency on
                   an idle cluster (sbatch, the scheduling pass, launching the batch step);
  slot handover  = for each later task, its start minus the end of the task whose slot it took
                   (the array runs at most max_concurrency at once): what a rank pays between
                   ranks once the array is running.
The handler's wall on Slurm is a cold start's (process start and model build, every job a new
process); compare it with the `--cold` local run, not the warm one.
On a busy cluster the queue wait (how long until the scheduler finds free cores for the array at
all) comes on top and depends on the site's load and fair-share: it is not measured here.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SAMPLE_BYTES = 20524.0
MIB = 1048576.0


def synth(cai, out, files, samples):
    if os.path.isdir(out) and len([f for f in os.listdir(out) if f.endswith(".pt")]) == files:
        return
    total = files * samples * SAMPLE_BYTES / MIB
    part = samples * SAMPLE_BYTES / MIB * 1.0005
    subprocess.run([cai, "-q", "data", "synth", "--out", out, "--total-mb", f"{total:.9f}",
                    "--partition-mb", f"{part:.9f}", "--seed", "7"], check=True)


def run(cai, store, payload, extra):
    path = os.path.join(store, f"payload-{payload['result_path'].replace('/', '-')}.json")
    with open(path, "w") as f:
        json.dump(payload, f)
    t = time.time()
    proc = subprocess.run([cai, "-q", "run", path, "--store", store] + extra, capture_output=True, text=True)
    wall = time.time() - t
    if proc.returncode != 0:
        sys.exit(f"cai run {' '.join(extra)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    with open(os.path.join(store, payload["data_bucket"], payload["result_path"], "summary.json")) as f:
        return wall, json.load(f)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cai", default="target/release/cai")
    ap.add_argument("--store", default="/tmp/cai-slurm-bench")
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-concurrency", type=int, default=2)
    ap.add_argument("--model", default="seed:0")
    a = ap.parse_args()

    bucket, prefix = "cosmicai-data", "bench"
    synth(a.cai, os.path.join(a.store, bucket, prefix), a.files, a.samples)
    base = {
        "bucket": bucket, "batch_size": a.batch_size, "object_type": "folder",
        "S3_object_name": "Anomaly Detection", "script": "/tmp/Anomaly Detection/Inference/inference.py",
        "data_bucket": bucket, "data_prefix": prefix, "model": a.model,
        "max_concurrency": a.max_concurrency,
    }
    slots = ["--concurrency", str(a.max_concurrency or os.cpu_count()), "--threads", "1"]
    local_wall, local = run(a.cai, a.store, dict(base, result_path="result-bench/local"), slots)
    cold_wall, cold = run(a.cai, a.store, dict(base, result_path="result-bench/cold"), slots + ["--cold"])
    slurm_wall, slurm = run(a.cai, a.store, dict(base, result_path="result-bench/slurm"),
                            ["--engine", "slurm", "--threads", "1"])

    def infer_walls(s):
        return [i["wall_seconds"] for i in s["execution"]["invocations"] if i["handler"] == "infer"]

    jobs = slurm["execution"]["cluster"]["jobs"]
    infer = sorted((j for j in jobs if j["handler"] == "infer"), key=lambda j: j["started_unix"])
    m = a.max_concurrency or len(infer)
    first = [j["queued_seconds"] for j in infer[:m]]
    ends = sorted(j["ended_unix"] for j in infer)
    handover = [j["started_unix"] - ends[i - m] for i, j in enumerate(infer) if i >= m]
    summarize = [j["queued_seconds"] for j in jobs if j["handler"] == "summarize"]

    print(f"payload: {a.files} partitions x {a.samples} samples, {len(infer)} ranks, batch {a.batch_size}, "
          f"max_concurrency {a.max_concurrency}, model {a.model}")
    runs = [local, cold, slurm]
    print(f"{'':28}{'local':>12}{'local --cold':>14}{'slurm':>10}")
    print(f"{'execution (s)':28}" + "".join(f"{r['execution']['duration_seconds']:{w}.2f}" for r, w in zip(runs, (12, 14, 10))))
    print(f"{'cai run wall (s)':28}{local_wall:12.2f}{cold_wall:14.2f}{slurm_wall:10.2f}")
    print(f"{'rank handler wall, median':28}" + "".join(f"{med(infer_walls(r)):{w}.3f}" for r, w in zip(runs, (12, 14, 10))))
    print(f"slurm first start (submission to start), median of the first {m}: {med(first):.2f} s")
    print(f"slurm slot handover (previous end to next start): median {med(handover):.2f} s, "
          f"max {max(handover, default=float('nan')):.2f} s over {len(handover)} ranks")
    print(f"slurm Summarize job queue wait: {med(summarize):.2f} s")
    print(f"core-hours: {slurm['execution']['cluster']['core_hours']:.5f}")
    print("busy-cluster queue wait: not measured (depends on the site's load and fair-share)")


if __name__ == "__main__":
    main()
