#!/usr/bin/env bash
# scripts/gpu-check.sh OUT_DIR — the GPU checks of issue 9, as one short script for a machine
# with an NVIDIA GPU (the `device` tool's H200): build here, carry target/release/pcam (and the
# shared libraries the machine lacks), run this there with LD_LIBRARY_PATH on its pip torch's
# lib folder. Writes into OUT_DIR:
#   info.json                      pcam info (CUDA available? devices? cuDNN?)
#   twin/, twin-mlp/               CUDA twin runs, CNN and MLP (bitwise comparison of two processes)
#   twin/a/eval-{valid,test}.json  the CNN run evaluated on CUDA, predictions beside them: the
#                                  reference for the CPU-vs-CUDA check below
#   throughput-gpu-<card>.json     pcam bench throughput on cuda (batch 1 and the sweep);
#                                  skipped with GPU_CHECK_BENCH=0
#   log.txt                        everything printed
# Data: a synthetic PCAM in the real layout, generated there (seeded, a few seconds; the same
# bytes as on any other machine: the manifests record their sha256).
# Back here, the CPU-vs-CUDA check of the same checkpoint (probabilities and metrics within
# --expect's tolerances): copy twin/a, set train.device: cpu in its config.yaml, generate the
# same data at the same path, then `pcam eval --run COPY --split valid --expect OUT_DIR/twin/a`.
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
time "$pcam" twin-run --out "$out/twin-mlp" data.dir="$out/data" model.kind=mlp train.epochs=2 \
    train.device=cuda train.batch_size=128 run.root="$out/runs"
for split in valid test; do "$pcam" eval --run "$out/twin/a" --split "$split"; done
if [ "${GPU_CHECK_BENCH:-1}" != 0 ]; then
    card=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | tr -c 'A-Za-z0-9\n' '-' | head -1)
    time "$pcam" bench throughput train.device=cuda train.threads=4 data.dir="$out/data" \
        --out "$out/throughput-gpu-${card:-cuda}.json"
fi
