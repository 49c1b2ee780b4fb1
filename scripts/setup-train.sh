#!/usr/bin/env bash
# Installs the development tools for training and checking the bundled model (train/):
# Debian's PyTorch and NumPy, and OpenBLAS (Debian's PyTorch otherwise uses the reference BLAS
# and trains 15x slower). Not needed to build, test or run hondo. Use /usr/bin/python3.
set -euo pipefail
packages=(python3-torch python3-numpy libopenblas0-pthread)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
