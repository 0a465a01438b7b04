#!/usr/bin/env bash
# Installs the pinned local stack (anvil, tansu) into a per-user cache outside the checkout,
# keyed by version, and reuses it when present. Prints nothing but progress on stderr;
# `scripts/deps.sh env` prints `export` lines for ANVIL_BIN and TANSU_BIN.
#
#   ETHHOOK_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/ethhook)
set -euo pipefail

ANVIL_VERSION=1.7.1
TANSU_VERSION=0.6.0
CACHE="${ETHHOOK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ethhook}"
ANVIL_DIR="$CACHE/anvil-$ANVIL_VERSION"
TANSU_DIR="$CACHE/tansu-$TANSU_VERSION"
ANVIL_BIN="$ANVIL_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
TANSU_BIN="$TANSU_DIR/bin/tansu"

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

mkdir -p "$CACHE"
# One installer at a time per cache (CI and a developer may share a machine).
exec 9>"$CACHE/.lock"
flock 9
install_anvil
install_tansu
"$ANVIL_BIN" --version >&2
if [ "${1:-}" = "env" ]; then
  echo "export ANVIL_BIN='$ANVIL_BIN'"
  echo "export TANSU_BIN='$TANSU_BIN'"
fi
