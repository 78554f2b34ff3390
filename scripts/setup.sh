#!/usr/bin/env bash
# Installs what xsr needs to build and run (Debian packages), builds the tools
# and their man pages in build/, and verifies, converts, inspects, extracts
# and relays the bundled sample images. Run as root (or with sudo).
#   --dev        also what the test suite, the benchmarks, the fuzzing and the
#                Debian package need (scripts/test.sh passes it), and builds
#                the suite and the benchmarks
#   --no-sample  build only
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0 sample=1
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --no-sample) sample=0 ;;
    *) echo "usage: scripts/setup.sh [--dev] [--no-sample]" >&2; exit 2 ;;
  esac
done
# The tools: compiler, meson, the libraries they link, scdoc for the man pages.
packages=(meson ninja-build g++ pkg-config python3 liburing-dev libboost-iostreams-dev
          libboost-program-options-dev nlohmann-json3-dev scdoc)
if ((dev)); then
  packages+=(libgtest-dev libbenchmark-dev  # the suite and bench/
             time zstd xz-utils bzip2 gzip  # tests and benchmarks: peak RSS, the codecs' own tools
             clang libclang-rt-14-dev       # the fuzz targets (scripts/fuzz.sh): clang + libFuzzer
             socat                          # a baseline of bench/relay-throughput.sh
             clang-format                   # scripts/check-tree.py (the test suite)
             bash-completion                # its completionsdir (tests/completion_test.sh runs without it)
             python3-matplotlib             # scripts/plot-throughput.py
             gdb                            # tests/core_gdb_test.py opens extract --elf cores
             dpkg-dev debhelper lintian man-db)  # scripts/deb.sh
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The tools alone unless --dev; a build/ configured by --dev keeps its suite.
if [ ! -f build/build.ninja ]; then
  if ((dev)); then
    meson setup build --buildtype=release -Dtests=enabled -Dbenchmarks=enabled
  else
    meson setup build --buildtype=release -Dtests=disabled -Dbenchmarks=disabled
  fi
elif ((dev)); then
  # A build/ from before tests and benchmarks were feature options cannot
  # take the new values: set it up again from scratch.
  meson configure build -Dtests=enabled -Dbenchmarks=enabled 2>/dev/null ||
    meson setup --wipe build --buildtype=release -Dtests=enabled -Dbenchmarks=enabled
fi
ninja -C build
if ((sample)); then
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
