#!/usr/bin/env bash
# What --strict (Xen 4.17's restore rules) costs over the plain verifier,
# measured in the same run, on a file in the page cache:
#   cat FILE > /dev/null   vs  xsr verify -q FILE            (the baseline)
#   xsr verify -q FILE     vs  xsr verify -q --strict FILE   (HVM and PV)
# Prints the median MB/s of each, the ratio and xsr's peak RSS. The target:
# --strict on an HVM image at 0.5x of plain verify or better (within 2x of
# its time). A PV image's strict run reads every page body (pagetables and
# start_info are judged by their contents), so it has no such target.
#
# Builds nothing. Environment:
#   XSR   path of the xsr binary         (default build/cmd/xsr)
#   SIZE  size of each generated image   (default 4G)
#   RUNS  timed runs of each command     (default 5)
#   DIR   scratch directory              (default a mktemp -d under /var/tmp)
set -euo pipefail

XSR=${XSR:-build/cmd/xsr}
SIZE=${SIZE:-4G}
RUNS=${RUNS:-5}
BENCH_NAME=strict-overhead
die() { echo "strict-overhead: $*" >&2; exit 1; }

[[ -x $XSR ]] || die "no xsr binary at '$XSR' (set XSR=...)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed for peak RSS"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$RUNS'"

made_dir=
if [[ -z ${DIR:-} ]]; then
  DIR=$(mktemp -d /var/tmp/xsr-strict.XXXXXX)
  made_dir=1
fi
IMG=$DIR/img.bin
TMPF=$(mktemp /tmp/xsr-strict-time.XXXXXX)
cleanup() {
  rm -f -- "$IMG" "$IMG.xsr-tmp" "$TMPF"
  [[ -n $made_dir ]] && rmdir -- "$DIR" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/common.sh"  # secs, mbps, median, pair, check_rc

warm() { cat -- "$IMG" > /dev/null; }

time_cat() {
  warm
  local t0 t1; t0=$EPOCHREALTIME
  cat -- "$IMG" > /dev/null
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
}
time_plain() {
  warm
  local t0 t1 rc=0; t0=$EPOCHREALTIME
  "$XSR" verify -q "$IMG" || rc=$?
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
  check_rc "xsr verify $IMG" "$rc"
}
time_strict() {
  warm
  local t0 t1 rc=0; t0=$EPOCHREALTIME
  "$XSR" verify -q --strict "$IMG" || rc=$?
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
  check_rc "xsr verify --strict $IMG" "$rc"
}
rss() {
  warm
  local rc=0
  /usr/bin/time -o "$TMPF" -f %M "$XSR" verify -q "$@" "$IMG" || rc=$?
  check_rc "xsr verify $* $IMG (under time)" "$rc"
  RSS=$(tail -n 1 "$TMPF")
}
rss_plain() { rss; }
rss_strict() { rss --strict; }

machine_line
echo "xsr: $XSR   size: $SIZE   runs: $RUNS (median)"
for type in hvm pv; do
  echo
  "$XSR" gen -o "$IMG" --size "$SIZE" --format libxc --type "$type" --no-progress ||
    die "xsr gen --type $type failed"
  BYTES=$(stat -c %s -- "$IMG")
  echo "$type image: $BYTES bytes"
  warm
  "$XSR" verify --strict --no-progress "$IMG" | sed 's/^/  /' || die "the $type image does not verify strictly"
  pair_header
  pair "$type: cat > /dev/null | verify FILE" time_cat time_plain rss_plain
  PAIR_NAME=strict pair "$type: verify FILE | verify --strict" time_plain time_strict rss_strict \
    "$([[ $type == hvm ]] && echo '>=0.50x')"
  rm -f -- "$IMG"
done
