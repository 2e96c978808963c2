#!/usr/bin/env bash
# `make notebooks` / `make notebooks-check`: install the pinned evcxr_jupyter and the
# Jupyter tools, register the `pcam-rust` kernel with the environment of scripts/env.sh,
# regenerate the demo data, then execute every notebook headless, in order.
#   run:   outputs written in place (the committed evidence), assets/ refreshed
#   check: executed into a temporary folder with a temporary assets folder; fails on
#          any error output, unexecuted cell, oversized image, or asset that differs
#          from the committed one (stale evidence)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
EVCXR_VERSION=0.22.0
say() { printf '[notebooks] %s\n' "$*"; }
# What the training-derived assets depend on besides the code: libtorch's float results
# differ between CPU families (instruction sets), so assets reproduce byte for byte only
# on the hardware and torch they were made with (recorded in assets/MACHINE).
machine() {
  printf 'cpu: %s\n' "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  printf 'torch: %s\n' "$(sed -n "s/^__version__ = '\(.*\)'.*/\1/p" .venv/lib/python3*/site-packages/torch/version.py | head -n 1)"
}

# shellcheck source=env.sh
. scripts/env.sh

if ! cargo install --list | grep -q "^evcxr_jupyter v$EVCXR_VERSION:"; then
  say "installing evcxr_jupyter $EVCXR_VERSION (cargo install, several minutes, once)"
  cargo install --quiet --locked evcxr_jupyter --version "$EVCXR_VERSION"
fi

stamp=".venv/.pcam-notebook-requirements-$(sha256sum scripts/requirements-notebooks.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "installing Jupyter tools into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-notebooks.txt
  rm -f .venv/.pcam-notebook-requirements-*
  touch "$stamp"
fi

kdir="$JUPYTER_PATH/kernels/$PCAM_KERNEL"
mkdir -p "$kdir"
.venv/bin/python - "$kdir/kernel.json" "$(command -v evcxr_jupyter)" <<'PY'
import json, os, sys
env = {k: os.environ[k] for k in ("PATH", "VIRTUAL_ENV", "LIBTORCH_USE_PYTORCH", "LD_LIBRARY_PATH",
                                   "EVCXR_TMPDIR", "HDF5_USE_FILE_LOCKING") if k in os.environ}
spec = {"argv": [sys.argv[2], "--control_file", "{connection_file}"],
        "display_name": "Rust (pcam)", "language": "rust", "interrupt_mode": "message", "env": env}
text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
if not os.path.exists(sys.argv[1]) or open(sys.argv[1]).read() != text:
    open(sys.argv[1], "w").write(text)
PY

# Regenerated every time (a few seconds, byte-identical for the same generator), so a
# data folder left by an older pcam can never feed stale numbers into the notebooks.
for v in pcam course; do
  target/release/pcam -q data synth --out "data/demo/$v" --variant "$v" --seed 7 --force >/dev/null
done

mkdir -p "$EVCXR_TMPDIR"
# evcxr resolves dependencies afresh; give it our lock file so notebooks run the same
# dependency versions as the binary and the tests.
[ "$EVCXR_TMPDIR/Cargo.lock" -nt Cargo.lock ] || cp Cargo.lock "$EVCXR_TMPDIR/Cargo.lock"
nbs=(notebooks/q*.ipynb)
# `scripts/notebooks.sh run notebooks/q7_collaboration.ipynb`: only the notebooks named
[ "$#" -gt 1 ] && nbs=("${@:2}")
if [ "$mode" = check ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  mkdir -p "$out/assets"
  export PCAM_ASSETS_DIR="$out/assets"
fi
for nb in "${nbs[@]}"; do
  start=$(date +%s)
  if [ "$mode" = check ]; then
    jupyter nbconvert --log-level=WARN --to notebook --execute --ExecutePreprocessor.kernel_name="$PCAM_KERNEL" \
      --ExecutePreprocessor.timeout=3600 --ExecutePreprocessor.record_timing=False --output-dir "$out" "$nb"
  else
    jupyter nbconvert --log-level=WARN --to notebook --execute --ExecutePreprocessor.kernel_name="$PCAM_KERNEL" \
      --ExecutePreprocessor.timeout=3600 --ExecutePreprocessor.record_timing=False --inplace "$nb"
  fi
  say "$nb executed in $(( $(date +%s) - start ))s"
done

if [ "$mode" = check ]; then
  .venv/bin/python scripts/nbcheck.py "${nbs[@]/#notebooks/$out}"
  stale=0 differs=0
  same_machine=1
  if [ -f assets/MACHINE ] && [ "$(machine)" != "$(cat assets/MACHINE)" ]; then
    same_machine=0
  fi
  while IFS= read -r f; do
    rel=${f#"$out/assets/"}
    if [ ! -f "assets/$rel" ]; then
      echo "[notebooks] missing: assets/$rel is made by a notebook but not committed (run make notebooks and commit)" >&2
      stale=1
    elif ! cmp -s "$f" "assets/$rel"; then
      if [ "$same_machine" = 1 ]; then
        echo "[notebooks] stale or missing: assets/$rel differs from a fresh run (run make notebooks and commit)" >&2
        stale=1
      else
        echo "[notebooks] differs on this hardware: assets/$rel"
        differs=$((differs + 1))
      fi
    fi
  done < <(find "$out/assets" -type f | sort)
  [ "$stale" = 0 ] || exit 1
  if [ "$differs" -gt 0 ]; then
    say "assets/MACHINE says the committed assets were made on: $(tr '\n' ' ' < assets/MACHINE)"
    say "this machine is: $(machine | tr '\n' ' ')"
    say "$differs assets differ here: floating-point results depend on the CPU's instruction set, so they are compared byte for byte only on matching hardware (every notebook still ran without error)"
  fi
  if [ "$differs" -gt 0 ]; then
    say "check passed: ${#nbs[@]} notebooks ran; no asset missing; byte-for-byte comparison skipped for the $differs that differ on this hardware"
  else
    say "check passed: ${#nbs[@]} notebooks, assets reproduce byte for byte"
  fi
else
  .venv/bin/python scripts/nbcheck.py "${nbs[@]}"
  # a full run defines the hardware the assets belong to
  [ "$#" -gt 1 ] || machine > assets/MACHINE
  target/release/pcam journal render
fi
