#!/usr/bin/env bash
# Cross-compiles core/ and kernels/ for ARM64 and runs their tests (test_qdot, test_quant)
# under qemu's user-mode emulation of a CPU with the dot-product extension: the check that
# the kernels build and give the reference's results on the other CPU family hondo supports.
# Not part of the default test suite (a few minutes, and it installs a cross compiler).
#   bash scripts/check-arm64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(g++-aarch64-linux-gnu qemu-user cmake ninja-build libgtest-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "check-arm64: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
build=build-arm64
cmake -S . -B "$build" -G Ninja -DHONDO_KERNELS_ONLY=ON \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
  -DCMAKE_FIND_ROOT_PATH=/usr/aarch64-linux-gnu \
  -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY \
  -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY >/dev/null
cmake --build "$build"
# -cpu max: an ARMv8.x CPU with dotprod, so both the NEON set and the reference run.
for t in test_qdot test_quant; do
  QEMU_CPU=max QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 "$build/$t" --gtest_brief=1
done
echo "check-arm64: kernel tests pass on ARM64 (qemu, -cpu max)"
