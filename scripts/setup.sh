#!/usr/bin/env bash
# Installs xsr's build dependencies (Debian packages), builds it in build/,
# and verifies the bundled sample image. Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(meson ninja-build g++ pkg-config liburing-dev libboost-iostreams-dev zstd xz-utils bzip2 gzip
          libboost-program-options-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev python3 time
          clang libclang-rt-14-dev  # the fuzz targets (scripts/fuzz.sh): clang + libFuzzer
          socat  # a baseline of bench/relay-throughput.sh
          clang-format  # scripts/check-tree.py (the test suite)
          gdb)  # tests/core_gdb_test.py: gdb opens extract --elf cores (the test suite)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d build ]; then
  meson setup build --buildtype=release
fi
ninja -C build
if [ "${1:-}" != "--no-sample" ]; then
  echo "== xsr verify fixtures/sample/guest-hvm.xl.bin"
  build/cmd/xsr verify fixtures/sample/guest-hvm.xl.bin
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  echo "== xsr convert --verify fixtures/sample/legacy-hvm.xl.bin (a Xen 4.5 image)"
  build/cmd/xsr convert --verify fixtures/sample/legacy-hvm.xl.bin "$out/guest.v3"
  build/cmd/xsr verify "$out/guest.v3"
  echo "== xsr inspect fixtures/sample/guest-hvm.xl.bin"
  build/cmd/xsr inspect fixtures/sample/guest-hvm.xl.bin
  echo "== xsr extract fixtures/sample/guest-hvm.xl.bin -o guest.raw"
  build/cmd/xsr extract fixtures/sample/guest-hvm.xl.bin -o "$out/guest.raw"
  echo "== xsr relay --convert fixtures/sample/legacy-hvm.xl.bin | xsr verify - (a stream checked in flight)"
  build/cmd/xsr relay --convert fixtures/sample/legacy-hvm.xl.bin | build/cmd/xsr verify -
fi
