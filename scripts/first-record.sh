#!/usr/bin/env bash
# Time to the first record: clones this checkout into a temporary directory and runs the
# clone's scripts/demo.sh with an empty tool cache (ETHHOOK_CACHE_DIR in the temporary
# directory) and a cold build (the clone's own target/; Cargo's registry in ~/.cargo is
# used as it is). Prints every line of the demo's stderr but cargo's `Compiling` lines,
# each with the seconds since the start, and the first record; then stops the demo with
# SIGINT, checks that none of its processes and temporary files is left, and removes the
# directory.
# Extra arguments go to scripts/demo.sh.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/ethhook-first-record-XXXXXX")"
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/clone"
mkfifo "$work/stdout"
mkdir "$work/tmp"
export ETHHOOK_CACHE_DIR="$work/cache"
unset CARGO_TARGET_DIR

start=$(date +%s.%N)
elapsed() { awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%6.1f s", n - s }'; }
stamp() {
  while IFS= read -r line; do
    case "$line" in "   Compiling "*) ;; *) echo "$(elapsed)  $line" ;; esac
  done
}
echo "$(elapsed)  start; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
(cd "$work/clone" && TMPDIR="$work/tmp" exec scripts/demo.sh "$@") >"$work/stdout" 2> >(stamp >&2) &
demo=$!
records=0
while IFS= read -r line; do
  records=$((records + 1))
  if [ "$records" = 1 ]; then
    echo "$(elapsed)  first record; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    echo "$line"
    sleep 3
    kill -INT "$demo"
  fi
done <"$work/stdout"
wait "$demo" || echo "first-record.sh: the demo exited with $?" >&2
echo "$(elapsed)  stopped after $records records; CPU time (user, system) of this script, then of the demo and all it ran:" >&2
times >&2
if pgrep -f "$work" >&2; then
  echo "first-record.sh: processes of the demo are still running (above)" >&2
  exit 1
fi
if [ -n "$(ls -A "$work/tmp")" ]; then
  echo "first-record.sh: the demo left files in its TMPDIR: $(ls "$work/tmp")" >&2
  exit 1
fi
