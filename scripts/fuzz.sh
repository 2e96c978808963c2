#!/usr/bin/env bash
# Fuzzes the config resolver and the PCAM HDF5 reader with cargo-fuzz (libFuzzer) for a
# bounded time: FUZZ_SECONDS per target (default 60). Seeds: every YAML under configs/, and
# tiny synthetic x/y/meta files of both variants (uint8 gzip, float32 uncompressed).
# A crash, panic, hang (>10 s per input) or allocation over 4 GiB fails; libFuzzer leaves
# the input in fuzz/artifacts/<target>/. Part of `make test-slow`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
secs=${FUZZ_SECONDS:-60}

if ! command -v cargo-fuzz >/dev/null; then
  echo "[fuzz] installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
# cargo-fuzz passes -Z flags to rustc: nightly where rustup has it, else stable told to accept them.
toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

corpus=fuzz/corpus
mkdir -p "$corpus/config" "$corpus/hdf5"
for f in $(find configs -name '*.yaml' | sort); do
  cp "$f" "$corpus/config/seed-$(echo "$f" | tr '/' '_')"
done
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
for variant in pcam course; do
  target/release/pcam -q data synth --out "$seeds/$variant" --variant "$variant" \
    --sizes train=4,valid=2,test=2 --seed 1 >/dev/null
  for f in "$seeds/$variant"/*; do cp "$f" "$corpus/hdf5/seed-$variant-$(basename "$f")"; done
done
max_len=$(find "$corpus/hdf5" -type f -printf '%s\n' | sort -n | tail -n 1)

# No sanitizer: the Rust code is memory-safe and libtorch/HDF5 are not instrumented;
# libFuzzer still catches panics, aborts, signals, hangs and runaway allocations.
run() {
  local target=$1 len=$2
  echo "[fuzz] $target for ${secs}s (max_len $len)"
  local log=fuzz/artifacts/$target.log rc=0
  mkdir -p fuzz/artifacts
  cargo "${toolchain[@]}" fuzz run --sanitizer none "$target" "$corpus/$target" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -max_len="$len" \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR)|panicked|SUMMARY|Test unit written|^error' "$log" || true
  [ "$rc" -eq 0 ] || echo "[fuzz] $target failed (exit $rc): $log" >&2
  return "$rc"
}
status=0
run config 4096 || status=1
run hdf5 "$max_len" || status=1
if [ "$status" -ne 0 ]; then
  echo "[fuzz] FAILED: inputs in fuzz/artifacts/" >&2
  exit 1
fi
echo "[fuzz] ok: no crash, panic, hang or runaway allocation in ${secs}s per target"
