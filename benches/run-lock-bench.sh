#!/usr/bin/env bash
# Lock benchmark: acquire/release round trips per second on one shared key with 1 and 32
# contending clients, each with its own session (benches/lock_bench.rs).
#
#   bash benches/run-lock-bench.sh            (from anywhere in the tree)
#
# Builds release, starts an agent on 127.0.0.1 (temp data dir, free port), runs the bench for
# DURATION seconds per client count and prints its RESULT lines and markdown table. Numbers are
# reported, not asserted; the script fails only if the bench saw request errors or a LockIndex
# that does not match the acquisitions, or cannot run. Everything started here is stopped and
# removed on exit.
#
# Knobs (environment): CLIENTS (comma-separated, default 1,32), DURATION (seconds, default 10),
# BENCH_DIR (parent of the temp dir, default /tmp). Extra arguments go to the bench
# (e.g. --threads 1).
set -euo pipefail

CLIENTS=${CLIENTS:-1,32}
DURATION=${DURATION:-10}
BENCH_DIR=${BENCH_DIR:-/tmp}

cd "$(dirname "$0")/.."

source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null 2>&1 || die "curl is needed"

# --- build, temp dir and cleanup ---------------------------------------------------------------
bench_setup lock_bench
mkdir -p "$WORK/data"

# --- agent ---------------------------------------------------------------------------------------
start_agent "$WORK/legate-bin" "$WORK/data" "$WORK/legate.log"
log "agent pid $AGENT_PID at $URL, data in $WORK ($(df -T "$WORK" | awk 'NR==2 {print $1, $2}'))"

# --- run -----------------------------------------------------------------------------------------
STATUS=0
"$WORK/lock_bench" --url "$URL" --clients "$CLIENTS" --duration "$DURATION" "$@" \
    >"$WORK/out.txt" || STATUS=$?
kill -0 "$AGENT_PID" 2>/dev/null || { tail -n 20 "$WORK/legate.log" >&2; die "the agent died during the run"; }
if [ -s "$WORK/legate.log" ]; then
    log "agent log (tail):"
    tail -n 10 "$WORK/legate.log" >&2
fi
echo
cat "$WORK/out.txt"
echo
echo "(agent and load generator share this machine's $(nproc) cores; data dir on $(df -T "$WORK" | awk 'NR==2 {print $2}'); every acquire and release is a durable write)"
[ "$STATUS" -eq 0 ] || die "the bench reported problems (exit $STATUS)"
