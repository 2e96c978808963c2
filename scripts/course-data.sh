#!/usr/bin/env bash
# `make course-data` (and `make notebooks`): the SYNTHETIC demo copies (seed 7) and what
# configs/data/course_clean.yaml reads beside the course copy, all deterministic:
#   data/demo/{pcam,course}/     pcam data synth --variant pcam|course --seed 7
#   data/demo/course-clean.json  the audit's clean index (pcam data audit --write-clean;
#                                report in data/demo/course-audit/)
#   data/demo/course-split.json  train/valid rebuilt by slide (pcam data split, seed 1234)
# Regenerated every time (seconds, byte-identical for the same pcam), so files left by an
# older pcam can never feed stale data into a notebook or a Slurm job.
set -euo pipefail
cd "$(dirname "$0")/.."
pcam=target/release/pcam
for v in pcam course; do
  $pcam -q data synth --out "data/demo/$v" --variant "$v" --seed 7 --force >/dev/null
done
$pcam -q data audit data/demo/course --out data/demo/course-audit \
  --write-clean data/demo/course-clean.json >/dev/null
$pcam -q data split data/demo/course --out data/demo/course-split.json >/dev/null
echo "[course-data] data/demo/{pcam,course}, course-clean.json, course-split.json"
