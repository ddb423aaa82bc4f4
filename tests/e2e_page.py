#!/usr/bin/python3
"""ordo-projector --http end to end, over HTTP (the browser test is
e2e_page_browser.py): the real engine and projector on free loopback ports.

Checked: the page and its files are served with their types; /api/status,
/api/board and /api/analytics answer what the projector's own queries
answer, as JSON; /api/events streams each new event (an order created,
then confirmed, for a restaurant) and the board read at that position shows
it in the right column with the right counts; bad input is refused (404,
405, 400 for bad arguments, 431 for oversized headers), and event streams
beyond 32 get 503 while the first 32 go on; SIGTERM with streams open
stops the projector cleanly.

Usage: e2e_page.py ordo-server ordo-projector"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_util import free_port, wait_for  # noqa: E402

SERVER, PROJECTOR = sys.argv[1:3]
CTX = zmq.Context.instance()




class Stack:
    """The engine and the projector with --http, in a temporary folder."""

    def __init__(self, top):
        self.top = top
        self.bind = "tcp://127.0.0.1:%d" % free_port()
        self.pub = "tcp://127.0.0.1:%d" % free_port()
        self.http = free_port()
        self.queries = "tcp://127.0.0.1:%d" % free_port()
        self.logs = []

    def start(self):
        self.engine = self._spawn("engine", [SERVER, "--data-dir", os.path.join(self.top, "e"),
                                             "--bind", self.bind, "--pub", self.pub])
        self.dealer = CTX.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(self.bind)
        self.projector = self._spawn(
            "projector", [PROJECTOR, "--engine", self.bind, "--engine-pub", self.pub,
                          "--bind", self.queries,
                          "--data-dir", os.path.join(self.top, "p"),
                          "--http", "127.0.0.1:%d" % self.http])

        def up():
            assert self.projector.poll() is None, "projector exited"
            try:
                return get(self.http, "/api/status")[0] == 200
            except OSError:
                return False
        wait_for("the page", up)
        return self

    def _spawn(self, name, args):
        log = open(os.path.join(self.top, name + ".log"), "ab")
        self.logs.append(name)
        return subprocess.Popen(args, stdout=log, stderr=log)

    def call(self, req):
        self.dealer.send(msgpack.packb(req))
        assert self.dealer.poll(20000), req
        return msgpack.unpackb(self.dealer.recv())

    def stop(self):
        self.dealer.close()
        for p in (self.projector, self.engine):
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=60) == 0


def get(port, path, method="GET", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def get_quietly(port, path):
    try:
        get(port, path)
    except OSError:
        pass  # the server went away: what a stop does


class Stream:
    """An /api/events stream, read line by line."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.headers = head.decode("latin-1").lower()

    def _until(self, sep):
        while sep not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("stream closed")
            self.buf += chunk
        out, self.buf = self.buf.split(sep, 1)
        return out

    def event(self):
        """The next SSE message as (event, data), skipping comments. Chunked
        transfer: the chunk sizes are dropped with the lines around them."""
        while True:
            block = self._until(b"\n\n").decode()
            name, data = None, None
            for line in block.split("\n"):
                line = line.strip("\r")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if name:
                return name, data

    def close(self):
        self.sock.close()


def create(oid, restaurant):
    return {"type": "CreateOrder", "order_id": oid,
            "data": {"user_id": 5, "restaurant_id": restaurant, "delivery_address": "1 Main St",
                     "items": [{"sku": "a", "name": "Soup", "qty": 1, "price_cents": 900}]}}


def test_files(st):
    s, h, body = get(st.http, "/")
    assert s == 200 and h["Content-Type"].startswith("text/html") and b"Ordo" in body, (s, h)
    for path, kind in (("/app.js", "text/javascript"), ("/style.css", "text/css"),
                       ("/index.html", "text/html")):
        s, h, body = get(st.http, path)
        assert s == 200 and h["Content-Type"].startswith(kind) and len(body) > 100, (path, s, h)
    assert b"http://" not in get(st.http, "/")[2].replace(b"http://www.w3.org", b""), \
        "the page must fetch nothing from elsewhere"
    print("files: /, /app.js, /style.css with their types")


def wait_event(stream, oid, type_):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        name, data = stream.event()
        if name == "change" and data["order_id"] == oid and data["type"] == type_:
            return data
    raise AssertionError("no %s for %s on the stream" % (type_, oid))


def board(st, restaurant, position):
    s, _, body = get(st.http, "/api/board?restaurant=%d&min_position=%d" % (restaurant, position))
    r = json.loads(body)
    assert s == 200 and r["ok"], (s, r)
    assert r["position"] >= position, (r["position"], position)
    return r


def test_live(st):
    stream = Stream(st.http)
    try:
        assert stream.status == 200 and "text/event-stream" in stream.headers, stream.headers
        assert stream.event()[0] == "hello"
        assert st.call(create("page-1", 42))["ok"]
        ev = wait_event(stream, "page-1", "OrderCreated")
        assert ev["restaurant_id"] == 42, ev
        r = board(st, 42, ev["position"])
        assert [o["order_id"] for o in r["active"]] == ["page-1"], r
        assert r["active"][0]["status"] == "Created" and r["counts"]["Created"] == 1, r
        assert st.call({"type": "ConfirmOrder", "order_id": "page-1"})["ok"]
        ev = wait_event(stream, "page-1", "OrderConfirmed")
        r = board(st, 42, ev["position"])
        assert r["active"][0]["status"] == "Confirmed", r
        assert r["counts"]["Created"] == 0 and r["counts"]["Confirmed"] == 1, r
        # The same as the projector's own RestaurantBoard, asked directly.
        d = CTX.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.connect(st.queries)
        d.send(msgpack.packb({"type": "RestaurantBoard", "restaurant_id": 42,
                              "min_position": ev["position"]}))
        assert d.poll(20000)
        direct = msgpack.unpackb(d.recv())
        d.close()
        assert direct["ok"] and direct["counts"] == r["counts"], (direct, r)
        assert direct["active"] == r["active"] and direct["position"] == r["position"]
        s, _, body = get(st.http, "/api/status")
        assert s == 200 and json.loads(body)["ok"]
    finally:
        stream.close()
    now = int(time.time()) * 1000000
    s, _, body = get(st.http, "/api/analytics?from_us=%d&to_us=%d&bucket=day&restaurant=42" %
                     (now - 2 * 86400000000, now + 86400000000))
    r = json.loads(body)
    assert s == 200 and r["ok"] and sum(b["created"] for b in r["buckets"]) == 1, r
    print("live: the order on the stream within a second, then on the board in its column "
          "(Created, then Confirmed), counts right; analytics counts it")


def test_bad_input(st):
    cases = [("/nope", "GET", 404), ("/api/nope", "GET", 404), ("/", "POST", 405),
             ("/api/board", "GET", 400), ("/api/board?restaurant=x", "GET", 400),
             ("/api/board?restaurant=-1", "GET", 400),
             ("/api/board?restaurant=1&min_position=-5", "GET", 400),
             ("/api/analytics?from_us=1", "GET", 400),
             ("/api/analytics?from_us=1&to_us=2&bucket=week", "GET", 400),
             ("/api/analytics?from_us=5&to_us=1", "GET", 400)]  # the projector's bad_request
    for path, method, want in cases:
        s, h, body = get(st.http, path, method)
        assert s == want, (path, method, s, body[:200])
        if path.startswith("/api/"):
            r = json.loads(body)
            assert r["ok"] is False and r["error"]["code"], r
    s, _, _ = get(st.http, "/api/status", headers={"X-Big": "a" * 100000})
    assert s in (413, 431), s
    # Streams closed earlier free their slot when the server next writes
    # to them: an event wakes them all.
    streams, pokes = [], [0]

    def opened():
        x = Stream(st.http)
        if x.status == 200:
            streams.append(x)
        else:
            x.close()
            pokes[0] += 1
            assert st.call(create("wake-%d" % pokes[0], 44))["ok"]
        return len(streams) == 32

    wait_for("32 event streams", opened)
    try:
        extra = Stream(st.http)
        assert extra.status == 503, extra.status
        extra.close()
        assert st.call(create("page-2", 43))["ok"]
        for x in streams[:3]:
            x.event()  # hello
            wait_event(x, "page-2", "OrderCreated")
    finally:
        for x in streams:
            x.close()
    print("bad input: 404 (x2), 405, 400 (x7), 431; 32 streams served, the 33rd 503")


def main():
    top = tempfile.mkdtemp(prefix="ordo-e2e-page-")
    ok = False
    st = Stack(top)
    try:
        st.start()
        test_files(st)
        test_live(st)
        test_bad_input(st)
        held = [Stream(st.http) for _ in range(3)]  # open at SIGTERM: must not hold it up
        # And a query that waits (for a position that will not come).
        import threading
        waiting = threading.Thread(target=lambda: get_quietly(
            st.http, "/api/board?restaurant=1&min_position=999999999"))
        waiting.start()
        t0 = time.monotonic()
        st.stop()
        took = time.monotonic() - t0
        waiting.join()
        assert took < 10, "the stop took %.1f s" % took
        print("stop with 3 streams and a waiting query open: %.1f s, exit 0" % took)
        for x in held:
            x.close()
        ok = True
    except Exception:
        traceback.print_exc()
    finally:
        for p in (getattr(st, "projector", None), getattr(st, "engine", None)):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if not ok:
            for name in st.logs:
                with open(os.path.join(top, name + ".log"), "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()
                sys.stderr.write("---- %s.log\n%s\n" % (name, "\n".join(lines[-30:])))
        shutil.rmtree(top, ignore_errors=True)
    print("e2e_page: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
