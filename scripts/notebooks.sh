#!/usr/bin/env bash
# `make notebooks` / `make notebooks-check` / `make lab`: install the pinned evcxr_jupyter
# and the Jupyter tools, register the `pcam-rust` kernel with the environment of
# scripts/env.sh, regenerate the demo data, compile pcam into the kernel's build folder
# (target/evcxr: a kernel started afterwards opens in about half a minute instead of
# minutes), then:
#   run:     execute every notebook headless, in order, outputs written in place (the
#            committed evidence), assets/ refreshed (scripts/nbexec.py, through the kernel
#            protocol; PCAM_RERUN=K re-executes K random cells per notebook afterwards)
#   check:   the same into a temporary folder with a temporary assets folder, then K=2 cells
#            per notebook re-executed (PCAM_RERUN, seed PCAM_RERUN_SEED), and the cells named
#            in PCAM_RERUN_CELLS (default: those made rerunnable by hand): fails on any error
#            output (a notebook's own assertions included), unexecuted cell, oversized image,
#            a re-executed cell whose outputs or assets changed, or an asset that does not
#            reproduce (pcam report check-assets: exact assets byte for byte everywhere;
#            training-derived ones byte for byte on the machine in assets/MACHINE, within each
#            notebook's tolerance elsewhere); and one notebook stepped through a real
#            JupyterLab server's REST and websocket API (scripts/nbserver_check.py)
#   lab:     start JupyterLab on 127.0.0.1 (PCAM_LAB_PORT, default 8888 or a free one) with
#            the pcam-rust kernel and print its URL
#   kernel:  only install evcxr_jupyter (cargo; .ci/run does it beside make test)
#   prepare: only install the tools, register the kernel and compile pcam into target/evcxr
#            (no data, no notebook; .ci/run does it beside make lint)
#   measure: time a kernel's start and setup cell with target/evcxr cold (also without
#            evcxr's compile cache), stale and warm, into results/notebooks/startup.json
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
case "$mode" in
run | check | lab | measure | kernel | prepare) ;;
*) echo "usage: scripts/notebooks.sh run|check|lab|measure|kernel|prepare [NOTEBOOK...]" >&2; exit 2 ;;
esac
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
  # opt-level 1 instead of cargo install's 3: the kernel spends its time in rustc, not in its
  # own code (a one-line cell took 1.6 s, as with opt-level 3), and the install compiled in
  # 14 min while a release build of pcam shared the 2 cores (16-20 min at opt-level 3)
  say "installing evcxr_jupyter $EVCXR_VERSION (cargo install, about 10-15 min on 2 cores, once)"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install --quiet --locked evcxr_jupyter --version "$EVCXR_VERSION"
fi

[ "$mode" != kernel ] || exit 0
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
case "$mode" in measure | prepare) ;; *) scripts/course-data.sh ;; esac

cleanup=()
on_exit() { local c; for c in "${cleanup[@]}"; do eval "$c"; done; }
trap on_exit EXIT
mkdir -p "$EVCXR_TMPDIR"
# (the kernel's prelude, notebooks/evcxr/prelude.rs, copies Cargo.lock into EVCXR_TMPDIR at
# every start, so notebooks build the dependency versions the binary and the tests use)
warm() { .venv/bin/python scripts/nbexec.py --warm notebooks/q1_reproducibility.ipynb "$@"; }
# what make notebooks, lab and prepare do before any notebook opens
prepare_kernel() {
  say "compiling pcam for the kernel if needed (first time: minutes, see results/notebooks/startup.json)"
  warm
}

case "$mode" in
prepare)
  prepare_kernel
  exit 0
  ;;
lab)
  # the port first: a taken one fails before minutes of compiling
  port=${PCAM_LAB_PORT:-8888}
  if ! .venv/bin/python -c 'import socket,sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null; then
    if [ -n "${PCAM_LAB_PORT:-}" ]; then
      say "error: PCAM_LAB_PORT=$PCAM_LAB_PORT: port in use on 127.0.0.1 (another server?); pick another one"
      exit 1
    fi
    port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    say "port 8888 is in use: using $port"
  fi
  prepare_kernel
  token=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(24))')
  root=()
  [ "$(id -u)" != 0 ] || root=(--allow-root)
  say "JupyterLab: http://127.0.0.1:$port/lab/tree/notebooks/q1_reproducibility.ipynb?token=$token"
  say "(kernel 'Rust (pcam)'; Ctrl-C, then y, stops the server; on another machine: ssh -L $port:127.0.0.1:$port HOST)"
  exec jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port="$port" --ServerApp.port_retries=0 \
    --IdentityProvider.token="$token" --ServerApp.root_dir="$PWD" "${root[@]}"
  ;;
measure)
  # Each case starts a fresh kernel and runs q1's setup cell. cold_no_cache: target/evcxr
  # and evcxr's compile cache both empty (a new machine); cold_clone: target/evcxr empty,
  # the cache (~/.cache/evcxr) as an earlier clone left it; stale_pcam: pcam's sources
  # touched; warm: nothing to compile. Minutes of compilation; run it on an idle machine.
  empty_cache=$(mktemp -d)
  cleanup+=("rm -rf '$empty_cache'")
  rm -rf "$EVCXR_TMPDIR" && mkdir -p "$EVCXR_TMPDIR"
  XDG_CACHE_HOME=$empty_cache warm --record cold_no_cache
  rm -rf "$EVCXR_TMPDIR" && mkdir -p "$EVCXR_TMPDIR"
  warm --record cold_clone
  touch src/lib.rs
  warm --record stale_pcam
  warm --record warm
  exit 0
  ;;
esac

# The heavy cells (the Q5.2 search, the seed runs, the CV folds) go to Slurm when `sinfo`
# answers and run here otherwise (pcam::offload). Under CI (CI set, as root, as .ci/run
# runs), or with PCAM_LOCAL_SLURM=1 as root, and no cluster answering, a one-node local Slurm
# (scripts/local-slurm.sh, installs slurm-wlm with apt) is started for this run, so the Slurm
# path is the one exercised, and stopped when the script ends. Elsewhere nothing is installed.
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

# q5a's MLflow server outlives its notebook (for its UI, and so its cells can run again);
# a full run starts it afresh and stops it at the end.
stop_q5a_server() { [ ! -d runs/q5a/mlflow ] || target/release/pcam -q tracking server stop --dir runs/q5a/mlflow >/dev/null || true; }
stop_q5a_server
cleanup+=(stop_q5a_server)

prepare_kernel

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
  # The re-execution check's own test: a notebook made to fail it (a cell that appends to a
  # vector of an earlier cell) must fail it, for that reason.
  mkdir -p "$out/selftest"
  if .venv/bin/python scripts/nbexec.py --out "$out/selftest" --rerun-cells selftest-2 \
      tests/notebooks/not_rerunnable.ipynb >"$out/selftest/log" 2>&1; then
    cat "$out/selftest/log"
    say "error: the re-execution check passed tests/notebooks/not_rerunnable.ipynb, which it must fail"
    exit 1
  fi
  if ! grep -q "selftest-2): other outputs on re-execution" "$out/selftest/log"; then
    cat "$out/selftest/log"
    say "error: tests/notebooks/not_rerunnable.ipynb failed the re-execution check, but not for its changed output"
    exit 1
  fi
  say "the re-execution check fails a cell that is not rerunnable (tests/notebooks/not_rerunnable.ipynb)"
  # Besides the random cells, the cells that had to change to be rerunnable (they write into
  # fixed folders, reuse a running server or read back run folders) are re-executed always.
  .venv/bin/python scripts/nbexec.py --out "$out" --rerun "${PCAM_RERUN:-2}" \
    --rerun-cells "${PCAM_RERUN_CELLS-q1-10,q1-11,q5a-02,q5a-04,q5a-16,q9-11}" "${nbs[@]}"
  .venv/bin/python scripts/nbcheck.py "${nbs[@]/#notebooks/$out}"
  # a notebook through a real JupyterLab server, compared with its run above
  server_nb=notebooks/q7_collaboration.ipynb
  if [ -f "$out/$(basename "$server_nb")" ]; then
    .venv/bin/python scripts/nbserver_check.py "$server_nb" --expect "$out/$(basename "$server_nb")"
  fi
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
  say "check passed: ${#nbs[@]} notebooks ran, re-ran cells unchanged, asserted their claims and reproduced their assets"
else
  .venv/bin/python scripts/nbexec.py --inplace --rerun "${PCAM_RERUN:-0}" "${nbs[@]}"
  .venv/bin/python scripts/nbcheck.py "${nbs[@]}"
  # a full run defines the hardware the assets belong to
  [ "$#" -gt 1 ] || machine > assets/MACHINE
  target/release/pcam-course journal render
fi
