#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: the
# GoogleTest programs through meson, then the comparison with Xen's own
# verify-stream-v2 (skipped when Debian's xen-utils package cannot be had).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-sample
meson test -C build --print-errorlogs
# One line for the GoogleTest cases the suites above ran.
passed=$(grep -ho '\[  PASSED  \] [0-9]* test' build/meson-logs/testlog.txt | awk '{s += $4} END {print s + 0}')
echo "googletest: $passed passed, 0 failed"
scripts/reference-diff.py
