"""ROC-AUC and average precision on 10 million scores: pcam (`pcam bench metrics`) against
scikit-learn on the very same scores, in one run, same machine. Prints both times, the
speed-up and the agreement of the values. Usage: python bench/metrics_vs_sklearn.py [N]"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with tempfile.TemporaryDirectory() as d:
    base = os.path.join(d, "data")
    subprocess.run([os.path.join(root, "target/release/pcam"), "-q", "bench", "metrics", "--n", str(n),
                    "--data-out", base, "--json", os.path.join(d, "pcam.json")], check=True)
    mine = json.load(open(os.path.join(d, "pcam.json")))
    s = np.fromfile(base + ".scores", dtype="<f4").astype(np.float64)
    y = np.fromfile(base + ".labels", dtype=np.uint8).astype(np.int64)


def best(f, rounds=3):
    times, v = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        v = f()
        times.append(time.perf_counter() - t0)
    return v, min(times)


auc, auc_t = best(lambda: roc_auc_score(y, s))
ap, ap_t = best(lambda: average_precision_score(y, s))
print(f"{n:,} scores, best of 3, this machine:")
print("| metric | pcam s | scikit-learn s | speed-up | |pcam - sklearn| |")
print("|---|---:|---:|---:|---:|")
print(f"| ROC-AUC | {mine['roc_auc_seconds']:.3f} | {auc_t:.3f} | {auc_t / mine['roc_auc_seconds']:.1f}x | {abs(auc - mine['roc_auc']):.1e} |")
print(f"| average precision | {mine['average_precision_seconds']:.3f} | {ap_t:.3f} | {ap_t / mine['average_precision_seconds']:.1f}x | {abs(ap - mine['average_precision']):.1e} |")
assert abs(auc - mine["roc_auc"]) < 1e-9 and abs(ap - mine["average_precision"]) < 1e-9, "values disagree"
