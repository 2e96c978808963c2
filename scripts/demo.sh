#!/usr/bin/env bash
# `make demo`: the main job on the embedded defaults. Synthesizes both variants of the
# demo dataset, inspects them, reads the course copy under its pixel policy, and
# trains the baseline MLP and the small CNN, and writes every report into runs/demo/.
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
echo "== 4. the resolved default configuration"
$pcam -q config show --write "$out" | tail -n 1

echo
echo "== 5. train the course's baseline MLP and the small CNN on the SYNTHETIC pcam variant, evaluate on test"
for m in mlp cnn; do
  $pcam train --config "configs/experiment/demo_$m.yaml" | tee "$out/train-$m.txt"
  run=$(awk '/^run /{print $2}' "$out/train-$m.txt")
  $pcam eval --run "$run" --split test | tee "$out/eval-$m.txt"
done

echo
echo "outputs:"
echo "  data/demo/pcam/     synthetic PCAM, uint8 + gzip (9 files + synthetic.json)"
echo "  data/demo/course/   synthetic course copy, float32, poisoned (ground truth in synthetic.json)"
echo "  $out/            inspect-{pcam,course}.{txt,json}, check-course.txt, {train,eval}-{mlp,cnn}.txt,"
echo "                     config.yaml, config.sha256"
echo "  runs/demo/<run-id>/ one folder per training run: config, manifest, history, checkpoints, metrics"
