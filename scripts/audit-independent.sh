#!/usr/bin/env bash
# Scores `pcam data audit` on data from the independent generator (tests/independent/,
# written without reading pcam's generator or audit), at its held-out seed, for the three
# storage types: label noise from a 5-fold CNN's out-of-fold probabilities (`pcam data oof`,
# configs/experiment/oof_cnn.yaml; about 5 minutes per storage type on 2 cores); writes
# results/audit/independent-<dtype>.json (scores per kind, per trigger shape and per copy
# transform) and prints the tables. Exits 1 when a target is not met.
# Usage: scripts/audit-independent.sh [SEED] (default 37, the held-out seed).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PCAM_ROOT"
seed="${1:-37}"
work="target/audit-independent"
out="results/audit"
mkdir -p "$work" "$out"
rc=0
for dtype in uint8 uint32 float32; do
  .venv/bin/python tests/independent/corrupt_pcam.py --out "$work/$dtype" --seed "$seed" --dtype "$dtype"
  rm -rf "$work/oof-$dtype"
  target/release/pcam -q data oof "$work/$dtype" --config configs/experiment/oof_cnn.yaml \
    --folds 5 --out "$work/oof-$dtype" >/dev/null
  target/release/pcam -q data audit "$work/$dtype" --out "$work/report-$dtype" \
    --oof "$work/oof-$dtype/oof.json" >/dev/null
  echo "## $dtype"
  .venv/bin/python tests/independent/score_audit.py --truth "$work/$dtype/independent_truth.json" \
    --audit "$work/report-$dtype/audit.json" --out "$out/independent-$dtype.json" --check || rc=1
done
exit $rc
