#!/usr/bin/env bash
# Creates the topics EthHook Ingestor publishes to, with the settings it expects, on a
# Redpanda (or Kafka) cluster, with rpk. The service also creates missing topics itself;
# create them here when topics are managed by operators (or auto-creation is off).
#
#   redpanda/topics.sh CHAIN_ID [CHAIN_ID ...]
#
#   REPLICAS            replication factor (default 3; 1 for a single-node dev cluster)
#   CHECKPOINT_TOPIC    default ingestor.checkpoints (must match kafka.checkpoint_topic)
#   TOPIC_PREFIX        default evm.logs. (chain topics are <prefix><chain_id>)
#   RPK_FLAGS           extra rpk flags, e.g. "-X brokers=seed:9092 -X tls.enabled=true
#                       -X sasl.mechanism=SCRAM-SHA-256 -X user=ethhook -X pass=…"
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CHAIN_ID [CHAIN_ID ...]" >&2; exit 2; }
REPLICAS="${REPLICAS:-3}"
CHECKPOINT_TOPIC="${CHECKPOINT_TOPIC:-ingestor.checkpoints}"
TOPIC_PREFIX="${TOPIC_PREFIX:-evm.logs.}"
# Compacted: the latest value per key is the record, a tombstone deletes a retracted log.
# 16 MiB: the producer's limit (a checkpoint carries the reorg window).
CONFIGS=(-c cleanup.policy=compact -c max.message.bytes=16777216)

create() { # topic partitions
  # shellcheck disable=SC2086
  if rpk topic create "$1" -p "$2" -r "$REPLICAS" "${CONFIGS[@]}" ${RPK_FLAGS:-}; then
    echo "created $1"
  else
    # Already there (or refused): show its settings so a difference is visible.
    # shellcheck disable=SC2086
    rpk topic describe "$1" -c ${RPK_FLAGS:-} || exit 1
  fi
}

create "$CHECKPOINT_TOPIC" 1
for id in "$@"; do
  case "$id" in *[!0-9]*) echo "chain id must be a number: $id" >&2; exit 2 ;; esac
  # One partition keeps a chain's records in block order for every consumer.
  create "$TOPIC_PREFIX$id" 1
done
