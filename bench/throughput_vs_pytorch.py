#!/usr/bin/env python3
"""Batch-1 inference: pcam against the equivalent PyTorch loop, on the same data and threads.

One run of this script alternates the two sides ROUNDS times (pcam, PyTorch, pcam, ...)
so that both see the same machine state, and reports the ratio of the medians.

The PyTorch side is the loop a course participant writes: h5py reads tile i of the same
x file (same HDF5 chunk layout and chunk cache), the tile becomes a normalised
(1, 3, 96, 96) float tensor, the same architecture in eval mode under torch.no_grad()
gives a probability, `.item()` brings it to Python. pcam's side is `pcam bench
throughput` at batch size 1, inference only: its pipeline (chunk reads in a reader
thread, batch assembly, forward, probabilities back) with the same torch thread count.
Weights are freshly initialised on both sides; time per image does not depend on them.

Usage: bench/throughput_vs_pytorch.py [--pcam target/release/pcam] [--data data/demo/pcam]
       [--threads 2] [--seconds 2] [--rounds 3] [--out results/bench/pytorch-comparison.json]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import torch

from pcam_torch import cnn, mlp, write_json_atomic

TARGETS = {"mlp": 2.0, "cnn": 1.3}


def build(m):
    if m["kind"] == "mlp":
        return mlp(m["hidden"], 0.2)
    return cnn(m["channels"], m["hidden"], 0.1)


def pytorch_images_per_second(model, x, mean, std, seconds):
    """Images/s of the per-image loop over x (an h5py dataset), for at least `seconds`."""
    n = x.shape[0]
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def one(i):
        t = torch.from_numpy(x[i % n]).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        t = (t - mean_t) / std_t
        return torch.sigmoid(model(t)).item()

    with torch.no_grad():
        for i in range(20):  # warm-up
            one(i)
        i, t0 = 0, time.perf_counter()
        while True:
            one(i)
            i += 1
            if i >= 50 and time.perf_counter() - t0 >= seconds:
                break
        return i / (time.perf_counter() - t0)


def pcam_rows(args, spec):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        cmd = [args.pcam, "-q", "bench", "throughput", "--spec", spec, "--batch-sizes", "1",
               "--modes", "inference", "--repeats", "1", "--min-seconds", str(args.seconds),
               "--out", out, f"data.dir={args.data}", f"train.threads={args.threads}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcam", default="target/release/pcam")
    ap.add_argument("--spec", default="configs/bench/throughput.yaml")
    ap.add_argument("--data", default="data/demo/pcam")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    path = os.path.join(args.data, f"camelyonpatch_level_2_split_{args.split}_x.h5")
    f = h5py.File(path, "r")
    x = f["x"]
    first = x[: min(32, x.shape[0])].astype(np.float64) / 255.0
    mean = first.mean(axis=(0, 1, 2)).tolist()
    std = first.std(axis=(0, 1, 2)).tolist()

    pcam_runs, torch_runs, info = {}, {}, None
    for r in range(args.rounds):
        rep = pcam_rows(args, args.spec)
        info = rep
        models = {row["model"]: row for row in rep["rows"]}
        for spec_model in rep["spec"]["models"]:
            name = spec_model["name"]
            pcam_runs.setdefault(name, []).append(models[name]["images_per_second"])
            model = build(spec_model).eval()
            torch_runs.setdefault(name, []).append(
                pytorch_images_per_second(model, x, mean, std, args.seconds))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} pcam {pcam_runs[n][-1]:.0f} / torch {torch_runs[n][-1]:.0f} img/s" for n in pcam_runs),
            file=sys.stderr)

    rows, ok = [], True
    for spec_model in info["spec"]["models"]:
        name = spec_model["name"]
        p, t = float(np.median(pcam_runs[name])), float(np.median(torch_runs[name]))
        target = TARGETS.get(spec_model["kind"])
        passed = target is None or p / t >= target
        ok &= passed
        rows.append({"model": name, "architecture": models[name]["architecture"],
                     "pcam_images_per_second": p, "pytorch_images_per_second": t,
                     "ratio": p / t, "target": target, "met": passed,
                     "pcam_runs": pcam_runs[name], "pytorch_runs": torch_runs[name]})
    result = {
        "kind": "pcam-vs-pytorch-batch1-inference",
        "data": path, "data_synthetic": info.get("data_synthetic"),
        "threads": args.threads, "seconds_per_run": args.seconds, "rounds": args.rounds,
        "host": platform.node(), "cpu": info["machine"]["cpu"],
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_partition": os.environ.get("SLURM_JOB_PARTITION"),
        "torch_version": torch.__version__, "h5py_version": h5py.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "rows": rows,
    }
    print("| model | pcam img/s | PyTorch loop img/s | ratio | target |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        tgt = f">= {r['target']}x {'met' if r['met'] else 'NOT met'}" if r["target"] else ""
        print(f"| {r['architecture']} | {r['pcam_images_per_second']:.0f} | "
              f"{r['pytorch_images_per_second']:.0f} | {r['ratio']:.2f}x | {tgt} |")
    if args.out:
        write_json_atomic(args.out, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
