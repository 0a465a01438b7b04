#!/usr/bin/env bash
# Benchmark: builds a chain on anvil and prints, in one run, the node's logs/s with 1 and 4
# clients, cryo's (when CRYO_PYTHON names a Python with cryo) and the ingestor's (process
# start until a consumer has read every record). --latency N: live latency over N blocks
# next to the broker's floor. Options: --blocks, --logs-per-block, --logs-per-tx,
# --range-blocks, --dead-collector, --latency (see `--help`).
exec "$(dirname "$0")/devstack.sh" bench "$@"
