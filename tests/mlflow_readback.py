"""Reads pcam runs back from a real MLflow server with MLflow's own Python client and
compares them with the run folders, independently of pcam's Rust code.

    mlflow_readback.py check URI EXPERIMENT RUN_DIR...   every run complete on the server
    mlflow_readback.py dump URI EXPERIMENT               canonical JSON of the experiment

`check` exits 1 with one line per difference: a run missing or duplicated, a parameter
that is not the run's resolved config value, a metric history that is not exactly the
run's history CSV (same steps, values, no extra points), an evaluation metric, a missing
or different artifact (compared by SHA-256), a wrong status or tag.
"""

import csv
import hashlib
import json
import math
import os
import sys
import tempfile

import yaml
from mlflow.tracking import MlflowClient

SKIP = {"tracking.json"}


def flatten(prefix, v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            flatten(f"{prefix}.{k}" if prefix else k, x, out)
    else:
        out[prefix] = v


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        a, b = float(a), float(b)
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def files_of(run_dir):
    out = {}
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), run_dir)
            if f.startswith(".") or f.endswith(".tmp") or rel in SKIP:
                continue
            with open(os.path.join(root, f), "rb") as fh:
                out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def history(client, run_id, key):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def check_run(client, exp_id, run_dir, errors):
    err = lambda m: errors.append(f"{run_dir}: {m}")
    absdir = os.path.realpath(run_dir)
    runs = client.search_runs([exp_id], filter_string=f"tags.`pcam.run_dir` = '{absdir}'")
    if len(runs) != 1:
        err(f"{len(runs)} runs on the server carry this run folder (want exactly 1)")
        return
    r = runs[0]
    rid = r.info.run_id
    manifest = json.load(open(os.path.join(run_dir, "manifest.json")))
    cfg = yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))
    leaves = {}
    flatten("", cfg, leaves)
    params = r.data.params
    if set(params) != set(leaves):
        err(f"params differ: missing {sorted(set(leaves) - set(params))}, extra {sorted(set(params) - set(leaves))}")
    for k, v in leaves.items():
        if k in params and yaml.safe_load(params[k]) != v and str(v) != params[k]:
            err(f"param {k} = {params[k]!r}, config has {v!r}")
    tags = r.data.tags
    for tag, want in [("pcam.seed", str(manifest["seed"])),
                      ("pcam.config_sha256", manifest["config_sha256"]),
                      ("mlflow.source.git.commit", manifest.get("git_commit"))]:
        if want is not None and tags.get(tag) != want:
            err(f"tag {tag} = {tags.get(tag)!r}, want {want!r}")
    if manifest.get("data_synthetic") and not tags.get("pcam.synthetic_data", "").startswith("yes"):
        err("synthetic data not tagged")

    with open(os.path.join(run_dir, "history/steps.csv")) as fh:
        steps = list(csv.DictReader(fh))
    for col in steps[0].keys() if steps else []:
        if col in ("step", "epoch"):
            continue
        want = sorted((int(s["step"]), float(s[col])) for s in steps)
        got = history(client, rid, f"step/{col}")
        if len(got) != len(want) or not all(a[0] == b[0] and same(a[1], b[1]) for a, b in zip(got, want)):
            err(f"metric step/{col}: server has {len(got)} points, run folder {len(want)}, or values differ")
    with open(os.path.join(run_dir, "history/epochs.csv")) as fh:
        epochs = list(csv.DictReader(fh))
    names = {"train_loss": "train_loss", "valid_loss": "valid_loss", "valid_auc": "valid_auc",
             "valid_accuracy": "valid_accuracy", "lr_end": "lr_end", "seconds": "epoch_seconds",
             "images_per_second": "images_per_second"}
    for col, key in names.items():
        want = sorted((int(e["epoch"]), float(e[col]) if e[col] != "" else math.nan) for e in epochs)
        got = history(client, rid, key)
        if len(got) != len(want) or not all(a[0] == b[0] and same(a[1], b[1]) for a, b in zip(got, want)):
            err(f"metric {key}: server {got}, run folder {want}")
    for f in sorted(os.listdir(run_dir)):
        if f.startswith("eval-") and f.endswith(".json"):
            ev = json.load(open(os.path.join(run_dir, f)))
            for k in ("roc_auc", "f1", "f2", "pr_auc", "recall", "precision"):
                want = ev.get(k)
                got = history(client, rid, f"{ev['split']}/{k}")
                if len(got) != 1 or not same(got[0][1], math.nan if want is None else want):
                    err(f"metric {ev['split']}/{k}: server {got}, {f} has {want}")

    local = files_of(run_dir)
    remote = {}
    todo = [None]
    while todo:
        for a in client.list_artifacts(rid, todo.pop()):
            if a.is_dir:
                todo.append(a.path)
            else:
                remote[a.path] = a
    if set(remote) != set(local):
        err(f"artifacts differ: missing {sorted(set(local) - set(remote))}, extra {sorted(set(remote) - set(local))}")
    with tempfile.TemporaryDirectory() as tmp:
        for rel in sorted(set(remote) & set(local)):
            p = client.download_artifacts(rid, rel, tmp)
            with open(p, "rb") as fh:
                if hashlib.sha256(fh.read()).hexdigest() != local[rel]:
                    err(f"artifact {rel} differs from the run folder's file")
    finished = os.path.exists(os.path.join(run_dir, "metrics.json"))
    if finished and r.info.status != "FINISHED":
        err(f"status {r.info.status}, run finished")


def dump(client, exp_id):
    out = []
    for r in client.search_runs([exp_id], order_by=["tags.`pcam.run_key` ASC"]):
        rid = r.info.run_id
        arts = []
        todo = [None]
        while todo:
            for a in client.list_artifacts(rid, todo.pop()):
                (todo.append(a.path) if a.is_dir else arts.append([a.path, a.file_size]))
        out.append({
            "run_id": rid, "status": r.info.status, "start": r.info.start_time, "end": r.info.end_time,
            "params": r.data.params, "tags": {k: v for k, v in r.data.tags.items()},
            "metrics": {k: [[m.step, m.timestamp, m.value] for m in
                            sorted(client.get_metric_history(rid, k), key=lambda m: (m.step, m.timestamp))]
                        for k in sorted(r.data.metrics)},
            "artifacts": sorted(arts),
        })
    return out


def main():
    mode, uri, experiment = sys.argv[1:4]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        print(f"experiment {experiment} not on {uri}")
        return 1
    if mode == "dump":
        print(json.dumps(dump(client, exp.experiment_id), sort_keys=True, default=str))
        return 0
    errors = []
    for run_dir in sys.argv[4:]:
        check_run(client, exp.experiment_id, run_dir, errors)
    for e in errors:
        print(e)
    if not errors:
        print(f"ok: {len(sys.argv) - 4} run(s) complete on {uri}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
