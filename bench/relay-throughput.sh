#!/usr/bin/env bash
# A whole migration path, measured with nothing but its middle hop changed:
#
#   xsr gen --connect  ->  MIDDLE  ->  xsr verify --listen     (loopback TCP)
#   xsr gen            |   MIDDLE  |   xsr verify -            (pipes)
#
# MIDDLE is, in turn and alternating run by run:
#   relay   xsr relay: verifies, holds each record until it has passed
#   splice  xsr-forward --mode splice: a plain splice forwarder (no checks)
#   rw      xsr-forward --mode rw: a socat-style read/write copy (128 KiB)
#   socat   socat itself, when installed (its default 8 KiB buffer)
# The same bytes every time (gen is deterministic, and the verifier at the
# end checks them). Prints per path and middle: the median throughput of
# the whole path, the middle's CPU time per GiB and peak RSS, and the
# figures the relay is held to:
#   relay / splice throughput over TCP   (target >= 0.9)
#   relay / rw CPU time per GiB          (target <= 0.3)
#   relay peak RSS                       (target < 64 MiB)
# and draws the receiver's throughput over time (its --stats-json samples,
# last run of each middle) as one SVG and PNG per path (matplotlib).
#
# Builds nothing. Environment:
#   XSR      xsr binary                        (default build/cmd/xsr)
#   FORWARD  xsr-forward binary (-Dbenchmarks) (default next to XSR: ../bench/xsr-forward)
#   SIZE     stream size                       (default 4G)
#   RUNS     runs of each middle per path      (default 3)
#   PATHS    which paths                       (default "tcp pipe")
#   OUT      where the SVGs and PNGs go        (default /tmp/xsr-relay-bench)
#   PORT     first of two loopback ports       (default 21001; below the
#            ephemeral range, so a retried connect cannot meet itself)
set -euo pipefail

XSR=${XSR:-build/cmd/xsr}
FORWARD=${FORWARD:-$(dirname "$XSR")/../bench/xsr-forward}
SIZE=${SIZE:-4G}
RUNS=${RUNS:-3}
PATHS=${PATHS:-tcp pipe}
OUT=${OUT:-/tmp/xsr-relay-bench}
PORT=${PORT:-21001}
BENCH_NAME=relay-throughput
. "$(dirname "$0")/common.sh"  # secs, median, bench_die, machine_line

[[ -x $XSR ]] || bench_die "no xsr binary at '$XSR' (set XSR=...)"
[[ -x $FORWARD ]] || bench_die "no xsr-forward at '$FORWARD' (meson setup -Dbenchmarks=true; or set FORWARD=...)"
[[ -x /usr/bin/time ]] || bench_die "/usr/bin/time (GNU time) is needed for CPU time and peak RSS"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "RUNS must be a positive number, not '$RUNS'"
PLOT=$(dirname "$0")/../scripts/plot-throughput.py

MIDDLES=(relay splice rw)
command -v socat >/dev/null && MIDDLES+=(socat)
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/xsr-relay-bench.XXXXXX)
trap 'rm -rf -- "$TMP"' EXIT
trap 'exit 130' INT TERM
P1=$PORT P2=$((PORT + 1))

# The stream's exact size, from a dry run into /dev/null.
BYTES=$("$XSR" gen --size "$SIZE" -f xl 2>&1 >/dev/null | sed -n 's/^xsr gen: \([0-9]*\) bytes.*/\1/p')
[[ -n $BYTES ]] || bench_die "xsr gen --size $SIZE failed"
GEN=("$XSR" gen --size "$SIZE" -f xl --order sequential)

# middle_cmd KIND PATH: the middle's command line.
middle_cmd() {
  local tcp=$([[ $2 == tcp ]] && echo 1 || true)
  case $1 in
    relay) echo "$XSR relay -q ${tcp:+--listen 127.0.0.1:$P1 --connect 127.0.0.1:$P2}" ;;
    splice) echo "$FORWARD --mode splice ${tcp:+--listen 127.0.0.1:$P1 --connect 127.0.0.1:$P2}" ;;
    rw) echo "$FORWARD --mode rw ${tcp:+--listen 127.0.0.1:$P1 --connect 127.0.0.1:$P2}" ;;
    socat) if [[ -n $tcp ]]; then echo "socat -u TCP-LISTEN:$P1,reuseaddr TCP:127.0.0.1:$P2,retry=500,interval=0.02"
           else echo "socat -u STDIN STDOUT"; fi ;;
  esac
}

# one KIND PATH: one run; sets WALL (s), CPU (s), RSS (KiB); the receiver's
# samples land in $TMP/KIND-PATH.json.
one() {
  local kind=$1 path=$2 t0 t1 s_gen s_mid s_ver
  local -a mid
  read -r -a mid <<<"$(middle_cmd "$kind" "$path")"
  local stats=(--stats-json "$TMP/$kind-$path.json" --stats-interval 0.1)
  if [[ $path == tcp ]]; then
    "$XSR" verify -q --listen "127.0.0.1:$P2" --timeout 30 "${stats[@]}" &
    local v=$!
    /usr/bin/time -o "$TMP/time" -f '%U %S %M' "${mid[@]}" &
    local m=$!
    t0=$EPOCHREALTIME
    s_gen=0
    "${GEN[@]}" --connect "127.0.0.1:$P1" 2>/dev/null || s_gen=$?
    s_mid=0; wait $m || s_mid=$?
    s_ver=0; wait $v || s_ver=$?
    t1=$EPOCHREALTIME
  else
    t0=$EPOCHREALTIME
    "${GEN[@]}" 2>/dev/null | /usr/bin/time -o "$TMP/time" -f '%U %S %M' "${mid[@]}" |
      "$XSR" verify -q - "${stats[@]}"
    local st=("${PIPESTATUS[@]}")
    t1=$EPOCHREALTIME
    s_gen=${st[0]} s_mid=${st[1]} s_ver=${st[2]}
  fi
  check_rc "$kind over $path (gen, middle, verify)" "$s_gen" "$s_mid" "$s_ver"
  WALL=$(secs "$t0" "$t1")
  read -r u s RSS <"$TMP/time"
  CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')
}

gib=$(awk -v b="$BYTES" 'BEGIN { printf "%.3f", b / 1073741824 }')
machine_line
echo "stream: $BYTES bytes ($gib GiB; ${GEN[*]}), $RUNS runs per middle, alternating"
for path in $PATHS; do
  declare -A walls=() cpus=() rsss=()
  for ((i = 0; i < RUNS; i++)); do
    for kind in "${MIDDLES[@]}"; do
      one "$kind" "$path"
      walls[$kind]+="$WALL " cpus[$kind]+="$CPU " rsss[$kind]+="$RSS "
    done
  done
  echo
  echo "path: $path"
  printf '  %-8s %10s %14s %10s   %s\n' middle "MB/s" "CPU s/GiB" "RSS MiB" "runs: wall s | middle CPU s"
  declare -A mbs=() cpg=()
  for kind in "${MIDDLES[@]}"; do
    # shellcheck disable=SC2086
    w=$(median ${walls[$kind]})
    # shellcheck disable=SC2086
    c=$(median ${cpus[$kind]})
    r=$(printf '%s\n' ${rsss[$kind]} | sort -n | tail -n 1)
    mbs[$kind]=$(mbps "$w")
    cpg[$kind]=$(awk -v c="$c" -v g="$gib" 'BEGIN { printf "%.3f", c / g }')
    printf '  %-8s %10s %14s %10s   %s| %s\n' "$kind" "${mbs[$kind]}" "${cpg[$kind]}" \
      "$(awk -v k="$r" 'BEGIN { printf "%.1f", k / 1024 }')" "${walls[$kind]}" "${cpus[$kind]}"
  done
  thr=$(awk -v a="${mbs[relay]}" -v b="${mbs[splice]}" 'BEGIN { printf "%.2f", a / b }')
  cpu=$(awk -v a="${cpg[relay]}" -v b="${cpg[rw]}" 'BEGIN { printf "%.2f", a / b }')
  rss=$(printf '%s\n' ${rsss[relay]} | sort -n | tail -n 1)
  echo "  relay/splice throughput: ${thr}x (target >= 0.9 over tcp)"
  echo "  relay/rw CPU per GiB:    ${cpu}x (target <= 0.3)"
  echo "  relay peak RSS:          $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') MiB (target < 64)"
  series=()
  for kind in "${MIDDLES[@]}"; do series+=("$kind=$TMP/$kind-$path.json"); done
  "$PLOT" -o "$OUT/relay-$path.svg" -o "$OUT/relay-$path.png" \
    --title "gen -> MIDDLE -> verify over $path, $gib GiB: throughput at the receiver" "${series[@]}"
  echo "  plot: $OUT/relay-$path.svg, $OUT/relay-$path.png"
  unset walls cpus rsss mbs cpg
done
