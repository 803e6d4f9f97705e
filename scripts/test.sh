#!/usr/bin/env bash
# The README's test command: every unit, parity, CLI and fuzz-corpus-replay test.
# Release mode: the model's kernels are far too slow unoptimised, and CI compiles once.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --workspace --release
