#!/usr/bin/env bash
# Runs the main job on the local stack: two anvil chains, tansu, the ingestor, a traffic
# source, and every record decoded on stdout. Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/deps.sh env)"
export ANVIL_BIN TANSU_BIN
cargo build --release --locked -p ingestor -p devstack >&2
exec target/release/devstack up --ingestor target/release/ingestor "$@"
