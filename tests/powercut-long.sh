#!/usr/bin/env bash
# The long form of the simulated power-cut test (tests/test_powercut.c):
# 10,000 seeds by default (about 20 minutes on 2 cores). A failing seed is
# printed with the command that reproduces it.
#   tests/powercut-long.sh [BUILD_DIR] [SEEDS] [FIRST_SEED]
set -euo pipefail
build="${1:-build}"
export ORDO_POWERCUT_SEEDS="${2:-10000}"
export ORDO_POWERCUT_FIRST="${3:-1}"
exec "$build/tests/test_powercut"
