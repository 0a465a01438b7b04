#!/usr/bin/env bash
# Runs every test: installs the pinned anvil and Apache Kafka (cached per user), then unit and
# end-to-end tests. Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test e2e`).
# Every test binary runs even when one fails (`--no-fail-fast`); the exit status is still
# non-zero then. A failing test prints the tail of each of its processes' logs;
# ETHHOOK_KEEP_TEST_DIRS=1 keeps the test folders (the logs, configs and data).
set -euo pipefail
cd "$(dirname "$0")/.."

# A clean test build takes about 1.7 GB under target/ (and Kafka about 0.2 GB more in
# the cache). A full disk otherwise shows up as a linker crash (SIGBUS), so say it first.
need_mb=2500
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_mb=$(df -Pm "$target_dir" | awk 'NR==2 {print $4}')
if [ -n "$free_mb" ] && [ "$free_mb" -lt "$need_mb" ]; then
  echo "scripts/test.sh: only ${free_mb} MB free on the disk of $target_dir; the test build needs about ${need_mb} MB (free some, or set CARGO_TARGET_DIR to a larger disk)" >&2
  exit 1
fi

eval "$(scripts/deps.sh env)"
export ANVIL_BIN KAFKA_LIBS JAVA_BIN FASTAVRO_PYTHON ETHABI_PYTHON APICURIO_HOME APICURIO_JAVA CONNECT_LIBS CONNECT_PLUGINS POSTGRES_BIN PROMETHEUS_BIN PROMTOOL_BIN JAEGER_BIN
exec cargo test --workspace --locked --no-fail-fast "$@"
