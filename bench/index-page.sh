#!/usr/bin/env bash
# One page out of a large image, through the page index against the scan,
# measured in the same run:
#   xsr index IMAGE                       (built once, timed)
#   xsr extract IMAGE --page PFN          (reads IMAGE.xsrindex)
#   xsr extract --no-index IMAGE --page PFN  (the scan: the baseline)
# for a few random pfns, RUNS alternating runs each; prints the medians in
# ms, the ratio scan/index and the target (under 50 ms with the index).
#
# Builds nothing. Environment:
#   XSR   path of the xsr binary       (default build/cmd/xsr)
#   SIZE  size of the generated image  (default 16G)
#   RUNS  timed runs of each command   (default 5)
#   PFNS  how many random pfns         (default 3)
#   ORDER pfn order within a batch     (default sequential, as Xen's save
#         sends them: one index entry per batch; shuffled makes one per page)
#   DIR   scratch directory            (default a mktemp -d under /var/tmp)
# The image and its index are deleted at the end, also on failure.
set -euo pipefail

XSR=${XSR:-build/cmd/xsr}
SIZE=${SIZE:-16G}
RUNS=${RUNS:-5}
PFNS=${PFNS:-3}
ORDER=${ORDER:-sequential}

BENCH_NAME=index-page
. "$(dirname "$0")/common.sh"  # secs, median, check_rc, machine_line, bench_die

[[ -x $XSR ]] || bench_die "no xsr binary at '$XSR' (set XSR=...)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "RUNS must be a positive number, not '$RUNS'"

made_dir=
if [[ -z ${DIR:-} ]]; then
  DIR=$(mktemp -d /var/tmp/xsr-index.XXXXXX)
  made_dir=1
fi
IMG=$DIR/img.bin
cleanup() {
  rm -f -- "$IMG" "$IMG.xsrindex"
  [[ -n $made_dir ]] && rmdir -- "$DIR" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }

# time_page INDEXARG PFN: one --page run, output discarded, sets LAST.
time_page() {
  local t0 t1 rc=0
  t0=$EPOCHREALTIME
  "$XSR" extract $1 "$IMG" --page "$2" > /dev/null || rc=$?
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
  check_rc "xsr extract $1 --page $2" "$rc"
}

machine_line
echo "xsr: $XSR   image: $IMG   size: $SIZE ($ORDER)   runs: $RUNS (median)   pfns: $PFNS"
genout=$("$XSR" gen -o "$IMG" --size "$SIZE" --order "$ORDER" --no-progress 2>&1) || bench_die "xsr gen failed: $genout"
echo "  $genout"
echo "image bytes: $(stat -c %s -- "$IMG")"
cat -- "$IMG" > /dev/null  # the scan reads headers only; warm what it may touch
timed "$XSR" index -q --no-progress "$IMG"
echo "xsr index: $(ms "$LAST") ms, index $(stat -c %s -- "$IMG.xsrindex") bytes"

maxpfn=$(sed -n 's/.*(pfns 0-\([0-9]*\)).*/\1/p' <<< "$genout")
[[ -n $maxpfn ]] || bench_die "could not read the pfn range from xsr gen's line"
printf '%-12s %12s %12s %8s %10s\n' "pfn" "scan ms" "index ms" "ratio" "target"
for ((p = 0; p < PFNS; p++)); do
  pfn=$(printf '0x%x' $(((RANDOM * 32768 + RANDOM) % (maxpfn + 1))))
  # Same bytes both ways, checked once before timing (a hole: both exit 1).
  a=$("$XSR" extract "$IMG" --page "$pfn" 2>&1 | md5sum) || true
  b=$("$XSR" extract --no-index "$IMG" --page "$pfn" 2>&1 | md5sum) || true
  [[ $a == "$b" ]] || bench_die "pfn $pfn: the index and the scan disagree"
  "$XSR" extract "$IMG" --page "$pfn" > /dev/null 2>&1 || { ((p--)); continue; }  # a hole: pick another
  ts=() ti=()
  for ((i = 0; i < RUNS; i++)); do
    time_page --no-index "$pfn"; ts+=("$LAST")
    time_page "" "$pfn"; ti+=("$LAST")
  done
  s=$(median "${ts[@]}") x=$(median "${ti[@]}")
  printf '%-12s %12s %12s %7sx %10s\n' "$pfn" "$(ms "$s")" "$(ms "$x")" \
    "$(awk -v a="$s" -v b="$x" 'BEGIN { printf "%.1f", a / b }')" "< 50 ms"
  printf '  runs (ms): scan %s | index %s\n' "$(for v in "${ts[@]}"; do ms "$v"; printf ' '; done)" \
    "$(for v in "${ti[@]}"; do ms "$v"; printf ' '; done)"
done
