#!/usr/bin/env bash
# Builds the release binaries and runs `devstack SUBCOMMAND [ARGS]` with the pinned tools.
# Used by demo.sh and bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/deps.sh env)"
export ANVIL_BIN KAFKA_LIBS JAVA_BIN FASTAVRO_PYTHON
cargo build --release --locked -p ingestor -p devstack >&2
sub="$1"
shift
exec target/release/devstack "$sub" --ingestor target/release/ingestor "$@"
