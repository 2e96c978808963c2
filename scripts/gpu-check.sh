#!/usr/bin/env bash
# scripts/gpu-check.sh OUT_DIR — the GPU checks of issue 9, as one short script for a machine
# with an NVIDIA GPU (the `device` tool's H100): build here, carry target/release/pcam and
# .venv's torch libraries, run this there. Writes into OUT_DIR:
#   info.json                      pcam info (CUDA available? devices? cuDNN?)
#   twin/                          a CUDA twin run (bitwise comparison of two processes)
#   throughput-gpu-<card>.json     pcam bench throughput on cuda (batch 1 and the sweep)
#   log.txt                        everything printed
# Data: a synthetic PCAM in the real layout, generated here (seeded, a few seconds).
set -euo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
[ -f scripts/env.sh ] && . scripts/env.sh
pcam=${PCAM:-target/release/pcam}
exec > >(tee "$out/log.txt") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$pcam" info --json > "$out/info.json"; cat "$out/info.json"
"$pcam" -q data synth --out "$out/data" --variant pcam --seed 7 --sizes train=4096,valid=1024,test=1024
time "$pcam" twin-run --out "$out/twin" data.dir="$out/data" model.kind=cnn train.epochs=2 \
    train.device=cuda train.batch_size=128 run.root="$out/runs"
card=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | tr -c 'A-Za-z0-9\n' '-' | head -1)
time "$pcam" bench throughput train.device=cuda train.threads=4 data.dir="$out/data" \
    --out "$out/throughput-gpu-${card:-cuda}.json"
