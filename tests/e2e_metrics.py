#!/usr/bin/python3
"""/metrics end to end: the real ordo-server and ordo-projector with
--metrics, scraped over HTTP and parsed by Prometheus' own parser
(Debian's python3-prometheus-client).

Checked: every family has its type and help; after a known set of
requests (creates, transitions, refused ones, a retry, undecodable ones)
the counters by type and by code are exact, as are events appended, the
head and the orders in memory; the log's counters agree with the frame
histograms; every histogram is cumulative and ends in +Inf = _count; the
connections gauge follows DEALER and SUB connections up and down; the
projector's positions reach the head with no lag, and its queries and
errors are counted; only GET /metrics is served (404, 405, oversized and
garbage requests, more connections than allowed) and the server answers
after each; a bad --metrics is refused with exit 2; a port in use stops
the start with exit 1; both programs stop cleanly with it on.

Usage: e2e_metrics.py ordo-server ordo-projector"""
import http.client
import json
import os
import re
import select
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
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_util  # noqa: E402
from e2e_util import free_port, wait_for  # noqa: E402

SERVER, PROJECTOR = sys.argv[1:3]
DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                         "grafana-ordo.json")
SEEN = set()  # every sample name scraped, for the dashboard check
CTX = zmq.Context.instance()




def http_get(port, path="/metrics", method="GET", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


class Scrape:
    """One scrape, parsed: families by name, and samples by (name, labels)."""

    def __init__(self, port):
        status, headers, body = http_get(port)
        assert status == 200, (status, body)
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
        self.families = {f.name: f for f in text_string_to_metric_families(body)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                SEEN.add(s.name)
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, **labels):
        return self.samples[(name, tuple(sorted(labels.items())))]

    def histogram(self, name):
        """(cumulative bucket counts in order, _count, _sum), checked."""
        fam = self.families[name]
        assert fam.type == "histogram", (name, fam.type)
        buckets = [(s.labels["le"], s.value) for s in fam.samples if s.name == name + "_bucket"]
        assert buckets and buckets[-1][0] == "+Inf", buckets
        values = [v for _, v in buckets]
        assert values == sorted(values), (name, buckets)
        count = self.get(name + "_count")
        assert buckets[-1][1] == count, (name, buckets[-1], count)
        return values, count, self.get(name + "_sum")


class Server:
    def __init__(self, top, metrics_port=None):
        self.dir = os.path.join(top, "server")
        self.port, self.pub_port = free_port(), free_port()
        self.metrics_port = metrics_port or free_port()
        self.bind = "tcp://127.0.0.1:%d" % self.port
        self.pub = "tcp://127.0.0.1:%d" % self.pub_port
        self.log_path = os.path.join(top, "server.log")

    def args(self, metrics=None):
        return [SERVER, "--data-dir", self.dir, "--bind", self.bind, "--pub", self.pub,
                "--shards", "2", "--metrics",
                metrics if metrics is not None else "127.0.0.1:%d" % self.metrics_port]

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self.log, stderr=self.log)
        wait_for("the server's Ping", self.ping)
        self.dealer = CTX.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(self.bind)
        return self

    def ping(self):
        assert self.proc.poll() is None, "server exited with %s" % self.proc.returncode
        return e2e_util.ping(self.bind)

    def call(self, req, raw=None):
        self.dealer.send(raw if raw is not None else msgpack.packb(req))
        assert self.dealer.poll(10000), "no reply to %r" % (req,)
        return msgpack.unpackb(self.dealer.recv())

    def stop(self):
        self.dealer.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.log.close()
        assert rc == 0, "server exited with %d" % rc


def create(oid, rid=None):
    req = {"type": "CreateOrder", "order_id": oid,
           "data": {"user_id": 42, "restaurant_id": 7, "delivery_address": "12 Baker Street",
                    "items": [{"sku": "pz-1", "name": "Margherita", "qty": 2,
                               "price_cents": 1250}]},
           "meta": {"actor": "user:42"}}
    if rid:
        req["request_id"] = rid
    return req


def check_families(s):
    expect = {
        "ordo_commands": "counter", "ordo_queries": "counter", "ordo_errors": "counter",
        "ordo_requests_invalid": "counter", "ordo_duplicates": "counter",
        "ordo_events_appended": "counter", "ordo_log_frames": "counter",
        "ordo_fsyncs": "counter", "ordo_log_bytes_written": "counter",
        "ordo_head_position": "gauge", "ordo_synced_position": "gauge",
        "ordo_orders_in_memory": "gauge", "ordo_connections": "gauge",
        "ordo_snapshot_position": "gauge", "ordo_start_time_seconds": "gauge",
        "ordo_command_duration_seconds": "histogram", "ordo_query_duration_seconds": "histogram",
        "ordo_fsync_duration_seconds": "histogram", "ordo_frame_size_bytes": "histogram",
        "ordo_frame_events": "histogram",
    }
    for name, type_ in expect.items():
        assert name in s.families, "missing %s (have %s)" % (name, sorted(s.families))
        assert s.families[name].type == type_, (name, s.families[name].type)
        assert s.families[name].documentation, name
    assert abs(s.get("ordo_start_time_seconds") - time.time()) < 600


def test_engine_counters(srv):
    before = Scrape(srv.metrics_port)
    check_families(before)
    assert before.get("ordo_events_appended_total") == 0
    n = 40
    for i in range(n):
        r = srv.call(create("m-%d" % i, rid="c-%d" % i))
        assert r["ok"], r
    for i in range(15):
        assert srv.call({"type": "ConfirmOrder", "order_id": "m-%d" % i})["ok"]
    # Refused: 4 invalid transitions, 3 not found, 2 conflicts, 1 retry.
    for i in range(4):
        r = srv.call({"type": "MarkReady", "order_id": "m-%d" % (20 + i)})
        assert r["error"]["code"] == "invalid_transition", r
    for i in range(3):
        r = srv.call({"type": "ConfirmOrder", "order_id": "nobody-%d" % i})
        assert r["error"]["code"] == "not_found", r
    for i in range(2):
        r = srv.call({"type": "CancelOrder", "order_id": "m-%d" % (30 + i), "expected_version": 7,
                      "data": {"reason": "changed my mind"}})
        assert r["error"]["code"] == "conflict", r
    r = srv.call(create("m-0", rid="c-0"))
    assert r["ok"] and r.get("duplicate"), r
    # Undecodable: not MessagePack, not a map, a type that names nothing.
    assert srv.call(None, raw=b"\xc1garbage")["error"]["code"] == "bad_request"
    assert srv.call(None, raw=msgpack.packb([1, 2]))["error"]["code"] == "bad_request"
    assert srv.call({"type": "FlyToTheMoon"})["error"]["code"] == "unknown_type"
    for i in range(5):
        assert srv.call({"type": "GetOrder", "order_id": "m-%d" % i})["ok"]
    assert srv.call({"type": "GetHistory", "order_id": "m-1"})["ok"]

    # Pipelined on one order: each request waits for the event before it
    # at most once in the count, however often it is put back.
    before_deferred = Scrape(srv.metrics_port).get("ordo_requests_deferred_total")
    srv.dealer.send(msgpack.packb(create("m-pipe")))
    for t in ("ConfirmOrder", "StartPreparing", "MarkReady", "PickUp", "Deliver"):
        srv.dealer.send(msgpack.packb({"type": t, "order_id": "m-pipe"}))
    for _ in range(6):
        assert srv.dealer.poll(10000)
        assert msgpack.unpackb(srv.dealer.recv())["ok"]
    deferred = Scrape(srv.metrics_port).get("ordo_requests_deferred_total") - before_deferred
    assert 0 <= deferred <= 5, deferred

    s = Scrape(srv.metrics_port)
    n += 1  # m-pipe
    events = n + 15 + 5
    assert s.get("ordo_commands_total", type="CreateOrder") == n + 1
    assert s.get("ordo_commands_total", type="ConfirmOrder") == 15 + 3 + 1
    assert s.get("ordo_commands_total", type="MarkReady") == 4 + 1
    assert s.get("ordo_commands_total", type="CancelOrder") == 2
    assert s.get("ordo_commands_total", type="Deliver") == 1
    assert s.get("ordo_queries_total", type="GetOrder") == 5
    assert s.get("ordo_queries_total", type="GetHistory") == 1
    assert s.get("ordo_queries_total", type="Ping") >= 1
    assert s.get("ordo_requests_invalid_total") == 3
    assert s.get("ordo_errors_total", code="invalid_transition") == 4
    assert s.get("ordo_errors_total", code="not_found") == 3
    assert s.get("ordo_errors_total", code="conflict") == 2
    assert s.get("ordo_errors_total", code="bad_request") == 2
    assert s.get("ordo_errors_total", code="unknown_type") == 1
    assert s.get("ordo_errors_total", code="unavailable") == 0
    assert s.get("ordo_duplicates_total") == 1
    assert s.get("ordo_events_appended_total") == events
    assert s.get("ordo_head_position") == events
    assert s.get("ordo_synced_position") == events  # fsync always
    assert s.get("ordo_orders_in_memory") == n
    assert s.get("ordo_shards") == 2

    # The log's counters and the histograms agree.
    frames = s.get("ordo_log_frames_total")
    assert 1 <= frames <= events
    _, fcount, fsum = s.histogram("ordo_frame_size_bytes")
    assert fcount == frames and fsum == s.get("ordo_log_bytes_written_total"), (fcount, fsum)
    _, ecount, esum = s.histogram("ordo_frame_events")
    assert ecount == frames and esum == events, (ecount, esum)
    _, scount, ssum = s.histogram("ordo_fsync_duration_seconds")
    # fsync always: one per frame at least; the few at open are counted in
    # ordo_fsyncs_total only.
    assert frames <= scount <= s.get("ordo_fsyncs_total"), (frames, scount)
    assert ssum > 0
    commands = sum(v for (name, labels), v in s.samples.items() if name == "ordo_commands_total")
    _, ccount, csum = s.histogram("ordo_command_duration_seconds")
    assert ccount == commands and csum > 0, (ccount, commands)
    _, qcount, _ = s.histogram("ordo_query_duration_seconds")
    queries = sum(v for (name, labels), v in s.samples.items() if name == "ordo_queries_total")
    # The undecodable three count as commands or queries by what the
    # front end could tell: at least every decoded query.
    assert qcount >= queries - 1, (qcount, queries)  # (the Ping in flight now and then)
    print("engine counters: %d commands, %d queries, %d frames, %d fsyncs timed" %
          (commands, queries, frames, scount))


def test_connections(srv):
    def gauge(sock):
        return Scrape(srv.metrics_port).get("ordo_connections", socket=sock)

    base = wait_for("the requests gauge to settle at 1", lambda: gauge("requests") == 1 or None)
    dealers = []
    for _ in range(3):
        d = CTX.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.connect(srv.bind)
        d.send(msgpack.packb({"type": "Ping"}))
        assert d.poll(10000)
        d.recv()
        dealers.append(d)
    wait_for("4 request connections", lambda: gauge("requests") == 4)
    subs = []
    for _ in range(2):
        s = CTX.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(srv.pub)
        subs.append(s)
    wait_for("2 event connections", lambda: gauge("events") == 2)
    for d in dealers:
        d.close()
    for s in subs:
        s.close()
    wait_for("back to 1 request connection", lambda: gauge("requests") == 1)
    wait_for("no event connection", lambda: gauge("events") == 0)
    print("connections: up to 4 and 2, back to 1 and 0 (base %r)" % base)


def raw_request(port, data, read=True):
    """Sends bytes, returns what comes back (b"" if closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        try:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
        except OSError:  # it answered and closed before reading it all
            pass
        if not read:
            return b""
        out = b""
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return out


def test_http_surface(port):
    status, headers, body = http_get(port, "/")
    assert status == 404, status
    status, _, _ = http_get(port, "/metrics/extra")
    assert status == 404, status
    for method in ("POST", "PUT", "DELETE", "HEAD"):
        status, headers, _ = http_get(port, "/metrics", method=method)
        assert status == 405, (method, status)
        assert headers.get("Allow") == "GET", headers
    # A body with a method other than GET: refused, not read.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/metrics", body=b"x" * 100000)
    assert c.getresponse().status == 405
    c.close()
    # Headers beyond the bound, and garbage: refused or closed, never served.
    big = raw_request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 +
                      b"\r\n\r\n")
    assert not big.startswith(b"HTTP/1.1 200"), big[:80]
    junk = raw_request(port, b"\x00\xff\x16\x03\x01 not http at all\r\n\r\n")
    assert not junk.startswith(b"HTTP/1.1 200"), junk[:80]
    # More connections from one address than it allows (8): the others are
    # closed at once; it serves again once they are gone.
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
    closed = set()

    def turned_away():
        readable, _, _ = select.select([h for h in held if h not in closed], [], [], 0.1)
        for h in readable:
            try:
                if h.recv(1) == b"":
                    closed.add(h)
            except OSError:
                closed.add(h)
        return len(closed) >= 32

    wait_for("32 of 40 connections from one address closed", turned_away)
    for h in held:
        h.close()
    def scrape_ok():
        try:
            return http_get(port)[0] == 200
        except OSError:  # still at its limit: the crowd's connections close soon
            return False

    wait_for("a scrape after the crowd", scrape_ok)
    print("http: 404, 405 (+Allow), oversized and garbage refused, %d of 40 connections from "
          "one address turned away" % len(closed))


def test_bad_settings(top):
    srv = Server(top)
    for bad in ("9464", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:abc", "::1:9464",
                "[::1", "no.such.host.invalid:9464", ""):
        p = subprocess.run(srv.args(metrics=bad), capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (bad, p.returncode, p.stderr)
        assert "--metrics" in p.stderr, (bad, p.stderr)
    p = subprocess.run([PROJECTOR, "--metrics", "localhost"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2 and "--metrics" in p.stderr, (p.returncode, p.stderr)
    # A port in use: the server gives up at start, exit 1.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        used = Server(os.path.join(top, "busy"), metrics_port=port)
        os.makedirs(os.path.join(top, "busy"))
        p = subprocess.run(used.args(), capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "cannot serve metrics" in p.stderr, p.stderr
    print("settings: 8 bad --metrics refused with exit 2; a port in use: exit 1")


def test_projector(top, srv):
    port, mport = free_port(), free_port()
    log = open(os.path.join(top, "projector.log"), "ab")
    proc = subprocess.Popen(
        [PROJECTOR, "--engine", srv.bind, "--engine-pub", srv.pub,
         "--bind", "tcp://127.0.0.1:%d" % port, "--data-dir", os.path.join(top, "proj"),
         "--metrics", "127.0.0.1:%d" % mport], stdout=log, stderr=log)
    try:
        head = Scrape(srv.metrics_port).get("ordo_head_position")

        def caught_up():
            assert proc.poll() is None, "projector exited with %s" % proc.returncode
            try:
                s = Scrape(mport)
            except OSError:
                return None
            fam = s.families["ordo_projection_position"]
            return s if all(x.value == head for x in fam.samples) and len(fam.samples) == 5 else None

        s = wait_for("every projection at the head", caught_up)
        assert s.get("ordo_projector_engine_head_position") == head
        for x in s.families["ordo_projection_lag_events"].samples:
            assert x.value == 0, x
        for x in s.families["ordo_projection_failed"].samples:
            assert x.value == 0, x
        applied = {x.labels["projection"]: x.value
                   for x in s.families["ordo_projection_events_applied"].samples}
        assert set(applied.values()) == {head}, applied
        d = CTX.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.connect("tcp://127.0.0.1:%d" % port)

        def ask(req, raw=None):
            d.send(raw if raw is not None else msgpack.packb(req))
            assert d.poll(10000)
            return msgpack.unpackb(d.recv())

        for i in range(3):
            assert ask({"type": "GetOrderSummary", "order_id": "m-%d" % i})["ok"]
        assert ask({"type": "GetOrderSummary", "order_id": "nobody"})["error"]["code"] == \
            "not_found"
        assert ask({"type": "Nope"})["error"]["code"] == "unknown_type"
        assert ask(None, raw=b"\xc1")["error"]["code"] == "bad_request"
        assert ask({"type": "ProjectionStatus"})["ok"]
        s = Scrape(mport)
        assert s.get("ordo_projector_queries_total", type="GetOrderSummary") == 4
        assert s.get("ordo_projector_queries_total", type="ProjectionStatus") == 1
        assert s.get("ordo_projector_queries_invalid_total") == 2
        assert s.get("ordo_projector_errors_total", code="not_found") == 1
        assert s.get("ordo_projector_errors_total", code="unknown_type") == 1
        assert s.get("ordo_projector_errors_total", code="bad_request") == 1
        _, qcount, _ = s.histogram("ordo_projector_query_duration_seconds")
        assert qcount == 7, qcount
        s.histogram("ordo_projection_save_duration_seconds")
        assert s.get("ordo_projector_connections") == 1
        d.close()
        wait_for("no projector connection",
                 lambda: Scrape(mport).get("ordo_projector_connections") == 0)
        test_http_surface(mport)
        print("projector: 5 projections at head %d, no lag; queries and errors counted" % head)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log.close()
    assert rc == 0, "projector exited with %d" % rc


def test_dashboard():
    """The Grafana dashboard is valid JSON and uses only metrics that exist."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15, len(exprs)
    used = set()
    for e in exprs:
        used.update(re.findall(r"\bordo_[a-z_]+", e))
    missing = sorted(n for n in used if n not in SEEN)
    assert not missing, "the dashboard uses metrics no scrape had: %s" % missing
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), ids
    print("dashboard: %d panels, %d queries, %d metrics, all served" %
          (len(dash["panels"]), len(exprs), len(used)))


def main():
    top = tempfile.mkdtemp(prefix="ordo-e2e-metrics-")
    ok = False
    srv = None
    try:
        test_bad_settings(top)
        srv = Server(top).start()
        test_engine_counters(srv)
        test_connections(srv)
        test_http_surface(srv.metrics_port)
        assert srv.ping()
        test_projector(top, srv)
        test_dashboard()
        srv.stop()
        srv = None
        ok = True
    except Exception:
        traceback.print_exc()
    finally:
        if srv is not None:
            srv.proc.kill()
            srv.proc.wait()
        for name in ("server.log", "projector.log"):
            path = os.path.join(top, name)
            if not ok and os.path.exists(path):
                with open(path, "rb") as f:
                    sys.stderr.write("---- %s (tail)\n%s\n" % (name, f.read()[-4000:].decode(
                        "utf-8", "replace")))
        shutil.rmtree(top, ignore_errors=True)
    print("e2e_metrics: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
