#!/usr/bin/env bash
# Installs every package hondo needs to build and test, from Debian, by name.
# Idempotent: does nothing when all packages are already present.
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config   # toolchain
  libpcre2-dev                       # Unicode regex for tokenizer pre-splitting
  nlohmann-json3-dev                 # JSON (info --json, chat history)
  libcli11-dev                       # command-line parsing
  libcurl4-openssl-dev libssl-dev    # hub downloads (HTTPS, Range) and SHA-256 checks
  libcpp-httplib-dev                 # fake hub on loopback in the store tests
  libgtest-dev libgmock-dev          # unit tests (ctest)
  libbenchmark-dev                   # kernel benchmarks (hondo-kernel-bench)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
