#!/usr/bin/env bash
# Runs the main job on the local stack: two anvil chains, Apache Kafka, the ingestor, a traffic
# source, and every record decoded on stdout. Ctrl-C stops everything cleanly.
# Options: --block-interval-ms N (default 1500). --help says what starts, the ports and the logs.
set -euo pipefail
case "${1:-}" in
  -h | --help)
    cat <<'EOF'
Usage: scripts/demo.sh [--block-interval-ms N]

Starts on this machine, until Ctrl-C:
  - Apache Kafka, one node (broker and KRaft controller);
  - two anvil chains: devnet-a (chain id 31337) and devnet-b (chain id 31338);
  - the ingestor (cargo profile `demo`, in target/demo/), publishing them to
    evm.logs.31337 and evm.logs.31338, and decoding token events from two ABIs
    onto evm.events.<chain id>.Transfer, .Approval (ERC-20) and .NftTransfer (ERC-721);
    devnet-a also publishes its blocks and transactions to evm.blocks.31337 and
    evm.transactions.31337;
  - traffic: a block of varied logs on each chain every N ms (default 1500), one block
    in two with a token event, one in ten of transactions that log nothing (transfers,
    a reverted creation, a call), now and then a reorganisation of the last 2 blocks;
and prints every published record, decoded, on stdout (tombstones included); token
events with their parameters by name; a BLOCK line per block and a tx line per
transaction of devnet-a.

Ports: each process takes a free port on 127.0.0.1. The broker's address and each
chain's ws:// URL are printed at start; the ingestor's health endpoint (/status,
/metrics) is in its log: `health endpoint listening addr=127.0.0.1:PORT`.

Logs: a new directory under $TMPDIR (default /tmp), ethhook-demo-XXXXXX, printed at
start: ingestor.log, ingestor.toml, anvil-31337.log, anvil-31338.log, kafka/kafka.log.
It is deleted when the demo stops.

The first run installs the pinned tools it runs (anvil, Apache Kafka, fastavro) into
~/.cache/ethhook (scripts/deps.sh demo) while it builds the binaries, against the
system's OpenSSL (libssl-dev, installed with apt-get if missing).
EOF
    exit 0
    ;;
esac
exec "$(dirname "$0")/devstack.sh" --profile demo --system-openssl up "$@"
