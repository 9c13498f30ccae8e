#!/usr/bin/env bash
# Real-consumer interop test: a Prometheus-style scraper with `consul_sd_configs` pointed at
# Legate discovers the registered services with their addresses, tags and meta, and drops them
# again when they are deregistered.
#
#   SD_CONSUMER=prometheus bash tests/interop/consul_sd.sh         # Debian's prometheus
#   SD_CONSUMER=victoria-metrics bash tests/interop/consul_sd.sh   # Debian's victoria-metrics
#   LEGATE_BIN=target/debug/legate SD_CONSUMER=... bash tests/interop/consul_sd.sh
#   PROMETHEUS_BIN=/path/to/prometheus bash tests/interop/consul_sd.sh
#
# Both consumers read the same `consul_sd_configs` section and serve Prometheus'
# `/api/v1/targets`; they are independent implementations of Consul discovery (Prometheus uses
# HashiCorp's Go client, VictoriaMetrics its own blocking-query watcher), so each checks the
# agent's catalog, health and blocking queries from its own angle. The consumer is installed with
# apt-get when it is missing. Prints `SKIP: <reason>` and exits 0 only when the consumer cannot
# be had: the package cannot be installed, or the prometheus at hand is built without Consul SD
# (Debian's package has it disabled since 2.33.5+ds1-4: its config loader rejects
# `consul_sd_configs`). Everything listens on and talks to 127.0.0.1 only; both processes and
# the temp dir are removed on exit. Ends with `<consumer> consul_sd: N passed, 0 failed`
# (exit 0), or prints the differences and both logs' tails and exits 1.
set -euo pipefail
cd "$(dirname "$0")/../.."

SD_TIMEOUT=${SD_TIMEOUT:-60} # seconds to wait for the consumer to reflect a change
CONSUMER=${SD_CONSUMER:-prometheus}
case "$CONSUMER" in
    prometheus) PACKAGE=prometheus; CONSUMER_BIN=${PROMETHEUS_BIN:-prometheus} ;;
    victoria-metrics) PACKAGE=victoria-metrics; CONSUMER_BIN=victoria-metrics ;;
    *) echo "SD_CONSUMER must be prometheus or victoria-metrics, not '$CONSUMER'" >&2; exit 1 ;;
esac

# --- the consumer ------------------------------------------------------------------------------
if [ -n "${PROMETHEUS_BIN:-}" ] && [ "$CONSUMER" = prometheus ]; then
    command -v "$PROMETHEUS_BIN" >/dev/null 2>&1 \
        || { echo "PROMETHEUS_BIN=$PROMETHEUS_BIN is not an executable" >&2; exit 1; }
elif ! command -v "$CONSUMER_BIN" >/dev/null 2>&1; then
    echo "$CONSUMER_BIN not found: installing Debian's package $PACKAGE"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "SKIP: $CONSUMER_BIN is not installed and apt-get is not available"
        exit 0
    fi
    # The package's postinst would start the system service (on 0.0.0.0): deny it, as
    # Debian's container images do, unless a policy is already in place.
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
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$PACKAGE" \
            >>"$apt_log" 2>&1 || apt_ok=0
    fi
    if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ "$apt_ok" != 1 ] || ! command -v "$CONSUMER_BIN" >/dev/null 2>&1; then
        tail -n 5 "$apt_log" | sed 's/^/  apt: /'
        rm -f "$apt_log"
        echo "SKIP: the Debian package '$PACKAGE' could not be installed"
        exit 0
    fi
    rm -f "$apt_log"
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 is required" >&2; exit 1; }

# --- legate ------------------------------------------------------------------------------------
if [ -z "${LEGATE_BIN:-}" ]; then
    cargo build --quiet
    LEGATE_BIN=${CARGO_TARGET_DIR:-target}/debug/legate
fi
[ -x "$LEGATE_BIN" ] || { echo "LEGATE_BIN=$LEGATE_BIN is not an executable" >&2; exit 1; }

# --- temp dir, processes, cleanup ---------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/legate-consul-sd.XXXXXX")
AGENT_PID=""
CONSUMER_PID=""
source "$(dirname "$0")/lib.sh"
cleanup() {
    stop_pid "$CONSUMER_PID" 5
    stop_pid "$AGENT_PID" 5
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One python helper for HTTP and the assertions (the standard library only).
HELPER="$WORK/helper.py"
cat >"$HELPER" <<'PY'
import json
import os
import sys
import time
import urllib.error
import urllib.request


def http(method, url, body=None, timeout=10):
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # A zombie has exited too.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_ok(url, seconds, pid=None):
    deadline = time.time() + float(seconds)
    last = None
    while time.time() < deadline:
        if pid is not None and not alive(pid):
            print(f"process {pid} exited before {url} answered", file=sys.stderr)
            return 2
        try:
            status, body = http("GET", url, timeout=2)
            if status == 200:
                return 0
            last = f"HTTP {status}: {body[:200]}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    print(f"{url} not ready after {seconds}s: {last}", file=sys.stderr)
    return 1


def check(consumer, expected_file, gone):
    """Compares the consumer's active targets of job `consul` with the expectation.

    Prints one line per failed assertion and, last, `RESULT <passed> <failed>`."""
    with open(expected_file) as f:
        expected = json.load(f)
    gone = [g for g in gone.split(",") if g]
    status, body = http("GET", f"http://{consumer}/api/v1/targets?state=active")
    if status != 200:
        print(f"GET /api/v1/targets: HTTP {status}: {body[:500]}")
        print("RESULT 0 1")
        return
    targets = [t for t in json.loads(body)["data"]["activeTargets"] if t["scrapePool"] == "consul"]
    by_addr = {}
    for t in targets:
        by_addr.setdefault(t["labels"].get("instance"), []).append(t)
    passed = failed = 0

    def ok(cond, msg):
        nonlocal passed, failed
        if cond:
            passed += 1
        else:
            failed += 1
            print(msg)

    for addr, want in sorted(expected.items()):
        got = by_addr.get(addr, [])
        ok(len(got) == 1, f"target {addr}: expected once, found {len(got)} times")
        if len(got) != 1:
            continue
        labels, disc = got[0]["labels"], got[0]["discoveredLabels"]
        for name, value in sorted(want["labels"].items()):
            ok(labels.get(name) == value,
               f"target {addr}: label {name}: want {value!r}, got {labels.get(name)!r}")
        for name in want.get("absent", []):
            ok(name not in labels, f"target {addr}: label {name} should be absent, "
                                   f"got {labels.get(name)!r}")
        for name, value in sorted(want["discovered"].items()):
            ok(disc.get(name) == value,
               f"target {addr}: discovered {name}: want {value!r}, got {disc.get(name)!r}")
    for addr in gone:
        ok(addr not in by_addr, f"target {addr}: should be gone, still present: "
                                f"{json.dumps(by_addr.get(addr, [{}])[0].get('labels'))}")
    extra = sorted(set(by_addr) - set(expected))
    ok(not extra, f"unexpected targets: {extra}")
    if failed:
        print("--- the consumer's active consul targets ---")
        for t in sorted(targets, key=lambda t: t["labels"].get("instance", "")):
            print(json.dumps({"labels": t["labels"], "discoveredLabels": t["discoveredLabels"]},
                             sort_keys=True))
    print(f"RESULT {passed} {failed}")


cmd = sys.argv[1]
if cmd == "put":
    status, body = http("PUT", sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    if status != 200:
        print(f"PUT {sys.argv[2]}: HTTP {status}: {body}", file=sys.stderr)
        sys.exit(1)
elif cmd == "wait-ok":
    sys.exit(wait_ok(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None))
elif cmd == "check":
    check(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
else:
    sys.exit(f"unknown command {cmd}")
PY
py() { python3 "$HELPER" "$@"; }

AGENT_LOG="$WORK/legate.log"
CONSUMER_LOG="$WORK/$CONSUMER.log"

show_logs() {
    echo "--- last lines of legate's log ($AGENT_LOG) ---"
    tail -n 40 "$AGENT_LOG" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' || true
    echo "--- last lines of $CONSUMER's log ($CONSUMER_LOG) ---"
    tail -n 60 "$CONSUMER_LOG" 2>/dev/null || true
}
fail() {
    echo "FAIL: $*"
    show_logs
    echo "$CONSUMER consul_sd: $PASSED passed, $((FAILED > 0 ? FAILED : 1)) failed"
    exit 1
}
PASSED=0
FAILED=0

# --- agent -------------------------------------------------------------------------------------
AGENT_PORT=$(free_port)
AGENT="127.0.0.1:$AGENT_PORT"
"$LEGATE_BIN" agent -data-dir "$WORK/data" -client 127.0.0.1 -bind 127.0.0.1 \
    -http-port "$AGENT_PORT" -dns-port -1 -log-level debug >"$AGENT_LOG" 2>&1 &
AGENT_PID=$!
py wait-ok "http://$AGENT/v1/status/leader" 30 "$AGENT_PID" || fail "legate did not come up on $AGENT"
echo "legate agent on $AGENT (pid $AGENT_PID)"

# Service ports are free ports nothing listens on: prometheus' scrapes of them just fail.
P_WEB1=$(free_port); P_WEB2=$(free_port); P_API=$(free_port); P_DB=$(free_port)
register() { py put "http://$AGENT/v1/agent/service/register" "$1" || fail "register: $1"; }
register '{"Name":"web","ID":"web-1","Port":'"$P_WEB1"',"Address":"127.0.0.1","Tags":["prod","v1"],"Meta":{"version":"1.2"},"Check":{"TTL":"10m","Status":"passing"}}'
register '{"Name":"web","ID":"web-2","Port":'"$P_WEB2"',"Address":"127.0.0.1","Tags":["prod","v2"],"Meta":{"version":"2.0"},"Check":{"TTL":"10m","Status":"passing"}}'
register '{"Name":"api","ID":"api-1","Port":'"$P_API"',"Address":"127.0.0.1","Tags":["internal"],"Meta":{"version":"0.9","team":"core"}}'
# No service address: prometheus falls back to the node's address (the agent's, 127.0.0.1).
register '{"Name":"db","ID":"db-1","Port":'"$P_DB"'}'
echo "registered web-1 web-2 api-1 db-1"

# --- the consumer, scraping the agent's services -----------------------------------------------
CONSUMER_PORT=$(free_port)
CONSUMER_ADDR="127.0.0.1:$CONSUMER_PORT"
# VictoriaMetrics 1.79 has no `refresh_interval` for Consul (its flag below plays that part).
SD_OPTIONS="        refresh_interval: 2s"
[ "$CONSUMER" = prometheus ] || SD_OPTIONS="        allow_stale: true"
cat >"$WORK/scrape.yml" <<EOF
global:
  scrape_interval: 1m
  scrape_timeout: 2s
scrape_configs:
  - job_name: consul
    consul_sd_configs:
      - server: $AGENT
$SD_OPTIONS
    relabel_configs:
      - source_labels: [__meta_consul_service]
        target_label: service
      - source_labels: [__meta_consul_tags]
        target_label: tags
      - source_labels: [__meta_consul_service_metadata_version]
        target_label: version
      - source_labels: [__meta_consul_service_id]
        target_label: service_id
EOF
case "$CONSUMER" in
    prometheus)
        READY_URL="http://$CONSUMER_ADDR/-/ready"
        "$CONSUMER_BIN" --config.file="$WORK/scrape.yml" --storage.tsdb.path="$WORK/tsdb" \
            --web.listen-address="$CONSUMER_ADDR" --log.level=debug >"$CONSUMER_LOG" 2>&1 &
        ;;
    victoria-metrics)
        # VictoriaMetrics re-reads the catalog every consulSDCheckInterval (30 s by default),
        # on top of its blocking queries; 1 s keeps the removal phase short.
        READY_URL="http://$CONSUMER_ADDR/health"
        "$CONSUMER_BIN" -promscrape.config="$WORK/scrape.yml" -storageDataPath="$WORK/tsdb" \
            -httpListenAddr="$CONSUMER_ADDR" -promscrape.consulSDCheckInterval=1s \
            -loggerLevel=INFO >"$CONSUMER_LOG" 2>&1 &
        ;;
esac
CONSUMER_PID=$!
if ! py wait-ok "$READY_URL" 30 "$CONSUMER_PID" 2>"$WORK/consumer-wait.err"; then
    cat "$WORK/consumer-wait.err"
    # Only a prometheus without Consul SD is a skip; any other start failure fails.
    if grep -q 'field consul_sd_configs not found' "$CONSUMER_LOG"; then
        echo "SKIP: $("$CONSUMER_BIN" --version 2>&1 | head -n 1) is built without Consul" \
            "service discovery (its config loader rejects consul_sd_configs);" \
            "set PROMETHEUS_BIN to a prometheus with Consul SD"
        exit 0
    fi
    fail "$CONSUMER did not come up on $CONSUMER_ADDR"
fi
echo "$CONSUMER on $CONSUMER_ADDR (pid $CONSUMER_PID): $("$CONSUMER_BIN" --version 2>&1 | head -n 1)"

# --- expectations ------------------------------------------------------------------------------
# expect FILE ADDR SERVICE ID TAGS VERSION(or -) : appends one target to the JSON expectation.
expect() {
    python3 - "$@" <<'PY'
import json, os, sys
path, addr, service, sid, tags, version = sys.argv[1:7]
exp = json.load(open(path)) if os.path.exists(path) else {}
labels = {"job": "consul", "instance": addr, "service": service, "service_id": sid, "tags": tags}
disc = {"__address__": addr, "__meta_consul_service": service, "__meta_consul_service_id": sid,
        "__meta_consul_tags": tags, "__meta_consul_health": "passing",
        "__meta_consul_dc": "dc1", "__meta_consul_address": "127.0.0.1"}
absent = []
if version == "-":
    absent.append("version")
else:
    labels["version"] = version
    disc["__meta_consul_service_metadata_version"] = version
exp[addr] = {"labels": labels, "discovered": disc, "absent": absent}
json.dump(exp, open(path, "w"), indent=1)
PY
}
E1="$WORK/expected-1.json"
expect "$E1" "127.0.0.1:$P_WEB1" web web-1 ",prod,v1," 1.2
expect "$E1" "127.0.0.1:$P_WEB2" web web-2 ",prod,v2," 2.0
expect "$E1" "127.0.0.1:$P_API" api api-1 ",internal," 0.9
expect "$E1" "127.0.0.1:$P_DB" db db-1 ",," -
# api's second meta key is discovered too.
python3 - "$E1" "127.0.0.1:$P_API" <<'PY'
import json, sys
exp = json.load(open(sys.argv[1]))
exp[sys.argv[2]]["discovered"]["__meta_consul_service_metadata_team"] = "core"
json.dump(exp, open(sys.argv[1], "w"), indent=1)
PY

# wait_for PHASE EXPECTED GONE: polls until prometheus shows exactly the expectation (bounded),
# then adds the assertions to the totals; on timeout prints the differences and fails.
wait_for() {
    local phase=$1 expected=$2 gone=${3:-} out="" result="" start=$SECONDS
    while :; do
        out=$(py check "$CONSUMER_ADDR" "$expected" "$gone" 2>&1) || true
        result=$(printf '%s\n' "$out" | sed -n 's/^RESULT //p' | tail -n 1)
        if [ -n "$result" ] && [ "${result#* }" = 0 ]; then
            PASSED=$((PASSED + ${result% *}))
            echo "ok: $phase (${result% *} assertions, $((SECONDS - start))s)"
            return 0
        fi
        if ! running "$CONSUMER_PID"; then
            out="$CONSUMER exited"$'\n'"$out"; break
        fi
        if ! running "$AGENT_PID"; then
            out="legate exited"$'\n'"$out"; break
        fi
        [ $((SECONDS - start)) -ge "$SD_TIMEOUT" ] && break
        sleep 1
    done
    echo "FAIL: $phase: not reflected after ${SD_TIMEOUT}s"
    printf '%s\n' "$out" | grep -v '^RESULT ' || true
    if [ -n "$result" ]; then
        PASSED=$((PASSED + ${result% *})); FAILED=$((FAILED + ${result#* }))
    else
        FAILED=$((FAILED + 1))
    fi
    show_logs
    echo "$CONSUMER consul_sd: $PASSED passed, $FAILED failed"
    exit 1
}

wait_for "discovery of web-1 web-2 api-1 db-1" "$E1"

# --- deregistration: a whole service (api) and one instance of a service that stays (web-2) ----
py put "http://$AGENT/v1/agent/service/deregister/api-1" || fail "deregister api-1"
py put "http://$AGENT/v1/agent/service/deregister/web-2" || fail "deregister web-2"
echo "deregistered api-1 web-2"
E2="$WORK/expected-2.json"
python3 - "$E1" "$E2" "127.0.0.1:$P_API" "127.0.0.1:$P_WEB2" <<'PY'
import json, sys
exp = json.load(open(sys.argv[1]))
for addr in sys.argv[3:]:
    del exp[addr]
json.dump(exp, open(sys.argv[2], "w"), indent=1)
PY
wait_for "removal of api-1 and web-2" "$E2" "127.0.0.1:$P_API,127.0.0.1:$P_WEB2"

# The consumer's discovery must not have logged errors against the agent (Prometheus logs
# `level=error`, VictoriaMetrics a tab-separated `error`/`warn` field).
if grep -iE '(level=|\t)(error|warn).*(consul|discovery)' "$CONSUMER_LOG" >"$WORK/sd-errors" 2>/dev/null; then
    FAILED=$((FAILED + 1))
    echo "FAIL: $CONSUMER logged consul SD errors:"
    head -n 20 "$WORK/sd-errors"
    show_logs
    echo "$CONSUMER consul_sd: $PASSED passed, $FAILED failed"
    exit 1
fi
PASSED=$((PASSED + 1))
echo "ok: no consul SD errors in $CONSUMER's log"

echo "$CONSUMER consul_sd: $PASSED passed, $FAILED failed"
