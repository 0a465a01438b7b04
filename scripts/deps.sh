#!/usr/bin/env bash
# Installs the pinned local stack (anvil, tansu, fastavro) into a per-user cache outside the checkout,
# keyed by version, and reuses it when present. Prints nothing but progress on stderr;
# `scripts/deps.sh env` prints `export` lines for ANVIL_BIN, TANSU_BIN and FASTAVRO_PYTHON
# (fastavro, the tests' independent Avro implementation, in a venv). `scripts/deps.sh cryo`
# installs only cryo (the benchmark's comparison, in a venv) and prints CRYO_PYTHON.
#
#   ETHHOOK_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/ethhook)
set -euo pipefail

ANVIL_VERSION=1.7.1
TANSU_VERSION=0.6.0
FASTAVRO_VERSION=1.10.0
CACHE="${ETHHOOK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ethhook}"
ANVIL_DIR="$CACHE/anvil-$ANVIL_VERSION"
TANSU_DIR="$CACHE/tansu-$TANSU_VERSION"
ANVIL_BIN="$ANVIL_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
TANSU_BIN="$TANSU_DIR/bin/tansu"
FASTAVRO_DIR="$CACHE/fastavro-$FASTAVRO_VERSION"
FASTAVRO_PYTHON="$FASTAVRO_DIR/bin/python"
CRYO_VERSION=0.3.2
# cryo.collect(..., output_format="polars") needs pyarrow, which cryo does not declare:
# without it every call panics inside cryo ("rust future panicked: unknown error").
CRYO_PINS="cryo==$CRYO_VERSION polars==2.1.0 polars-runtime-32==2.1.0 pyarrow==26.0.1"
CRYO_DIR="$CACHE/cryo-$CRYO_VERSION"
CRYO_PYTHON="$CRYO_DIR/bin/python"

log() { echo "deps: $*" >&2; }

install_anvil() {
  if [ -x "$ANVIL_BIN" ]; then return; fi
  case "$(uname -sm)" in
    "Linux x86_64") ;;
    *) log "anvil: only linux x86_64 is supported by this script (found $(uname -sm))"; exit 1 ;;
  esac
  log "installing anvil $ANVIL_VERSION into $ANVIL_DIR"
  local tmp="$ANVIL_DIR.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # --ignore-scripts: the wrapper's postinstall is not needed, the binary ships in the platform package.
  npm install --prefix "$tmp" --no-audit --no-fund --ignore-scripts --loglevel=error \
    "@foundry-rs/anvil@$ANVIL_VERSION" "@foundry-rs/anvil-linux-amd64@$ANVIL_VERSION" >&2
  chmod +x "$tmp/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
  rm -rf "$ANVIL_DIR" && mv "$tmp" "$ANVIL_DIR"
}

install_tansu() {
  if [ -x "$TANSU_BIN" ]; then return; fi
  log "building tansu $TANSU_VERSION into $TANSU_DIR (about 10 minutes on 2 cores, once per machine)"
  local tmp="$TANSU_DIR.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$tmp" --target-dir "$CACHE/tansu-build" >&2
  rm -rf "$TANSU_DIR" && mv "$tmp" "$TANSU_DIR"
  rm -rf "$CACHE/tansu-build"
}

# A venv at $1 with the pip requirements $2. A venv cannot be moved, so it is built in
# place; `.complete` marks a finished install.
install_venv() {
  local dir="$1" pins="$2"
  if [ -f "$dir/.complete" ]; then return; fi
  log "installing $pins into $dir"
  if ! python3 -m venv --help >/dev/null 2>&1; then
    log "python3 has no venv module: installing python3-venv"
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
  fi
  rm -rf "$dir"
  python3 -m venv "$dir" >&2
  # shellcheck disable=SC2086 # one word per requirement
  "$dir/bin/pip" install --quiet --disable-pip-version-check $pins >&2
  touch "$dir/.complete"
}

# fastavro: the tests' independent Avro implementation (scripts/avro_ref.py).
install_fastavro() {
  install_venv "$FASTAVRO_DIR" "fastavro==$FASTAVRO_VERSION"
}

mkdir -p "$CACHE"
# One installer at a time per cache (CI and a developer may share a machine).
exec 9>"$CACHE/.lock"
flock 9
if [ "${1:-}" = "cryo" ]; then
  install_venv "$CRYO_DIR" "$CRYO_PINS"
  echo "export CRYO_PYTHON='$CRYO_PYTHON'"
  exit 0
fi
install_anvil
install_tansu
install_fastavro
"$ANVIL_BIN" --version >&2
if [ "${1:-}" = "env" ]; then
  echo "export ANVIL_BIN='$ANVIL_BIN'"
  echo "export TANSU_BIN='$TANSU_BIN'"
  echo "export FASTAVRO_PYTHON='$FASTAVRO_PYTHON'"
fi
