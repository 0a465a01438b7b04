#!/usr/bin/env bash
# Benchmark: builds a chain on anvil and prints the node's and the ingestor's logs/s.
# Options: --blocks, --logs-per-block, --logs-per-tx, --range-blocks (see `--help`).
exec "$(dirname "$0")/devstack.sh" bench "$@"
