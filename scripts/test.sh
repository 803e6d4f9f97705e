#!/usr/bin/env bash
# The README's test command: every unit, parity, CLI, workflow and fuzz-corpus-replay test,
# plus the AWS tests against local stand-ins. It installs the stand-ins on first use
# (cargo-lambda and moto from PyPI, s3s-fs through cargo; see scripts/stand-ins.sh), starts
# them on 127.0.0.1, and stops them when done.
# Release mode: the model's kernels are far too slow unoptimised, and CI compiles once.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${CAI_TOOLS:-$HOME/.cache/cai-tools}"
./scripts/stand-ins.sh start
trap './scripts/stand-ins.sh stop' EXIT
# shellcheck source=/dev/null
source "$TOOLS/run/env"
cargo test --locked --workspace --release "$@"
