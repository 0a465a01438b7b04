#!/usr/bin/env bash
# Builds the binaries and runs `devstack SUBCOMMAND [ARGS]` with the pinned tools.
# Used by demo.sh (`--profile demo --system-openssl`) and bench.sh (release).
#
#   scripts/devstack.sh [--profile PROFILE] [--system-openssl] SUBCOMMAND [ARGS]
#
# PROFILE is a cargo profile (default release); the binaries are in target/PROFILE/.
# --system-openssl builds librdkafka against the system's OpenSSL (installing libssl-dev
# when missing) instead of compiling OpenSSL, the longest step of a first build. The
# tools install (scripts/deps.sh) while cargo builds: for `up`, only the demo's
# (`scripts/deps.sh demo`), for the other subcommands all of them (`scripts/deps.sh env`).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
features=()
if [ "${1:-}" = "--profile" ]; then
  profile="$2"
  shift 2
fi
if [ "${1:-}" = "--system-openssl" ]; then
  scripts/deps.sh openssl-dev
  features=(--no-default-features)
  shift
fi
sub="$1"
shift
tools="env"
if [ "$sub" = up ]; then tools="demo"; fi

env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
scripts/deps.sh "$tools" >"$env_file" &
deps=$!
if ! cargo build --profile "$profile" "${features[@]}" --locked -p ingestor -p devstack >&2; then
  echo "devstack.sh: the build failed; waiting for the tool install to finish" >&2
  wait "$deps" || true
  exit 1
fi
wait "$deps"
# shellcheck disable=SC1090 # export lines written by scripts/deps.sh
source "$env_file"
rm -f "$env_file"
export ANVIL_BIN KAFKA_LIBS JAVA_BIN FASTAVRO_PYTHON
exec "target/$profile/devstack" "$sub" --ingestor "target/$profile/ingestor" "$@"
