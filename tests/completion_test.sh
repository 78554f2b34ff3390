#!/usr/bin/env bash
# The bash completion (completions/xsr) completes subcommands, options,
# option values and files. Usage: completion_test.sh COMPLETION_FILE, with
# XSR_BIN the xsr to ask for commands and options.
set -uo pipefail
source "$1" || exit 1
failed=0 passed=0
cd "$(dirname "$1")/.." || exit 1

# expect "WANT" WORD...: completing the last WORD of `xsr WORD...` offers WANT
# (sorted, space-separated).
expect() {
  local want=$1
  shift
  COMP_WORDS=("$XSR_BIN" "$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="${COMP_WORDS[*]}"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _xsr
  local got
  got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | xargs)
  if [[ $got == "$want" ]]; then
    passed=$((passed + 1))
  else
    echo "xsr $*: want '$want', got '$got'"
    failed=$((failed + 1))
  fi
}

expect "verify" veri
expect "verify version" ver
expect "convert" con
expect "gen" help g
expect "--format" verify --form
expect "--stats --stats-interval --stats-json" gen --stat
expect "--convert --convert-format" relay --conv
expect "auto libxc libxl xl" verify --format ""
expect "libxc libxl" convert -f li
expect "libxc libxl xl" gen --format ""
expect "libxc libxl" gen --format = li
expect "hvm pv" gen --type ""
expect "hvm pv" gen -t ""
expect "" relay -t ""
expect "pv" relay -g p
expect "32 64" convert --width ""
expect "auto mmap pread read uring" verify --io ""
expect "auto read uring" relay --io ""
expect "zstd" convert --compress z
expect "sequential shuffled" gen --order ""
expect "2 3" convert --stream-version ""
expect "" gen --size ""
expect "fixtures/sample/guest-hvm.xl.bin fixtures/sample/guest-pv.xl.bin" inspect fixtures/sample/guest-
expect "fixtures/sample/guest-hvm.xl.bin" verify --stats-json fixtures/sample/guest-h
expect "" version ""
echo "completion: $passed passed, $failed failed"
((failed == 0))
