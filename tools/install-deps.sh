#!/usr/bin/env bash
# Installs the Debian packages shardlm builds and tests with. Idempotent: packages already
# present are skipped, so running it twice is cheap. Needs root (or sudo) for apt-get.
# Python is never needed to build or test; tools/*.py have their own requirements files.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build
  flatbuffers-compiler libflatbuffers-dev
  libzstd-dev libmimalloc-dev libxxhash-dev nlohmann-json3-dev
  libboost-program-options-dev libgtest-dev libgmock-dev
  libpcre2-dev libedit-dev
  libvulkan-dev glslc mesa-vulkan-drivers
  openmpi-bin libopenmpi-dev
  libcpp-httplib-dev
  clang libclang-rt-dev
  ccache
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
