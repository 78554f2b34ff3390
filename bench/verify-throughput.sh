#!/usr/bin/env bash
# End-to-end verify throughput against its baselines, measured in the same run:
#   xsr verify -q FILE          vs  cat FILE > /dev/null
#   cat FILE | xsr verify -q -  vs  cat FILE | cat > /dev/null
# Prints the median MB/s of each, the ratio xsr/baseline and xsr's peak RSS.
#
# Builds nothing. Environment:
#   XSR   path of the xsr binary         (default build/cmd/xsr)
#   SIZE  size of the generated image    (default 4G)
#   RUNS  timed runs of each command     (default 5)
#   DIR   scratch directory              (default a mktemp -d under /var/tmp)
#   IO    an --io mode for xsr verify, e.g. mmap (default: xsr's own choice)
#
# The page cache of a file left idle for about a minute is evicted here (the
# host reclaims guest memory), so the image is read once right before every
# timed command, and each command alternates with its baseline.
set -euo pipefail

XSR=${XSR:-build/cmd/xsr}
SIZE=${SIZE:-4G}
RUNS=${RUNS:-5}
IO=${IO:-}

BENCH_NAME=verify-throughput
die() { echo "verify-throughput: $*" >&2; exit 1; }

[[ -x $XSR ]] || die "no xsr binary at '$XSR' (set XSR=...)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed for peak RSS"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$RUNS'"

io_args=()
[[ -n $IO ]] && io_args=(--io "$IO")
XSRV="$XSR verify -q${IO:+ --io $IO}"  # for messages

made_dir=
if [[ -z ${DIR:-} ]]; then
  DIR=$(mktemp -d /var/tmp/xsr-throughput.XXXXXX)
  made_dir=1
fi
IMG=$DIR/img.bin
TMPF=$(mktemp /tmp/xsr-throughput-time.XXXXXX)
cleanup() {
  rm -f -- "$IMG" "$IMG.xsr-tmp" "$TMPF"
  [[ -n $made_dir ]] && rmdir -- "$DIR" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/common.sh"  # secs, mbps, median, pair, timed, peak_rss

warm() { cat -- "$IMG" > /dev/null; }


# Each timer warms the page cache, runs the bare command (no wrapper in the
# timed path) and sets LAST in seconds.
time_cat_file() {
  warm
  local t0 t1; t0=$EPOCHREALTIME
  cat -- "$IMG" > /dev/null
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
}
time_cat_pipe() {
  warm
  local t0 t1; t0=$EPOCHREALTIME
  cat -- "$IMG" | cat > /dev/null
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
}
time_xsr_file() {
  warm
  local t0 t1 rc=0; t0=$EPOCHREALTIME
  "$XSR" verify -q "${io_args[@]}" "$IMG" || rc=$?
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
  check_rc "$XSRV $IMG" "$rc"
}
time_xsr_pipe() {
  warm
  local t0 t1 st; t0=$EPOCHREALTIME
  set +e
  cat -- "$IMG" | "$XSR" verify -q "${io_args[@]}" -
  st=("${PIPESTATUS[@]}")
  t1=$EPOCHREALTIME
  set -e
  LAST=$(secs "$t0" "$t1")
  check_rc "cat $IMG | $XSRV -" "${st[@]}"
}
# Peak RSS (KiB) of xsr, in a separate untimed run under GNU time: the
# wrapper's own fork and exec (~7 ms) would otherwise be charged to xsr.
rss_xsr_file() {
  warm
  local rc=0
  /usr/bin/time -o "$TMPF" -f %M "$XSR" verify -q "${io_args[@]}" "$IMG" || rc=$?
  check_rc "$XSRV $IMG (under time)" "$rc"
  RSS=$(tail -n 1 "$TMPF")
}
rss_xsr_pipe() {
  warm
  local st
  set +e
  cat -- "$IMG" | /usr/bin/time -o "$TMPF" -f %M "$XSR" verify -q "${io_args[@]}" -
  st=("${PIPESTATUS[@]}")
  set -e
  check_rc "cat $IMG | $XSRV - (under time)" "${st[@]}"
  RSS=$(tail -n 1 "$TMPF")
}

machine_line
echo "xsr: $XSR ${IO:+(--io $IO)}   image: $IMG   size: $SIZE   runs: $RUNS (median)"

"$XSR" gen -o "$IMG" --size "$SIZE" --format libxc --type hvm 2>&1 | sed 's/^/  /' ||
  die "xsr gen failed"
BYTES=$(stat -c %s -- "$IMG")
echo "image bytes: $BYTES"
warm
"$XSR" verify "${io_args[@]}" --no-progress "$IMG" | sed 's/^/  /' ||
  die "the generated image does not verify"
# What the harness itself costs, for reading the file figures: a timed
# no-op, and fork + exec of a trivial program.
t0=$EPOCHREALTIME; :; t1=$EPOCHREALTIME; floor=$(secs "$t0" "$t1")
t0=$EPOCHREALTIME; /bin/true; t1=$EPOCHREALTIME; exec_floor=$(secs "$t0" "$t1")
echo "harness: timed no-op $(awk -v s="$floor" 'BEGIN { printf "%.2f", s * 1000 }') ms, /bin/true $(awk -v s="$exec_floor" 'BEGIN { printf "%.2f", s * 1000 }') ms"
echo

pair_header
pair "file: cat > /dev/null | verify FILE" time_cat_file time_xsr_file rss_xsr_file
pair "pipe: cat | cat       | cat | verify -" time_cat_pipe time_xsr_pipe rss_xsr_pipe
