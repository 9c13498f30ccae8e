#!/usr/bin/env bash
# Real-consumer interop test for sessions and locks: Debian's Patroni (Consul DCS through
# python3-consul) managing PostgreSQL, with the DCS pointed at Legate.
#
#   bash tests/interop/patroni_consul.sh                 # builds with `cargo build`
#   LEGATE_BIN=target/debug/legate bash tests/interop/patroni_consul.sh
#
# Checks that
#   1. member pg1 bootstraps a cluster, elects itself leader (its REST API reports the primary
#      role) and holds `service/<scope>/leader` in Legate's KV with a live session;
#   2. member pg2 joins as a streaming replica and sees pg1 as leader (REST API and
#      `patronictl list`);
#   3. when pg1 stops, pg2 takes the leader key over and is promoted.
# Installs `patroni postgresql python3-consul` with apt-get when missing; prints `SKIP: <reason>`
# and exits 0 only when they cannot be installed. Must run as root (Patroni and PostgreSQL run
# as the `postgres` user, created when missing). Everything listens on 127.0.0.1 only; every
# process started here and the temp dir are removed on exit. Ends with
# `patroni: N passed, 0 failed` (exit 0), or prints what failed, both Patroni logs' tails and
# the agent's, and exits 1.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCOPE=${PATRONI_SCOPE:-legate-test}
TIMEOUT=${PATRONI_TIMEOUT:-90} # seconds each step may take

# --- packages ----------------------------------------------------------------------------------
have_packages() {
    command -v patroni >/dev/null 2>&1 && command -v patronictl >/dev/null 2>&1 &&
        /usr/bin/python3 -c 'import consul' >/dev/null 2>&1 &&
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: must run as root (to install packages and run Patroni as the postgres user)"
    exit 0
fi
if ! have_packages; then
    echo "patroni, postgresql or python3-consul missing: installing Debian's packages"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "SKIP: the packages are not installed and apt-get is not available"
        exit 0
    fi
    # The packages' postinst would start the system PostgreSQL and Patroni services: deny it,
    # as Debian's container images do, unless a policy is already in place.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    apt_log=$(mktemp)
    apt_ok=1
    apt-get update >"$apt_log" 2>&1 || apt_ok=0
    if [ "$apt_ok" = 1 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            patroni postgresql python3-consul >>"$apt_log" 2>&1 || apt_ok=0
    fi
    if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ "$apt_ok" != 1 ] || ! have_packages; then
        tail -n 5 "$apt_log" | sed 's/^/  apt: /'
        rm -f "$apt_log"
        echo "SKIP: the Debian packages patroni, postgresql and python3-consul could not be installed"
        exit 0
    fi
    rm -f "$apt_log"
fi
PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
PATRONI_VERSION=$(/usr/bin/python3 -c 'from patroni.version import __version__; print(__version__)' 2>/dev/null || echo '?')
CONSUL_PY_VERSION=$(/usr/bin/python3 -c 'import consul; print(consul.__version__)' 2>/dev/null || echo '?')
if ! id -u postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# --- legate ------------------------------------------------------------------------------------
if [ -z "${LEGATE_BIN:-}" ]; then
    cargo build --quiet
    LEGATE_BIN=${CARGO_TARGET_DIR:-target}/debug/legate
fi
[ -x "$LEGATE_BIN" ] || { echo "LEGATE_BIN=$LEGATE_BIN is not an executable" >&2; exit 1; }

# --- temp dir, processes, cleanup ---------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/legate-patroni.XXXXXX")
chmod 0711 "$WORK" # postgres must reach its own directory below
PGWORK="$WORK/pg"
mkdir -m 0700 "$PGWORK"
chown postgres: "$PGWORK"
AGENT_LOG="$WORK/legate.log"
AGENT_PID=""
declare -A PATRONI_PID=()
PASSED=0
FAILED=0

source "$(dirname "$0")/lib.sh"
# stop_postgres MEMBER: a postmaster a killed Patroni may have left behind.
stop_postgres() {
    local pidfile="$PGWORK/$1/data/postmaster.pid" pid
    [ -f "$pidfile" ] || return 0
    pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
    case "$pid" in '' | *[!0-9]*) return 0 ;; esac
    if running "$pid" && grep -q postgres "/proc/$pid/cmdline" 2>/dev/null; then
        kill -QUIT "$pid" 2>/dev/null || true # immediate shutdown
        for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
        if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
}
cleanup() {
    local m
    for m in "${!PATRONI_PID[@]}"; do
        stop_pid "${PATRONI_PID[$m]}" 30
        stop_postgres "$m"
    done
    stop_pid "$AGENT_PID" 5
    if [ -n "${PATRONI_KEEP_LOGS:-}" ]; then
        mkdir -p "$PATRONI_KEEP_LOGS"
        cp "$WORK"/*.log "$PATRONI_KEEP_LOGS"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One python helper for HTTP and the assertions (the standard library only).
HELPER="$WORK/helper.py"
cat >"$HELPER" <<'PY'
import base64
import json
import sys
import time
import urllib.error
import urllib.request


def http(method, url, timeout=5):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def as_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def leader_key(agent, scope):
    """The leader key's (value, session, session's name) or None."""
    status, body = http("GET", f"http://{agent}/v1/kv/service/{scope}/leader")
    entries = as_json(body) if status == 200 else None
    if not entries:
        return None
    e = entries[0]
    value = base64.b64decode(e.get("Value") or "").decode()
    session = e.get("Session") or ""
    name = None
    if session:
        status, body = http("GET", f"http://{agent}/v1/session/info/{session}")
        info = as_json(body) if status == 200 else None
        name = info[0].get("Name") if info else None
    return value, session, name


def check(what, *args):
    """Prints one line `OK <detail>` or `NO <detail>`; exits 0 either way."""
    if what == "primary":
        # patroni REST of the member: role primary (Patroni 3: "master" or "primary"), running.
        api, name = args
        status, body = http("GET", f"http://{api}/")
        doc = as_json(body) or {}
        ok = (doc.get("role") in ("master", "primary") and doc.get("state") == "running"
              and doc.get("patroni", {}).get("name", name) == name)
        print(("OK " if ok else "NO ") + f"GET {api}/ -> {status} {body[:300]}")
    elif what == "leader-key":
        agent, scope, name = args
        got = leader_key(agent, scope)
        ok = got is not None and got[0] == name and got[1] != "" and got[2] is not None
        print(("OK " if ok else "NO ") + f"leader key (value, session, session name) = {got}")
    elif what == "replica":
        # patroni REST of the replica: role replica, running, streaming from the leader.
        api, leader = args
        status, body = http("GET", f"http://{api}/")
        doc = as_json(body) or {}
        repl = doc.get("replication_state")
        ok = (doc.get("role") == "replica" and doc.get("state") == "running"
              and repl in (None, "streaming"))
        # /cluster on the replica names the leader as its DCS shows it.
        status2, body2 = http("GET", f"http://{api}/cluster")
        cluster = as_json(body2) or {}
        leaders = [m.get("name") for m in cluster.get("members", [])
                   if m.get("role") == "leader"]
        ok = ok and leaders == [leader]
        print(("OK " if ok else "NO ")
              + f"GET {api}/ -> {status} {body[:300]}; /cluster leaders {leaders}")
    elif what == "ctl-list":
        # `patronictl list -f json` output on stdin: `leader` is Leader, `replica` a replica.
        leader, replica = args
        text = sys.stdin.read()
        rows = as_json(text) or []
        roles = {r.get("Member"): r.get("Role") for r in rows if isinstance(r, dict)}
        ok = roles.get(leader) == "Leader" and roles.get(replica) in ("Replica", "Sync Standby")
        print(("OK " if ok else "NO ") + f"patronictl list roles {roles}")
    else:
        raise SystemExit(f"unknown check {what}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "wait-ok":
        url, seconds = sys.argv[2], float(sys.argv[3])
        deadline = time.time() + seconds
        while time.time() < deadline:
            if http("GET", url)[0] == 200:
                sys.exit(0)
            time.sleep(0.2)
        sys.exit(1)
    elif cmd == "check":
        check(*sys.argv[2:])
PY
py() { python3 "$HELPER" "$@"; }

show_logs() {
    local m
    for m in pg1 pg2; do
        if [ -f "$WORK/$m.log" ]; then
            echo "--- patroni $m log (tail) ---"
            tail -n 40 "$WORK/$m.log"
        fi
    done
    echo "--- legate log (tail) ---"
    tail -n 60 "$AGENT_LOG" 2>/dev/null || true
}
fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL: $*"
    show_logs
    echo "patroni: $PASSED passed, $FAILED failed"
    exit 1
}

# eventually DESCRIPTION CHECK ARGS...: polls `helper check` until it prints OK (bounded by
# TIMEOUT), counting one passed assertion, or fails with the last answer.
eventually() {
    local what=$1 out="" start=$SECONDS m
    shift
    while :; do
        out=$(py check "$@" 2>&1) || true
        if [ "${out:0:3}" = "OK " ]; then
            PASSED=$((PASSED + 1))
            echo "ok: $what ($((SECONDS - start))s)"
            return 0
        fi
        running "$AGENT_PID" || fail "$what: legate exited; last: $out"
        for m in "${!PATRONI_PID[@]}"; do
            if [ -n "${PATRONI_PID[$m]}" ] && ! running "${PATRONI_PID[$m]}"; then
                fail "$what: patroni $m exited; last: $out"
            fi
        done
        [ $((SECONDS - start)) -ge "$TIMEOUT" ] && fail "$what: not within ${TIMEOUT}s; last: $out"
        sleep 1
    done
}

# --- agent ---------------------------------------------------------------------------------------
PORT=$(free_port)
AGENT="127.0.0.1:$PORT"
"$LEGATE_BIN" agent -data-dir "$WORK/data" -client 127.0.0.1 -http-port "$PORT" -dns-port -1 \
    -log-level debug >"$AGENT_LOG" 2>&1 &
AGENT_PID=$!
py wait-ok "http://$AGENT/v1/status/leader" 30 || fail "legate did not come up on $AGENT"
echo "legate on $AGENT (pid $AGENT_PID); patroni $PATRONI_VERSION, python-consul $CONSUL_PY_VERSION, $("$PG_BIN/postgres" --version)"

# --- patroni members ----------------------------------------------------------------------------
# member_config NAME: writes $WORK/NAME.yml (REST and PostgreSQL on free loopback ports).
declare -A REST=()
member_config() {
    local name=$1 rest pg
    rest=127.0.0.1:$(free_port)
    pg=127.0.0.1:$(free_port)
    REST[$name]=$rest
    mkdir -m 0700 "$PGWORK/$name"
    chown postgres: "$PGWORK/$name"
    cat >"$WORK/$name.yml" <<EOF
scope: $SCOPE
namespace: /service/
name: $name
log:
  level: ${PATRONI_LOG_LEVEL:-INFO}
restapi:
  listen: $rest
  connect_address: $rest
consul:
  host: $AGENT
  register_service: false
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: false
      parameters:
        max_connections: 20
        max_wal_senders: 5
        wal_level: replica
        hot_standby: "on"
  initdb:
    - encoding: UTF8
    - auth-local: trust
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 md5
    - host all all 127.0.0.1/32 md5
postgresql:
  listen: $pg
  connect_address: $pg
  data_dir: $PGWORK/$name/data
  bin_dir: $PG_BIN
  pgpass: $PGWORK/$name/pgpass
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: su-pass
  parameters:
    unix_socket_directories: $PGWORK/$name
    shared_buffers: 16MB
EOF
    chmod 0644 "$WORK/$name.yml"
}
# start_member NAME: runs Patroni as postgres (setpriv execs, so the pid is Patroni's own).
start_member() {
    local name=$1
    HOME=$PGWORK/$name setpriv --reuid=postgres --regid=postgres --init-groups -- \
        /usr/bin/patroni "$WORK/$name.yml" >"$WORK/$name.log" 2>&1 &
    PATRONI_PID[$name]=$!
    echo "patroni $name started (pid ${PATRONI_PID[$name]}, REST ${REST[$name]})"
}

member_config pg1
member_config pg2

start_member pg1
eventually "pg1 is the primary (REST ${REST[pg1]}/)" primary "${REST[pg1]}" pg1
eventually "pg1 holds service/$SCOPE/leader with a session" leader-key "$AGENT" "$SCOPE" pg1

start_member pg2
eventually "pg2 is a streaming replica and sees pg1 as leader" replica "${REST[pg2]}" pg1
ctl_start=$SECONDS
while :; do
    ctl=$(patronictl -c "$WORK/pg2.yml" list -f json 2>"$WORK/patronictl.err") || true
    out=$(printf '%s' "$ctl" | py check ctl-list pg1 pg2 2>&1) || true
    [ "${out:0:3}" = "OK " ] && break
    [ $((SECONDS - ctl_start)) -ge "$TIMEOUT" ] && fail "patronictl list: $out; output: $ctl; stderr: $(tail -n 5 "$WORK/patronictl.err")"
    sleep 1
done
PASSED=$((PASSED + 1))
echo "ok: patronictl -c pg2.yml list shows pg1 as Leader, pg2 as Replica"

# --- failover: pg1 stops, pg2 takes the leader key over ------------------------------------------
echo "stopping patroni pg1 (pid ${PATRONI_PID[pg1]})"
stop_pid "${PATRONI_PID[pg1]}" 60
stop_postgres pg1
PATRONI_PID[pg1]=""
eventually "pg2 takes service/$SCOPE/leader over" leader-key "$AGENT" "$SCOPE" pg2
eventually "pg2 is promoted (REST ${REST[pg2]}/)" primary "${REST[pg2]}" pg2

# Patroni's own log lines (comma before the milliseconds; PostgreSQL's use a dot) must hold no
# errors or tracebacks from its DCS work against the agent.
if grep -hE '^[0-9-]+ [0-9:]+,[0-9]+ (ERROR|CRITICAL):|^Traceback' "$WORK"/pg1.log "$WORK"/pg2.log \
    >"$WORK/errors" 2>/dev/null; then
    fail "patroni logged errors: $(head -n 20 "$WORK/errors")"
fi
PASSED=$((PASSED + 1))
echo "ok: no errors or tracebacks in either patroni log"

echo "patroni: $PASSED passed, $FAILED failed"
