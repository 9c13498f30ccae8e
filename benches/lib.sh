# Shared by the benches/run-*.sh scripts (sourced, not run): logging, free ports and starting
# a Legate agent on loopback.

log() { echo "== $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# A free loopback TCP port: random, refused on connect, not one named in $TAKEN_PORTS (callers
# add each port they took there, since this runs in a subshell).
TAKEN_PORTS=" "
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        case "$TAKEN_PORTS" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

# bench_setup NAME: builds legate and the NAME bench in release mode, makes the temp dir WORK
# under BENCH_DIR (default /tmp), removed on exit after every process in BENCH_PIDS is stopped,
# and copies both binaries there (`$WORK/legate-bin`, `$WORK/NAME`), so a concurrent rebuild of
# the tree cannot swap them mid-run.
BENCH_PIDS=()
bench_setup() {
    local name=$1 out bin
    log "building legate (release) and the $name bench"
    cargo build --release --bin legate
    # `--no-run` prints "Executable benches/NAME.rs (<target>/release/deps/NAME-<hash>)".
    out=$(cargo bench --bench "$name" --no-run 2>&1) || { echo "$out" >&2; die "bench build failed"; }
    echo "$out" >&2
    bin=$(sed -n "s/.*Executable .*(\(.*$name-[^)]*\)).*/\1/p" <<<"$out" | tail -n1)
    [ -x "$bin" ] || die "could not find the $name bench binary"
    WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/legate-$name.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    cp "${CARGO_TARGET_DIR:-target}/release/legate" "$WORK/legate-bin"
    cp "$bin" "$WORK/$name"
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# start_agent BINARY DATA_DIR LOG_FILE [AGENT FLAGS...]: starts the agent on a free port and
# waits (30 s at most) until it answers; sets AGENT_PID, PORT and URL.
start_agent() {
    PORT=$(free_port)
    TAKEN_PORTS="$TAKEN_PORTS$PORT "
    URL="http://127.0.0.1:$PORT"
    # The load generators open far more connections from 127.0.0.1 than Consul's default
    # limit per client IP (200), so the limit is lifted. DNS is off unless the flags ask for a
    # port (the last -dns-port wins), so two agents of one bench do not contend for 8600.
    "$1" agent -data-dir "$2" -client 127.0.0.1 -http-port "$PORT" -dns-port -1 -log-level warn \
        -hcl 'limits { http_max_conns_per_client = 0 }' "${@:4}" >"$3" 2>&1 &
    AGENT_PID=$!
    BENCH_PIDS+=("$AGENT_PID")
    for _ in $(seq 1 150); do
        curl -sf -o /dev/null "$URL/v1/status/leader" && return 0
        kill -0 "$AGENT_PID" 2>/dev/null || { tail -n 20 "$3" >&2; die "agent exited"; }
        sleep 0.2
    done
    tail -n 20 "$3" >&2
    die "agent not ready at $URL"
}
