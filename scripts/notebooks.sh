#!/usr/bin/env bash
# `make notebooks` / `make notebooks-check`: install the pinned evcxr_jupyter and the
# Jupyter tools, register the `pcam-rust` kernel with the environment of scripts/env.sh,
# regenerate the demo data, then execute every notebook headless, in order.
#   run:   outputs written in place (the committed evidence), assets/ refreshed
#   check: executed into a temporary folder with a temporary assets folder; fails on
#          any error output (a notebook's own assertions included), unexecuted cell,
#          oversized image, or asset that does not reproduce (pcam report check-assets:
#          exact assets byte for byte everywhere; training-derived ones byte for byte on
#          the machine in assets/MACHINE, within each notebook's tolerance elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
EVCXR_VERSION=0.22.0
say() { printf '[notebooks] %s\n' "$*"; }
# What the training-derived assets depend on besides the code: libtorch's float results
# differ between instruction sets (the kernels libtorch dispatches to, MKL's code paths),
# so those assets reproduce byte for byte only on the hardware and torch recorded in
# assets/MACHINE; elsewhere their numbers are compared within each notebook's tolerance.
cpu_level() {
  local flags level=x86-64
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2-) "
  has() { local f; for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
  [ -n "${flags// /}" ] || { uname -m; return; }
  has cx16 lahf_lm popcnt sse4_1 sse4_2 ssse3 && level=x86-64-v2
  [ "$level" = x86-64-v2 ] && has avx avx2 bmi1 bmi2 f16c fma abm movbe xsave && level=x86-64-v3
  [ "$level" = x86-64-v3 ] && has avx512f avx512bw avx512cd avx512dq avx512vl && level=x86-64-v4
  echo "$level"
}
machine() {
  printf 'cpu: %s\n' "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  printf 'cpu level: %s\n' "$(cpu_level)"
  .venv/bin/python -c 'import torch; print("libtorch dispatch:", torch.backends.cpu.get_cpu_capability()); print("torch:", torch.__version__)'
  local v
  for v in MKL_ENABLE_INSTRUCTIONS ONEDNN_MAX_CPU_ISA; do
    [ -z "${!v:-}" ] || printf '%s: %s\n' "$v" "${!v}"
  done
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
# evcxr links each cell against the toolchain's shared libstd and gives the library a
# RUNPATH relative to where rustc wrote it (debug/deps/), but loads it from debug/: one
# `..` too many. Under /root the surplus `..` stops at / and the path still lands; in any
# other home it misses and the kernel dies on its first cell ("libstd-….so: cannot open").
# The kernel therefore gets the toolchain's library folder on its LD_LIBRARY_PATH.
.venv/bin/python - "$kdir/kernel.json" "$(command -v evcxr_jupyter)" "$(rustc --print target-libdir)" <<'PY'
import json, os, sys
env = {k: os.environ[k] for k in ("PATH", "VIRTUAL_ENV", "LIBTORCH_USE_PYTORCH", "LD_LIBRARY_PATH",
                                   "EVCXR_TMPDIR", "EVCXR_CONFIG_DIR", "HDF5_USE_FILE_LOCKING") if k in os.environ}
env["LD_LIBRARY_PATH"] = ":".join(p for p in (sys.argv[3], env.get("LD_LIBRARY_PATH")) if p)
spec = {"argv": [sys.argv[2], "--control_file", "{connection_file}"],
        "display_name": "Rust (pcam)", "language": "rust", "interrupt_mode": "message", "env": env}
text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
if not os.path.exists(sys.argv[1]) or open(sys.argv[1]).read() != text:
    open(sys.argv[1], "w").write(text)
PY

# The demo copies, the course copy's clean index and slide split: regenerated every time
# (seconds, byte-identical for the same pcam), so nothing an older pcam left can feed stale
# numbers into the notebooks.
scripts/course-data.sh

# The heavy cells (the Q5.2 search, the seed runs, the CV folds) go to Slurm when `sinfo`
# answers and run here otherwise (pcam::offload). Under CI (CI set, as root, as .ci/run
# runs), or with PCAM_LOCAL_SLURM=1 as root, and no cluster answering, a one-node local Slurm
# (scripts/local-slurm.sh, installs slurm-wlm with apt) is started for this run, so the Slurm
# path is the one exercised, and stopped when the script ends. Elsewhere nothing is installed.
cleanup=()
on_exit() { local c; for c in "${cleanup[@]}"; do eval "$c"; done; }
trap on_exit EXIT
if [ "$(id -u)" = 0 ] && { [ -n "${CI:-}" ] || [ "${PCAM_LOCAL_SLURM:-0}" = 1 ]; } && ! sinfo -h >/dev/null 2>&1; then
  slurm_base=$(mktemp -d "${TMPDIR:-/tmp}/pcam-notebooks-slurm.XXXXXX")
  # two distinct free ports, both held until both are known
  read -r ctld_port slurmd_port < <(.venv/bin/python -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
  say "starting a one-node local Slurm in $slurm_base"
  cleanup+=("PURGE=1 scripts/local-slurm.sh stop '$slurm_base' || true")
  SLURMCTLD_PORT=$ctld_port SLURMD_PORT=$slurmd_port scripts/local-slurm.sh start "$slurm_base"
  export SLURM_CONF=$slurm_base/etc/slurm.conf
fi
if sinfo -h >/dev/null 2>&1; then
  say "heavy cells go to Slurm: $(sinfo -h -o '%P' | tr '\n' ' ')"
else
  say "heavy cells run on this machine (no Slurm answering)"
fi

mkdir -p "$EVCXR_TMPDIR"
# evcxr resolves dependencies afresh; give it our lock file so notebooks run the same
# dependency versions as the binary and the tests.
[ "$EVCXR_TMPDIR/Cargo.lock" -nt Cargo.lock ] || cp Cargo.lock "$EVCXR_TMPDIR/Cargo.lock"
nbs=(notebooks/q*.ipynb)
# `scripts/notebooks.sh run notebooks/q7_collaboration.ipynb`: only the notebooks named
[ "$#" -gt 1 ] && nbs=("${@:2}")
if [ "$mode" = check ]; then
  # PCAM_CHECK_OUT=DIR keeps the executed notebooks and fresh assets there for inspection
  if [ -n "${PCAM_CHECK_OUT:-}" ]; then
    out=$PCAM_CHECK_OUT
    rm -rf "$out" && mkdir -p "$out"
  else
    out=$(mktemp -d)
    cleanup+=("rm -rf '$out'")
  fi
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
  same=()
  here=$(machine)
  if [ "$here" = "$(cat assets/MACHINE 2>/dev/null)" ]; then
    same=(--same-machine)
  else
    say "assets/MACHINE says the committed assets were made on: $(tr '\n' ' ' < assets/MACHINE)"
    say "this machine is: $(tr '\n' ' ' <<< "$here")"
  fi
  complete=()
  [ "$#" -gt 1 ] || complete=(--complete)
  target/release/pcam report check-assets --assets assets --fresh "$out/assets" "${same[@]}" "${complete[@]}"
  say "check passed: ${#nbs[@]} notebooks ran, asserted their claims and reproduced their assets"
else
  .venv/bin/python scripts/nbcheck.py "${nbs[@]}"
  # a full run defines the hardware the assets belong to
  [ "$#" -gt 1 ] || machine > assets/MACHINE
  target/release/pcam-course journal render
fi
