#!/usr/bin/env bash
# The long form of the crash loop (tests/e2e_crashloop.py): ROUNDS kill -9
# of the real ordo-server under pipelined load (default 250), each followed
# by a restart and a check of every acknowledged event.
#   tests/crashloop-long.sh [BUILD_DIR] [ROUNDS] [SEED]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
exec /usr/bin/python3 "$here/e2e_crashloop.py" "$build/engine/ordo-server" "${2:-250}" "${3:-7}"
