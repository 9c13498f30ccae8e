#!/usr/bin/env python3
"""Browser tests of the web UI: headless Debian Chromium driven by selenium.

Usage: browser.py <scenario> <agent base URL> [scenario arguments...]

Run by tests/it/ui.rs, which starts and seeds the agent first. Each scenario saves
screenshots under target/ui-screenshots/ and prints one JSON line of measurements. A missing
prerequisite exits with status 2 and the command that installs it.
"""

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request

INSTALL = ("apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver"
           " && python3 -m pip install selenium")


def require_prerequisites():
    missing = [tool for tool in ("chromium", "chromedriver") if not shutil.which(tool)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3 selenium")
    if missing:
        print(f"missing {', '.join(missing)}: install with: {INSTALL}", file=sys.stderr)
        sys.exit(2)


require_prerequisites()

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHOTS = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "ui-screenshots")


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Api:
    def __init__(self, base, token=None):
        self.base = base
        self.token = token

    def call(self, method, path, body=None):
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if self.token:
            req.add_header("X-Consul-Token", self.token)
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.read()


class Browser:
    def __init__(self, base, width=1280, height=900):
        self.base = base
        opts = Options()
        opts.binary_location = shutil.which("chromium")
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
        self.driver.set_page_load_timeout(30)

    def open(self, path):
        self.driver.get(self.base + path)

    def wait(self, condition, timeout=10, message="condition"):
        try:
            # Live lists replace their rows: an element found a moment ago may be gone.
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(condition)
        except Exception as e:
            self.shot("failure")
            raise Failure(f"timed out waiting for {message} on {self.driver.current_url}") from e

    def find(self, css, timeout=10):
        return self.wait(EC.presence_of_element_located((By.CSS_SELECTOR, css)), timeout, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        path = os.path.join(SHOTS, f"{name}.png")
        self.driver.save_screenshot(path)
        return path

    def severe_console_errors(self):
        """Script errors and refused loads (a CSP violation shows up as one). An API answer
        with an error status is logged too; those are the app's to show, not errors here."""
        answered = "Failed to load resource: the server responded with a status of"
        return [e["message"] for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and answered not in e["message"]]

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.driver.quit()


def row(browser, name):
    return browser.find(f'#services tr[data-service="{name}"]')


def scenario_services(base, service, check_id, expected_output):
    """Search a service among 200, read its check output, fail its TTL check through the API
    and see the list turn it critical within 2 s without a reload; then its node's page."""
    api = Api(base)
    with Browser(base) as b:
        b.open("/")
        b.wait(lambda d: d.current_url.endswith("/ui/dc1/services"), message="redirect to services")
        b.wait(lambda d: len(b.all("#services tbody tr")) >= 200, message="200 services listed")
        listed = len(b.all("#services tbody tr"))
        search = b.find("#search")
        search.send_keys(service[:-1])
        b.wait(lambda d: len(b.all("#services tbody tr")) == 1, message="search narrowing to one row")
        check(row(b, service), "the searched service is listed")
        b.shot("services-search")
        # Keyboard: the row's link is reachable and opens the service with Enter.
        link = b.find(f'#services tr[data-service="{service}"] a')
        link.send_keys(Keys.ENTER)
        output = b.find(f'.instance li[data-check="{check_id}"] pre.output')
        b.wait(lambda d: expected_output in output.text, message="check output")
        b.shot("service")
        b.find('nav a[href$="/services"]').click()
        b.find("#search").send_keys(service)
        b.wait(lambda d: row(b, service).get_attribute("data-health") == "passing", message="passing row")
        b.js("window.__noReload = true")
        started = time.monotonic()
        api.call("PUT", f"/v1/agent/check/fail/{check_id}?note=disk+full")
        b.wait(lambda d: row(b, service).get_attribute("data-health") == "critical", timeout=2,
               message="the row turning critical within 2 s")
        elapsed = time.monotonic() - started
        check(b.js("return window.__noReload === true"), "the page was not reloaded")
        check("critical" in row(b, service).text, "the row says critical")
        b.shot("services-critical")
        # The service's node, with its checks and lock sessions.
        b.find(f'#services tr[data-service="{service}"] a').click()
        node_link = b.find('.instance dd a[href*="/nodes/"]')
        node = node_link.text
        node_link.click()
        b.find("#node-checks")
        b.find("#sessions")
        check(node in b.find("h1").text, "the node page names the node")
        b.shot("node")
        b.open("/ui/dc1/nodes")
        b.wait(lambda d: len(b.all("#nodes tbody tr")) >= 50, message="50 nodes listed")
        b.shot("nodes")
        errors = b.severe_console_errors()
        check(not errors, f"console errors: {errors}")
        return {"listed": listed, "critical_after_s": round(elapsed, 3)}


def kv_editor(b, key):
    b.open(f"/ui/dc1/kv/{key}/edit")
    return b.find("#kv-value")


def scenario_kv(base):
    """Create a key in the UI and read it back through /v1/kv; edit it in two tabs and get the
    conflict in the second; delete a folder recursively after confirming."""
    api = Api(base)
    with Browser(base) as b:
        b.open("/ui/dc1/kv/")
        b.find("#kv-create").click()
        b.find("#kv-key").send_keys("app/config.json")
        b.find("#kv-value").send_keys('{"replicas": 3, "image": "web:1"}')
        flags = b.find("#kv-flags")
        flags.clear()
        flags.send_keys("42")
        b.find("#kv-save").click()
        b.find('#kv-list tr[data-key="app/config.json"]')
        _, raw = api.call("GET", "/v1/kv/app/config.json")
        entry = json.loads(raw)[0]
        import base64
        check(base64.b64decode(entry["Value"]) == b'{"replicas": 3, "image": "web:1"}', f"stored value {entry}")
        check(entry["Flags"] == 42, f"stored flags {entry['Flags']}")
        # Two editors: both read the key, the first saves, the second gets the conflict.
        first = b.driver.current_window_handle
        kv_editor(b, "app/config.json")
        formatted = b.find("#kv-formatted pre").text
        check('"replicas": 3' in formatted, f"JSON shown formatted: {formatted!r}")
        b.shot("kv-edit")
        b.driver.switch_to.new_window("tab")
        second = b.driver.current_window_handle
        kv_editor(b, "app/config.json")
        b.driver.switch_to.window(first)
        value = b.find("#kv-value")
        value.clear()
        value.send_keys('{"replicas": 4}')
        b.find("#kv-save").click()
        b.wait(lambda d: "Saved" in b.find("#kv-status").text, message="first save")
        b.driver.switch_to.window(second)
        value = b.find("#kv-value")
        value.clear()
        value.send_keys('{"replicas": 5}')
        b.find("#kv-save").click()
        conflict = b.find("#kv-conflict")
        check("Conflict" in conflict.text, "the second editor sees the conflict")
        b.shot("kv-conflict")
        _, raw = api.call("GET", "/v1/kv/app/config.json?raw")
        check(raw == b'{"replicas": 4}', f"the first save stands: {raw!r}")
        # Recursive delete of a folder, after the confirmation.
        api.call("PUT", "/v1/kv/old/a", b"1")
        api.call("PUT", "/v1/kv/old/deep/b", b"2")
        b.open("/ui/dc1/kv/")
        b.find('#kv-list tr[data-key="old/"] button').click()
        alert = b.wait(EC.alert_is_present(), message="the confirmation")
        check("every key under it" in alert.text, f"confirmation text: {alert.text}")
        alert.accept()
        b.wait(lambda d: not b.all('#kv-list tr[data-key="old/"]'), message="the folder gone from the list")
        try:
            api.call("GET", "/v1/kv/old/?recurse")
            raise Failure("keys under old/ remain")
        except urllib.error.HTTPError as e:
            check(e.code == 404, f"old/ after delete: {e.code}")
        b.shot("kv")
        errors = b.severe_console_errors()
        check(not errors, f"console errors: {errors}")
        return {}


def log_in(b, secret):
    b.open("/ui/dc1/services")
    b.find('nav a[href$="/login"]').click()
    b.find("#token-secret").send_keys(secret)
    b.find("#login").click()
    b.wait(lambda d: d.current_url.endswith("/services"), message="back on services after login")
    stored = b.js("return JSON.parse(localStorage.getItem('consul:token'))")
    check(stored and stored.get("SecretID") == secret, f"token kept in local storage: {stored}")


def scenario_acl(base, secret):
    """With default_policy = "deny": log in with a token that may read only app/ keys; no
    services, no nodes, and the ACL pages say "No access" rather than failing."""
    with Browser(base) as b:
        log_in(b, secret)
        b.wait(lambda d: b.find("#count").text == "0 of 0 services", message="no services visible")
        b.shot("acl-services")
        b.open("/ui/dc1/nodes")
        b.find("#nodes")
        check(not b.all("#nodes tbody tr"), "no nodes visible")
        b.open("/ui/dc1/acls/tokens")
        panel = b.find(".notice.denied")
        check("No access" in panel.text, "ACL tokens show a no-access panel")
        b.shot("acl-denied")
        errors = b.severe_console_errors()
        check(not errors, f"console errors: {errors}")
        return {}


def scenario_acl_kv(base, secret):
    """The same token sees only app/ in the KV root, and the keys under it."""
    with Browser(base) as b:
        log_in(b, secret)
        b.open("/ui/dc1/kv/")
        b.find("#kv-list")
        keys = [r.get_attribute("data-key") for r in b.all("#kv-list tbody tr")]
        check(keys == ["app/"], f"only app/ visible in KV: {keys}")
        b.find('#kv-list tr[data-key="app/"] a').click()
        b.find('#kv-list tr[data-key="app/one"]')
        b.shot("acl-kv")
        return {}


def scenario_weight(base):
    """First load under 200 KB compressed; the services page with every service registered
    (1,000 and more) renders in under a second. Also dark with a dark system preference, and
    readable at 320 px and 4K without horizontal scrolling."""
    _, raw = Api(base).call("GET", "/v1/internal/ui/services")
    services = len(json.loads(raw))
    check(services >= 1000, f"{services} services registered")
    with Browser(base) as b:
        b.open("/ui/dc1/services")
        b.wait(lambda d: len(b.all("#services tbody tr")) == services, timeout=30,
               message=f"{services} services listed")
        rendered = b.js("return performance.getEntriesByName('services-rendered')[0].startTime")
        resources = b.js("""return performance.getEntriesByType('navigation').concat(
            performance.getEntriesByType('resource'))
            .map(e => [new URL(e.name).pathname, e.encodedBodySize, e.decodedBodySize])""")
        # The UI is the page and its assets; the API's answers are the data it shows.
        ui = [r for r in resources if r[0].startswith("/ui/")]
        encoded = sum(r[1] for r in ui)
        decoded = sum(r[2] for r in ui)
        data = sum(r[1] for r in resources if r[0].startswith("/v1/"))
        b.shot("services-1000")
        check(rendered < 1000, f"services page rendered in {rendered:.0f} ms")
        check(encoded < 200 * 1024, f"first load {encoded} bytes compressed")
        # Dark mode follows the system's preference.
        b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                 {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        background = b.js("return getComputedStyle(document.body).backgroundColor")
        check(background == "rgb(13, 17, 23)", f"dark background: {background}")
        b.shot("services-dark")
        b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        for width, height, name in ((320, 800, "services-320px"), (3840, 2160, "services-4k")):
            b.driver.set_window_size(width, height)
            b.wait(lambda d: b.js("return innerWidth") <= width, message="window resized")
            overflow = b.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            check(overflow <= 0, f"horizontal scrolling at {width}px: {overflow}px")
            b.shot(name)
        return {"services": services, "render_ms": round(rendered), "first_load_compressed_bytes": encoded,
                "first_load_uncompressed_bytes": decoded, "files": len(ui), "api_data_bytes": data}


SCENARIOS = {
    "services": scenario_services,
    "kv": scenario_kv,
    "acl": scenario_acl,
    "acl-kv": scenario_acl_kv,
    "weight": scenario_weight,
}

if __name__ == "__main__":
    name, base, *args = sys.argv[1:]
    try:
        result = SCENARIOS[name](base, *args)
    except Failure as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"scenario": name, **result}))
