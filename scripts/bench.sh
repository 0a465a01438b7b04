#!/usr/bin/env bash
# Benchmark: builds a chain on anvil and prints, in one run, the node's logs/s with 1 and 4
# clients, cryo's (in a venv it installs, or CRYO_PYTHON's) and the ingestor's (process
# start until a consumer has read every record). --latency N: live latency over N blocks
# next to the broker's floor. --completeness [LOGS]: the log completeness check, off and
# on, on a chain of saturated blooms. --decoded: also with every log decoded onto its own
# topic, beside the chain topic and instead of it (raw = false), against raw only.
# --datasets: also with the blocks and transactions datasets beside the logs, against logs
# only (with --logs-per-tx 4, about mainnet's logs per transaction).
# Options: --blocks, --logs-per-block, --logs-per-tx, --range-blocks, --dead-collector,
# --decoded, --datasets, --rounds, --latency, --completeness (see `--help`).
set -euo pipefail
if [ -z "${CRYO_PYTHON:-}" ]; then
  # cryo is the benchmark's only: installed here, not by the test command. Without it (no
  # index to install from), the bench runs and says cryo was skipped.
  if cryo_env="$("$(dirname "$0")/deps.sh" cryo)"; then
    eval "$cryo_env"
    export CRYO_PYTHON
  else
    echo "bench: cryo could not be installed; its rate is skipped" >&2
  fi
fi
exec "$(dirname "$0")/devstack.sh" bench "$@"
