#!/usr/bin/env bash
# Idempotent set-up from nothing, called by `make setup` (and so by `make demo` and
# `make test`): Debian packages, the project-local .venv with pip torch (libtorch for
# tch) and the Python test tools, then the release build. Each step checks before it
# acts, so a re-run with everything present takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(libhdf5-dev pkg-config)
# Debian's own python3 needs python3-venv for `python3 -m venv`; other pythons bring it.
python3 -c "import ensurepip, venv" 2>/dev/null || APT_PKGS+=(python3-venv)
say() { printf '[setup] %s\n' "$*"; }

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] || {
  echo "[setup] error: cargo not found; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

stamp=".venv/.pcam-requirements-$(sha256sum scripts/requirements.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || { say "creating .venv"; python3 -m venv .venv; }
  say "installing Python requirements into .venv (torch is about 5 GB, once)"
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
  rm -f .venv/.pcam-requirements-*
  touch "$stamp"
fi

# shellcheck source=env.sh
. scripts/env.sh
say "building target/release/pcam"
cargo build --release --locked --quiet
say "ready: target/release/pcam ($(target/release/pcam --version))"
