#!/usr/bin/env bash
# The README's test command: every unit, parity, CLI, workflow and fuzz-corpus-replay test,
# plus the AWS tests against local stand-ins. It installs the stand-ins on first use
# (cargo-lambda and moto from PyPI, s3s-fs through cargo; see scripts/stand-ins.sh), starts
# them on 127.0.0.1, and stops them when done.
# Profile `testing` (Cargo.toml): the model's kernels optimised as in release, everything
# else built cheaply, no LTO; .ci/run's clippy uses the same profile to share build scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${CAI_TOOLS:-$HOME/.cache/cai-tools}"
./scripts/stand-ins.sh start
trap './scripts/stand-ins.sh stop' EXIT
# shellcheck source=/dev/null
source "$TOOLS/run/env"
cargo test --locked --workspace --profile testing "$@"
