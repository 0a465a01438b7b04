#!/usr/bin/env bash
# Creates the topics EthHook Ingestor publishes to, with the settings it expects, on a
# Redpanda (or Kafka) cluster, with rpk, or where rpk is not installed with Kafka's own
# topic tool (TopicCommand, what kafka-topics.sh runs) from KAFKA_LIBS. The service also
# creates missing topics itself; create them here when topics are managed by operators (or
# auto-creation is off).
#
#   redpanda/topics.sh CHAIN_ID [CHAIN_ID ...]
#
#   REPLICAS            replication factor (default 3; 1 for a single-node dev cluster)
#   CHECKPOINT_TOPIC    default ingestor.checkpoints (must match kafka.checkpoint_topic)
#   TOPIC_PREFIX        default evm.logs. (chain topics are <prefix><chain_id>)
#   EVENTS              decoded events ([[chains.events]]) of every chain, e.g. "Transfer
#                       Approval": creates evm.events.<chain_id>.<Event> too (default none)
#   DATASETS            datasets beside the logs (chains[].datasets) of every chain, e.g.
#                       "blocks transactions": creates evm.<dataset>.<chain_id> too
#                       (default none)
#   RPK_FLAGS           extra rpk flags, e.g. "-X brokers=seed:9092 -X tls.enabled=true
#                       -X sasl.mechanism=SCRAM-SHA-256 -X user=ethhook -X pass=…"
#   KAFKA_LIBS          without rpk: Kafka's jars (scripts/deps.sh env), run with JAVA_BIN
#   BOOTSTRAP_SERVERS   without rpk: the cluster (default 127.0.0.1:9092)
#   KAFKA_TOOL_FLAGS    without rpk: extra flags, e.g. "--command-config client.properties"
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CHAIN_ID [CHAIN_ID ...]" >&2; exit 2; }
REPLICAS="${REPLICAS:-3}"
CHECKPOINT_TOPIC="${CHECKPOINT_TOPIC:-ingestor.checkpoints}"
TOPIC_PREFIX="${TOPIC_PREFIX:-evm.logs.}"
# Compacted: the latest value per key is the record, a tombstone deletes a retracted log.
# 16 MiB: the producer's limit (a checkpoint carries the reorg window).
# Tombstones readable for 7 days after compaction (a sink down for a week still deletes the
# retracted row). Records' segments roll daily, so retracted keys leave the log within about
# a day.
CONFIGS=(-c cleanup.policy=compact -c max.message.bytes=16777216
  -c delete.retention.ms=604800000)
DAILY=(-c segment.ms=86400000)

# Kafka's own topic tool, with the same arguments as kafka-topics.sh.
kafka_topics() {
  # shellcheck disable=SC2086
  "${JAVA_BIN:-java}" -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "${BOOTSTRAP_SERVERS:-127.0.0.1:9092}" ${KAFKA_TOOL_FLAGS:-} "$@"
}

create() { # topic partitions [more -c settings]
  local settings=("${CONFIGS[@]}" "${@:3}")
  if command -v rpk >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    if rpk topic create "$1" -p "$2" -r "$REPLICAS" "${settings[@]}" ${RPK_FLAGS:-}; then
      echo "created $1"
    else
      # Already there (or refused): show its settings so a difference is visible.
      # shellcheck disable=SC2086
      rpk topic describe "$1" -c ${RPK_FLAGS:-} || exit 1
    fi
  elif [ -n "${KAFKA_LIBS:-}" ]; then
    local configs=() c
    for c in "${settings[@]}"; do [ "$c" = "-c" ] || configs+=(--config "$c"); done
    if kafka_topics --create --topic "$1" --partitions "$2" --replication-factor "$REPLICAS" \
      "${configs[@]}" >/dev/null 2>&1; then
      echo "created $1"
    else
      # Already there (or refused): show its settings so a difference is visible.
      kafka_topics --describe --topic "$1" || exit 1
    fi
  else
    echo "neither rpk nor KAFKA_LIBS (Kafka's jars) is available" >&2
    exit 1
  fi
}

# The checkpoint topic gets a record per chain per block, all read at every start-up until
# compacted: its segments roll hourly.
create "$CHECKPOINT_TOPIC" 1 -c segment.ms=3600000
for id in "$@"; do
  case "$id" in *[!0-9]*) echo "chain id must be a number: $id" >&2; exit 2 ;; esac
  # One partition keeps a chain's records in block order for every consumer.
  create "$TOPIC_PREFIX$id" 1 "${DAILY[@]}"
  for event in ${EVENTS:-}; do
    create "evm.events.$id.$event" 1 "${DAILY[@]}"
  done
  for dataset in ${DATASETS:-}; do
    case "$dataset" in
      blocks | transactions) create "evm.$dataset.$id" 1 "${DAILY[@]}" ;;
      logs) ;; # the chain topic, above
      *) echo "unknown dataset: $dataset (known: logs, blocks, transactions)" >&2; exit 2 ;;
    esac
  done
done
