#!/usr/bin/env bash
# The long form of fuzzing: every libFuzzer target for SECONDS each
# (default 600), two at a time, from a corpus kept under CORPUS_DIR
# (default /tmp/ordo-fuzz-corpus) and the saved inputs in tests/fuzz/regress.
# A crash leaves its input in CORPUS_DIR/crashes/: copy it into
# tests/fuzz/regress so CTest replays it from then on.
#   CC=clang cmake -S . -B build-fuzz -DORDO_FUZZ=ON && cmake --build build-fuzz -j
#   tests/fuzz-long.sh [BUILD_DIR] [SECONDS] [CORPUS_DIR]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build-fuzz}"
seconds="${2:-600}"
corpus="${3:-/tmp/ordo-fuzz-corpus}"
mkdir -p "$corpus/crashes"
failed=0
run() {
    local t="$1"; shift
    mkdir -p "$corpus/$t"
    if "$build/tests/fuzz/$t" -max_total_time="$seconds" -artifact_prefix="$corpus/crashes/$t-" \
        "$@" "$corpus/$t" "$here/fuzz/regress" > "$corpus/$t.log" 2>&1; then
        echo "ok   $t: $(grep -E '^Done' "$corpus/$t.log" | tail -1)"
    else
        echo "FAIL $t: see $corpus/$t.log and $corpus/crashes/"
        return 1
    fi
}
run fuzz_request & a=$!; run fuzz_event & b=$!
wait $a || failed=1; wait $b || failed=1
run fuzz_wal_frame & a=$!; run fuzz_snapshot & b=$!
wait $a || failed=1; wait $b || failed=1
run fuzz_pquery -dict="$here/fuzz/dict/pquery.dict" & a=$!; run fuzz_cert & b=$!
wait $a || failed=1; wait $b || failed=1
run fuzz_wal_walk || failed=1
exit $failed
