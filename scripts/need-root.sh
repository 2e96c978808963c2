#!/usr/bin/env bash
# scripts/need-root.sh WHAT: the gate in front of tests that need root (a tmpfs mount,
# slurmd). As root: exit 0 and the tests run. Not root under CI (CI set): fail, since CI
# must run them. Not root elsewhere: print a SKIPPED line and exit 3, which the make
# target turns into a visible skip.
set -euo pipefail
what=${1:-these tests}
[ "$(id -u)" -eq 0 ] && exit 0
if [ -n "${CI:-}" ]; then
  echo "error: $what needs root, and CI=$CI requires it to run: run CI as root" >&2
  exit 1
fi
echo "SKIPPED: $what needs root (run as root to include it; CI fails instead of skipping)"
exit 3
