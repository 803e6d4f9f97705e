#!/usr/bin/env bash
# Cross-builds cai-model's tests for aarch64-unknown-linux-gnu (what arm64 Lambda, Graviton2,
# runs) and runs them under qemu-user emulating a Neoverse N1 (NEON + dot product, no bf16 or
# i8mm: Graviton2's feature set), so the NEON and sdot kernels' numbers are checked on an x86
# machine. Speed under emulation means nothing; only correctness is checked.
#
#   ./scripts/qemu-arm64-tests.sh            # cai-model's tests under qemu
#   ./scripts/qemu-arm64-tests.sh --build    # also build the whole workspace for aarch64
#
# Needs (installed here when missing and running as root with apt): rustup's
# aarch64-unknown-linux-gnu target, Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
# qemu-user-static.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu

build_all=0
if [[ "${1:-}" == "--build" ]]; then
    build_all=1
    shift
fi

if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static >/dev/null
    else
        echo "install gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user-static" >&2
        exit 1
    fi
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu -cpu neoverse-n1"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar

if [[ $build_all == 1 ]]; then
    cargo build --locked --workspace --profile testing --target "$TARGET"
fi
cargo test --locked -p cai-model --profile testing --target "$TARGET" "$@"
