#!/usr/bin/env bash
# Durable KV throughput, Legate vs a single-member etcd, side by side on this machine.
#
#   bash benches/run-vs-etcd.sh            (from the project root)
#
# Runs PUT at 1 client, PUT at 64 clients and GET at 64 clients against both servers with the
# same load generator (benches/kv_load.rs) and prints a markdown table. Both servers listen on
# 127.0.0.1 only, keep their data in one temp dir (same filesystem) and fsync every
# acknowledged write (etcd does by default; Legate always does). Everything started here is
# stopped and removed on exit.
#
# Knobs (environment): DURATION (measured seconds per run, default 10), CONC (default 64),
# KEYS (key pool, default 1000), VALUE_SIZE (bytes, default 100), BENCH_DIR (parent of the
# temp dir, default /tmp).
set -euo pipefail

DURATION=${DURATION:-10}
CONC=${CONC:-64}
KEYS=${KEYS:-1000}
VALUE_SIZE=${VALUE_SIZE:-100}
BENCH_DIR=${BENCH_DIR:-/tmp}

cd "$(dirname "$0")/.."

source "$(dirname "$0")/lib.sh"

# --- etcd (Debian's etcd-server) -------------------------------------------------------------
if ! command -v etcd >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing etcd-server (and curl) with apt-get"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y etcd-server curl
fi
command -v etcd >/dev/null 2>&1 || die "etcd not found after installing etcd-server"

# --- build, temp dir and cleanup ---------------------------------------------------------------
bench_setup kv_load
mkdir -p "$WORK/legate" "$WORK/etcd"
log "data in $WORK ($(df -T "$WORK" | awk 'NR==2 {print $1, $2}'))"

LEGATE_PORT=$(free_port); TAKEN_PORTS="$TAKEN_PORTS$LEGATE_PORT "
ETCD_PORT=$(free_port); TAKEN_PORTS="$TAKEN_PORTS$ETCD_PORT "
ETCD_PEER_PORT=$(free_port)
LEGATE_URL="http://127.0.0.1:$LEGATE_PORT"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"

# --- start both servers ------------------------------------------------------------------------
"$WORK/legate-bin" agent -data-dir "$WORK/legate" -client 127.0.0.1 -http-port "$LEGATE_PORT" \
    -log-level warn >"$WORK/legate.log" 2>&1 &
BENCH_PIDS+=($!)
# Single member, default durability (fsync on every commit), all URLs on 127.0.0.1.
etcd --name bench --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --logger zap --log-level warn >"$WORK/etcd.log" 2>&1 &
BENCH_PIDS+=($!)

wait_ready() { # name url
    for _ in $(seq 1 150); do
        curl -sf -o /dev/null "$2" && return 0
        sleep 0.2
    done
    echo "--- legate.log"; tail -n 20 "$WORK/legate.log"; echo "--- etcd.log"; tail -n 20 "$WORK/etcd.log"
    die "$1 not ready at $2"
}
wait_ready legate "$LEGATE_URL/v1/status/leader"
wait_ready etcd "$ETCD_URL/health"
log "legate at $LEGATE_URL, etcd $(etcd --version | awk 'NR==1 {print $3}') at $ETCD_URL"

# --- runs ----------------------------------------------------------------------------------------
# bench TARGET URL OP CONCURRENCY [extra args] -> prints the RESULT line
bench() {
    local target=$1 url=$2 op=$3 conc=$4; shift 4
    "$WORK/kv_load" --target "$target" --url "$url" --op "$op" --concurrency "$conc" \
        --duration "$DURATION" --keys "$KEYS" --value-size "$VALUE_SIZE" "$@" | grep '^RESULT'
}
field() { # RESULT-line key
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}

ROWS=()
# row LABEL OP CONCURRENCY TARGET_RATIO: one run per server (Legate first), one table row.
row() {
    local label=$1 op=$2 conc=$3 want=$4 l e
    log "$label: legate"
    # A run with failed requests still reports; its errors show in the table.
    l=$(bench legate "$LEGATE_URL" "$op" "$conc") || true; echo "$l" >&2
    log "$label: etcd"
    e=$(bench etcd "$ETCD_URL" "$op" "$conc") || true; echo "$e" >&2
    [ -n "$l" ] && [ -n "$e" ] || die "$label: a run printed no result"
    ROWS+=("$(awk -v label="$label" -v want="$want" \
        -v lo="$(field "$l" ops_per_sec)" -v eo="$(field "$e" ops_per_sec)" \
        -v l50="$(field "$l" p50_ms)" -v e50="$(field "$e" p50_ms)" \
        -v l99="$(field "$l" p99_ms)" -v e99="$(field "$e" p99_ms)" \
        -v lerr="$(field "$l" errors)" -v eerr="$(field "$e" errors)" 'BEGIN {
            r = (eo > 0) ? lo / eo : 0
            t = (want == "-") ? "-" : sprintf("%s %sx", (r >= want) ? "PASS >=" : "FAIL <", want)
            if (lerr + eerr > 0) label = label sprintf(" (errors: legate %d, etcd %d)", lerr, eerr)
            printf "| %s | %.0f | %.0f | %.2fx | %s | %.2f / %.2f | %.2f / %.2f |", label, lo, eo, r, t, l50, l99, e50, e99
        }')")
}

row "PUT, 1 client" put 1 -
row "PUT, $CONC clients" put "$CONC" 2
log "preloading $KEYS keys into both"
bench legate "$LEGATE_URL" put 16 --ops "$KEYS" >/dev/null
bench etcd "$ETCD_URL" put 16 --ops "$KEYS" >/dev/null
row "GET, $CONC clients" get "$CONC" 1

# --- report --------------------------------------------------------------------------------------
echo
echo "Durable KV throughput, ${DURATION}s per run, $KEYS keys, ${VALUE_SIZE}-byte values, $(nproc) cores, loopback HTTP/1.1"
echo
echo "| operation | legate ops/s | etcd ops/s | legate/etcd | target | legate p50 / p99 ms | etcd p50 / p99 ms |"
echo "|---|---:|---:|---:|---|---:|---:|"
printf '%s\n' "${ROWS[@]}"
