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
  stale=0
  while IFS= read -r f; do
    rel=${f#"$out/assets/"}
    if ! cmp -s "$f" "assets/$rel"; then
      echo "[notebooks] stale or missing: assets/$rel differs from a fresh run (run make notebooks and commit)" >&2
      stale=1
    fi
  done < <(find "$out/assets" -type f | sort)
  [ "$stale" = 0 ] || exit 1
  say "check passed: ${#nbs[@]} notebooks, assets reproduce byte for byte"
else
  .venv/bin/python scripts/nbcheck.py "${nbs[@]}"
  target/release/pcam journal render
fi
