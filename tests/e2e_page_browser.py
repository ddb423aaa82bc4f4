#!/usr/bin/python3
"""The live page in a real browser: headless Chromium (Debian's chromium),
driven over the DevTools protocol (python3-websocket), while orders move
through the real engine and ordo-projector --http.

Checked: the page connects its event stream; a new order of the shown
restaurant appears in the Created column within a second of its command's
reply (the time is printed; under the sanitizers, which slow everything,
only that it appears); it moves to Confirmed, then Preparing; every
column's count equals the RestaurantBoard query's; the charts are drawn
(SVG bars); the page fetched nothing from elsewhere. A screenshot is kept
in ARTIFACTS (default: the build folder's tests/artifacts/page.png).

Usage: e2e_page_browser.py ordo-server ordo-projector [ARTIFACTS]"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import websocket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_page  # noqa: E402  (reads the programs' paths from argv)
from e2e_page import Stack, create, get  # noqa: E402
from e2e_util import free_port, wait_for  # noqa: E402

ARTIFACTS = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.getcwd(), "artifacts")
SANITIZED = os.environ.get("ORDO_SANITIZED") == "1"
RESTAURANT = 77


class Browser:
    """Headless Chromium and one page, over the DevTools protocol."""

    def __init__(self, top):
        self.port = free_port()
        self.profile = os.path.join(top, "chromium")
        self.log = open(os.path.join(top, "chromium.log"), "ab")
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--window-size=1400,1000",
             "--user-data-dir=" + self.profile, "--remote-debugging-port=%d" % self.port,
             "about:blank"], stdout=self.log, stderr=self.log)
        self.next_id = 0
        self.requests = []  # every URL the page asked for

        def target():
            assert self.proc.poll() is None, "chromium exited"
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port,
                                            timeout=2) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                return pages[0]["webSocketDebuggerUrl"] if pages else None
            except OSError:
                return None
        self.ws = websocket.create_connection(wait_for("chromium's DevTools", target, 60),
                                              timeout=30)
        self.call("Network.enable")
        self.call("Page.enable")

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == "Network.requestWillBeSent":
                self.requests.append(msg["params"]["request"]["url"])
            if msg.get("id") == my:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.kill()
            self.proc.wait()
            self.log.close()


def column_of(browser, oid):
    return browser.eval("(() => { const c = document.querySelector('[data-order=\"%s\"]');"
                        " return c ? c.closest('.column').dataset.status : null; })()" % oid)


def main():
    top = tempfile.mkdtemp(prefix="ordo-e2e-browser-")
    ok = False
    st = Stack(top)
    browser = None
    try:
        st.start()
        for i in range(3):  # orders already there when the page opens
            assert st.call(create("early-%d" % i, RESTAURANT))["ok"]
        assert st.call({"type": "ConfirmOrder", "order_id": "early-0"})["ok"]
        browser = Browser(top)
        url = "http://127.0.0.1:%d/?restaurant=%d" % (st.http, RESTAURANT)
        browser.call("Page.navigate", url=url)
        wait_for("the event stream", lambda: browser.eval(
            "document.querySelector('#live.on') !== null"), 30)
        wait_for("the early orders", lambda: column_of(browser, "early-0") == "Confirmed", 30)

        t0 = time.monotonic()
        assert st.call(create("browser-1", RESTAURANT))["ok"]
        wait_for("the new order", lambda: column_of(browser, "browser-1") == "Created", 30)
        shown = time.monotonic() - t0
        if not SANITIZED:
            assert shown < 1.0, "the new order took %.2f s to show" % shown
        for cmd, column in (("ConfirmOrder", "Confirmed"), ("StartPreparing", "Preparing")):
            assert st.call({"type": cmd, "order_id": "browser-1"})["ok"]
            wait_for("browser-1 in %s" % column,
                     lambda c=column: column_of(browser, "browser-1") == c, 30)

        # Every column's count is the RestaurantBoard query's.
        s, _, body = get(st.http, "/api/board?restaurant=%d" % RESTAURANT)
        board = json.loads(body)
        assert s == 200 and board["ok"], board

        def counts_match():
            shown = browser.eval("Object.fromEntries([...document.querySelectorAll('[data-count]')]"
                                 ".map(e => [e.dataset.count, Number(e.textContent)]))") or {}
            return all(shown.get(k) == board["counts"][k] for k in
                       ("Created", "Confirmed", "Preparing", "Ready", "OutForDelivery"))
        wait_for("the counts of RestaurantBoard", counts_match, 30)
        cards = browser.eval("document.querySelectorAll('.card').length")
        assert cards == len(board["active"]) == 4, (cards, board["active"])
        wait_for("the charts", lambda: browser.eval(
            "document.querySelectorAll('#per-hour rect').length") >= 1, 30)
        status = browser.eval("[...document.querySelectorAll('[data-projection]')]"
                              ".map(e => e.dataset.projection)")
        assert "summary" in status and "restaurant" in status, status

        others = [u for u in browser.requests
                  if not u.startswith("http://127.0.0.1:%d/" % st.http) and
                  not u.startswith("data:") and u != "about:blank"]
        assert not others, "the page fetched from elsewhere: %s" % others[:3]
        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "page.png")
        png = browser.call("Page.captureScreenshot", format="png")["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(png))
        print("browser: new order shown %.2f s after its reply; moved Created -> Confirmed -> "
              "Preparing; counts equal RestaurantBoard's; %d requests, all to the page's server; "
              "screenshot %s" % (shown, len(browser.requests), shot))
        browser.close()
        browser = None
        st.stop()
        ok = True
    except Exception:
        traceback.print_exc()
    finally:
        if browser:
            browser.close()
        for p in (getattr(st, "projector", None), getattr(st, "engine", None)):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if not ok:
            for name in st.logs + ["chromium"]:
                path = os.path.join(top, name + ".log")
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        lines = f.read().decode("utf-8", "replace").splitlines()
                    sys.stderr.write("---- %s.log\n%s\n" % (name, "\n".join(lines[-30:])))
        shutil.rmtree(top, ignore_errors=True)
    print("e2e_page_browser: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
