#!/usr/bin/env bash
# `make demo`: the main job on the embedded defaults. Synthesizes both variants of the
# demo dataset, inspects and audits them, reads the course copy under its pixel policy,
# trains the baseline MLP and the small CNN, evaluates and predicts with them, and
# writes every report into runs/demo/.
# Everything it computes is on SYNTHETIC data.
set -euo pipefail
cd "$(dirname "$0")/.."
pcam=target/release/pcam
out=runs/demo
mkdir -p "$out"

echo "== 1. synthesize the demo dataset (SYNTHETIC, seed 7), both variants"
$pcam data synth --out data/demo/pcam --variant pcam --seed 7 --force
$pcam data synth --out data/demo/course --variant course --seed 7 --force

echo
echo "== 2. inspect: the dataset size mystery (journal Q2.4)"
for v in pcam course; do
  $pcam data inspect "data/demo/$v" | tee "$out/inspect-$v.txt"
  $pcam -q data inspect "data/demo/$v" --json > "$out/inspect-$v.json"
  echo
done

echo "== 3. read the course copy as training will (configs/data/course.yaml: invalid = drop)"
$pcam data check --config configs/data/course.yaml | tee "$out/check-course.txt"

echo
echo "== 3b. audit both copies for leakage and poisoning (journal Q2); clean index for the course copy"
$pcam data audit data/demo/pcam --out "$out/audit-pcam" | tee "$out/audit-pcam.txt"
$pcam data audit data/demo/course --out "$out/audit-course" \
  --write-clean "$out/course-clean.json" | tee "$out/audit-course.txt"

echo
echo "== 4. the resolved default configuration"
$pcam -q config show --write "$out" | tail -n 1

echo
echo "== 5. train the course's baseline MLP and the small CNN on the SYNTHETIC pcam variant;"
echo "      choose the threshold on valid (eval.threshold_policy: max_f2), evaluate once on test beside the baselines"
for m in mlp cnn; do
  $pcam train --config "configs/experiment/demo_$m.yaml" | tee "$out/train-$m.txt"
  run=$(awk '/^run /{print $2}' "$out/train-$m.txt")
  $pcam eval --run "$run" --split valid --choose-threshold | tee "$out/eval-$m.txt"
  $pcam eval --run "$run" --split test --baselines --slices | tee -a "$out/eval-$m.txt"
done

echo
echo "== 6. every run normalised with train-only statistics? (the audit recomputes them)"
$pcam data audit data/demo/pcam --out "$out/audit-pcam" --runs "$out" | grep -E "normalisation|report"

echo
echo "== 7. predict: the CNN on an HDF5 x file and on PNG tiles exported from it"
$pcam -q data export-png data/demo/pcam --split test --tiles 0..8 --out "$out/png"
$pcam predict --run "$run" data/demo/pcam/camelyonpatch_level_2_split_test_x.h5 "$out/png" \
  --out "$out/predictions-cnn.csv"

echo
echo "== 8. the model committed in models/demo-cnn/ (journal checklist) is this CNN:"
want=$(grep -o '"final_weights_sha256": *"[0-9a-f]*"' models/demo-cnn/metrics.json | grep -o '[0-9a-f]\{64\}')
got=$(grep -o '"final_weights_sha256": *"[0-9a-f]*"' "$run/metrics.json" | grep -o '[0-9a-f]\{64\}')
if [ "$want" = "$got" ]; then
  echo "   same weights, bit for bit (sha256 $got)"
else
  echo "   weights differ from models/demo-cnn (sha256 $got vs $want): another CPU, thread count"
  echo "   or library build; refresh with scripts/refresh-model.sh if this machine is the reference"
fi

echo
echo "outputs:"
echo "  data/demo/pcam/     synthetic PCAM, uint8 + gzip (9 files + synthetic.json)"
echo "  data/demo/course/   synthetic course copy, float32, poisoned (ground truth in synthetic.json)"
echo "  $out/            inspect-{pcam,course}.{txt,json}, check-course.txt, {train,eval}-{mlp,cnn}.txt,"
echo "                     audit-{pcam,course}/ (audit.md, figures), course-clean.json, png/,"
echo "                     predictions-cnn.csv, config.yaml, config.sha256"
echo "  runs/demo/<run-id>/ one folder per training run: config, manifest, history, checkpoints, metrics"
