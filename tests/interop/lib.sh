# Shared by the interop scripts (sourced, not run): process helpers for their cleanup, free ports.

# running PID: the process exists and is not a zombie.
running() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after the grace period (default 10 s).
stop_pid() {
    local pid=$1 grace=${2:-10}
    [ -n "$pid" ] || return 0
    if running "$pid"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq $((grace * 10))); do running "$pid" || break; sleep 0.1; done
        if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    wait "$pid" 2>/dev/null || true
}

# A free port below Linux's ephemeral range (32768 and up), so that no outgoing connection
# can take it before the server it is for binds it.
free_port() {
    python3 - <<'PY'
import random, socket
while True:
    port = random.randint(20000, 32000)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
PY
}
