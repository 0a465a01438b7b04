#!/usr/bin/env bash
# Runs every test: installs the pinned anvil and tansu (cached per user), then unit and
# end-to-end tests. Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test e2e`).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/deps.sh env)"
export ANVIL_BIN TANSU_BIN FASTAVRO_PYTHON
exec cargo test --workspace --locked "$@"
