#!/usr/bin/env bash
# Connect leaf certificates: issuance rate (new key pair, CA signature and a durable write
# each) and cached reads, on an agent with Connect enabled (benches/leaf_issuance.rs).
#
#   bash benches/run-leaf-issuance.sh            (from anywhere in the tree)
#
# Knobs (environment): SERVICES (default 5000), CONCURRENCY (default 8), BENCH_DIR. Numbers are
# reported, not asserted. Everything started here is stopped and removed on exit.
set -euo pipefail

SERVICES=${SERVICES:-5000}
CONCURRENCY=${CONCURRENCY:-8}

cd "$(dirname "$0")/.."
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null 2>&1 || die "curl is needed"

bench_setup leaf_issuance
mkdir -p "$WORK/data"
start_agent "$WORK/legate-bin" "$WORK/data" "$WORK/legate.log" -hcl 'connect { enabled = true }'
log "agent pid $AGENT_PID at $URL"
"$WORK/leaf_issuance" --url "$URL" --services "$SERVICES" --concurrency "$CONCURRENCY"
echo "(agent and load generator share this machine's $(nproc) cores; EC P-256 leaves, each issuance fsynced)"
