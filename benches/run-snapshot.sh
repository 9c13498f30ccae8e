#!/usr/bin/env bash
# Snapshot save and restore time for 100,000 keys and 10,000 services (benches/snapshot.rs).
#
#   bash benches/run-snapshot.sh            (from the project root)
#
# Builds release, then the bench starts its own agents on 127.0.0.1 (free ports, temp data dirs
# under BENCH_DIR), loads them, and times `legate snapshot save|inspect|restore` online and
# offline (-data-dir), each as a separate process. Prints its RESULT line and a markdown table.
# Numbers are reported, not asserted; the script fails only if a command fails or a restored
# agent does not hold every key and service. Everything started here is stopped and removed on
# exit.
#
# Knobs (environment): KEYS (default 100000), SERVICES (default 10000), VALUE_SIZE (bytes,
# default 100), BENCH_DIR (parent of the temp dir, default /tmp). Extra arguments are passed to
# the bench (e.g. --concurrency 32).
set -euo pipefail

KEYS=${KEYS:-100000}
SERVICES=${SERVICES:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
BENCH_DIR=${BENCH_DIR:-/tmp}

cd "$(dirname "$0")/.."

source "$(dirname "$0")/lib.sh"

bench_setup snapshot

"$WORK/snapshot" --legate "$WORK/legate-bin" --dir "$WORK" --keys "$KEYS" \
    --services "$SERVICES" --value-size "$VALUE_SIZE" "$@"
echo
echo "(agents and CLI share this machine's $(nproc) cores; data on $(df -T "$WORK" | awk 'NR==2 {print $2}'))"
