#!/usr/bin/env bash
# Compressed input against the plain decompressor, measured in the same run:
#   xsr verify -q IMAGE.<codec>   vs   <codec> -dc IMAGE.<codec> > /dev/null
# for zstd, gzip, xz and bzip2. Prints the median MB/s of each (of the
# decompressed bytes), the ratio xsr/decompressor and xsr's peak RSS.
#
# The image is `xsr gen --mixed-pages` (a third zero pages, two fifths
# text-like, the rest random: ~2.9x with zstd), since the default generated
# pages repeat one random page and compress ~200x, which measures nothing.
# The compressed files are made by the command-line tools.
#
# Builds nothing. Environment:
#   XSR        path of the xsr binary                 (default build/cmd/xsr)
#   SIZE       image size for zstd and gzip           (default 1G)
#   SLOW_SIZE  image size for xz and bzip2            (default 256M: they
#              decompress at 50-100 MB/s here, and compress slower still)
#   CODECS     which codecs                           (default "zstd gzip xz bzip2")
#   RUNS       timed runs of each command             (default 5)
#   DIR        scratch directory                      (default a mktemp -d under /var/tmp)
set -euo pipefail

XSR=${XSR:-build/cmd/xsr}
SIZE=${SIZE:-1G}
SLOW_SIZE=${SLOW_SIZE:-256M}
CODECS=${CODECS:-zstd gzip xz bzip2}
RUNS=${RUNS:-5}

die() { echo "compress-throughput: $*" >&2; exit 1; }

[[ -x $XSR ]] || die "no xsr binary at '$XSR' (set XSR=...)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed for peak RSS"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$RUNS'"
for c in $CODECS; do command -v "$c" > /dev/null || die "no '$c' tool (scripts/setup.sh installs it)"; done

made_dir=
if [[ -z ${DIR:-} ]]; then
  DIR=$(mktemp -d /var/tmp/xsr-compress.XXXXXX)
  made_dir=1
fi
TMPF=$(mktemp /tmp/xsr-compress-time.XXXXXX)
cleanup() {
  rm -f -- "$DIR"/img.* "$TMPF"
  [[ -n $made_dir ]] && rmdir -- "$DIR" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/common.sh"  # secs, mbps, median, pair, timed, peak_rss

# The compressor for each codec: multi-threaded where the tool can, as
# only decompression is timed. xz -T2 cuts blocks, which xz -dc (5.4)
# still decompresses in one thread, as Boost's filter does.
compress() {
  case $1 in
    zstd) zstd -q -T2 -3 -c ;;
    gzip) gzip -6 -c ;;
    xz) xz -T2 -6 -c ;;
    bzip2) bzip2 -9 -c ;;
  esac
}

warm() { cat -- "$Z" > /dev/null; }
time_tool() {
  warm
  local t0 t1; t0=$EPOCHREALTIME
  "$CODEC" -dc -- "$Z" > /dev/null
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
}
time_xsr() {
  warm
  local t0 t1 rc=0; t0=$EPOCHREALTIME
  "$XSR" verify -q "$Z" || rc=$?
  t1=$EPOCHREALTIME
  ((rc == 0)) || die "$XSR verify -q $Z: exit status $rc"
  LAST=$(secs "$t0" "$t1")
}
rss_xsr() {
  warm
  /usr/bin/time -o "$TMPF" -f %M "$XSR" verify -q "$Z" || die "$XSR verify -q $Z (under time) failed"
  RSS=$(tail -n 1 "$TMPF")
}

machine_line
echo "xsr: $XSR   runs: $RUNS (median, alternating)   images: xsr gen --mixed-pages"
printf '%-6s %8s %9s %10s %10s %8s %8s\n' codec "image" "ratio" "tool MB/s" "xsr MB/s" "xsr/tool" "RSS MiB"
last_size=
for CODEC in $CODECS; do
  size=$SIZE
  [[ $CODEC == xz || $CODEC == bzip2 ]] && size=$SLOW_SIZE
  if [[ $size != "$last_size" ]]; then
    "$XSR" gen --mixed-pages --size "$size" -o "$DIR/img.bin" 2> /dev/null || die "xsr gen failed"
    last_size=$size
  fi
  BYTES=$(stat -c %s -- "$DIR/img.bin")
  Z=$DIR/img.$CODEC
  compress "$CODEC" < "$DIR/img.bin" > "$Z" || die "$CODEC compression failed"
  zbytes=$(stat -c %s -- "$Z")
  # Checked once before timing: the same bytes come out of both.
  "$CODEC" -dc -- "$Z" | cmp -s - "$DIR/img.bin" || die "$CODEC -dc does not give the image back"
  "$XSR" verify -q "$Z" || die "xsr verify rejects $Z"
  tt=() tx=() rss=()
  for ((i = 0; i < RUNS; i++)); do
    time_tool; tt+=("$LAST")
    time_xsr; tx+=("$LAST")
    rss_xsr; rss+=("$RSS")
  done
  mt=$(mbps "$(median "${tt[@]}")")
  mx=$(mbps "$(median "${tx[@]}")")
  peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
  printf '%-6s %8s %9s %10s %10s %8s %8s\n' "$CODEC" "$size" \
    "$(awk -v a="$BYTES" -v b="$zbytes" 'BEGIN { printf "%.2fx", a / b }')" "$mt" "$mx" \
    "$(awk -v x="$mx" -v b="$mt" 'BEGIN { printf "%.2fx", x / b }')" \
    "$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')"
  printf '  runs (s): %s -dc %s | xsr %s | peak RSS (KiB) %s\n' "$CODEC" "${tt[*]}" "${tx[*]}" "${rss[*]}"
  rm -f -- "$Z"
done
