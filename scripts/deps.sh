#!/usr/bin/env bash
# Installs the pinned local stack (anvil, Apache Kafka, fastavro, and through
# scripts/deps-jvm.sh Apicurio Registry, Kafka Connect with the Debezium JDBC sink and
# Apicurio's converter, and PostgreSQL) into a per-user cache outside the checkout, keyed by
# version, and reuses it when present. Prints nothing but progress on stderr;
# `scripts/deps.sh env` prints `export` lines for ANVIL_BIN, KAFKA_LIBS (the broker's jars),
# JAVA_BIN, FASTAVRO_PYTHON (fastavro, the tests' independent Avro implementation, in a venv),
# ETHABI_PYTHON (eth-abi and fastavro, the decoded-event tests' reference, in a venv),
# APICURIO_HOME, APICURIO_JAVA, CONNECT_LIBS, CONNECT_PLUGINS, POSTGRES_BIN, and
# PROMETHEUS_BIN and PROMTOOL_BIN (Prometheus and promtool from Debian, for the alert rules'
# tests), and JAEGER_BIN (Jaeger, built with Go, the tracing test's backend).
# `scripts/deps.sh cryo` installs only cryo (the benchmark's comparison, in a venv)
# and prints CRYO_PYTHON. `scripts/deps.sh openssl-dev` installs OpenSSL's headers and
# pkg-config from Debian when missing (a build without vendored OpenSSL needs them).
# `scripts/deps.sh demo` installs only what scripts/demo.sh runs
# (anvil, Apache Kafka, fastavro) and prints ANVIL_BIN, KAFKA_LIBS, JAVA_BIN and FASTAVRO_PYTHON.
#
# Kafka comes from Maven Central: scripts/maven/kafka/pom.xml names it (and its logging,
# which Kafka's pom leaves to the release tarball), `mvn dependency:copy-dependencies` copies
# the jars into $CACHE/kafka-<version>/lib with a Maven repository of its own ($CACHE/m2).
# Java 17 and Maven come from Debian when missing.
#
#   ETHHOOK_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/ethhook)
set -euo pipefail

ANVIL_VERSION=1.7.1
FASTAVRO_VERSION=1.10.0
CACHE="${ETHHOOK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ethhook}"
ANVIL_DIR="$CACHE/anvil-$ANVIL_VERSION"
ANVIL_BIN="$ANVIL_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KAFKA_POM="$ROOT/scripts/maven/kafka/pom.xml"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")
# Keyed by the pom's content too: a dependency added there installs afresh.
KAFKA_DIR="$CACHE/kafka-$KAFKA_VERSION-$(sha256sum "$KAFKA_POM" | cut -c1-10)"
KAFKA_LIBS="$KAFKA_DIR/lib"
FASTAVRO_DIR="$CACHE/fastavro-$FASTAVRO_VERSION"
FASTAVRO_PYTHON="$FASTAVRO_DIR/bin/python"
# eth-abi: the tests' independent ABI encoder (scripts/eth_abi_ref.py), beside fastavro to
# read back what the decoder wrote.
ETH_ABI_VERSION=5.2.0
ETHABI_DIR="$CACHE/eth-abi-$ETH_ABI_VERSION-fastavro-$FASTAVRO_VERSION"
ETHABI_PYTHON="$ETHABI_DIR/bin/python"
CRYO_VERSION=0.3.2
# cryo.collect(..., output_format="polars") needs pyarrow, which cryo does not declare:
# without it every call panics inside cryo ("rust future panicked: unknown error").
CRYO_PINS="cryo==$CRYO_VERSION polars==2.1.0 polars-runtime-32==2.1.0 pyarrow==26.0.1"
CRYO_DIR="$CACHE/cryo-$CRYO_VERSION"
CRYO_PYTHON="$CRYO_DIR/bin/python"
# Jaeger (the v2 binary, an OpenTelemetry Collector build): the tests' real trace backend,
# built from source with Go (its own module cache under $CACHE/go).
JAEGER_VERSION=1.75.0
JAEGER_DIR="$CACHE/jaeger-$JAEGER_VERSION"
JAEGER_BIN="$JAEGER_DIR/bin/jaeger"

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

# java and mvn from Debian (the machine may have neither).
install_java() {
  if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then return; fi
  log "installing Java 17 and Maven from Debian"
  apt-get update -qq >&2 && apt-get install -y -qq openjdk-17-jre-headless maven >&2
}

# The broker's jars, copied by Maven into $KAFKA_LIBS; `.complete` marks a finished install.
install_kafka() {
  if [ -f "$KAFKA_DIR/.complete" ]; then return; fi
  install_java
  log "installing Apache Kafka $KAFKA_VERSION into $KAFKA_DIR (Maven Central)"
  local tmp="$KAFKA_DIR.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # Maven prints colour resets even in batch mode: stripped.
  mvn -q -B -f "$KAFKA_POM" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DoutputDirectory="$tmp/lib" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
  rm -rf "$KAFKA_DIR" && mv "$tmp" "$KAFKA_DIR"
  touch "$KAFKA_DIR/.complete"
}

# Starts the broker once and keeps the classes it loaded in a CDS archive
# ($KAFKA_DIR/kafka.jsa), which devstack hands to every broker it starts: about 1.5 s less
# per start on 2 cores, for the tests' many brokers. Writing it takes a broker's start and
# stop, more than it saves the demo's one broker, so `demo` skips it. This also shows that
# the install runs and logs. The archive is an optimisation only: without it brokers start
# all the same. `.archive-tried` marks an attempt, so a failed one is not repeated.
kafka_class_archive() {
  if [ -f "$KAFKA_DIR/kafka.jsa" ] || [ -f "$KAFKA_DIR/.archive-tried" ]; then return; fi
  local run="$KAFKA_DIR/archive-run" java_bin
  java_bin="$(command -v java)"
  rm -rf "$run" && mkdir -p "$run"
  local ports
  ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
  set -- $ports
  cat >"$run/server.properties" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$2
log.dirs=$run/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
  cat >"$run/log4j2.properties" <<EOF
appender.file.type = File
appender.file.name = file
appender.file.fileName = $run/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
EOF
  local jvm=("$java_bin" -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Dlog4j2.configurationFile="$run/log4j2.properties" -cp "$KAFKA_LIBS/*")
  "${jvm[@]}" kafka.tools.StorageTool format -t "$(python3 -c 'import base64,os;print(base64.urlsafe_b64encode(b"\x10"+os.urandom(15)).decode().rstrip("="))')" \
    -c "$run/server.properties" --standalone >"$run/format.out" 2>&1
  "${jvm[@]}" -XX:ArchiveClassesAtExit="$KAFKA_DIR/kafka.jsa.tmp" kafka.Kafka "$run/server.properties" \
    >"$run/stdout" 2>&1 &
  local pid=$! i
  for i in $(seq 1 1200); do
    if grep -q "Kafka Server started" "$run/kafka.log" 2>/dev/null; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if ! grep -q "Kafka Server started" "$run/kafka.log" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    log "kafka: the broker did not start; its log:"
    tail -n 30 "$run/kafka.log" "$run/stdout" >&2 || true
    exit 1
  fi
  log "kafka: the broker starts and logs; writing its class archive"
  kill -TERM "$pid"
  for i in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -s "$KAFKA_DIR/kafka.jsa.tmp" ]; then
    mv "$KAFKA_DIR/kafka.jsa.tmp" "$KAFKA_DIR/kafka.jsa"
  else
    log "kafka: no class archive written (brokers start without one)"
  fi
  rm -rf "$run"
  touch "$KAFKA_DIR/.archive-tried"
}

# Prometheus and promtool from Debian when missing (the alert rules' tests run both).
install_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then return; fi
  log "installing Prometheus (and promtool) from Debian"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >&2
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

# eth-abi and fastavro: the decoded-event tests' independent encoder and reader.
install_eth_abi() {
  install_venv "$ETHABI_DIR" "eth-abi==$ETH_ABI_VERSION fastavro==$FASTAVRO_VERSION"
}

# Jaeger from source: `go install` of the pinned module into $JAEGER_DIR/bin;
# `.complete` marks a finished install. Needs Go (on PATH or in /usr/local/go/bin).
install_jaeger() {
  if [ -f "$JAEGER_DIR/.complete" ]; then return; fi
  local go_bin
  go_bin="$(command -v go || true)"
  if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then go_bin=/usr/local/go/bin/go; fi
  if [ -z "$go_bin" ]; then
    log "jaeger: Go is missing (neither on PATH nor in /usr/local/go/bin); install Go to build Jaeger $JAEGER_VERSION"
    exit 1
  fi
  log "installing Jaeger $JAEGER_VERSION into $JAEGER_DIR (go build, $("$go_bin" version))"
  local tmp="$JAEGER_DIR.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp/bin"
  # Not `go install module@version`: Jaeger's go.mod has a `replace` directive, which `go
  # install` refuses. So: the module's source from the Go module proxy into the module cache,
  # then `go build` inside it (its own go.mod and go.sum pin every dependency). The UI's assets
# are not in the module: this Jaeger serves a placeholder page, its query API is complete.
  local gocache=(env GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOTOOLCHAIN=local)
  local src
  src=$("${gocache[@]}" "$go_bin" mod download -json "github.com/jaegertracing/jaeger@v$JAEGER_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  (cd "$src" && "${gocache[@]}" GOFLAGS=-mod=readonly "$go_bin" build -trimpath -o "$tmp/bin/jaeger" ./cmd/jaeger) >&2
  rm -rf "$JAEGER_DIR" && mv "$tmp" "$JAEGER_DIR"
  touch "$JAEGER_DIR/.complete"
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
if [ "${1:-}" = "openssl-dev" ]; then
  if ! pkg-config --exists openssl 2>/dev/null; then
    log "installing OpenSSL's headers (libssl-dev) and pkg-config from Debian"
    apt-get update -qq >&2 && apt-get install -y -qq libssl-dev pkg-config >&2
  fi
  exit 0
fi
if [ "${1:-}" = "demo" ]; then
  install_anvil
  install_kafka
  install_fastavro
  log "ready: anvil $ANVIL_VERSION, Apache Kafka $KAFKA_VERSION, fastavro $FASTAVRO_VERSION"
  echo "export ANVIL_BIN='$ANVIL_BIN'"
  echo "export KAFKA_LIBS='$KAFKA_LIBS'"
  echo "export JAVA_BIN='$(command -v java)'"
  echo "export FASTAVRO_PYTHON='$FASTAVRO_PYTHON'"
  exit 0
fi
# The sink half: Apicurio Registry, Kafka Connect (Debezium JDBC sink, Apicurio's
# converter) and PostgreSQL.
# shellcheck source=scripts/deps-jvm.sh
source "$ROOT/scripts/deps-jvm.sh"
install_anvil
install_kafka
kafka_class_archive
install_fastavro
install_eth_abi
install_apicurio
install_connect
install_postgres
install_prometheus
install_jaeger
"$ANVIL_BIN" --version >&2
if [ "${1:-}" = "env" ]; then
  echo "export ANVIL_BIN='$ANVIL_BIN'"
  echo "export KAFKA_LIBS='$KAFKA_LIBS'"
  echo "export JAVA_BIN='$(command -v java)'"
  echo "export FASTAVRO_PYTHON='$FASTAVRO_PYTHON'"
  echo "export ETHABI_PYTHON='$ETHABI_PYTHON'"
  echo "export PROMETHEUS_BIN='$(command -v prometheus)'"
  echo "export PROMTOOL_BIN='$(command -v promtool)'"
  echo "export JAEGER_BIN='$JAEGER_BIN'"
  jvm_env
fi
