#!/usr/bin/env bash
# Refreshes models/demo-cnn/ (the checkpoint committed for the journal's final checklist)
# from the newest demo CNN run of `make demo`: what predict and bundle need (resolved config
# and hash, manifest, metrics, threshold, evaluation with its per-tile predictions (what
# `make demo` re-evaluates against), epoch history, best checkpoint).
# The model is trained on SYNTHETIC data. With real PCAM, point it at the Q5.2 champion.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-$(awk '/^run /{print $2}' runs/demo/train-cnn.txt)}
[ -f "$run/checkpoints/best.ckpt" ] || { echo "error: $run: no checkpoints/best.ckpt (run make demo first)" >&2; exit 2; }
dest=models/demo-cnn
tmp=$(mktemp -d models/.demo-cnn.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -p "$tmp/checkpoints" "$tmp/history"
cp "$run"/{config.yaml,config.sha256,manifest.json,metrics.json,threshold.json,eval-test.json,predictions-test.csv} "$tmp/"
cp "$run/checkpoints/best.ckpt" "$tmp/checkpoints/"
cp "$run/history/epochs.csv" "$tmp/history/"
rm -rf "$dest" && mv "$tmp" "$dest"
trap - EXIT
echo "models/demo-cnn <- $run ($(du -sh "$dest" | cut -f1))"
