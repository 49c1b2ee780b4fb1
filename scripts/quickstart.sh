#!/usr/bin/env bash
# Fresh machine: install dependencies, build, and run hondo's main job on the default model.
# Until the bundled model ships, the default is the small trained story model (stories260K)
# from the shared test data beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
model=../shared/testdata/models/stories260K/stories260K-f32.gguf
if [ ! -f "$model" ]; then
  echo "quickstart: default model $model not found (the shared/ folder must sit beside the checkout)" >&2
  exit 1
fi
./build/hondo run -m "$model" -p "Once upon a time" -n 120 --temp 0.8 --seed 42
