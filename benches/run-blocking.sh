#!/usr/bin/env bash
# Blocking-query wake latency and memory: 10,000 watchers parked on /v1/health/service/<name>
# over 1,000 services, one change at a time (benches/blocking_wake.rs).
#
#   bash benches/run-blocking.sh            (from the project root)
#
# Builds release, starts an agent on 127.0.0.1 (temp data dir, free port, raised open-file
# limit), runs the bench with the agent's pid (for its RSS) and prints its RESULT line and
# markdown table. Targets (wake p99 < 10 ms, RSS < 100 MB) are reported, not asserted; the
# script fails only if the bench finds unexpected/missed wakeups or errors, or cannot run.
# Everything started here is stopped and removed on exit.
#
# Knobs (environment): SERVICES (default 1000), PER_SERVICE (watchers per service, default 10),
# ROUNDS (default 100), SETTLE (seconds, default 3), NOFILE (wanted open-file limit, default
# 65536; the hard limit caps it), BENCH_DIR (parent of the temp dir, default /tmp).
# Extra arguments are passed to the bench (e.g. --threads 1).
set -euo pipefail

SERVICES=${SERVICES:-1000}
PER_SERVICE=${PER_SERVICE:-10}
ROUNDS=${ROUNDS:-100}
SETTLE=${SETTLE:-3}
NOFILE=${NOFILE:-65536}
BENCH_DIR=${BENCH_DIR:-/tmp}

cd "$(dirname "$0")/.."

source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null 2>&1 || die "curl is needed"

# --- open files: both processes hold one socket per watcher -------------------------------------
WATCHERS=$((SERVICES * PER_SERVICE))
ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((WATCHERS + 256)) ] ||
    die "open-file limit $(ulimit -n) (hard $(ulimit -Hn)) is too low for $WATCHERS watchers"
log "open-file limit $(ulimit -n)"

# --- build, temp dir and cleanup ---------------------------------------------------------------
bench_setup blocking_wake
mkdir -p "$WORK/data"

# --- agent ---------------------------------------------------------------------------------------
start_agent "$WORK/legate-bin" "$WORK/data" "$WORK/legate.log"
log "agent pid $AGENT_PID at $URL, data in $WORK ($(df -T "$WORK" | awk 'NR==2 {print $1, $2}'))"

# --- run -----------------------------------------------------------------------------------------
STATUS=0
"$WORK/blocking_wake" --url "$URL" --agent-pid "$AGENT_PID" --services "$SERVICES" \
    --watchers-per-service "$PER_SERVICE" --rounds "$ROUNDS" --settle "$SETTLE" "$@" \
    >"$WORK/out.txt" || STATUS=$?
kill -0 "$AGENT_PID" 2>/dev/null || { tail -n 20 "$WORK/legate.log" >&2; die "the agent died during the run"; }
# Watchers stopped mid-request at the end make hyper log `IncompleteMessage`; show the rest.
if [ -s "$WORK/legate.log" ]; then
    INCOMPLETE=$(grep -c 'IncompleteMessage' "$WORK/legate.log" || true)
    log "agent log: $(wc -l <"$WORK/legate.log") lines, $INCOMPLETE of them IncompleteMessage (watchers closed at the end)"
    grep -v 'IncompleteMessage' "$WORK/legate.log" | tail -n 10 >&2 || true
fi
echo
cat "$WORK/out.txt"
echo
echo "(agent and load generator share this machine's $(nproc) cores; data dir on $(df -T "$WORK" | awk 'NR==2 {print $2}'))"
[ "$STATUS" -eq 0 ] || die "the bench reported problems (exit $STATUS)"
