# Shared harness of the bench/*.sh scripts (sourced, not run): timing of a
# bare command without forks, medians, MB/s, ratios and result lines.
#
# Wall clock without a fork: $(date +%s.%N) costs ~12 ms a call here (fork
# and exec are slow in this VM), as much as a whole 4 GiB file verify, and
# even a $(...) subshell forks. So timers take plain expansions of
# $EPOCHREALTIME (bash 5) around the bare command.
export LC_ALL=C  # EPOCHREALTIME's decimal point follows the locale

bench_die() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 1; }

# secs T0 T1: the difference in seconds.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", b - a }'; }

# mbps SECONDS: MB/s (10^6 bytes) of $BYTES.
mbps() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
  if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# timed CMD...: runs CMD bare, sets LAST (seconds); dies unless it exits 0.
timed() {
  local t0 t1 rc=0
  t0=$EPOCHREALTIME
  "$@" || rc=$?
  t1=$EPOCHREALTIME
  LAST=$(secs "$t0" "$t1")
  ((rc == 0)) || bench_die "$* exited $rc"
}

# check_rc WHAT STATUS...: dies unless every status is 0. Every member of a
# timed pipeline must succeed: a failing cat upstream would mean xsr
# stopped reading early, one downstream that it wrote nothing sensible.
check_rc() {
  local what=$1 s
  shift
  for s in "$@"; do ((s == 0)) || bench_die "$what: exit status $*"; done
  return 0
}

# peak_rss CMD...: runs CMD under GNU time (untimed), sets RSS (KiB).
peak_rss() {
  local f rc=0
  f=$(mktemp /tmp/xsr-bench-rss.XXXXXX)
  /usr/bin/time -o "$f" -f %M "$@" || rc=$?
  RSS=$(tail -n 1 "$f")
  rm -f -- "$f"
  ((rc == 0)) || bench_die "$* exited $rc (under time)"
}

# pair LABEL BASE XSR RSSF [TARGET]: runs the functions BASE and XSR
# alternately $RUNS times (each sets LAST), RSSF once per run (sets RSS);
# prints the median MB/s of each, the ratio xsr/baseline, the TARGET if
# given, and xsr's peak RSS. PAIR_WIDTH (label column, default 40) and
# PAIR_NAME (what the runs line calls xsr, default "xsr") suit a script.
pair() {
  local label=$1 base=$2 xsr=$3 rssf=$4 target=${5-} i
  local -a tb=() tx=() rss=()
  for ((i = 0; i < RUNS; i++)); do
    "$base"; tb+=("$LAST")
    "$xsr"; tx+=("$LAST")
    "$rssf"; rss+=("$RSS")
  done
  local mb mx peak ratio
  mb=$(mbps "$(median "${tb[@]}")")
  mx=$(mbps "$(median "${tx[@]}")")
  peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
  ratio=$(awk -v x="$mx" -v b="$mb" 'BEGIN { printf "%.2fx", x / b }')
  printf "%-${PAIR_WIDTH:-40}s %10s %10s %8s" "$label" "$mb" "$mx" "$ratio"
  [[ -n $target ]] && printf ' %8s' "$target"
  printf ' %10s\n' "$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')"
  printf '  runs (s): baseline %s | %s %s | %s peak RSS (KiB) %s\n' \
    "${tb[*]}" "${PAIR_NAME:-xsr}" "${tx[*]}" "${PAIR_NAME:-xsr}" "${rss[*]}"
}

pair_header() { printf '%-40s %10s %10s %8s %10s\n' "pair" "base MB/s" "xsr MB/s" "ratio" "RSS MiB"; }

machine_line() {
  echo "machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
}
