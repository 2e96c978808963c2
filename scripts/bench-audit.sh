#!/usr/bin/env bash
# Audit benchmark: a 20k-tile float32 (course-variant) SYNTHETIC train split, audited
# with `pcam data audit`; prints tiles/s, peak RSS, and recall/precision per injected
# corruption kind against the generator's ground truth. Usage: scripts/bench-audit.sh [TRAIN_TILES]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PCAM_ROOT"
n="${1:-20000}"
work="target/bench-audit"
mkdir -p "$work"
target/release/pcam -q data synth --out "$work/data" --variant course --force \
  --sizes "train=$n,valid=512,test=512" --seed 3 >/dev/null
/usr/bin/time -f "%M" -o "$work/rss.txt" \
  target/release/pcam -q data audit "$work/data" --out "$work/report" --json >"$work/audit.json"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
a = json.load(open(f"{w}/audit.json"))
m = json.load(open(f"{w}/data/synthetic.json"))["corruptions"]
rss = int(open(f"{w}/rss.txt").read().split()[-1]) / 1024
print(f"audit of SYNTHETIC course-variant data: {a['tiles']} tiles ({sum(s['tiles'] for s in a['splits'] if s['split']=='train')} float32 train) "
      f"in {a['seconds']:.1f} s = {a['tiles_per_second']:.0f} tiles/s, peak RSS {rss:.0f} MiB")
F = {f["kind"]: {(t["split"], t["index"]) for t in f["tiles"]} for f in a["findings"]}
ids = lambda l, s: {(s, v[0] if isinstance(v, list) else v) for v in l}
truth = {"invalid_values": ids(m["out_of_range"], "train"), "blank": ids(m["blank"], "train"),
         "saturated": ids(m["saturated"], "train"), "trigger_patch": ids(m["trigger"], "train"),
         "exact_duplicate_across_splits": ids(m["exact_duplicate_of_test"], "train"),
         "near_duplicate_across_splits": ids(m["near_duplicate_of_test"], "train"),
         "slide_in_several_splits": ids(m["valid_on_train_slides"], "valid")}
print("| finding | injected | found | recall | precision |\n|---|---:|---:|---:|---:|")
for k, t in truth.items():
    tp = len(F[k] & t)
    print(f"| {k} | {len(t)} | {len(F[k])} | {tp/len(t):.3f} | {tp/max(1,len(F[k])):.3f} |")
PY
