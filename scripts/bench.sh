#!/usr/bin/env bash
# Benchmark: builds a chain on anvil and prints the node's and the ingestor's logs/s.
# Arguments go to `devstack bench` (see --help); defaults: 500 blocks x 400 logs.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/deps.sh env)"
export ANVIL_BIN TANSU_BIN
cargo build --release --locked -p ingestor -p devstack >&2
exec target/release/devstack bench --ingestor target/release/ingestor "$@"
