#!/usr/bin/env bash
# Crash test of the real process: runs ordo-demo (fsync always) on a fresh
# data folder, kills it with SIGKILL at a given moment (found by a bounded
# poll of its log lines, never a bare sleep), then starts it again and
# checks that it recovers: every event it had reported appended (those
# were fdatasync'ed) is there, positions stay contiguous, and a full
# replay and a start from snapshot both give the live state.
set -euo pipefail
demo="$1"
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# wait_for PATTERN FILE: polls FILE for PATTERN, at most 60 s.
wait_for() {
    for _ in $(seq 1 600); do
        grep -q "$1" "$2" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

crash_at() {
    local moment="$1" pattern="$2"
    rm -rf "$dir/data"
    "$demo" --data-dir "$dir/data" --orders 60000 --snapshot-every 150000 >/dev/null 2>"$dir/log" &
    pid=$!
    wait_for "$pattern" "$dir/log" || fail "$moment: never saw '$pattern'"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
    acked=$( (grep -o '[0-9]* events appended' "$dir/log" || true) | tail -1 | cut -d' ' -f1)
    acked=${acked:-0}
    out=$("$demo" --data-dir "$dir/data" --orders 200 --json 2>"$dir/log2") ||
        fail "$moment: restart failed: $(cat "$dir/log2")"
    echo "$out" | grep -q '"state_matches":true' || fail "$moment: state differs: $out"
    head=$(echo "$out" | sed -E 's/.*"head_position":([0-9]+).*/\1/')
    appended=$(echo "$out" | sed -E 's/.*"events_appended":([0-9]+).*/\1/')
    recovered=$((head - appended))
    [ "$recovered" -ge "$acked" ] ||
        fail "$moment: $acked events were reported durable, only $recovered recovered"
    echo "$moment: killed after $acked reported events; recovered $recovered, then appended $appended"
}

crash_at "at start" "wal: opened"
crash_at "after 100000 events" "100000 events appended"
crash_at "after a snapshot" "snapshot: wrote"
crash_at "after 200000 events" "200000 events appended"
echo "1 passed, 0 failed"
