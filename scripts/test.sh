#!/usr/bin/env bash
# The README's test command: every unit, parity, CLI, workflow and fuzz-corpus-replay test,
# plus the AWS tests against local stand-ins and the Slurm tests against a one-node cluster on
# this machine. It installs the stand-ins on first use (cargo-lambda and moto from PyPI, s3s-fs
# through cargo; see scripts/stand-ins.sh) and Slurm (apt: slurm-wlm, munge; see
# scripts/slurm-local.sh), starts them on 127.0.0.1, and stops them when done. Outside CI a
# machine where Slurm cannot be installed or started (no root, no apt) runs everything else
# and the Slurm tests skip with a note; under CI (CI set) that is an error.
# Profile `testing` (Cargo.toml): the model's kernels optimised as in release, everything
# else built cheaply, no LTO; .ci/run's clippy uses the same profile to share build scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${CAI_TOOLS:-$HOME/.cache/cai-tools}"
./scripts/stand-ins.sh start
trap './scripts/stand-ins.sh stop' EXIT
# shellcheck source=/dev/null
source "$TOOLS/run/env"
if ./scripts/slurm-local.sh start; then
    trap './scripts/slurm-local.sh stop; ./scripts/stand-ins.sh stop' EXIT
    # shellcheck source=/dev/null
    source "$TOOLS/slurm/env"
elif [ -n "${CI:-}" ]; then
    echo "test.sh: the local Slurm cluster did not start" >&2
    exit 1
else
    echo "test.sh: no local Slurm cluster (scripts/slurm-local.sh start failed); the Slurm tests skip" >&2
fi
cargo test --locked --workspace --profile testing "$@"
