#!/usr/bin/env bash
# Builds hondo and runs the default test suite (ctest). Long suites: ctest -L long.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" -LE long "$@"
