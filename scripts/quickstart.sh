#!/usr/bin/env bash
# Fresh machine: install dependencies, build, and run hondo's main job on the bundled model
# (models/hondo-coder-tiny.gguf, a tiny DeepSeek-V2-architecture coder trained by the project).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/hondo run -p "def fibonacci(" -n 80 --temp 0.6 --repeat-penalty 1.1 --seed 2
