#!/usr/bin/env bash
# Durable KV throughput, Legate vs a single-member etcd, side by side on this machine.
#
#   bash benches/run-vs-etcd.sh                      (from the project root)
#   BASELINE_REV=main bash benches/run-vs-etcd.sh    (adds that revision's Legate as a column)
#
# Runs PUT at 1 client, PUT at 64 clients and GET at 64 clients against Legate (/v1/kv) and
# against etcd two ways: its JSON gateway (/v3/kv over HTTP/1.1, the same generator as Legate,
# benches/kv_load.rs) and its native gRPC API, as etcd's users call it (benches/etcd-grpc/, a
# crate of its own so that Legate's build never compiles tonic/prost; same closed loop, key
# pool and RESULT line). Each row runs every server twice, the second pass in reverse order,
# and reports the mean throughput (a run straight after another server's fsync-heavy run is
# slower, so one fixed order would favour whoever runs later). Prints markdown tables:
# throughput with the ratios legate/etcd-json (against its target) and legate/etcd-grpc, then
# the first pass's p50 / p99 latencies. All servers listen on
# 127.0.0.1 only, keep their data in one temp dir (same filesystem) and fsync every
# acknowledged write (etcd does by default; Legate always does). Everything started here is
# stopped and removed on exit.
#
# BASELINE_REV=<git rev> measures a change against the code before it in the same run: that
# revision's legate is built in release in a temporary git worktree (removed on exit; its
# target dir BASELINE_TARGET_DIR, default /tmp/legate-baseline-target, is kept between runs so
# later builds only recompile what changed) and runs as a "baseline" column with the same
# flags and its own data dir, with its own ratios and legate/baseline.
#
# Knobs (environment): DURATION (measured seconds per run, default 10), CONC (default 64),
# KEYS (key pool, default 1000), VALUE_SIZE (bytes, default 100), BENCH_DIR (parent of the
# temp dir, default /tmp), BASELINE_REV, BASELINE_TARGET_DIR (absolute path).
set -euo pipefail

DURATION=${DURATION:-10}
CONC=${CONC:-64}
KEYS=${KEYS:-1000}
VALUE_SIZE=${VALUE_SIZE:-100}
BENCH_DIR=${BENCH_DIR:-/tmp}
BASELINE_TARGET_DIR=${BASELINE_TARGET_DIR:-/tmp/legate-baseline-target}

cd "$(dirname "$0")/.."

source "$(dirname "$0")/lib.sh"

# --- Debian packages: etcd-server, curl, and protobuf-compiler because etcd-client's build
# script compiles etcd's .proto files with protoc -----------------------------------------------
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing ${missing[*]} with apt-get"
    # apt's output goes to stderr with the other progress: stdout is the report.
    $SUDO apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}" >&2
fi
command -v etcd >/dev/null 2>&1 || die "etcd not found after installing etcd-server"

# --- builds, temp dir and cleanup ---------------------------------------------------------------
bench_setup kv_load
log "building the etcd gRPC load generator (benches/etcd-grpc)"
cargo build --release --locked --manifest-path benches/etcd-grpc/Cargo.toml
cp "${CARGO_TARGET_DIR:-benches/etcd-grpc/target}/release/etcd-grpc" "$WORK/etcd-grpc"

# Columns, in table order; etcd-json and etcd-grpc load the same etcd.
SERVERS=(legate)
# Throughput ratios "A B" (A/B); the first is checked against each row's target.
RATIOS=("legate etcd-json" "legate etcd-grpc")
if [ -n "${BASELINE_REV:-}" ]; then
    rev=$(git rev-parse --verify "$BASELINE_REV^{commit}") || die "BASELINE_REV=$BASELINE_REV is not a commit"
    log "building legate at $BASELINE_REV (${rev:0:12}) in $BASELINE_TARGET_DIR"
    git worktree add --detach "$WORK/baseline-src" "$rev" >&2
    trap 'git worktree remove --force "$WORK/baseline-src" || true; bench_cleanup' EXIT
    (cd "$WORK/baseline-src" && CARGO_TARGET_DIR=$BASELINE_TARGET_DIR cargo build --release --bin legate)
    cp "$BASELINE_TARGET_DIR/release/legate" "$WORK/baseline-bin"
    SERVERS+=(baseline)
    RATIOS+=("baseline etcd-json" "baseline etcd-grpc" "legate baseline")
fi
SERVERS+=(etcd-json etcd-grpc)
log "data in $WORK ($(df -T "$WORK" | awk 'NR==2 {print $1, $2}'))"

# --- start the servers ---------------------------------------------------------------------------
mkdir -p "$WORK/legate" "$WORK/etcd"
start_agent "$WORK/legate-bin" "$WORK/legate" "$WORK/legate.log"
LEGATE_URL=$URL
if [ -n "${BASELINE_REV:-}" ]; then
    mkdir -p "$WORK/baseline"
    start_agent "$WORK/baseline-bin" "$WORK/baseline" "$WORK/baseline.log"
    BASELINE_URL=$URL
fi
ETCD_PORT=$(free_port); TAKEN_PORTS="$TAKEN_PORTS$ETCD_PORT "
ETCD_PEER_PORT=$(free_port); TAKEN_PORTS="$TAKEN_PORTS$ETCD_PEER_PORT "
# One URL serves both the JSON gateway and gRPC.
ETCD_URL="http://127.0.0.1:$ETCD_PORT"
# Single member, default durability (fsync on every commit), all URLs on 127.0.0.1.
etcd --name bench --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --logger zap --log-level warn >"$WORK/etcd.log" 2>&1 &
BENCH_PIDS+=($!)
for _ in $(seq 1 150); do
    curl -sf -o /dev/null "$ETCD_URL/health" && break
    sleep 0.2
done
curl -sf -o /dev/null "$ETCD_URL/health" || { tail -n 20 "$WORK/etcd.log" >&2; die "etcd not ready at $ETCD_URL"; }
log "legate at $LEGATE_URL${BASELINE_URL:+, baseline at $BASELINE_URL}, etcd $(etcd --version | awk 'NR==1 {print $3}') at $ETCD_URL"

# --- runs ----------------------------------------------------------------------------------------
# bench SERVER OP CONCURRENCY [extra args] -> prints the RESULT line
bench() {
    local server=$1 op=$2 conc=$3 gen; shift 3
    case $server in
        legate) gen=("$WORK/kv_load" --target legate --url "$LEGATE_URL") ;;
        baseline) gen=("$WORK/kv_load" --target legate --url "$BASELINE_URL") ;;
        etcd-json) gen=("$WORK/kv_load" --target etcd --url "$ETCD_URL") ;;
        etcd-grpc) gen=("$WORK/etcd-grpc" --url "$ETCD_URL") ;;
    esac
    "${gen[@]}" --op "$op" --concurrency "$conc" --duration "$DURATION" --keys "$KEYS" \
        --value-size "$VALUE_SIZE" "$@" | grep '^RESULT'
}
field() { # RESULT-line key
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}
ratio() { # A B -> "A/B" as e.g. 1.23x
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0) ? a / b : 0 }'
}
verdict() { # A B TARGET -> whether A/B reaches TARGET ("-": no target)
    awk -v a="$1" -v b="$2" -v want="$3" 'BEGIN {
        if (want == "-") { print "-"; exit }
        r = (b > 0) ? a / b : 0
        printf "%s %sx", (r >= want) ? "PASS >=" : "FAIL <", want
    }'
}

THROUGHPUT=()
LATENCY=()
# row LABEL OP CONCURRENCY TARGET_RATIO: one run per server, one row in each table.
row() {
    local label=$1 op=$2 conc=$3 want=$4 s r a b pair pass errors="" ops_cells="" lat_cells=""
    local -A ops lat
    local ratios=() order
    # Two passes, the second in reverse order, averaged: a run right after another server's
    # fsync-heavy run is slower, so a single fixed order favours whoever runs later.
    for pass in 1 2; do
        order=("${SERVERS[@]}")
        [ "$pass" = 1 ] || order=($(printf '%s\n' "${SERVERS[@]}" | tac))
        for s in "${order[@]}"; do
            log "$label: $s (pass $pass)"
            # A run with failed requests still reports; its errors show in the table.
            r=$(bench "$s" "$op" "$conc") || true; echo "$r" >&2
            [ -n "$r" ] || die "$label: $s printed no result"
            ops[$s]=$(awk -v a="${ops[$s]:-0}" -v b="$(field "$r" ops_per_sec)" 'BEGIN { print a + b / 2 }')
            [ "$pass" = 2 ] || lat[$s]="$(field "$r" p50_ms) / $(field "$r" p99_ms)"
            [ "$(field "$r" errors)" = 0 ] || errors+="${errors:+, }$s $(field "$r" errors)"
        done
    done
    for s in "${SERVERS[@]}"; do
        ops_cells+=" $(printf '%.0f' "${ops[$s]}") |"
        lat_cells+=" ${lat[$s]} |"
    done
    for pair in "${RATIOS[@]}"; do
        read -r a b <<<"$pair"
        ratios+=("$(ratio "${ops[$a]}" "${ops[$b]}")")
    done
    [ -z "$errors" ] || label+=" (errors: $errors)"
    THROUGHPUT+=("| $label |$ops_cells ${ratios[0]} | $(verdict "${ops[legate]}" "${ops[etcd-json]}" "$want") |$(printf ' %s |' "${ratios[@]:1}")")
    LATENCY+=("| $label |$lat_cells")
}

row "PUT, 1 client" put 1 -
row "PUT, $CONC clients" put "$CONC" 2
log "preloading $KEYS keys"
for s in "${SERVERS[@]}"; do
    # etcd-grpc reads the keys etcd-json wrote.
    [ "$s" = etcd-grpc ] || bench "$s" put 16 --ops "$KEYS" >/dev/null
done
row "GET, $CONC clients" get "$CONC" 1

# --- report --------------------------------------------------------------------------------------
echo
echo "Durable KV throughput, ${DURATION}s per run, $KEYS keys, ${VALUE_SIZE}-byte values, $(nproc) cores, loopback (HTTP/1.1; etcd-grpc: one HTTP/2 connection)"
[ -z "${BASELINE_REV:-}" ] || echo "baseline: legate at $BASELINE_REV (${rev:0:12})"
echo
ratio_heads=("${RATIOS[@]/ //}")
echo "| operation |$(printf ' %s ops/s |' "${SERVERS[@]}") ${ratio_heads[0]} | target |$(printf ' %s |' "${ratio_heads[@]:1}")"
echo "|---|$(printf -- '---:|%.0s' "${SERVERS[@]}")---:|---|$(printf -- '---:|%.0s' "${ratio_heads[@]:1}")"
printf '%s\n' "${THROUGHPUT[@]}"
echo
echo "| operation |$(printf ' %s p50 / p99 ms |' "${SERVERS[@]}")"
echo "|---|$(printf -- '---:|%.0s' "${SERVERS[@]}")"
printf '%s\n' "${LATENCY[@]}"
