#!/usr/bin/env bash
# Scores `pcam data audit` on data from the independent generator (tests/independent/,
# written without reading pcam's generator or audit), at its held-out seed, for the three
# storage types: writes results/audit/independent-<dtype>.json (scores per kind, per trigger
# shape and per copy transform) and prints the tables. Exits 1 when a target is not met.
# Usage: scripts/audit-independent.sh [SEED] (default 23, the held-out seed).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PCAM_ROOT"
seed="${1:-23}"
work="target/audit-independent"
out="results/audit"
mkdir -p "$work" "$out"
rc=0
for dtype in uint8 uint32 float32; do
  .venv/bin/python tests/independent/corrupt_pcam.py --out "$work/$dtype" --seed "$seed" --dtype "$dtype"
  target/release/pcam -q data audit "$work/$dtype" --out "$work/report-$dtype" >/dev/null
  echo "## $dtype"
  .venv/bin/python tests/independent/score_audit.py --truth "$work/$dtype/independent_truth.json" \
    --audit "$work/report-$dtype/audit.json" --out "$out/independent-$dtype.json" --check || rc=1
done
exit $rc
