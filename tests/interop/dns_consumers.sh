#!/usr/bin/env bash
# Real-consumer interop test of the DNS interface, with Debian's own DNS consumers:
#   - dig (dnsutils): answers as an operator types the questions;
#   - Unbound forwarding the `consul.` zone to the agent, set up as Consul's DNS-forwarding
#     guide does (a stub zone, `do-not-query-localhost: no`, `domain-insecure: "consul"`), asked
#     `web.service.consul` by a client of Unbound;
#   - HAProxy with a `resolvers` section and a `server-template` on the
#     `_web._tcp.service.consul` SRV records, sending traffic to the registered backends (two
#     python http.servers), and no longer to one whose TTL check turns critical.
#
#   bash tests/interop/dns_consumers.sh
#   LEGATE_BIN=target/release/legate bash tests/interop/dns_consumers.sh
#
# dig, unbound and haproxy must be installed (.ci/run installs them); a missing one fails the
# test with the command that installs it. Everything listens on 127.0.0.1; the processes and the
# temp dir are removed on exit. Ends with `dns consumers: N passed, M failed` (exit 0 when none
# failed, else 1 with the logs' tails).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/interop/lib.sh

LEGATE_BIN=${LEGATE_BIN:-target/debug/legate}
for tool in dig unbound haproxy; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        echo "FAIL: $tool is not installed: apt-get install -y dnsutils unbound haproxy"
        echo "dns consumers: 0 passed, 1 failed"
        exit 1
    fi
done
export PATH="$PATH:/usr/sbin"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do stop_pid "$pid" 5; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# http METHOD PATH [BODY]: a request to the agent; fails unless it answers 200.
http() {
    python3 - "$1" "http://127.0.0.1:$HTTP_PORT$2" "${3:-}" <<'PY'
import sys, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None)
with urllib.request.urlopen(req, timeout=10) as resp:
    sys.stdout.write(resp.read().decode())
PY
}

PASSED=0
FAILED=0
show_logs() {
    for log in "$WORK"/*.log; do
        echo "--- last lines of $(basename "$log") ---"
        tail -n 30 "$log" | sed 's/\x1b\[[0-9;]*m//g' || true
    done
}
# check WHAT EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        PASSED=$((PASSED + 1))
        echo "ok   $1"
    else
        FAILED=$((FAILED + 1))
        printf 'FAIL %s\n  expected: %s\n  got:      %s\n' "$1" "$2" "$3"
    fi
}
# eventually WHAT EXPECTED COMMAND...: retries COMMAND (at most 20 s) until it prints EXPECTED.
eventually() {
    local what=$1 expected=$2 got=""
    shift 2
    for _ in $(seq 1 100); do
        got=$("$@" 2>/dev/null || true)
        [ "$got" = "$expected" ] && break
        sleep 0.2
    done
    check "$what" "$expected" "$got"
}

# --- the agent and its catalog ------------------------------------------------------------------
HTTP_PORT=$(free_port)
DNS_PORT=$(free_port)
"$LEGATE_BIN" agent -server -data-dir "$WORK/data" -node legate-node -client 127.0.0.1 \
    -bind 127.0.0.1 -http-port "$HTTP_PORT" -dns-port "$DNS_PORT" >"$WORK/legate.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    http GET /v1/status/leader >/dev/null 2>&1 && break
    sleep 0.1
done
http GET /v1/status/leader >/dev/null || { show_logs; echo "FAIL: the agent did not start"; exit 1; }

WEB1_PORT=$(free_port)
WEB2_PORT=$(free_port)
for i in 1 2; do
    mkdir -p "$WORK/web$i"
    echo "backend-$i" >"$WORK/web$i/index.html"
    port_var="WEB${i}_PORT"
    python3 -m http.server "${!port_var}" --bind 127.0.0.1 --directory "$WORK/web$i" \
        >"$WORK/web$i.log" 2>&1 &
    PIDS+=($!)
    http PUT /v1/agent/service/register "{\"ID\": \"web$i\", \"Name\": \"web\", \"Tags\": [\"v$i\"],
        \"Address\": \"127.0.0.1\", \"Port\": ${!port_var},
        \"Check\": {\"CheckID\": \"web$i-ttl\", \"TTL\": \"600s\", \"Status\": \"passing\"}}" >/dev/null
done
http PUT /v1/catalog/register '{"Node": "db-1", "Address": "10.0.0.9",
    "NodeMeta": {"rack": "r7"}, "Service": {"Service": "db", "Port": 5432}}' >/dev/null

DIG=(dig @127.0.0.1 -p "$DNS_PORT" +short +time=2 +tries=1)
# The lines of a command's output joined by spaces, ordered by their third field (a port).
by_port() { "$@" | sort -k3 -n | tr '\n' ' ' | sed 's/ $//'; }
read -r LOW_PORT HIGH_PORT <<<"$(printf '%s\n' "$WEB1_PORT" "$WEB2_PORT" | sort -n | tr '\n' ' ')"

# --- dig -----------------------------------------------------------------------------------------
eventually "dig web.service.consul" "127.0.0.1" "${DIG[@]}" web.service.consul
check "dig -t SRV _web._tcp.service.consul" \
    "1 1 $LOW_PORT web.service.dc1.consul. 1 1 $HIGH_PORT web.service.dc1.consul." \
    "$(by_port "${DIG[@]}" -t SRV _web._tcp.service.consul)"
check "dig -t SRV v2.web.service.consul" "1 1 $WEB2_PORT web.service.dc1.consul." \
    "$("${DIG[@]}" -t SRV v2.web.service.consul)"
check "dig db.service.dc1.consul" "10.0.0.9" "$("${DIG[@]}" db.service.dc1.consul)"
check "dig -t SRV db.service.consul" "1 1 5432 db-1.node.dc1.consul." \
    "$("${DIG[@]}" -t SRV db.service.consul)"
check "dig db-1.node.consul" "10.0.0.9" "$("${DIG[@]}" db-1.node.consul)"
check "dig -t TXT db-1.node.consul" '"rack=r7"' "$("${DIG[@]}" -t TXT db-1.node.consul)"
check "dig -x 10.0.0.9" "db-1.node.dc1.consul." "$("${DIG[@]}" -x 10.0.0.9)"
check "dig 0a000009.addr.consul" "10.0.0.9" "$("${DIG[@]}" 0a000009.addr.consul)"
check "dig -t NS consul" "legate-node.node.dc1.consul." "$("${DIG[@]}" -t NS consul)"
check "dig -t SOA consul (names and timers)" "ns.consul. hostmaster.consul. 3600 600 86400 0" \
    "$("${DIG[@]}" -t SOA consul | awk '{print $1, $2, $4, $5, $6, $7}')"
NX=$(dig @127.0.0.1 -p "$DNS_PORT" +time=2 +tries=1 nothing.service.consul)
check "dig nothing.service.consul: status" "NXDOMAIN" \
    "$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$NX")"
check "dig nothing.service.consul: SOA in the authority section" "consul. SOA" \
    "$(sed -n '/AUTHORITY SECTION/{n;p}' <<<"$NX" | awk '{print $1, $4}')"
check "dig example.org (no recursors): status" "REFUSED" \
    "$(dig @127.0.0.1 -p "$DNS_PORT" +time=2 +tries=1 example.org | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"
check "dig +tcp web.service.consul" "127.0.0.1" "$("${DIG[@]}" +tcp web.service.consul)"

# --- Unbound forwarding the consul. zone ----------------------------------------------------------
UNBOUND_PORT=$(free_port)
cat >"$WORK/unbound.conf" <<EOF
server:
    interface: 127.0.0.1
    port: $UNBOUND_PORT
    access-control: 127.0.0.0/8 allow
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: "$WORK/unbound.pid"
    use-syslog: no
    logfile: "$WORK/unbound.log"
    verbosity: 1
    # From Consul's DNS-forwarding guide: the agent is on loopback and the zone is unsigned.
    do-not-query-localhost: no
    domain-insecure: "consul"
    # Only the consul. zone is asked here: no trust anchor nor root hints needed.
    module-config: "iterator"
stub-zone:
    name: "consul"
    stub-addr: 127.0.0.1@$DNS_PORT
EOF
unbound-checkconf "$WORK/unbound.conf" >/dev/null \
    || { echo "FAIL: unbound rejects its configuration"; exit 1; }
unbound -d -c "$WORK/unbound.conf" >>"$WORK/unbound.log" 2>&1 &
PIDS+=($!)
UNBOUND_DIG=(dig @127.0.0.1 -p "$UNBOUND_PORT" +short +time=2 +tries=1)
eventually "unbound: web.service.consul" "127.0.0.1" "${UNBOUND_DIG[@]}" web.service.consul
check "unbound: db-1.node.consul" "10.0.0.9" "$("${UNBOUND_DIG[@]}" db-1.node.consul)"
check "unbound: SRV _web._tcp.service.consul" "$LOW_PORT $HIGH_PORT" \
    "$(by_port "${UNBOUND_DIG[@]}" -t SRV _web._tcp.service.consul | awk '{print $3, $7}')"

# --- HAProxy on the SRV records ------------------------------------------------------------------
HAPROXY_PORT=$(free_port)
cat >"$WORK/haproxy.cfg" <<EOF
global
    log stdout format raw local0 info

defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s

resolvers legate
    nameserver legate 127.0.0.1:$DNS_PORT
    accepted_payload_size 8192
    resolve_retries 3
    timeout resolve 500ms
    timeout retry 500ms
    hold valid 1s
    hold obsolete 0s
    hold nx 0s

frontend web
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend web

backend web
    balance roundrobin
    # No health checks of HAProxy's own: the DNS answers alone decide where traffic goes.
    server-template web 4 _web._tcp.service.consul resolvers legate resolve-prefer ipv4 init-addr none
EOF
haproxy -c -f "$WORK/haproxy.cfg" >/dev/null \
    || { haproxy -c -f "$WORK/haproxy.cfg"; echo "FAIL: haproxy rejects its configuration"; exit 1; }
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)

# Which backends answer 20 requests through HAProxy.
backends_seen() {
    python3 - "$HAPROXY_PORT" <<'PY'
import sys, urllib.request
seen = set()
for _ in range(20):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2) as r:
            seen.add(r.read().decode().strip())
    except Exception:
        seen.add("error")
print(" ".join(sorted(seen)))
PY
}
eventually "haproxy: traffic reaches both registered backends" "backend-1 backend-2" backends_seen
http PUT "/v1/agent/check/fail/web2-ttl?note=down" >/dev/null
eventually "haproxy: a backend whose check turned critical gets no more traffic" "backend-1" backends_seen
http PUT "/v1/agent/check/pass/web2-ttl" >/dev/null
eventually "haproxy: it gets traffic again once passing" "backend-1 backend-2" backends_seen

if [ "$FAILED" -gt 0 ]; then
    show_logs
    echo "dns consumers: $PASSED passed, $FAILED failed"
    exit 1
fi
echo "dns consumers: $PASSED passed, $FAILED failed"
