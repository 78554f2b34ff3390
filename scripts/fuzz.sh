#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz/ for a bounded time each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 60 s; verify convert reader inspect relay notes index)
#
# Builds them with clang, ASan and UBSan in build-fuzz/ (FUZZ_BUILD=...),
# makes seed corpora in a scratch directory from `xsr gen` small images and
# the fixtures, runs the targets two at a time (one per core), and prints
# per target: executions, coverage (cov/ft of libFuzzer's last line) and
# findings. Any crash, leak, timeout or out-of-memory input is copied to
# fixtures/invalid/fuzz-<target>-<sha1>.input (replayed by the default test
# suite, tests/fuzz/regression_test.cc) and the script exits 1.
# FUZZ_JOBS=N runs N targets at a time; FUZZ_KEEP=1 keeps the scratch dir.
# ninja's output is shown only when the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(verify convert reader inspect relay notes index)
build=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-2}

t0=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  # werror off: a clang-only warning in new code must not stop the fuzzing.
  CC=clang CXX=clang++ meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbenchmarks=disabled -Dwerror=false --buildtype=debugoptimized >/dev/null
fi
# Seeds come from `xsr gen`: XSR=..., else build/cmd/xsr, else built here.
xsr=${XSR:-}
[ -n "$xsr" ] || { [ -x build/cmd/xsr ] && xsr=build/cmd/xsr; } || xsr=$build/cmd/xsr
want=$(printf "tests/fuzz/fuzz_%s " "${targets[@]}")
[ "$xsr" != "$build/cmd/xsr" ] || want="$want cmd/xsr"
ninja -C "$build" $want > "${TMPDIR:-/tmp}/xsr-fuzz-build.log" 2>&1 || { tail -30 "${TMPDIR:-/tmp}/xsr-fuzz-build.log"; exit 2; }
echo "fuzz: built in $(($(date +%s) - t0)) s"

work=$(mktemp -d /tmp/xsr-fuzz.XXXXXX)
[ "${FUZZ_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# Seeds: option byte(s) the target reads first (see each fuzz_*.cc), then a
# stream. `seed DIR PREFIX FILE...` writes PREFIX+FILE for each file.
seed() {
  local dir=$1 prefix=$2
  shift 2
  local f
  for f in "$@"; do
    { printf "$prefix"; cat "$f"; } > "$dir/$(basename "$f").$(printf '%s' "$prefix" | md5sum | cut -c1-6)"
  done
}
imgs=$work/images
mkdir -p "$imgs"
i=0
for fmt in libxc libxl xl; do
  for type in hvm pv; do
    for v in 2 3; do
      i=$((i + 1))
      "$xsr" gen -o "$imgs/$fmt-$type-v$v.bin" --size 64K --format "$fmt" --type "$type" \
        --stream-version "$v" --batch $((i * 5 % 37 + 1)) --seed "$i" --vcpus 2 2>/dev/null
    done
  done
  "$xsr" gen -o "$imgs/$fmt-hvm-cp.bin" --size 64K --format "$fmt" --checkpoints 3 --batch 3 2>/dev/null
done
"$xsr" gen -o "$imgs/libxc-pv32.bin" --size 64K --type pv --width 32 --batch 9 2>/dev/null
legacy=$work/legacy
mkdir -p "$legacy"
for type in hvm pv; do
  for tw in 32 64; do
    "$xsr" gen --legacy -o "$legacy/gen-$type$tw.bin" --size 64K --type "$type" --toolstack-width "$tw" --batch 5 2>/dev/null
  done
  "$xsr" gen --legacy -o "$legacy/gen-$type-xl.bin" --size 64K --type "$type" --format xl 2>/dev/null
done
for t in "${targets[@]}"; do
  s=$work/$t/seeds
  mkdir -p "$s" "$work/$t/corpus" "$work/$t/artifacts"
  case $t in
    verify)
      seed "$s" '\x00' "$imgs"/*.bin fixtures/valid/*.bin fixtures/invalid/*.bin
      seed "$s" '\x14' "$imgs"/*.bin fixtures/valid/*.bin  # strict, -v lines
      seed "$s" '\x2b' "$imgs"/*-cp.bin                    # xl, strict checkpointed, detect
      ;;
    convert)
      # detected options (bit 7), memfd output verified, -v lines; then
      # libxl output through ChunkySource
      seed "$s" '\x80\x03\x00\x00\x00\x00' fixtures/legacy/*.bin "$legacy"/*.bin
      seed "$s" '\x84\x07\x2a\x00\x00\x00' "$legacy"/*.bin fixtures/legacy/hvm*-full.bin
      ;;
    reader)
      seed "$s" '\x00\x01\x00\x00\x00\x00' "$imgs"/*.bin fixtures/valid/*.bin   # differential verify
      seed "$s" '\x08\x07\x00\x00\x00\x00' "$imgs"/libxc-*.bin               # raw record walk
      seed "$s" '\x00\x03\x00\x00\x00\x90' "$imgs"/libxl-*.bin               # EIO after 16 calls
      ;;
    inspect)
      # flags byte, then the pfn of --page (u32): inspect with record lines;
      # extract raw and ELF; one page; legacy images through ImageInput
      seed "$s" '\x08\x00\x00\x00\x00' "$imgs"/*.bin fixtures/valid/*.bin
      seed "$s" '\x02\x00\x00\x00\x00' "$imgs"/*.bin
      seed "$s" '\x06\x00\x00\x00\x00' "$imgs"/*-cp.bin
      seed "$s" '\x10\x10\x00\x00\x00' "$imgs"/*.bin
      seed "$s" '\x09\x00\x00\x00\x00' "$legacy"/*.bin fixtures/legacy/*.bin
      seed "$s" '\x03\x00\x00\x00\x00' "$legacy"/*.bin
      ;;
    relay)
      # byte 0 format/strict/io/channels/convert, byte 1 hold and converter
      # options, bytes 2-5 the sender's piece sizes (fuzz_relay.cc): pipes
      # and io_uring; strict, plain reads, socketpairs; a 4 KiB hold (valid
      # streams refused at their first page batch); legacy streams converted
      seed "$s" '\x00\x00\x01\x00\x00\x00' "$imgs"/*.bin fixtures/valid/*.bin fixtures/invalid/*.bin
      seed "$s" '\x74\x00\x2a\x00\x00\x00' "$imgs"/*.bin
      seed "$s" '\x20\x08\x07\x00\x00\x00' "$imgs"/libxl-*.bin
      seed "$s" '\x80\x00\x05\x00\x00\x00' "$legacy"/*.bin fixtures/legacy/*.bin
      seed "$s" '\xe0\x20\x09\x00\x00\x00' "$legacy"/*.bin
      ;;
    notes)
      # byte 0 width/whole flags, then the libxc images' vCPU records in the
      # target's form (fuzz_notes.cc): kind byte, u32 length, body
      for f in "$imgs"/libxc-*.bin; do
        for flags in 0 5 6; do
          python3 - "$f" "$flags" > "$s/$(basename "$f").$flags" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
kinds = {2: 0, 3: 1, 4: 2, 6: 3, 9: 4}  # PV_INFO P2M_FRAMES VCPU_BASIC VCPU_XSAVE HVM_CONTEXT
out, off = bytearray([int(sys.argv[2])]), 24 + 16
while off + 8 <= len(b):
    t, n = struct.unpack_from("<II", b, off)
    if t in kinds:
        out += bytes([kinds[t]]) + struct.pack("<I", n) + b[off + 8:off + 8 + n]
    off += 8 + (n + 7) // 8 * 8
sys.stdout.buffer.write(out)
PY
        done
      done
      ;;
    index)
      # flags, window seed, --pfn range (fuzz_index.cc), then the real index
      # of the image the target holds: as is, resealed, as an ELF core
      "$xsr" gen -o "$work/index.bin" --size 256K --batch 7 --seed 3 2>/dev/null
      "$xsr" index -q "$work/index.bin"
      seed "$s" '\x00\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00' "$work/index.bin.xsrindex"
      seed "$s" '\x01\x05\x00\x00\x00\x10\x00\x00\x00\x40\x00\x00\x00' "$work/index.bin.xsrindex"
      seed "$s" '\x07\x09\x00\x00\x00\x00\x00\x00\x00\xff\x00\x00\x00' "$work/index.bin.xsrindex"
      ;;
    *) seed "$s" '\x00' "$imgs"/*.bin ;;
  esac
done

run_one() {
  local t=$1 dict=tests/fuzz/$1.dict
  [ -f "$dict" ] || dict=tests/fuzz/verify.dict
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
    -malloc_limit_mb=256 -print_final_stats=1 -dict="$dict" -max_len=131072 \
    -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" "$work/$t/seeds" \
    > "$work/$t/log" 2>&1
  echo $? > "$work/$t/rc"
}

t1=$(date +%s)
running=0
for t in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait || true

status=0
printf '%-8s %8s %12s %8s %8s %s\n' target seconds executions cov ft findings
for t in "${targets[@]}"; do
  log=$work/$t/log
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<< "$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<< "$last")
  findings=()
  for f in "$work/$t/artifacts"/*; do
    [ -e "$f" ] || continue
    kind=$(basename "$f" | cut -d- -f1)
    case $kind in crash | leak | timeout | oom) ;; *) continue ;; esac
    keep=fixtures/invalid/fuzz-$t-$(sha1sum "$f" | cut -c1-12).input
    cp "$f" "$keep"
    findings+=("$kind:$keep")
  done
  rc=$(cat "$work/$t/rc" 2>/dev/null || echo 1)
  if ((${#findings[@]})) || [ "$rc" != 0 ]; then
    status=1
    printf '%-8s %8s %12s %8s %8s %s\n' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
      "${findings[*]:-exit $rc}"
    echo "---- $t: end of log"
    tail -40 "$log"
  else
    printf '%-8s %8s %12s %8s %8s %s\n' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" none
  fi
done
echo "fuzz: ran in $(($(date +%s) - t1)) s"
exit $status
