#!/usr/bin/env bash
# The sink half of the local stack: Apicurio Registry, Kafka Connect with the Debezium JDBC
# sink and Apicurio's Avro converter, and PostgreSQL. Meant to be sourced by scripts/deps.sh
# (which sets CACHE and log and holds the cache's lock); defines install_apicurio,
# install_connect, install_postgres and jvm_env. Also runs alone:
#
#   bash scripts/deps-jvm.sh        install all three
#   bash scripts/deps-jvm.sh env    install, then print `export` lines for
#                                   APICURIO_HOME, APICURIO_JAVA, CONNECT_LIBS,
#                                   CONNECT_PLUGINS and POSTGRES_BIN
#
# Maven artifacts come from Maven Central only (scripts/maven/settings.xml) into a private
# repository under the cache ($CACHE/m2); the pins live in scripts/maven/*/pom.xml.
#
#   ETHHOOK_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/ethhook)
#   APICURIO_JAVA      a java of version 21 or newer for Apicurio (default: the first found)

CACHE="${CACHE:-${ETHHOOK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ethhook}}"
JVM_MAVEN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/maven"
M2_REPO="$CACHE/m2"

# The value of <$2> in scripts/maven/$1/pom.xml.
pom_pin() {
  sed -n "s|.*<$2>\(.*\)</$2>.*|\1|p" "$JVM_MAVEN_DIR/$1/pom.xml" | head -n 1
}

APICURIO_VERSION="$(pom_pin apicurio apicurio.version)"
CONNECT_VERSION="$(pom_pin connect kafka.version)"
DEBEZIUM_JDBC_VERSION="$(pom_pin debezium-jdbc debezium.version)"
APICURIO_CONVERTER_VERSION="$(pom_pin apicurio-converter apicurio.converter.version)"
APICURIO_HOME="$CACHE/apicurio-registry-$APICURIO_VERSION"
CONNECT_LIBS="$CACHE/connect-$CONNECT_VERSION/lib"
# Connect's plugin.path: one directory per plugin below it, each with its own class loader.
CONNECT_PLUGINS="$CACHE/connect-plugins-debezium-$DEBEZIUM_JDBC_VERSION-apicurio-$APICURIO_CONVERTER_VERSION"
POSTGRES_BIN=""

if ! declare -F log >/dev/null; then
  log() { echo "deps: $*" >&2; }
fi

need_maven() {
  if command -v mvn >/dev/null 2>&1; then return; fi
  log "mvn not found: installing maven"
  apt-get update -qq >&2 && apt-get install -y -qq maven >&2
}

# mvn on scripts/maven/$1/pom.xml, quietly, against Maven Central and the private repository.
# Its build directory is a temporary one, not target/ in the checkout: unpack-dependencies
# keeps markers there and would skip an unpack it remembers.
jvm_mvn() {
  local pom="$1" build
  shift
  need_maven
  build="$(mktemp -d)"
  mvn -q -B -Dstyle.color=never -s "$JVM_MAVEN_DIR/settings.xml" -Dmaven.repo.local="$M2_REPO" \
    -f "$JVM_MAVEN_DIR/$pom/pom.xml" -DmarkersDirectory="$build/markers" "$@" >&2 || {
    rm -rf "$build"
    return 1
  }
  rm -rf "$build"
}

# The major Java version of the java binary $1 (17, 21, 25...).
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}

# A java of version 21 or newer: Apicurio Registry 3.3 is built for it.
apicurio_java() {
  local candidates=() j major
  if [ -n "${APICURIO_JAVA:-}" ]; then candidates+=("$APICURIO_JAVA"); fi
  if [ -n "${JAVA_HOME:-}" ]; then candidates+=("$JAVA_HOME/bin/java"); fi
  if command -v java >/dev/null 2>&1; then candidates+=("$(command -v java)"); fi
  for j in /usr/lib/jvm/*/bin/java; do candidates+=("$j"); done
  for j in "${candidates[@]}"; do
    [ -x "$j" ] || continue
    major="$(java_major "$j")"
    if [ -n "$major" ] && [ "$major" -ge 21 ]; then
      echo "$j"
      return 0
    fi
  done
  log "Apicurio Registry $APICURIO_VERSION needs Java 21 or newer; none found (set APICURIO_JAVA)"
  return 1
}

install_apicurio() {
  apicurio_java >/dev/null
  if [ -f "$APICURIO_HOME/quarkus-run.jar" ]; then return; fi
  log "installing Apicurio Registry $APICURIO_VERSION into $APICURIO_HOME"
  local tmp="$APICURIO_HOME.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  jvm_mvn apicurio dependency:unpack-dependencies -DoutputDirectory="$tmp"
  if [ ! -f "$tmp/quarkus-run.jar" ]; then
    log "the Apicurio Registry distribution has no quarkus-run.jar"
    return 1
  fi
  rm -rf "$APICURIO_HOME" && mv "$tmp" "$APICURIO_HOME"
}

install_connect() {
  if [ ! -d "$CONNECT_LIBS" ]; then
    log "installing Kafka Connect $CONNECT_VERSION into $CONNECT_LIBS"
    local tmp="$CONNECT_LIBS.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    jvm_mvn connect dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp"
    mv "$tmp" "$CONNECT_LIBS"
  fi
  if [ ! -d "$CONNECT_PLUGINS" ]; then
    log "installing the Debezium JDBC sink $DEBEZIUM_JDBC_VERSION and Apicurio's converter" \
      "$APICURIO_CONVERTER_VERSION into $CONNECT_PLUGINS"
    local tmp="$CONNECT_PLUGINS.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    # Unpacks into $tmp/debezium-connector-jdbc.
    jvm_mvn debezium-jdbc dependency:unpack-dependencies -DoutputDirectory="$tmp"
    jvm_mvn apicurio-converter dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$tmp/apicurio-converter"
    # The 2.x converter jar has no ServiceLoader manifest. With one, the worker finds its
    # plugins by plugin.discovery=service_load in about a second; scanning every class of
    # the plugin path instead takes about 15 s.
    python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("META-INF/services/org.apache.kafka.connect.storage.Converter",
               "io.apicurio.registry.utils.converter.AvroConverter\n")
' "$tmp/apicurio-converter/ethhook-apicurio-converter-manifest.jar"
    if [ ! -d "$tmp/debezium-connector-jdbc" ]; then
      log "the Debezium JDBC plugin tarball has no debezium-connector-jdbc directory"
      return 1
    fi
    mv "$tmp" "$CONNECT_PLUGINS"
  fi
}

# The newest PostgreSQL server of Debian's packages, installed if none is. Tests start their
# own server (initdb and postgres on a data directory of their own), never the system one.
install_postgres() {
  POSTGRES_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$POSTGRES_BIN" ] && [ -x "$POSTGRES_BIN/initdb" ] && [ -x "$POSTGRES_BIN/psql" ]; then
    return
  fi
  log "installing PostgreSQL from Debian's packages (without a 'main' cluster or service)"
  mkdir -p /etc/postgresql-common
  if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  fi
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
  POSTGRES_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$POSTGRES_BIN" ] || [ ! -x "$POSTGRES_BIN/initdb" ]; then
    log "postgresql is installed but no /usr/lib/postgresql/*/bin/initdb was found"
    return 1
  fi
}

jvm_env() {
  echo "export APICURIO_HOME='$APICURIO_HOME'"
  echo "export APICURIO_JAVA='$(apicurio_java)'"
  echo "export CONNECT_LIBS='$CONNECT_LIBS'"
  echo "export CONNECT_PLUGINS='$CONNECT_PLUGINS'"
  echo "export POSTGRES_BIN='$POSTGRES_BIN'"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  mkdir -p "$CACHE"
  # One installer at a time per cache, the same lock as scripts/deps.sh.
  exec 9>"$CACHE/.lock"
  flock 9
  install_apicurio
  install_connect
  install_postgres
  if [ "${1:-}" = "env" ]; then
    jvm_env
  fi
fi
