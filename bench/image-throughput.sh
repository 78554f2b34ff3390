#!/usr/bin/env bash
# xsr inspect and xsr extract against their baselines, in the same run:
#   xsr inspect FILE          vs  cat FILE > /dev/null   (target >= 10x)
#   xsr extract FILE -o RAW   vs  cp FILE COPY           (target >= 1.0x)
# on a generated 4 GiB HVM image whose batches hold pfns in Xen's order
# (ascending, as its save walks the dirty bitmap), and extract again on an
# image with each batch shuffled (the worst case: no two pages adjacent).
# Prints median MB/s of the image's bytes, ratios and peak RSS.
#
# Environment: XSR (default build/cmd/xsr), SIZE (4G), RUNS (5), DIR
# (scratch, default a mktemp -d under /var/tmp: the outputs must be on a
# real file system, like the image).
#
# Before each timed write both outputs are deleted and `sync` runs (untimed),
# so neither command pays for the other's writeback; the image is read once
# right before each command (the host evicts idle page cache here).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=image-throughput
. bench/common.sh  # secs, mbps, median, pair, timed, peak_rss

XSR=${XSR:-build/cmd/xsr}
SIZE=${SIZE:-4G}
RUNS=${RUNS:-5}
[[ -x $XSR ]] || bench_die "no xsr binary at '$XSR' (set XSR=...)"
[[ -x /usr/bin/time ]] || bench_die "/usr/bin/time (GNU time) is needed for peak RSS"

made_dir=
if [[ -z ${DIR:-} ]]; then
  DIR=$(mktemp -d /var/tmp/xsr-image-bench.XXXXXX)
  made_dir=1
fi
cleanup() {
  rm -f -- "$DIR"/seq.bin "$DIR"/shuf.bin "$DIR"/out.raw "$DIR"/copy.bin "$DIR"/.out.raw.*
  [[ -n $made_dir ]] && rmdir -- "$DIR" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

IMG=
warm() { cat -- "$IMG" > /dev/null; }
fresh() { rm -f -- "$DIR/out.raw" "$DIR/copy.bin"; sync; warm; }

t_cat() { warm; timed cat -- "$IMG" > /dev/null; }
t_inspect() { warm; timed "$XSR" inspect "$IMG" > /dev/null; }
r_inspect() { warm; peak_rss "$XSR" inspect "$IMG" > /dev/null; }
t_cp() { fresh; timed cp -- "$IMG" "$DIR/copy.bin"; }
t_extract() { fresh; timed "$XSR" extract -q "$IMG" -o "$DIR/out.raw"; }
r_extract() { fresh; peak_rss "$XSR" extract -q "$IMG" -o "$DIR/out.raw"; }

machine_line
echo "xsr: $XSR   size: $SIZE   runs: $RUNS (median)   scratch: $DIR ($(df -T "$DIR" | awk 'NR == 2 { print $2 }'))"
"$XSR" gen -o "$DIR/seq.bin" --size "$SIZE" --order sequential 2>&1 | sed 's/^/  sequential: /'
"$XSR" gen -o "$DIR/shuf.bin" --size "$SIZE" --order shuffled 2>&1 | sed 's/^/  shuffled:   /'
BYTES=$(stat -c %s -- "$DIR/seq.bin")
echo "image bytes: $BYTES"
# The output is right before anything is timed: the raw file holds exactly
# the pages the inspect report counts.
IMG=$DIR/seq.bin
"$XSR" extract -q "$IMG" -o "$DIR/out.raw"
pages=$("$XSR" inspect --json "$IMG" | awk -F': ' '/"pages"/ { sub(/,.*/, "", $3); print $3 }')
data=$(du -B1 --apparent-size "$DIR/out.raw" | cut -f1)
echo "check: inspect counts $pages page bodies; the raw file is $data bytes, $(du -B4096 "$DIR/out.raw" | cut -f1) pages allocated"
echo

pair_header
pair "inspect FILE vs cat FILE > /dev/null" t_cat t_inspect r_inspect
pair "extract (Xen order) vs cp" t_cp t_extract r_extract
IMG=$DIR/shuf.bin
pair "extract (shuffled batches) vs cp" t_cp t_extract r_extract
