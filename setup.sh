#!/usr/bin/env bash
# Sets up gpu-fmnist on Debian or Ubuntu, then builds it. Safe to run again: it installs only
# what is missing and never prompts.
#   - mesa-vulkan-drivers, libvulkan1: lavapipe, the software Vulkan driver (tests, CI, and
#     `--device vulkan` on machines without a GPU);
#   - libegl1, libegl-mesa0, libgl1-mesa-dri: Mesa's OpenGL through EGL, so that `--device gl`
#     works too (the tests check every backend they find);
#   - dataset-fashion-mnist: the data set, in /usr/share/datasets/fashion-mnist;
#   - gcc, libc6-dev: the linker Rust needs;
#   - parallel: GNU parallel, which spreads an experiment's trials over cores or machines (the
#     tests run a study that way);
#   - Rust itself through rustup, when no `cargo` is on the PATH.
set -euo pipefail
cd "$(dirname "$0")"

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

packages=(mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri dataset-fashion-mnist gcc libc6-dev parallel)
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    packages+=(curl ca-certificates)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
        echo "setup: ${missing[*]} must be installed: run ./setup.sh as root, or install sudo" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    if [ ! -x "$HOME/.cargo/bin/cargo" ]; then
        echo "setup: installing Rust with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    fi
    export PATH="$HOME/.cargo/bin:$PATH"
    echo "setup: Rust is in ~/.cargo/bin; run \`. ~/.cargo/env\` to have cargo in this shell"
fi

cargo build --release --quiet
echo "setup: done; the binary is target/release/gpu-fmnist"
