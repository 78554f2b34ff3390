#!/usr/bin/env bash
# End-to-end legacy conversion throughput against its baselines, measured in
# the same run (IN is a generated legacy Xen 4.5 HVM image):
#   file -> file:    cp IN OUT                        vs  convert-legacy-stream -i IN -o OUT
#   file -> pipe:    cat IN | cat > /dev/null         vs  convert -i IN -o 1 | cat > /dev/null
#   pipe -> pipe:    cat IN | cat | cat > /dev/null   vs  cat IN | convert -i 0 -o 1 | cat > /dev/null
#   socket -> pipe:  cat < TCP | cat > /dev/null      vs  convert -i 0 -o 1 < TCP | cat > /dev/null
# (convert = convert-legacy-stream ... -w 64 -g hvm -f libxl, as libxl runs it.)
# Prints the median MB/s of each (MB of the legacy input, 10^6 bytes), the
# ratio converter/baseline and the converter's peak RSS.
#
# Builds nothing. Environment:
#   XSR      path of the xsr binary                     (default build/cmd/xsr)
#   CONVERT  path of convert-legacy-stream              (default build/cmd/convert-legacy-stream)
#   SIZE     size of the generated legacy image         (default 4G)
#   RUNS     timed runs of each command                 (default 5)
#   DIR      scratch directory, needs ~3x SIZE free     (default a mktemp -d under /var/tmp)
#   SOCKET   1: also the loopback TCP case (python3 sends the image), 0: skip it
#            (default 1 when python3 is there)
#
# The page cache of a file left idle for about a minute is evicted here (the
# host reclaims guest memory), so the image is read once right before every
# timed command, and each command alternates with its baseline. Neither cp
# nor the converter syncs: both leave their output dirty in the page cache,
# which slows to disk speed after a few GiB (MEASUREMENTS.md), so outputs
# are removed and the file system synced, untimed, after every file run: no
# run pays for the writeback or discards of the one before. The file pair
# stays the noisiest: this VM reports freed memory to the host at once
# (virtio-balloon free page reporting), so each fresh page-cache page of an
# output may cost a host fault or not; the same 4 GiB cp has taken 0.8 s to
# 3.4 s of CPU. Read its medians with the per-run times, or raise RUNS.
set -euo pipefail

XSR=${XSR:-build/cmd/xsr}
CONVERT=${CONVERT:-build/cmd/convert-legacy-stream}
SIZE=${SIZE:-4G}
RUNS=${RUNS:-5}

BENCH_NAME=convert-throughput
die() { echo "convert-throughput: $*" >&2; exit 1; }

[[ -x $XSR ]] || die "no xsr binary at '$XSR' (set XSR=...)"
[[ -x $CONVERT ]] || die "no convert-legacy-stream binary at '$CONVERT' (set CONVERT=...)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed for peak RSS"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$RUNS'"

PY=$(command -v python3 || true)
SOCKET=${SOCKET:-$([[ -n $PY ]] && echo 1 || echo 0)}
[[ $SOCKET == 0 || -n $PY ]] || die "SOCKET=1 needs python3"

CONV_ARGS=(-w 64 -g hvm -f libxl)
CONVM="$CONVERT ${CONV_ARGS[*]}"  # for messages

made_dir=
if [[ -z ${DIR:-} ]]; then
  DIR=$(mktemp -d /var/tmp/xsr-convert.XXXXXX)
  made_dir=1
fi
IMG=$DIR/legacy.bin
REF=$DIR/ref.bin     # xsr convert's output, for the untimed checks
CPOUT=$DIR/cp.out
CONVOUT=$DIR/conv.out
TMPF=$(mktemp /tmp/xsr-convert-time.XXXXXX)
SPID=  # the running python3 sender, if any
cleanup() {
  [[ -n $SPID ]] && kill "$SPID" 2>/dev/null
  rm -f -- "$IMG" "$IMG".xsr-tmp* "$REF" "$REF".xsr-tmp.* "$CPOUT" "$CONVOUT" "$CONVOUT".xsr-tmp.* "$TMPF"
  [[ -n $made_dir ]] && rmdir -- "$DIR" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/common.sh"  # secs, mbps, median, pair, timed, peak_rss

warm() { cat -- "$IMG" > /dev/null; }


# Untimed, after each file run: the output goes, and the file system is
# synced so the next run starts with no writeback (or discard) pending.
settle() {
  rm -f -- "$CPOUT" "$CONVOUT"
  sync -f "$DIR"
}

# The socket case: a python3 sender listens on an ephemeral loopback port,
# says which, and sendfile()s the image to the one client it accepts. It is
# started and listening before the clock starts; its exit status (a client
# that stopped reading makes it fail) is checked after the clock stops.
SENDER_SRC='
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
with open(sys.argv[1], "rb") as f:
    c.sendfile(f)
c.close()
'
start_sender() {
  coproc SENDER { exec "$PY" -c "$SENDER_SRC" "$IMG"; }
  SPID=$!  # not SENDER_PID: bash unsets that once it reaps the coproc
  read -r -u "${SENDER[0]}" PORT || die "the python3 sender did not start"
}
end_sender() {
  local rc=0
  wait "$SPID" || rc=$?
  SPID=
  ((rc == 0)) || die "$1: the python3 sender exited $rc"
  return 0
}

# Each timer warms the page cache, runs the bare command (no wrapper in the
# timed path) and sets LAST in seconds.
time_cp_file() {
  warm
  local t0 t1 rc=0; t0=$EPOCHREALTIME
  cp -- "$IMG" "$CPOUT" || rc=$?
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
  check_rc "cp $IMG $CPOUT" "$rc"
  settle
}
time_conv_file() {
  warm
  local t0 t1 rc=0; t0=$EPOCHREALTIME
  "$CONVERT" -i "$IMG" -o "$CONVOUT" "${CONV_ARGS[@]}" || rc=$?
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
  check_rc "$CONVM -i $IMG -o $CONVOUT" "$rc"
  [[ -s $CONVOUT ]] || die "$CONVOUT was not written"
  settle
}
time_cat_pipe() {
  warm
  local t0 t1 st; t0=$EPOCHREALTIME
  set +e
  cat -- "$IMG" | cat > /dev/null
  st=("${PIPESTATUS[@]}")
  t1=$EPOCHREALTIME
  set -e
  LAST=$(secs "$t0" "$t1")
  check_rc "cat $IMG | cat" "${st[@]}"
}
time_conv_file_pipe() {
  warm
  local t0 t1 st; t0=$EPOCHREALTIME
  set +e
  "$CONVERT" -i "$IMG" -o 1 "${CONV_ARGS[@]}" | cat > /dev/null
  st=("${PIPESTATUS[@]}")
  t1=$EPOCHREALTIME
  set -e
  LAST=$(secs "$t0" "$t1")
  check_rc "$CONVM -i $IMG -o 1 | cat" "${st[@]}"
}
time_relay_pipe() {
  warm
  local t0 t1 st; t0=$EPOCHREALTIME
  set +e
  cat -- "$IMG" | cat | cat > /dev/null
  st=("${PIPESTATUS[@]}")
  t1=$EPOCHREALTIME
  set -e
  LAST=$(secs "$t0" "$t1")
  check_rc "cat $IMG | cat | cat" "${st[@]}"
}
time_conv_pipe_pipe() {
  warm
  local t0 t1 st; t0=$EPOCHREALTIME
  set +e
  cat -- "$IMG" | "$CONVERT" -i 0 -o 1 "${CONV_ARGS[@]}" | cat > /dev/null
  st=("${PIPESTATUS[@]}")
  t1=$EPOCHREALTIME
  set -e
  LAST=$(secs "$t0" "$t1")
  check_rc "cat $IMG | $CONVM -i 0 -o 1 | cat" "${st[@]}"
}
time_relay_socket() {
  warm
  start_sender
  local t0 t1 st; t0=$EPOCHREALTIME
  set +e
  cat < "/dev/tcp/127.0.0.1/$PORT" | cat > /dev/null
  st=("${PIPESTATUS[@]}")
  t1=$EPOCHREALTIME
  set -e
  LAST=$(secs "$t0" "$t1")
  end_sender "cat < tcp | cat"
  check_rc "cat < tcp | cat" "${st[@]}"
}
time_conv_socket_pipe() {
  warm
  start_sender
  local t0 t1 st; t0=$EPOCHREALTIME
  set +e
  "$CONVERT" -i 0 -o 1 "${CONV_ARGS[@]}" < "/dev/tcp/127.0.0.1/$PORT" | cat > /dev/null
  st=("${PIPESTATUS[@]}")
  t1=$EPOCHREALTIME
  set -e
  LAST=$(secs "$t0" "$t1")
  end_sender "$CONVM -i 0 -o 1 < tcp | cat"
  check_rc "$CONVM -i 0 -o 1 < tcp | cat" "${st[@]}"
}

# Peak RSS (KiB) of the converter, in a separate untimed run under GNU time:
# the wrapper's own fork and exec (~7 ms) would otherwise be charged to it.
rss_conv_file() {
  warm
  local rc=0
  /usr/bin/time -o "$TMPF" -f %M "$CONVERT" -i "$IMG" -o "$CONVOUT" "${CONV_ARGS[@]}" || rc=$?
  check_rc "$CONVM -i $IMG -o $CONVOUT (under time)" "$rc"
  RSS=$(tail -n 1 "$TMPF")
  settle
}
rss_conv_file_pipe() {
  warm
  local st
  set +e
  /usr/bin/time -o "$TMPF" -f %M "$CONVERT" -i "$IMG" -o 1 "${CONV_ARGS[@]}" | cat > /dev/null
  st=("${PIPESTATUS[@]}")
  set -e
  check_rc "$CONVM -i $IMG -o 1 | cat (under time)" "${st[@]}"
  RSS=$(tail -n 1 "$TMPF")
}
rss_conv_pipe_pipe() {
  warm
  local st
  set +e
  cat -- "$IMG" | /usr/bin/time -o "$TMPF" -f %M "$CONVERT" -i 0 -o 1 "${CONV_ARGS[@]}" | cat > /dev/null
  st=("${PIPESTATUS[@]}")
  set -e
  check_rc "cat $IMG | $CONVM -i 0 -o 1 | cat (under time)" "${st[@]}"
  RSS=$(tail -n 1 "$TMPF")
}
rss_conv_socket_pipe() {
  warm
  start_sender
  local st
  set +e
  /usr/bin/time -o "$TMPF" -f %M "$CONVERT" -i 0 -o 1 "${CONV_ARGS[@]}" < "/dev/tcp/127.0.0.1/$PORT" |
    cat > /dev/null
  st=("${PIPESTATUS[@]}")
  set -e
  end_sender "$CONVM -i 0 -o 1 < tcp | cat (under time)"
  check_rc "$CONVM -i 0 -o 1 < tcp | cat (under time)" "${st[@]}"
  RSS=$(tail -n 1 "$TMPF")
}

# The shared pair() (common.sh), with a target column.
PAIR_WIDTH=26
PAIR_NAME=convert

echo "machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "file system: $(findmnt -n -o FSTYPE,SOURCE -T "$DIR" | tr -s ' '), dirty_background_ratio $(cat /proc/sys/vm/dirty_background_ratio) dirty_ratio $(cat /proc/sys/vm/dirty_ratio); $(cp --version | head -n 1)"
if [[ -r /sys/module/page_reporting/parameters/page_reporting_order ]]; then
  echo "free page reporting: on (order $(cat /sys/module/page_reporting/parameters/page_reporting_order), reported so far $(awk '{ printf "%.0f GiB", $1 / 1048576 }' /sys/module/page_reporting/parameters/reported_kib 2>/dev/null || echo '?'))"
fi
echo "convert: $CONVM   xsr: $XSR"
echo "image: $IMG   size: $SIZE   runs: $RUNS (median)   socket case: $([[ $SOCKET == 1 ]] && echo "yes ($PY)" || echo skipped)"

"$XSR" gen --legacy --type hvm --size "$SIZE" -o "$IMG" 2>&1 | sed 's/^/  /' ||
  die "xsr gen failed"
BYTES=$(stat -c %s -- "$IMG")
echo "image bytes: $BYTES"

# Checked once before anything is timed: the converter's output, to a file
# and into each kind of pipe, is byte for byte xsr convert's and verifies
# under --strict; xsr convert -v says which kernel path moved the page data
# on each transport (stderr, shown indented).
echo "checks (untimed):"
warm
"$XSR" convert -v -f libxl "$IMG" "$REF" 2>&1 >/dev/null | sed 's/^/  file->file:   /' ||
  die "xsr convert $IMG failed"
"$XSR" verify --strict --no-progress "$REF" | sed 's/^/  /' ||
  die "xsr convert's output does not verify --strict"
"$CONVERT" -i "$IMG" -o "$CONVOUT" "${CONV_ARGS[@]}" || die "$CONVM -i $IMG -o $CONVOUT failed"
cmp -- "$CONVOUT" "$REF" || die "$CONVM to a file differs from xsr convert -f libxl"
cmp_pipe() {  # what: label; the producer's status, then cmp's
  local what=$1; shift
  check_rc "$what" "$@"
}
set +e
"$CONVERT" -i "$IMG" -o 1 "${CONV_ARGS[@]}" | cmp -- - "$REF"
cmp_pipe "$CONVM -i IMG -o 1 | cmp" "${PIPESTATUS[@]}"
cat -- "$IMG" | "$CONVERT" -i 0 -o 1 "${CONV_ARGS[@]}" | cmp -- - "$REF"
cmp_pipe "cat IMG | $CONVM -i 0 -o 1 | cmp" "${PIPESTATUS[@]}"
"$XSR" convert -v -f libxl "$IMG" 3 3>&1 >/dev/null 2> "$TMPF" | cmp -- - "$REF"
cmp_pipe "xsr convert -v IMG 3 | cmp" "${PIPESTATUS[@]}"
sed 's/^/  file->pipe:   /' "$TMPF"
cat -- "$IMG" | "$XSR" convert -v -f libxl - 3 3>&1 >/dev/null 2> "$TMPF" | cmp -- - "$REF"
cmp_pipe "cat IMG | xsr convert -v - 3 | cmp" "${PIPESTATUS[@]}"
sed 's/^/  pipe->pipe:   /' "$TMPF"
set -e
if [[ $SOCKET == 1 ]]; then
  start_sender
  set +e
  "$CONVERT" -i 0 -o 1 "${CONV_ARGS[@]}" < "/dev/tcp/127.0.0.1/$PORT" | cmp -- - "$REF"
  st=("${PIPESTATUS[@]}")
  set -e
  end_sender "$CONVM < tcp | cmp"
  cmp_pipe "$CONVM -i 0 -o 1 < tcp | cmp" "${st[@]}"
  start_sender
  set +e
  "$XSR" convert -v -f libxl - 3 < "/dev/tcp/127.0.0.1/$PORT" 3>&1 >/dev/null 2> "$TMPF" |
    cmp -- - "$REF"
  st=("${PIPESTATUS[@]}")
  set -e
  end_sender "xsr convert -v < tcp | cmp"
  cmp_pipe "xsr convert -v - 3 < tcp | cmp" "${st[@]}"
  sed 's/^/  socket->pipe: /' "$TMPF"
fi
echo "  outputs identical to xsr convert -f libxl ($(stat -c %s -- "$REF") bytes) on every transport"
# The reference would hold 4 GiB of page cache through the timed runs.
rm -f -- "$REF"
settle
# What the harness itself costs: a timed no-op, and fork + exec of a
# trivial program.
t0=$EPOCHREALTIME; :; t1=$EPOCHREALTIME; floor=$(secs "$t0" "$t1")
t0=$EPOCHREALTIME; /bin/true; t1=$EPOCHREALTIME; exec_floor=$(secs "$t0" "$t1")
echo "harness: timed no-op $(awk -v s="$floor" 'BEGIN { printf "%.2f", s * 1000 }') ms, /bin/true $(awk -v s="$exec_floor" 'BEGIN { printf "%.2f", s * 1000 }') ms"
echo

printf '%-26s %10s %10s %8s %8s %10s\n' "pair: baseline" "base MB/s" "conv MB/s" "ratio" "target" "RSS MiB"
pair "file->file:   cp" time_cp_file time_conv_file rss_conv_file ">=1.0x"
pair "file->pipe:   cat|cat" time_cat_pipe time_conv_file_pipe rss_conv_file_pipe ">=1.0x"
pair "pipe->pipe:   cat|cat|cat" time_relay_pipe time_conv_pipe_pipe rss_conv_pipe_pipe ">=0.9x"
if [[ $SOCKET == 1 ]]; then
  pair "socket->pipe: tcp>cat|cat" time_relay_socket time_conv_socket_pipe rss_conv_socket_pipe "-"
fi
echo "(RSS target: < 64 MiB)"
