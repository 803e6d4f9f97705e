#!/usr/bin/env python3
"""Measures the Lambda handlers under the emulator and projects the full set's Lambda cost.

For each partition size, makes a few synthetic partitions in a store folder served over S3 by
s3s-fs, starts `cargo lambda watch` with one `cai` runtime process per function (started as
Lambda starts a `bootstrap`), runs `cai run --lambda-endpoint` over them, and reads:
  * cold start: each runtime's "cai runtime ready N ms after process start" log line
    (process start to polling the Runtime API; the model is loaded by the first invocation);
  * per invocation: the runtime's "invocation took N ms, peak RSS M MiB" lines and the rank
    results' timings (model load, fetch, inference) and samples;
  * the deployment zip's size (`cai aws package`).
Then projects the cost of the original's full set (12.6 GB, ~660,000 samples; 517/259/173/130
partitions of 25/50/75/100 MB), one partition per Lambda, at a memory size that holds the
measured peak with headroom, assuming Lambda's vCPU runs this model as fast as one core here
(the invocation ran on one thread) and that CPU share scales with memory (1,769 MB = 1 vCPU).

    python3 bench/lambda_emulator.py --cai target/release/cai \
        --cargo-lambda ~/.cache/cai-tools/venv/bin/cargo-lambda \
        --s3s-fs ~/.cache/cai-tools/bin/s3s-fs --sizes 25,50,75,100
"""
import argparse
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

X86_GB_S = 0.0000166667
REQUEST = 0.20 / 1e6
TRANSITION = 0.000025
FULL_SET_SAMPLES = 660_000
ORIGINAL = {25: (517, 0.16), 50: (259, 0.20), 75: (173, 0.30), 100: (130, 0.38)}
# Lambda memory sizes considered (MB); 1,769 MB is one full vCPU.
SIZES_MB = [512, 768, 1024, 1536, 1769, 2048, 3008]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what}: nothing on port {port}")


def run_size(a, mb, work):
    store = os.path.join(work, f"store-{mb}")
    logs = os.path.join(work, f"logs-{mb}")
    os.makedirs(logs, exist_ok=True)
    bucket, prefix = "cosmicai-data", f"{mb}MB"
    data = os.path.join(store, bucket, prefix)
    subprocess.run([a.cai, "-q", "data", "synth", "--out", data, "--total-mb", str(mb * a.files),
                    "--partition-mb", str(mb)], check=True, capture_output=True)
    files = len(os.listdir(data))
    procs = []
    env_s3 = {}
    try:
        s3_port = free_port()
        log = open(os.path.join(logs, "s3s.log"), "w")
        p = subprocess.Popen([a.s3s_fs, "--host", "127.0.0.1", "--port", str(s3_port), "--access-key", "bench",
                              "--secret-key", "bench-secret", store], stdout=log, stderr=log)
        procs.append(p)
        wait_port(s3_port, p, "s3s-fs")
        env_s3 = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{s3_port}", "AWS_ACCESS_KEY_ID": "bench",
                  "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1",
                  "AWS_EC2_METADATA_DISABLED": "true", "CAI_STORE": "s3"}
        manifest = os.path.join(work, "functions")
        os.makedirs(manifest, exist_ok=True)
        with open(os.path.join(manifest, "Cargo.toml"), "w") as f:
            f.write('[package]\nname = "cai-functions"\nversion = "0.0.0"\nedition = "2021"\n\n')
            for h in ("init", "infer", "failure", "summarize"):
                f.write(f'[[bin]]\nname = "cai-{h}"\npath = "main.rs"\n')
            f.write("\n[workspace]\n")
        with open(os.path.join(manifest, "main.rs"), "w") as f:
            f.write("fn main() {}\n")
        lambda_port = free_port()
        log = open(os.path.join(logs, "watch.log"), "w")
        p = subprocess.Popen([a.cargo_lambda, "lambda", "watch", "--only-lambda-apis", "--ignore-changes", "-A",
                              "127.0.0.1", "-P", str(lambda_port)], cwd=manifest, stdout=log, stderr=log)
        procs.append(p)
        wait_port(lambda_port, p, "cargo lambda watch")
        for h in ("init", "infer", "failure", "summarize"):
            env = {"PATH": os.environ.get("PATH", ""), **env_s3,
                   "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{lambda_port}/.rt/cai-{h}",
                   "AWS_LAMBDA_FUNCTION_NAME": f"cai-{h}", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
                   "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "CAI_THREADS": "1"}
            log = open(os.path.join(logs, f"cai-{h}.log"), "w")
            procs.append(subprocess.Popen([a.cai], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL))
        payload = {"bucket": bucket, "batch_size": a.batch_size, "object_type": "folder",
                   "S3_object_name": "Anomaly Detection", "script": "/tmp/Anomaly Detection/Inference/inference.py",
                   "result_path": f"bench/{mb}", "data_bucket": bucket, "data_prefix": prefix,
                   "world_size": files, "model": a.model, "max_concurrency": 1}
        ppath = os.path.join(work, f"payload-{mb}.json")
        with open(ppath, "w") as f:
            json.dump(payload, f)
        t = time.time()
        out = subprocess.run([a.cai, "-q", "run", ppath, "--store", "s3", "--lambda-endpoint",
                              f"http://127.0.0.1:{lambda_port}"], env={**os.environ, **env_s3},
                             capture_output=True, text=True)
        wall = time.time() - t
        if out.returncode != 0:
            sys.exit(f"cai run failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait()
    ready = {}
    invocations = []
    for h in ("init", "infer", "failure", "summarize"):
        text = open(os.path.join(logs, f"cai-{h}.log")).read()
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        m = re.search(r"cai runtime ready ([0-9.]+) ms", text)
        if m:
            ready[h] = float(m.group(1))
        for m in re.finditer(r"invocation took ([0-9.]+) ms, peak RSS ([0-9.]+) MiB", text):
            invocations.append((h, float(m.group(1)), float(m.group(2))))
    ranks = []
    for r in range(files):
        with open(os.path.join(store, bucket, "bench", str(mb), f"{r}.json")) as f:
            ranks.append(json.load(f))
    return {"mb": mb, "wall": wall, "ready_ms": ready, "invocations": invocations, "ranks": ranks}


def project(res):
    mb = res["mb"]
    # Every Lambda of a full-set run is a cold container serving one partition: bill the
    # runtime's start (Lambda bills the init phase) plus a cold invocation (model load,
    # fetch, inference, write), measured on one core, for the fullest cold rank.
    cold = [r for r in res["ranks"] if not r["timings"].get("model_cached") and r["samples"] > 0]
    rank = max(cold, key=lambda r: r["samples"])
    samples = rank["samples"]
    seconds = (res["ready_ms"].get("infer", 0.0) / 1000.0) + rank["wall_seconds"]
    infer = [i for i in res["invocations"] if i[0] == "infer"]
    peak = max(i[2] for i in infer)
    need = peak * 1.5
    memory = next(m for m in SIZES_MB if m >= need)
    files, original_cost = ORIGINAL[mb]
    rows = []
    for m in (memory, 1769):
        # CPU share scales with memory below one vCPU; the run used one core.
        duration = seconds * max(1.0, 1769 / m)
        gb_s = files * duration * m / 1024
        cost = gb_s * X86_GB_S + (files + 2) * REQUEST + (files + 5) * TRANSITION
        rows.append((m, duration, gb_s, cost))
    return {"mb": mb, "samples_per_partition": samples, "files": files, "seconds_per_rank": seconds,
            "timings": rank["timings"], "peak_mib": peak, "rows": rows, "original": original_cost}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cai", default="target/release/cai")
    ap.add_argument("--cargo-lambda", default=os.path.expanduser("~/.cache/cai-tools/venv/bin/cargo-lambda"))
    ap.add_argument("--s3s-fs", default=os.path.expanduser("~/.cache/cai-tools/bin/s3s-fs"))
    ap.add_argument("--sizes", default="25,50,75,100")
    ap.add_argument("--files", type=int, default=2, help="partitions (and ranks) per size")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--model", default="seed:0")
    ap.add_argument("--work", default=None)
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="cai-lambda-bench-")
    os.makedirs(work, exist_ok=True)

    zip_path = os.path.join(work, "cai-x86_64.zip")
    out = subprocess.run([a.cai, "aws", "package", "--arch", "x86_64", "--out", zip_path],
                         capture_output=True, text=True)
    zip_mb = os.path.getsize(zip_path) / 1e6 if out.returncode == 0 else None
    print(out.stdout.strip() or out.stderr.strip())

    results = [run_size(a, int(mb), work) for mb in a.sizes.split(",")]
    report = {"zip_mb": zip_mb, "sizes": []}
    print("\npartition | samples | ready ms (init/infer/summarize) | infer ms per rank (cold, warm) | peak RSS MiB")
    for res in results:
        infer = [i for i in res["invocations"] if i[0] == "infer"]
        r = res["ready_ms"]
        cold_warm = ", ".join(f"{i[1]:.0f}" for i in infer)
        print(f"{res['mb']:>6} MB | {sum(x['samples'] for x in res['ranks']):>7} | "
              f"{r.get('init', 0):.1f}/{r.get('infer', 0):.1f}/{r.get('summarize', 0):.1f} | {cold_warm} | "
              f"{max(i[2] for i in infer):.0f}")
        report["sizes"].append({**project(res), "ready_ms": r, "invocations": res["invocations"]})
    print(f"\nprojected full set ({FULL_SET_SAMPLES:,} samples), one partition per Lambda, x86 us-east-1:")
    print("partition | Lambdas | memory MB | s per Lambda | GB-s | cost | original")
    for p in report["sizes"]:
        for m, duration, gb_s, cost in p["rows"]:
            print(f"{p['mb']:>6} MB | {p['files']:>7} | {m:>9} | {duration:>12.2f} | {gb_s:>6.0f} | ${cost:.4f} | ${p['original']:.2f}")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
