#!/usr/bin/env python3
"""Writes fixtures/report/original/: result folders shaped like the original CAI's (its
combined_data.json: one JSON array on one line, its ten keys per rank, and in one run the S3
timing keys of its newer worker), for `cai report`'s tests. Values are synthetic but in the
original's ranges (about 214 samples/s per 100 MB Lambda, occasional slow ranks, batch 512).

    python3 tools/make_report_fixtures.py

Deterministic: a rerun writes identical files. Standard library only.
"""
import json
import math
import os
import random

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "report", "original", "cosmicai-data")
SAMPLES_PER_100MB = 5113
BITS_PER_SAMPLE = 5 * 32 * 32 * 32 + 5 * 64  # float32 images, float64 magnitudes
BATCH = 512

# (partition MB, data size label, GB, runs, newer worker with S3 keys)
RUNS = [
    (100, "1GB", 1, 2, False),
    (100, "2GB", 2, 2, False),
    (100, "4GB", 4, 1, False),
    (25, "1GB", 1, 2, False),
    (25, "2GB", 2, 1, True),
]


def records(partition, gb, run, s3, rng):
    files = math.ceil(gb * 1024 / partition)
    samples = round(SAMPLES_PER_100MB * partition / 100)
    keys = sorted(f"{partition}MB/{k}.pt" for k in range(1, files + 1))  # S3's order
    out = []
    t0 = 1733000000.0 + 3600 * run
    for key in keys:
        rate = rng.gauss(214.0, 9.0) if rng.random() > 0.05 else rng.uniform(55.0, 120.0)
        batches = math.ceil(samples / BATCH)
        inference = samples / rate
        rec = {
            "total_cpu_time (seconds)": inference * rng.uniform(0.98, 1.02),
            "total_cpu_memory (MB)": 71461.283356 - rng.random() * 0.2,
            "execution_time (seconds/batch)": inference / batches,
            "num_batches": batches,
            "batch_size": BATCH,
            "device": "cpu",
            "throughput_bps": samples * BITS_PER_SAMPLE / inference,
            "sample_persec": rate,
            "result_path": f"result-partition-{partition}MB/{gb}GB/{run}",
            "data_path": key,
        }
        if s3:
            n = 2
            times = [rng.uniform(0.05, 0.9) for _ in range(n)]
            start = t0 + rng.uniform(0.5, 2.0)
            rec.update({
                "s3_num_requests": n,
                "s3_total_time": sum(times),
                "s3_avg_time": sum(times) / n,
                "s3_min_time": min(times),
                "s3_max_time": max(times),
                "s3_first_request_time": start,
                "s3_last_response_time": start + inference + sum(times) + 1.0,
            })
        out.append(rec)
    return out


def main():
    rng = random.Random(20251130)
    for partition, label, gb, runs, s3 in RUNS:
        for run in range(1, runs + 1):
            folder = os.path.join(ROOT, f"result-partition-{partition}MB", label, str(run))
            os.makedirs(folder, exist_ok=True)
            data = records(partition, gb, run, s3, rng)
            with open(os.path.join(folder, "combined_data.json"), "w") as f:
                json.dump(data, f)
    total = 0
    for dirpath, _, names in os.walk(ROOT):
        for n in names:
            size = os.path.getsize(os.path.join(dirpath, n))
            assert size < 2 << 20, (dirpath, n, size)
            total += size
    print(f"wrote {ROOT} ({total} bytes)")


if __name__ == "__main__":
    main()
