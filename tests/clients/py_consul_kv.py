"""KV and Txn through py-consul (the maintained python-consul fork) against a running agent.

Usage: python3 py_consul_kv.py HOST PORT. Exits non-zero on the first failed expectation.
"""
import base64
import sys
import threading
import time

import consul

host, port = sys.argv[1], int(sys.argv[2])
c = consul.Consul(host=host, port=port)

assert c.kv.put("py/a", "one") is True
assert c.kv.put("py/b", b"two", flags=9) is True
index, entry = c.kv.get("py/a")
assert entry["Value"] == b"one", entry
assert entry["Key"] == "py/a" and entry["CreateIndex"] == entry["ModifyIndex"]
index, entry = c.kv.get("py/b")
assert entry["Flags"] == 9, entry

_, entries = c.kv.get("py/", recurse=True)
assert [e["Key"] for e in entries] == ["py/a", "py/b"], entries
_, keys = c.kv.get("", keys=True, separator="/")
assert keys == ["py/"], keys

# CAS: 0 only creates; a stale index fails; the current one succeeds.
assert c.kv.put("py/a", "x", cas=0) is False
_, entry = c.kv.get("py/a")
assert c.kv.put("py/a", "x", cas=entry["ModifyIndex"] + 100) is False
assert c.kv.put("py/a", "x", cas=entry["ModifyIndex"]) is True

# A missing key is (index, None).
idx, missing = c.kv.get("py/none")
assert missing is None and int(idx) >= 1

# A blocking get returns when the key changes.
_, entry = c.kv.get("py/a")
result = {}


def watch():
    result["got"] = c.kv.get("py/a", index=entry["ModifyIndex"], wait="10s")


t = threading.Thread(target=watch)
t.start()
time.sleep(0.3)
assert c.kv.put("py/a", "changed") is True
t.join(10)
assert not t.is_alive(), "blocking get did not return"
new_index, new_entry = result["got"]
assert int(new_index) > entry["ModifyIndex"] and new_entry["Value"] == b"changed"

# Transactions.
b64 = lambda s: base64.b64encode(s.encode()).decode()
ok = c.txn.put([
    {"KV": {"Verb": "set", "Key": "py/t1", "Value": b64("v1")}},
    {"KV": {"Verb": "get", "Key": "py/t1"}},
])
assert len(ok["Results"]) == 2 and ok["Errors"] is None, ok
try:
    c.txn.put([{"KV": {"Verb": "get", "Key": "py/absent"}}])
    raise AssertionError("a failing txn must raise")
except consul.base.ConsulException as e:  # a 409 is reported as an error
    assert "doesn't exist" in str(e), e

assert c.kv.delete("py/", recurse=True) is True
_, gone = c.kv.get("py/", recurse=True)
assert gone is None, gone

leader = c.status.leader()
assert leader.endswith(":8300"), leader
print("py-consul: all KV and Txn checks passed")
