#!/usr/bin/env bash
# Installs what is missing, builds, checks the tree's rules
# (scripts/check-tree.py), and runs the whole test suite: the
# GoogleTest programs through meson, then the comparison with Xen's own
# verify-stream-v2 (skipped when Debian's xen-utils package cannot be had),
# then the comparison of --strict and xsr gen with Xen 4.17's restore code
# (scripts/restore-check.py), then the Debian package (scripts/deb.sh:
# build, lintian, install, run), then the hardening runs: the suite again
# built with ASan and UBSan
# (build-asan/), and each fuzz target for FUZZ_SECONDS (default 60).
# SKIP_HARDENING=1 stops after the comparisons. Each phase says how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
phase_start=$(date +%s)
phase() {
  local now
  now=$(date +%s)
  echo "== phase: $1 took $((now - phase_start)) s"
  phase_start=$now
}
scripts/setup.sh --dev --no-sample
phase "setup and build"
scripts/check-tree.py
phase "tree rules (layout, function length, format)"
meson test -C build --print-errorlogs
# One line for the GoogleTest cases the suites above ran.
passed=$(grep -ho '\[  PASSED  \] [0-9]* test' build/meson-logs/testlog.txt | awk '{s += $4} END {print s + 0}')
echo "googletest: $passed passed, 0 failed"
phase "test suite"
scripts/reference-diff.py
phase "reference comparison"
# Xen's own restore code as the oracle for --strict and xsr gen (skipped
# when Debian's libxenmisc4.17 cannot be had): any disagreement fails.
scripts/restore-check.py
phase "restore oracle comparison"
# The Debian package: built from a copy of the tree, lintian, installed, run.
scripts/deb.sh
phase "Debian package"
[ "${SKIP_HARDENING:-0}" = 1 ] && exit 0

# Sanitizers: any report fails the test it happened in.
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dtests=enabled -Dbenchmarks=disabled \
    --buildtype=debugoptimized >/dev/null
fi
ninja -C build-asan >/dev/null
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs --timeout-multiplier 3
phase "sanitizer build and test suite"
XSR=build/cmd/xsr scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
phase "fuzzing"
