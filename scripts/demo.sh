#!/usr/bin/env bash
# Runs the main job on the local stack: two anvil chains, Apache Kafka, the ingestor, a traffic
# source, and every record decoded on stdout. Ctrl-C stops everything cleanly.
# Options: --block-interval-ms N (default 1500).
exec "$(dirname "$0")/devstack.sh" up "$@"
