#!/bin/sh
# Regenerates the bundled sample images (fixtures/sample) with xsr gen: an
# xl-wrapped libxl HVM image of Xen 4.17, a Xen 4.5 legacy HVM image with
# an xl header, and an xl-wrapped 64-bit PV image. Small, as they are
# committed; each restores with Xen 4.17's restore code (after conversion
# for the legacy one).
# Usage: scripts/make-samples.sh [BUILD]   (default build)
set -eu
cd "$(dirname "$0")/.."
xsr="${1:-build}/cmd/xsr"
out=fixtures/sample
# 256 pfns: the VGA hole and the builder's special pages at 0xf0-0xff.
"$xsr" gen --format xl --size 1026K --seed 2026 -o "$out/guest-hvm.xl.bin"
# 63 pfns, below the VGA hole: the legacy sample has no hole.
"$xsr" gen --legacy --format xl --size 258552 --seed 45 -o "$out/legacy-hvm.xl.bin"
# 64 pfns of a 64-bit PV guest: its pagetables, p2m, start_info and rings.
"$xsr" gen --type pv --format xl --size 256K --seed 64 -o "$out/guest-pv.xl.bin"
