"""Service discovery, health, sessions and events through py-consul against a running agent.

Usage: python3 py_consul_discovery.py HOST PORT. Exits non-zero on the first failed expectation.
"""
import sys
import threading
import time

import consul

host, port = sys.argv[1], int(sys.argv[2])
c = consul.Consul(host=host, port=port)

# Register two instances of a service with TTL checks, one passing.
assert c.agent.service.register("web", service_id="web-1", port=8080, tags=["v1"], meta={"version": "1"},
                                check=consul.Check.ttl("30s")) is True
assert c.agent.service.register("web", service_id="web-2", port=8081, tags=["v2"],
                                check=consul.Check.ttl("30s")) is True
assert c.agent.check.ttl_pass("service:web-1", "fine") is True

services = c.agent.services()
assert set(services) >= {"web-1", "web-2"}, services
assert services["web-1"]["Meta"] == {"version": "1"}, services["web-1"]

_, names = c.catalog.services()
assert "web" in names and sorted(names["web"]) == ["v1", "v2"], names

index, passing = c.health.service("web", passing=True)
assert [e["Service"]["ID"] for e in passing] == ["web-1"], passing
_, tagged = c.health.service("web", tag="v2")
assert [e["Service"]["ID"] for e in tagged] == ["web-2"], tagged

# A blocking health query returns when web-2 turns passing.
result = {}


def watch():
    result["got"] = c.health.service("web", passing=True, index=index, wait="10s")


t = threading.Thread(target=watch)
t.start()
time.sleep(0.3)
assert c.agent.check.ttl_pass("service:web-2") is True
t.join(10)
assert not t.is_alive(), "blocking health query did not return"
_, now_passing = result["got"]
assert sorted(e["Service"]["ID"] for e in now_passing) == ["web-1", "web-2"], now_passing

# Maintenance hides the node's instances from passing queries.
assert c.agent.maintenance(True, "upgrade") is True
_, during = c.health.service("web", passing=True)
assert during == [], during
assert c.agent.maintenance(False) is True

# Sessions and locks.
sid = c.session.create(name="leader-election", ttl=15, lock_delay=0)
assert c.kv.put("service/app/leader", "me", acquire=sid) is True
other = c.session.create(lock_delay=0)
assert c.kv.put("service/app/leader", "you", acquire=other) is False
_, entry = c.kv.get("service/app/leader")
assert entry["Session"] == sid, entry
renewed = c.session.renew(sid)
assert renewed["ID"] == sid, renewed
assert c.session.destroy(sid) is True
_, entry = c.kv.get("service/app/leader")
assert "Session" not in entry, entry
assert c.kv.put("service/app/leader", "you", acquire=other) is True

# Events.
fired = c.event.fire("deploy", "v2")
assert fired["Name"] == "deploy", fired
_, events = c.event.list(name="deploy")
assert events and events[-1]["Payload"] == b"v2", events

assert c.agent.service.deregister("web-2") is True
_, left = c.health.service("web")
assert [e["Service"]["ID"] for e in left] == ["web-1"], left
print("py-consul: all discovery, health, session and event checks passed")
