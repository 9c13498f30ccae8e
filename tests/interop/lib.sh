# Shared by the interop scripts (sourced, not run): process helpers for their cleanup.

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
