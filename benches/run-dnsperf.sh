#!/usr/bin/env bash
# DNS interface throughput and latency with Debian's dnsperf: 1,000 services with 3 instances
# each, asked a mix of A (`svc-N.service.consul`) and SRV (`_svc-N._tcp.service.consul`)
# questions over UDP.
#
#   bash benches/run-dnsperf.sh            (from the project root)
#
# Builds legate in release mode (or uses LEGATE_BIN), starts it on 127.0.0.1 (free ports, a
# temp data dir under BENCH_DIR), registers the services through /v1/catalog/register, then
# runs dnsperf at full speed for DURATION seconds with CLIENTS simulated clients. dnsperf's
# verbose mode reports every reply's latency, from which the percentiles are computed. Prints
# dnsperf's summary and a markdown table; the target is at least 50,000 answered questions per
# second with none lost and p99 under 1 ms. Numbers are reported, not asserted: the script
# fails only if a command fails or an answer is not NOERROR. Everything started here is stopped
# and removed on exit.
#
# Knobs (environment): SERVICES (default 1000), INSTANCES (default 3), DURATION (seconds,
# default 20), CLIENTS (dnsperf -c, default 8), THREADS (dnsperf -T, default 2), SRV_SHARE
# (percent of SRV questions, default 50), OUTSTANDING (dnsperf -q, questions in flight, default
# 100), RATE (dnsperf -Q, questions per second to ask, default as fast as answered), BENCH_DIR
# (default /tmp), LEGATE_BIN (skip the build). The agent's CPU time during the run is reported
# too, as CPU microseconds per answer: on a shared machine it tells the cost of an answer apart
# from the CPU the other programs leave.
set -euo pipefail

SERVICES=${SERVICES:-1000}
INSTANCES=${INSTANCES:-3}
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
SRV_SHARE=${SRV_SHARE:-50}
OUTSTANDING=${OUTSTANDING:-100}
RATE=${RATE:-}

cd "$(dirname "$0")/.."
source "$(dirname "$0")/lib.sh"

command -v dnsperf >/dev/null 2>&1 || die "dnsperf is not installed: apt-get install -y dnsperf"

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/legate-dnsperf.XXXXXX")
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
if [ -z "${LEGATE_BIN:-}" ]; then
    log "building legate (release)"
    cargo build --release --bin legate
    LEGATE_BIN="${CARGO_TARGET_DIR:-target}/release/legate"
fi
# A copy, so a concurrent rebuild of the tree cannot swap it mid-run.
cp "$LEGATE_BIN" "$WORK/legate-bin"

DNS_PORT=$(free_port)
TAKEN_PORTS="$TAKEN_PORTS$DNS_PORT "
start_agent "$WORK/legate-bin" "$WORK/data" "$WORK/agent.log" -dns-port "$DNS_PORT"
log "agent on $URL, DNS on 127.0.0.1:$DNS_PORT"

log "registering $SERVICES services x $INSTANCES instances"
python3 - "$URL" "$SERVICES" "$INSTANCES" <<'PY'
import http.client, json, sys, urllib.parse
url, services, instances = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
for i in range(instances):
    for s in range(services):
        body = {"Node": f"node-{i}-{s // 250}", "Address": f"10.{i}.{s // 250}.1",
                "Service": {"ID": f"svc-{s}", "Service": f"svc-{s}",
                            "Address": f"10.{i}.{s // 250}.{2 + s % 250}", "Port": 8000 + s}}
        conn.request("PUT", "/v1/catalog/register", json.dumps(body))
        resp = conn.getresponse()
        if resp.status != 200:
            sys.exit(f"register svc-{s}: HTTP {resp.status}: {resp.read().decode()}")
        resp.read()
PY

# The question file: every service asked as A and as SRV, SRV_SHARE percent of them SRV.
python3 - "$SERVICES" "$SRV_SHARE" >"$WORK/queries.txt" <<'PY'
import random, sys
services, srv_share = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(11)
for _ in range(20 * services):
    s = rng.randrange(services)
    if rng.randrange(100) < srv_share:
        print(f"_svc-{s}._tcp.service.consul SRV")
    else:
        print(f"svc-{s}.service.consul A")
PY

# A warm-up question, checked.
python3 - "$DNS_PORT" <<'PY'
import socket, struct, sys
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in "svc-1.service.consul".split(".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
reply = s.recv(4096)
rcode, answers = reply[3] & 0xF, struct.unpack(">H", reply[6:8])[0]
if rcode != 0 or answers != 3:
    sys.exit(f"warm-up: rcode {rcode}, {answers} answers (expected NOERROR with 3)")
PY

# The agent's CPU time (user + system clock ticks), to tell its cost per answer apart from
# what the other programs on this machine leave it.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
CPU_BEFORE=$(cpu_ticks)
log "dnsperf: ${DURATION}s, $CLIENTS clients, $THREADS threads, ${SRV_SHARE}% SRV"
dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/queries.txt" -l "$DURATION" -c "$CLIENTS" \
    -T "$THREADS" -q "$OUTSTANDING" ${RATE:+-Q "$RATE"} -t 2 -v >"$WORK/dnsperf.out" 2>&1 || { tail -n 30 "$WORK/dnsperf.out"; die "dnsperf failed"; }
CPU_AFTER=$(cpu_ticks)
sed -n '/Statistics:/,$p' "$WORK/dnsperf.out"

# Verbose lines are "> RCODE name type latency"; timeouts report "T" instead of an RCODE.
awk '$1 == ">" {print $2, $NF}' "$WORK/dnsperf.out" >"$WORK/replies.txt"
BAD=$(awk '$1 != "NOERROR"' "$WORK/replies.txt" | wc -l)
read -r P50 P90 P99 P999 MAX < <(awk '$1 == "NOERROR" {print $2}' "$WORK/replies.txt" | sort -g | awk '
    {v[NR] = $1}
    END {
        q(0.5); q(0.9); q(0.99); q(0.999); printf "%.3f\n", v[NR] * 1000
    }
    function q(p,   i) { i = int(NR * p + 0.999999); if (i < 1) i = 1; printf "%.3f ", v[i] * 1000 }')
stat() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$WORK/dnsperf.out" | head -n1; }
CPU_SECONDS=$(awk -v t=$((CPU_AFTER - CPU_BEFORE)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}')
US_PER_ANSWER=$(awk -v c="$CPU_SECONDS" -v n="$(stat 'Queries completed')" 'BEGIN {if (n > 0) printf("%.1f", c * 1e6 / n); else print "-"}')

echo
echo "| services x instances | questions | answered | lost | non-NOERROR | qps | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | agent CPU s | agent CPU µs/answer |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
echo "| $SERVICES x $INSTANCES | $(stat 'Queries sent') | $(stat 'Queries completed') | $(stat 'Queries lost') | $BAD | $(stat 'Queries per second') | $P50 | $P90 | $P99 | $P999 | $MAX | $CPU_SECONDS | $US_PER_ANSWER |"
echo
echo "(agent and dnsperf share this machine's $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg); ${SRV_SHARE}% SRV, $CLIENTS clients, $THREADS dnsperf threads, at most $OUTSTANDING questions outstanding${RATE:+, $RATE qps asked}, ${DURATION}s)"
[ "$BAD" -eq 0 ] || die "$BAD replies were not NOERROR"
