#!/usr/bin/python3
"""End-to-end tests of the real ordo-projector (PROJECTIONS.md) against the
real ordo-server, driven the way a Python service would drive them (pyzmq +
msgpack). The truth is always the engine's log: every expected answer is
computed here from `ReadAll` (page by page from position 1), never from the
projector. Covered: every query and its filters and paging, min_position
(read your own write, lagging), malformed queries (each with its code and
field, changing nothing), kill -9 of the projector under load and of the
engine, PUB drops while the projector is stopped, a late start configured
through ORDO_* variables, cursors while commands go on, Rebuild under live
load (and killed mid-rebuild), SIGTERM and resume from the saved
checkpoint with the engine down, minute buckets across a boundary (this
waits for the next minute, at most ~65 s, sending commands all along), a
client that pipelines large queries and reads nothing, and bad settings.
After each kill -9 (of the projector, of the engine, during rebuilds) the
read models must equal both the log's and a fresh projector's (new folder,
built from position 1). Every process runs
on free loopback ports with its own temporary data folder. Waits are
bounded polls; nothing sleeps to synchronise. E2E_PROJECTOR_ONLY=text runs
only the tests whose name holds `text` (a debugging aid).
Usage: e2e_projector.py PATH-TO-ordo-server PATH-TO-ordo-projector"""
import collections
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack
import zmq

from e2e_util import free_port  # noqa: E402,F401  (also for importers)

if len(sys.argv) != 3:
    sys.exit("usage: e2e_projector.py PATH-TO-ordo-server PATH-TO-ordo-projector")
SERVER, PROJECTOR = sys.argv[1], sys.argv[2]

STATUSES = ["Created", "Confirmed", "Preparing", "Ready", "OutForDelivery", "Delivered",
            "Cancelled"]
TERMINAL = ("Delivered", "Cancelled")
STATUS_OF = {"OrderCreated": "Created", "OrderConfirmed": "Confirmed",
             "OrderPreparing": "Preparing", "OrderReady": "Ready",
             "OrderOutForDelivery": "OutForDelivery", "OrderDelivered": "Delivered",
             "OrderCancelled": "Cancelled"}
# stage name -> (the event that ends it, the event that started it)
STAGES = [("confirm", "OrderConfirmed", "OrderCreated"),
          ("start", "OrderPreparing", "OrderConfirmed"),
          ("prepare", "OrderReady", "OrderPreparing"),
          ("pickup", "OrderOutForDelivery", "OrderReady"),
          ("deliver", "OrderDelivered", "OrderOutForDelivery"),
          ("total", "OrderDelivered", "OrderCreated")]
PROJECTIONS = ["summary", "restaurant", "user", "analytics", "timeline"]
SUMMARY_KEYS = ("order_id", "status", "version", "user_id", "restaurant_id", "total_cents",
                "item_count", "created_at_us", "updated_at_us", "courier_id", "cancel_reason",
                "cancelled_from")
ASOF_KEYS = ("order_id", "status", "version", "since_us")
BUCKET_KEYS = ("start_us", "created", "confirmed", "delivered", "cancelled", "revenue_cents",
               "cancelled_from", "stages")
STAGE_KEYS = ("n", "p50_ms", "p95_ms", "max_ms")
CODES = ("bad_request", "unknown_type", "not_found", "lagging", "overloaded", "unavailable")
MINUTE, HOUR, DAY = 60 * 10**6, 3600 * 10**6, 86400 * 10**6
BUCKET_US = {"minute": MINUTE, "hour": HOUR, "day": DAY}
USERS = [1, 2, 3, 4, 5, 6, 7]
RESTAURANTS = [11, 22, 33, 44]
NO_RESTAURANT, NO_USER = 99, 999  # never have orders
WAIT = 60  # seconds any bounded wait for the projector allows (ASan is slow)


def short(v, n=300):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def unpack(frames):
    return msgpack.unpackb(frames[-1], raw=False)


# ---- processes ---------------------------------------------------------------------------

class Server:
    """The real ordo-server (as in e2e_server.py): free ports that stay the
    same across restarts, so a projector pointed at it finds it again."""

    def __init__(self, args=()):
        self.data = tempfile.mkdtemp(prefix="ordo-e2e-srv-")
        self.args = list(args)
        self.bind = "tcp://127.0.0.1:%d" % free_port()
        self.pub = "tcp://127.0.0.1:%d" % free_port()
        self.proc = None
        self.log = None
        self.ctx = zmq.Context.instance()
        self.sock = None

    def start(self):
        self.log = open(os.path.join(self.data, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [SERVER, "--data-dir", os.path.join(self.data, "d"), "--bind", self.bind,
             "--pub", self.pub] + self.args, stdout=self.log, stderr=self.log)
        probe = self.dealer()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # bounded poll until it answers
                if self.proc.poll() is not None:
                    raise AssertionError("server exited with %s" % self.proc.returncode)
                probe.send(msgpack.packb({"type": "Ping"}))
                if probe.poll(200):
                    self.sock = self.dealer()
                    return self
            raise AssertionError("server did not answer Ping within 30 s")
        finally:
            probe.close()

    def dealer(self):
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.bind)
        return s

    def call(self, req):
        self.sock.send(msgpack.packb(req))
        assert self.sock.poll(20000), "engine: no reply to %s" % short(req)
        reply = unpack(self.sock.recv_multipart())
        assert not self.sock.poll(0), "engine: an extra reply is waiting"
        return reply

    def head(self):
        return self.call({"type": "Ping"})["head_position"]

    def stop(self, sig=signal.SIGTERM):
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            rc = self.proc.wait(60)
        else:
            rc = self.proc.returncode if self.proc else 0
        if self.log:
            self.log.close()
            self.log = None
        return rc

    def log_tail(self):
        try:
            with open(os.path.join(self.data, "server.log"), "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def kill_and_cleanup(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if self.log:
            self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


class Projector:
    """ordo-projector pointed at `srv`, on its own free port, with its own
    data folder (nested: the projector creates the parents too)."""

    def __init__(self, srv, save_every=50, args=(), env=None, by_env=False):
        self.srv = srv
        self.env = env or {}  # extra environment
        self.by_env = by_env  # settings through ORDO_* variables instead of flags
        self.base = tempfile.mkdtemp(prefix="ordo-e2e-proj-")
        self.data = os.path.join(self.base, "nested", "data")
        self.save_every = save_every
        self.args = list(args)
        self.bind = "tcp://127.0.0.1:%d" % free_port()
        self.proc = None
        self.log = None
        self.ctx = zmq.Context.instance()
        self.sock = None

    def start(self):
        self.log = open(os.path.join(self.base, "projector.log"), "ab")
        env = dict(os.environ, **self.env)
        settings = {"ORDO_ENGINE": self.srv.bind, "ORDO_ENGINE_PUB": self.srv.pub,
                    "ORDO_PROJECTOR_BIND": self.bind, "ORDO_PROJECTOR_DATA_DIR": self.data,
                    "ORDO_PROJECTOR_SAVE_EVERY": str(self.save_every)}
        if self.by_env:
            env.update(settings)
            argv = [PROJECTOR]
        else:
            argv = [PROJECTOR, "--engine", self.srv.bind, "--engine-pub", self.srv.pub,
                    "--bind", self.bind, "--data-dir", self.data,
                    "--save-every", str(self.save_every)]
        self.proc = subprocess.Popen(argv + self.args, stdout=self.log, stderr=self.log,
                                     env=env)
        probe = self.dealer()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # bounded poll until it answers
                if self.proc.poll() is not None:
                    raise AssertionError("projector exited with %s" % self.proc.returncode)
                probe.send(msgpack.packb({"type": "Ping"}))
                if probe.poll(200):
                    r = unpack(probe.recv_multipart())
                    assert r.get("ok") is True and isinstance(r.get("engine_head"), int), r
                    self.sock = self.dealer()
                    return self
            raise AssertionError("projector did not answer Ping within 30 s")
        finally:
            probe.close()  # late Ping replies go with it

    def dealer(self):
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.bind)
        return s

    def wait_reply(self, what, timeout_ms=30000):
        """Polls for a reply, failing at once if the projector died meanwhile."""
        deadline = time.monotonic() + timeout_ms / 1000
        while not self.sock.poll(100):
            if self.proc.poll() is not None:
                raise AssertionError("projector died (exit status %s) with %s in flight" % (
                    self.proc.returncode, what))
            assert time.monotonic() < deadline, "projector: no reply to %s" % what

    def call(self, req, timeout_ms=30000):
        """One query, one reply, checked against the envelope rules."""
        self.sock.send(msgpack.packb(req))
        self.wait_reply(short(req), timeout_ms)
        reply = unpack(self.sock.recv_multipart())
        assert not self.sock.poll(0), "projector: an extra reply is waiting"
        check_reply(req, reply)
        return reply

    def raw(self, body):
        self.sock.send(body)
        self.wait_reply("a raw body %s" % short(body, 60))
        reply = unpack(self.sock.recv_multipart())
        check_reply(None, reply)
        return reply

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            rc = self.proc.wait(60)
        else:
            rc = self.proc.returncode if self.proc else 0
        if self.log:
            self.log.close()
            self.log = None
        return rc

    def log_tail(self):
        try:
            with open(os.path.join(self.base, "projector.log"), "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def kill_and_cleanup(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if self.log:
            self.log.close()
        shutil.rmtree(self.base, ignore_errors=True)


class Run:
    """What one test started: at the end every process is killed and every
    folder removed; after a failure the tails of their logs are printed."""

    def __init__(self):
        self.servers, self.projectors = [], []
        self.env = None

    def server(self, args=()):
        s = Server(args)
        self.servers.append(s)
        return s.start()

    def projector(self, srv, **kw):
        p = Projector(srv, **kw)
        self.projectors.append(p)
        return p.start()

    def print_logs(self):
        for i, s in enumerate(self.servers):
            print("---- server %d log (tail) ----\n%s" % (i, s.log_tail()))
        for i, p in enumerate(self.projectors):
            print("---- projector %d log (tail) ----\n%s" % (i, p.log_tail()))

    def close(self):
        for p in self.projectors:
            p.kill_and_cleanup()
        for s in self.servers:
            s.kill_and_cleanup()


# ---- replies -----------------------------------------------------------------------------

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_reply(req, r):
    """The envelope rules every reply follows (PROJECTIONS.md)."""
    assert isinstance(r, dict) and r.get("ok") in (True, False), "not a reply: %s" % short(r)
    rid = req.get("request_id") if isinstance(req, dict) else None
    if isinstance(rid, str) and 1 <= len(rid.encode()) <= 128:
        assert r.get("request_id") == rid, "request_id %r not echoed: %s" % (rid, short(r))
    if r["ok"]:
        assert is_int(r.get("position")) and r["position"] >= 0, "no position: %s" % short(r)
        mp = req.get("min_position") if isinstance(req, dict) else None
        if is_int(mp):  # never a stale answer that claims to be current
            assert r["position"] >= mp, "min_position %d answered at position %d: %s" % (
                mp, r["position"], short(req))
    else:
        e = r.get("error")
        assert isinstance(e, dict) and e.get("code") in CODES, "bad error: %s" % short(r)
        assert isinstance(e.get("message"), str) and len(e["message"]) > 5, short(r)


def ok(proj, req):
    r = proj.call(req)
    assert r["ok"] is True, "%s -> %s" % (short(req), short(r))
    return r


def err(proj, req, code, field=None, raw=False):
    """A query that must fail with `code` (and `field` for bad_request)."""
    r = proj.raw(req) if raw else proj.call(req)
    what = short(req, 120)
    assert r["ok"] is False, "%s: want %s, got %s" % (what, code, short(r))
    e = r["error"]
    assert e["code"] == code, "%s: want code %s, got %s" % (what, code, short(e))
    if field is not None:
        assert e.get("field") == field, "%s: want field %r, got %s" % (what, field, short(e))
    return r


def ok_raw(proj, body):
    r = proj.raw(body)
    assert r["ok"] is True, "%s -> %s" % (short(body, 80), short(r))
    return r


def page_all(proj, req, limit=None, key="orders", position=None, between=None):
    """Follows next_cursor to the end. Every page but the last is full and has
    a str cursor; the last has nil (also when it ends exactly at the last
    match). between() runs before each page after the first. Returns (every
    item, every reply)."""
    items, pages, cursor = [], [], None
    while True:
        if cursor is not None and between:
            between()
        q = dict(req)
        if limit is not None:
            q["limit"] = limit
        if cursor is not None:
            q["cursor"] = cursor
        r = ok(proj, q)
        if position is not None:
            assert r["position"] == position, "%s: position %s, want %d" % (
                short(q, 150), r["position"], position)
        got = r.get(key)
        assert isinstance(got, list), "%s: no list %r: %s" % (short(q, 150), key, short(r))
        if limit is not None:
            assert len(got) <= limit, "%s: %d items over limit %d" % (short(q), len(got), limit)
        items += got
        pages.append(r)
        assert "next_cursor" in r, "%s: no next_cursor key" % short(q, 150)
        cursor = r["next_cursor"]
        if cursor is None:
            return items, pages
        assert isinstance(cursor, str) and cursor, "next_cursor %r" % (cursor,)
        if limit is not None:
            assert len(got) == limit, "%s: a page of %d before the end (limit %d)" % (
                short(q, 150), len(got), limit)
        assert len(pages) < 5000, "paging does not end"


def pages_for(n, limit):
    return max(1, -(-n // limit))


def check_pages(pages, n, limit, what):
    """n matches in pages of `limit`: the last page is the one holding the
    last match (nil cursor there, no empty page after it)."""
    assert len(pages) == pages_for(n, limit), \
        "%s: %d pages for %d matches by %d, want %d (a cursor after the last match?)" % (
            what, len(pages), n, limit, pages_for(n, limit))


def norm_summary(o):
    if not isinstance(o, dict):
        return o
    return {k: o[k] for k in SUMMARY_KEYS if o.get(k) is not None}


def norm_asof(o):
    if not isinstance(o, dict):
        return o
    return {k: o.get(k) for k in ASOF_KEYS}


def norm_bucket(b):
    if not isinstance(b, dict):
        return b
    out = {k: b.get(k) for k in BUCKET_KEYS}
    if isinstance(out["stages"], dict):
        out["stages"] = {n: ({k: s.get(k) for k in STAGE_KEYS} if isinstance(s, dict) else s)
                         for n, s in out["stages"].items()}
    return out


# ---- comparison with a readable diff -----------------------------------------------------

def _ids(lst):
    return [x.get("order_id") for x in lst if isinstance(x, dict)]


def _diff(got, want, path, out, tolerant):
    if len(out) >= 15:
        return
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got), key=str):
            p = "%s.%s" % (path, k)
            if k not in got:
                out.append("%s: missing, want %s" % (p, short(want[k], 160)))
            elif k not in want:
                out.append("%s: not expected, got %s" % (p, short(got[k], 160)))
            else:
                _diff(got[k], want[k], p, out, tolerant)
    elif isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            msg = "%s: %d entries, want %d" % (path, len(got), len(want))
            gi, wi = _ids(got), _ids(want)
            if wi or gi:
                missing = [i for i in wi if i not in set(gi)]
                extra = [i for i in gi if i not in set(wi)]
                rep = [i for i, c in collections.Counter(gi).items() if c > 1]
                msg += "; missing %s, unexpected %s, repeated %s" % (
                    short(missing, 200), short(extra, 200), short(rep, 200))
            out.append(msg)
            if wi and gi:  # entries shifted: the order ids tell more than the rest
                return
        for i, (g, w) in enumerate(zip(got, want)):
            tag = w.get("order_id") if isinstance(w, dict) else None
            _diff(g, w, "%s[%d%s]" % (path, i, ":" + tag if tag else ""), out, tolerant)
    elif tolerant and path.endswith(("p50_ms", "p95_ms")) and is_int(got) and is_int(want):
        if abs(got - want) > max(1, want / 100):  # exact, or within 1% (at least 1 ms)
            out.append("%s: got %d, want %d (+-%s)" % (path, got, want, max(1, want / 100)))
    elif got != want or isinstance(got, bool) != isinstance(want, bool):
        out.append("%s: got %s, want %s" % (path, short(got, 160), short(want, 160)))


def assert_same(got, want, what, tolerant=False):
    out = []
    _diff(got, want, what, out, tolerant)
    if out:
        raise AssertionError("%s differs:\n  %s" % (what, "\n  ".join(out)))


# ---- the truth: expected answers computed from the engine's log ---------------------------

def read_log(srv):
    """Every event from position 1 to the head, paged with ReadAll."""
    head = srv.head()
    events, nxt = [], 1
    while nxt <= head:
        page = srv.call({"type": "ReadAll", "from_position": nxt, "limit": 10000})
        assert page["ok"], page
        assert page["events"], "ReadAll from %d returned nothing (head %d)" % (nxt, head)
        events += page["events"]
        nxt = page["next_position"]
    events = [e for e in events if e["position"] <= head]
    assert [e["position"] for e in events] == list(range(1, head + 1)), "log not gap-free"
    return events


def nearest_rank(sorted_ms, p):
    return sorted_ms[(p * len(sorted_ms) + 99) // 100 - 1]  # rank ceil(p/100 * n)


class Truth:
    """The read models as PROJECTIONS.md defines them, from the events."""

    def __init__(self, events):
        self.events = events
        self.head = events[-1]["position"] if events else 0
        self.orders = {}
        for ev in events:
            self._apply(ev)

    def _apply(self, ev):
        oid, t, ts = ev["order_id"], ev["type"], ev["timestamp_us"]
        if t == "OrderCreated":
            d = ev["data"]
            self.orders[oid] = {
                "order_id": oid, "status": "Created", "version": ev["version"],
                "user_id": d["user_id"], "restaurant_id": d["restaurant_id"],
                "total_cents": d["total_cents"], "item_count": sum(i["qty"] for i in d["items"]),
                "created_at_us": ts, "updated_at_us": ts}
            return
        o = self.orders[oid]
        prev = o["status"]
        o.update(status=STATUS_OF[t], version=ev["version"], updated_at_us=ts)
        if t == "OrderOutForDelivery" and ev["data"].get("courier_id") is not None:
            o["courier_id"] = ev["data"]["courier_id"]
        if t == "OrderCancelled":
            assert ev["data"].get("previous_status") in (None, prev), ev
            o["cancel_reason"] = ev["data"]["reason"]
            o["cancelled_from"] = prev

    def at(self, at_us=None, at_position=None):
        if at_position is not None:
            return Truth([e for e in self.events if e["position"] <= at_position])
        return Truth([e for e in self.events if e["timestamp_us"] <= at_us])

    @staticmethod
    def matches(o, q):
        st = q.get("status")
        if st is not None and o["status"] not in ([st] if isinstance(st, str) else st):
            return False
        for k in ("restaurant_id", "user_id"):
            if q.get(k) is not None and o[k] != q[k]:
                return False
        if q.get("created_from_us") is not None and o["created_at_us"] < q["created_from_us"]:
            return False
        if q.get("created_to_us") is not None and o["created_at_us"] >= q["created_to_us"]:
            return False
        return True

    def summary(self, oid):
        return dict(self.orders[oid])

    def list_orders(self, q):
        return sorted((dict(o) for o in self.orders.values() if self.matches(o, q)),
                      key=lambda o: (o["created_at_us"], o["order_id"]))

    def board(self, rid):
        mine = [o for o in self.orders.values() if o["restaurant_id"] == rid]
        counts = {s: 0 for s in STATUSES}
        for o in mine:
            counts[o["status"]] += 1
        active = sorted((dict(o) for o in mine if o["status"] not in TERMINAL),
                        key=lambda o: (o["created_at_us"], o["order_id"]))[:500]
        return {"restaurant_id": rid, "counts": counts, "active": active}

    def user_history(self, uid):
        return sorted((dict(o) for o in self.orders.values() if o["user_id"] == uid),
                      key=lambda o: (o["created_at_us"], o["order_id"]), reverse=True)

    def as_of(self, q):
        """OrdersAsOf's full listing: entries ordered by order_id."""
        past = self.at(at_us=q.get("at_us"), at_position=q.get("at_position"))
        return [{"order_id": o["order_id"], "status": o["status"], "version": o["version"],
                 "since_us": o["updated_at_us"]}  # every event changes the status
                for _, o in sorted(past.orders.items()) if self.matches(o, q)]

    def analytics(self, from_us, to_us, bucket="hour", rid=None):
        size = BUCKET_US[bucket]
        first = -(-from_us // size) * size  # buckets that start in [from_us, to_us)
        buckets = collections.OrderedDict()
        for s in range(first, to_us, size):
            buckets[s] = {"start_us": s, "created": 0, "confirmed": 0, "delivered": 0,
                          "cancelled": 0, "revenue_cents": 0,
                          "cancelled_from": {"Created": 0, "Confirmed": 0, "Preparing": 0},
                          "stages": {}}
        samples = collections.defaultdict(list)  # (bucket start, stage) -> ms
        seen = collections.defaultdict(dict)  # order -> event type -> timestamp
        status = {}
        for ev in self.events:
            oid, t, ts = ev["order_id"], ev["type"], ev["timestamp_us"]
            seen[oid][t] = ts
            prev = status.get(oid)
            status[oid] = STATUS_OF[t]
            o = self.orders[oid]
            if rid is not None and o["restaurant_id"] != rid:
                continue
            start = ts - ts % size
            b = buckets.get(start)
            if b is None:
                continue
            if t == "OrderCreated":
                b["created"] += 1
            elif t == "OrderConfirmed":
                b["confirmed"] += 1
            elif t == "OrderDelivered":
                b["delivered"] += 1
                b["revenue_cents"] += o["total_cents"]
            elif t == "OrderCancelled":
                b["cancelled"] += 1
                b["cancelled_from"][prev] += 1
            for name, end, begin in STAGES:
                if t == end:
                    samples[(start, name)].append((ts - seen[oid][begin]) // 1000)
        for (start, name), ms in samples.items():
            ms.sort()
            buckets[start]["stages"][name] = {"n": len(ms), "p50_ms": nearest_rank(ms, 50),
                                              "p95_ms": nearest_rank(ms, 95), "max_ms": ms[-1]}
        return list(buckets.values())


# ---- workloads ---------------------------------------------------------------------------

LIVES = {  # what follows CreateOrder
    "delivered": ["ConfirmOrder", "StartPreparing", "MarkReady", "PickUp", "Deliver"],
    "delivered_no_courier": ["ConfirmOrder", "StartPreparing", "MarkReady", "PickUp-",
                             "Deliver"],
    "cancel_created": ["CancelOrder"],
    "cancel_confirmed": ["ConfirmOrder", "CancelOrder"],
    "cancel_preparing": ["ConfirmOrder", "StartPreparing", "CancelOrder"],
    "created": [],
    "confirmed": ["ConfirmOrder"],
    "preparing": ["ConfirmOrder", "StartPreparing"],
    "ready": ["ConfirmOrder", "StartPreparing", "MarkReady"],
    "out": ["ConfirmOrder", "StartPreparing", "MarkReady", "PickUp"],
}
LIFE_MIX = ["delivered", "delivered", "delivered"] + sorted(set(LIVES) - {"delivered"})
NEXT = {"Created": "ConfirmOrder", "Confirmed": "StartPreparing", "Preparing": "MarkReady",
        "Ready": "PickUp", "OutForDelivery": "Deliver"}
AFTER = {"ConfirmOrder": "Confirmed", "StartPreparing": "Preparing", "MarkReady": "Ready",
         "PickUp": "OutForDelivery", "PickUp-": "OutForDelivery", "Deliver": "Delivered",
         "CancelOrder": "Cancelled"}


def command(rng, oid, step, rid):
    data = None
    if step == "StartPreparing" and rng.random() < 0.5:
        data = {"estimated_minutes": rng.randint(5, 90)}
    elif step == "PickUp":
        data = {"courier_id": rng.randint(1, 40)}
    elif step == "CancelOrder":
        data = {"reason": "reason %d" % rng.randint(1, 9)}
    req = {"type": step.rstrip("-"), "order_id": oid, "request_id": rid}
    if data is not None:
        req["data"] = data
    return req


def make_plans(prefix, n, seed, restaurants=RESTAURANTS, mix=LIFE_MIX):
    """n new orders over USERS (round robin) and restaurants, each with a
    life from LIVES (the first len(mix) orders take every life of mix once)."""
    rng = random.Random(seed)
    plans = {}
    for i in range(n):
        oid = "%s:%05d" % (prefix, (i * 7919) % 100000)  # ids not in creation order
        life = mix[i] if i < len(mix) else rng.choice(mix)
        items = [{"sku": "sku-%d" % k, "name": "item %d" % k, "qty": rng.randint(1, 5),
                  "price_cents": rng.randint(100, 3000)} for k in range(rng.randint(1, 3))]
        reqs = [{"type": "CreateOrder", "order_id": oid, "request_id": oid + "#0",
                 "data": {"user_id": USERS[i % len(USERS)],
                          "restaurant_id": rng.choice(restaurants),
                          "delivery_address": "%d Long Street" % i, "items": items}}]
        for k, step in enumerate(LIVES[life]):
            reqs.append(command(rng, oid, step, "%s#%d" % (oid, k + 1)))
        plans[oid] = reqs
    return plans


def advance_plans(truth, tag, seed, fraction=0.7):
    """One to three more steps for some of the orders not yet finished."""
    rng = random.Random(seed)
    plans = {}
    for oid, o in sorted(truth.orders.items()):
        st = o["status"]
        if st in TERMINAL or rng.random() > fraction:
            continue
        reqs = []
        for k in range(rng.randint(1, 3)):
            if st in TERMINAL:
                break
            step = "CancelOrder" if st in ("Created", "Confirmed", "Preparing") and \
                rng.random() < 0.15 else NEXT[st]
            if step == "PickUp" and rng.random() < 0.3:
                step = "PickUp-"
            reqs.append(command(rng, oid, step, "%s#%s%d" % (oid, tag, k)))
            st = AFTER[step]
        plans[oid] = reqs
    return plans


class Load:
    """Moves orders through their plans over one DEALER to the engine: each
    order's next command goes out as soon as its previous reply is in, so
    many orders are in flight at once and each moves in its own order.
    Every reply must be ok."""

    def __init__(self, srv, plans):
        self.sock = srv.dealer()
        self.plans = plans
        self.idx = dict.fromkeys(plans, 0)
        self.ready = collections.deque(plans)
        self.pending = {}
        self.acked = 0
        self.position = 0  # highest position acknowledged

    def send(self, budget=1 << 30):
        while self.ready and budget > 0:
            oid = self.ready.popleft()
            req = self.plans[oid][self.idx[oid]]
            self.sock.send(msgpack.packb(req))
            self.pending[req["request_id"]] = oid
            budget -= 1

    def receive(self, timeout_ms):
        if not self.sock.poll(timeout_ms):
            return False
        r = unpack(self.sock.recv_multipart())
        assert r.get("ok") is True, "engine refused a planned command: %s" % short(r)
        oid = self.pending.pop(r["request_id"])
        self.acked += 1
        self.position = max(self.position, r["position"])
        self.idx[oid] += 1
        if self.idx[oid] < len(self.plans[oid]):
            self.ready.append(oid)
        return True

    @property
    def done(self):
        return not self.ready and not self.pending

    def close(self):
        self.sock.close()


def drive(srv, plans, hooks=None):
    """Runs the plans to the end. hooks: {n: fn} called after the n-th
    reply; a hook returning "stop" stops the drive there (replies pending)."""
    load = Load(srv, plans)
    try:
        while not load.done:
            load.send()
            assert load.receive(20000), "engine replies stopped, %d pending" % len(load.pending)
            fn = (hooks or {}).get(load.acked)
            if fn and fn() == "stop":
                break
        return load.acked
    finally:
        load.close()


def drive_waves(srv, plans, waves):
    """The plans in `waves` groups one after the other, so the log's
    timestamps spread: orders of a later wave are created after every
    event of the earlier ones."""
    oids = list(plans)
    for w in range(waves):
        drive(srv, {o: plans[o] for o in oids[w::waves]})


def n_commands(plans):
    return sum(len(p) for p in plans.values())


# ---- whole read models -------------------------------------------------------------------

def status_of(proj):
    r = ok(proj, {"type": "ProjectionStatus"})
    return r, {p.get("name"): p for p in r.get("projections", [])}


def wait_caught_up(proj, head, timeout=WAIT):
    """Bounded poll of ProjectionStatus until the projector knows the engine's
    head and every projection is live at it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = proj.call({"type": "ProjectionStatus"})
        if r["ok"]:
            last = r
            ps = r.get("projections") or []
            for p in ps:
                assert p.get("position", 0) <= head, "projection beyond the head %d: %s" % (
                    head, short(p))
                assert p.get("state") != "failed", "projection failed: %s" % short(r, 1500)
                check_lag(r, p)
            if r.get("engine_head") == head and len(ps) == len(PROJECTIONS) and all(
                    p.get("position") == head and p.get("lag_events") == 0 and
                    p.get("state") == "live" for p in ps):
                return r
        time.sleep(0.05)  # poll interval of a bounded wait
    raise AssertionError("projector not caught up with head %d within %d s; last status: %s"
                         % (head, timeout, short(last, 1500)))


def check_lag(r, p):
    """lag_events = max(0, engine_head - position); live exactly when it is 0
    (unless rebuilding or failed)."""
    assert p.get("state") in ("catching_up", "live", "rebuilding", "failed"), short(p)
    assert p.get("lag_events") == max(0, r["engine_head"] - p["position"]), \
        "lag_events of %s with engine_head %d" % (short(p), r["engine_head"])
    if p["state"] == "live":
        assert p["lag_events"] == 0, "live with lag: %s" % short(p)
    if p["state"] == "catching_up":
        assert p["lag_events"] > 0, "catching_up with lag 0: %s" % short(p)


def check_status(r, head):
    """ProjectionStatus of a caught-up projector at `head`."""
    assert r["engine_head"] == head and r["position"] == head, short(r)
    ps = r["projections"]
    assert sorted(p["name"] for p in ps) == sorted(PROJECTIONS), short(ps)
    for p in ps:
        assert p["position"] == head and p["lag_events"] == 0 and p["state"] == "live", p
        assert is_int(p["events_per_s"]) and p["events_per_s"] >= 0, p
        assert is_int(p["generation"]), p


def make_spec(truth):
    """The questions asked of every read model when comparing them."""
    ts = [e["timestamp_us"] for e in truth.events]
    lo, hi, n = ts[0], ts[-1], len(ts)
    orders = sorted(truth.orders)
    return {
        "head": truth.head,
        "sample": orders[::max(1, len(orders) // 10)],
        "restaurants": sorted({o["restaurant_id"] for o in truth.orders.values()}) +
        [NO_RESTAURANT],
        "users": sorted({o["user_id"] for o in truth.orders.values()}) + [NO_USER],
        "ranges": [("minute", lo // MINUTE * MINUTE - 2 * MINUTE,
                    hi // MINUTE * MINUTE + 3 * MINUTE),
                   ("hour", lo // HOUR * HOUR - HOUR, hi // HOUR * HOUR + 2 * HOUR)],
        "at_us": sorted({lo - 1, lo, ts[n // 5], ts[2 * n // 5] - 1, ts[n // 2],
                         ts[3 * n // 4] + 1, hi, hi + 10**6}),
        "at_position": sorted({1, max(1, n // 3), n // 2 + 1, n}),
    }


def dump(proj, spec):
    """Every read model's answers to the spec's questions (queries carry
    min_position = head; every answer must be at exactly the head)."""
    head = spec["head"]
    mp = {"min_position": head, "wait_ms": 10000}

    def one(req):
        r = ok(proj, dict(req, **mp))
        assert r["position"] == head, "%s: position %d, head %d" % (short(req), r["position"], head)
        return r

    def paged(req, limit):
        return page_all(proj, dict(req, **mp), limit, position=head)

    d = {}
    for oid in spec["sample"]:
        r = one({"type": "GetOrderSummary", "order_id": oid})
        d["GetOrderSummary %s" % oid] = norm_summary(r.get("order"))
    items, pages = paged({"type": "ListOrders"}, 173)
    d["ListOrders"] = [norm_summary(o) for o in items]
    for rid in spec["restaurants"]:
        r = one({"type": "RestaurantBoard", "restaurant_id": rid})
        active = [norm_summary(o) for o in r.get("active") or []]
        created = [o.get("created_at_us", 0) for o in active]
        assert created == sorted(created), "RestaurantBoard %d: active not oldest first" % rid
        active.sort(key=lambda o: (o.get("created_at_us", 0), o.get("order_id", "")))  # ties
        d["RestaurantBoard %d" % rid] = {"restaurant_id": r.get("restaurant_id"),
                                         "counts": r.get("counts"), "active": active}
    for uid in spec["users"]:
        items, _ = paged({"type": "UserHistory", "user_id": uid}, 29)
        d["UserHistory %d" % uid] = [norm_summary(o) for o in items]
    for bucket, f, t in spec["ranges"]:
        for rid in [None] + spec["restaurants"]:
            req = {"type": "Analytics", "from_us": f, "to_us": t, "bucket": bucket}
            if rid is not None:
                req["restaurant_id"] = rid
            d["Analytics %s restaurant %s" % (bucket, rid)] = [
                norm_bucket(b) for b in one(req).get("buckets") or []]
    for kind in ("at_us", "at_position"):
        for i, v in enumerate(spec[kind]):
            items, pages = paged({"type": "OrdersAsOf", kind: v}, 41 if i == 2 else 1000)
            totals = {p.get("total") for p in pages}
            assert len(totals) == 1, "OrdersAsOf %s=%d: total changes across pages %s" % (
                kind, v, totals)
            d["OrdersAsOf %s=%d" % (kind, v)] = {"total": totals.pop(),
                                                 "orders": [norm_asof(o) for o in items]}
    return d


def expect(truth, spec):
    """What dump() must return, computed from the log."""
    d = {}
    for oid in spec["sample"]:
        d["GetOrderSummary %s" % oid] = truth.summary(oid)
    d["ListOrders"] = truth.list_orders({})
    for rid in spec["restaurants"]:
        d["RestaurantBoard %d" % rid] = truth.board(rid)
    for uid in spec["users"]:
        d["UserHistory %d" % uid] = truth.user_history(uid)
    for bucket, f, t in spec["ranges"]:
        for rid in [None] + spec["restaurants"]:
            d["Analytics %s restaurant %s" % (bucket, rid)] = truth.analytics(f, t, bucket, rid)
    for kind in ("at_us", "at_position"):
        for v in spec[kind]:
            rows = truth.as_of({kind: v})
            d["OrdersAsOf %s=%d" % (kind, v)] = {"total": len(rows), "orders": rows}
    return d


def check_models(proj, truth, other=None, label="read models"):
    """proj's read models equal the ones computed from the log (percentiles
    within their tolerance) and, if given, another projector's exactly."""
    spec = make_spec(truth)
    got = dump(proj, spec)
    assert_same(got, expect(truth, spec), label + " (vs the log)", tolerant=True)
    if other is not None:
        assert_same(got, dump(other, spec), label + " (vs a fresh projector)")
    return got


# The indexes only queries read (projections/ordo_model.h), per projection.
QUERY_INDEXES = {
    "summary": {"orders_by_created", "orders_by_status", "orders_by_restaurant", "orders_by_user"},
    "user": {"orders_by_user"},
    "timeline": {"timeline_lvl_t", "timeline_lvl_p", "timeline_end_t", "timeline_end_p",
                 "timeline_rend_t", "timeline_rend_p", "timeline_fin63_t", "timeline_fin63_p"},
}


def db_rows(proj, name, sql):
    """The rows of `sql` on the file of projection `name`, generation 1, read-only."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(proj.data, name + ".1.db"), uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def index_names(proj, name):
    return {r[0] for r in db_rows(proj, name, "SELECT name FROM sqlite_master WHERE type = 'index'")}


def check_indexes_built_late(proj, head):
    """A stopped projector that caught up from position 1 with no query in
    between built its query indexes once, after the rows (the log says over
    which positions), and its files hold them with meta `indexes` = 1."""
    with open(os.path.join(proj.base, "projector.log"), errors="replace") as f:
        log = f.read()
    for name, want in QUERY_INDEXES.items():
        line = "%s: generation 1: query indexes built over positions 1..%d in" % (name, head)
        assert line in log, "no '%s' in the projector's log" % line
        have = index_names(proj, name)
        flag = db_rows(proj, name, "SELECT value FROM meta WHERE key = 'indexes'")
        assert want <= have and flag == [(1,)], (name, sorted(have), flag)


def settle(srv, proj, timeout=WAIT):
    """The log as it is now, once the projector has caught up with it."""
    truth = Truth(read_log(srv))
    check_status(wait_caught_up(proj, truth.head, timeout), truth.head)
    return truth


def fresh_equal(run, srv, proj, truth, label):
    """A fresh projector (new empty folder) builds from position 1 of the same
    log; proj's models must equal its models and the log's."""
    fresh = run.projector(srv)
    try:
        wait_caught_up(fresh, truth.head)
        check_models(proj, truth, other=fresh, label=label)
    finally:
        assert fresh.stop() == 0, "fresh projector: SIGTERM must exit 0"


# ---- tests -------------------------------------------------------------------------------

def test_scenario(run):
    """350 orders over 7 users and 4 restaurants, in every life; then every
    query, each answer computed from the engine's log."""
    srv = run.server()
    proj = run.projector(srv, save_every=100)
    run.env = {"srv": srv, "proj": proj}
    drive_waves(srv, make_plans("sc", 350, seed=1), 5)
    truth = settle(srv, proj)
    run.env["truth"] = truth
    H = truth.head
    mp = {"min_position": H}
    assert len(truth.orders) == 350 and H > 1000, (len(truth.orders), H)

    r = ok(proj, {"type": "Ping", "request_id": "ping-1"})
    assert r["engine_head"] == H and r["position"] == H, r
    check_status(ok(proj, {"type": "ProjectionStatus"}), H)

    # GetOrderSummary: one order of each kind, and one the projection never saw
    kinds = {}
    for oid, o in sorted(truth.orders.items()):
        kinds.setdefault((o["status"], o.get("cancelled_from"), "courier_id" in o), oid)
    assert len(kinds) == 10, kinds
    for oid in kinds.values():
        r = ok(proj, {"type": "GetOrderSummary", "order_id": oid})
        assert r["position"] == H, "GetOrderSummary at position %d, head %d" % (r["position"], H)
        assert_same(norm_summary(r["order"]), truth.summary(oid), "GetOrderSummary %s" % oid)
    err(proj, {"type": "GetOrderSummary", "order_id": "sc:nope", "request_id": "nf"}, "not_found")

    # ListOrders: filters, each listed whole and paged by 7
    by_created = truth.list_orders({})
    c1, c2 = by_created[100]["created_at_us"], by_created[250]["created_at_us"]
    cases = [{}, {"status": "Preparing"}, {"status": ["Created", "Ready"]},
             {"status": ["Cancelled", "Delivered", "OutForDelivery"]}, {"restaurant_id": 22},
             {"restaurant_id": NO_RESTAURANT}, {"user_id": 3}, {"user_id": NO_USER},
             {"created_from_us": c1}, {"created_to_us": c2},
             {"created_from_us": c1, "created_to_us": c2},
             {"created_from_us": c2, "created_to_us": c2},
             {"status": ["Created", "Confirmed", "Delivered"], "restaurant_id": 33, "user_id": 5},
             {"status": "Cancelled", "restaurant_id": 11, "created_from_us": c1,
              "created_to_us": c2}]
    for f in cases:
        want = truth.list_orders(f)
        got, pages = page_all(proj, dict(f, type="ListOrders", **mp), 1000, position=H)
        assert_same([norm_summary(o) for o in got], want, "ListOrders %s" % short(f))
        got, pages = page_all(proj, dict(f, type="ListOrders", **mp), 7, position=H)
        assert_same([norm_summary(o) for o in got], want, "ListOrders by 7 %s" % short(f))
        check_pages(pages, len(want), 7, "ListOrders %s" % short(f))
    inside = truth.list_orders({"created_from_us": c1, "created_to_us": c2})
    assert inside[0]["created_at_us"] == c1 and inside[-1]["created_at_us"] < c2  # half-open
    # a page ending exactly at the last match has no cursor
    want = truth.list_orders({"restaurant_id": 44})
    got, pages = page_all(proj, {"type": "ListOrders", "restaurant_id": 44}, len(want))
    check_pages(pages, len(want), len(want), "ListOrders restaurant 44")
    assert_same([norm_summary(o) for o in got], want, "ListOrders restaurant 44")
    got, pages = page_all(proj, {"type": "ListOrders", "restaurant_id": 44}, len(want) // 2)
    check_pages(pages, len(want), len(want) // 2, "ListOrders restaurant 44")
    r = ok(proj, {"type": "ListOrders"})  # default limit 100
    assert_same([norm_summary(o) for o in r["orders"]], by_created[:100], "ListOrders, default")
    assert isinstance(r["next_cursor"], str), "ListOrders, default: next_cursor %r" % (
        r["next_cursor"],)
    r = ok(proj, {"type": "ListOrders", "limit": 5000})  # clamped to 1000: all 350
    assert len(r["orders"]) == 350 and r["next_cursor"] is None, \
        "ListOrders limit 5000: %d orders, next_cursor %r" % (len(r["orders"]), r["next_cursor"])

    # RestaurantBoard, including a restaurant without orders
    for rid in RESTAURANTS + [NO_RESTAURANT]:
        r = ok(proj, {"type": "RestaurantBoard", "restaurant_id": rid})
        assert r["position"] == H, "RestaurantBoard at position %d, head %d" % (r["position"], H)
        want = truth.board(rid)
        got = {"restaurant_id": r["restaurant_id"], "counts": r["counts"],
               "active": [norm_summary(o) for o in r["active"]]}
        got["active"].sort(key=lambda o: (o["created_at_us"], o["order_id"]))
        assert_same(got, want, "RestaurantBoard %d" % rid)
        created = [o["created_at_us"] for o in r["active"]]
        assert created == sorted(created), "active not oldest first"
        assert set(r["counts"]) == set(STATUSES), "counts keys %s" % sorted(r["counts"])
    r = ok(proj, {"type": "RestaurantBoard", "restaurant_id": NO_RESTAURANT})
    assert r["counts"] == {s: 0 for s in STATUSES} and r["active"] == [], r

    # UserHistory: newest first, paged; each user has exactly 50 orders, so the
    # default page (50) ends at the last match: no cursor
    for uid in USERS + [NO_USER]:
        want = truth.user_history(uid)
        got, pages = page_all(proj, {"type": "UserHistory", "user_id": uid}, 9, position=H)
        assert_same([norm_summary(o) for o in got], want, "UserHistory %d by 9" % uid)
        check_pages(pages, len(want), 9, "UserHistory %d" % uid)
        r = ok(proj, {"type": "UserHistory", "user_id": uid})
        assert len(want) in (0, 50) and r["next_cursor"] is None, \
            "UserHistory %d, default limit 50, %d orders: next_cursor %r" % (uid, len(want),
                                                                           r["next_cursor"])
        assert_same([norm_summary(o) for o in r["orders"]], want, "UserHistory %d" % uid)
    r = ok(proj, {"type": "UserHistory", "user_id": 1, "limit": 5000})
    assert len(r["orders"]) == 50 and r["next_cursor"] is None, \
        "UserHistory limit 5000: %d orders, next_cursor %r" % (len(r["orders"]), r["next_cursor"])

    # Analytics: minute, hour, day, default bucket, with and without a
    # restaurant, a restaurant without orders, a range not aligned to buckets
    lo, hi = truth.events[0]["timestamp_us"], truth.events[-1]["timestamp_us"]
    cases = [("minute", lo // MINUTE * MINUTE - 2 * MINUTE, hi // MINUTE * MINUTE + 3 * MINUTE),
             ("hour", lo // HOUR * HOUR - 2 * HOUR, hi // HOUR * HOUR + 2 * HOUR),
             ("day", lo // DAY * DAY - DAY, hi // DAY * DAY + DAY),
             ("minute", lo - 30 * 10**6, hi + 1), ("minute", lo - MINUTE, hi + 1)]
    for bucket, f, t in cases:
        for rid in [None, 22, NO_RESTAURANT]:
            req = {"type": "Analytics", "from_us": f, "to_us": t, "bucket": bucket}
            if rid is not None:
                req["restaurant_id"] = rid
            r = ok(proj, req)
            assert r["position"] == H, "Analytics at position %d, head %d" % (r["position"], H)
            want = truth.analytics(f, t, bucket, rid)
            assert_same([norm_bucket(b) for b in r["buckets"]], want, "Analytics %s" % short(req),
                        tolerant=True)
            for b in r["buckets"]:
                assert sorted(b["cancelled_from"]) == ["Confirmed", "Created", "Preparing"], \
                    "cancelled_from keys: %s" % short(b)
    whole = truth.analytics(lo // HOUR * HOUR - 2 * HOUR, hi // HOUR * HOUR + 2 * HOUR)
    assert sum(b["created"] for b in whole) == 350 and any(b["stages"] for b in whole)
    assert any(not b["created"] and b["stages"] == {} for b in whole)  # empty buckets too
    r = ok(proj, {"type": "Analytics", "from_us": cases[1][1], "to_us": cases[1][2]})
    assert_same([norm_bucket(b) for b in r["buckets"]], whole, "Analytics, default bucket",
                tolerant=True)

    # OrdersAsOf: instants between events, positions, filters, paging
    ts = [e["timestamp_us"] for e in truth.events]
    n = len(ts)
    instants = [lo - 1, lo, ts[n // 7], ts[n // 3] - 1, ts[n // 2] + 1, ts[4 * n // 5], hi]
    filters = [{}, {"status": "OutForDelivery"}, {"status": "Created"},
               {"status": ["Preparing", "Ready"]}, {"restaurant_id": 33},
               {"status": "Confirmed", "restaurant_id": 11}, {"restaurant_id": NO_RESTAURANT}]
    for at in [{"at_us": v} for v in instants] + [{"at_position": p} for p in
                                                   (1, 2, n // 4, n // 2, n - 1, n, n + 50)]:
        for f in filters:
            req = dict(at, type="OrdersAsOf", **f)
            want = truth.as_of(dict(at, **f))
            got, pages = page_all(proj, req, 1000, position=H)
            assert_same({"total": pages[0].get("total"), "orders": [norm_asof(o) for o in got]},
                        {"total": len(want), "orders": want}, "OrdersAsOf %s" % short(req))
    req = {"type": "OrdersAsOf", "at_us": ts[n // 2]}
    want = truth.as_of(req)
    got, pages = page_all(proj, req, 13)
    assert_same([norm_asof(o) for o in got], want, "OrdersAsOf %s by 13" % short(req))
    check_pages(pages, len(want), 13, "OrdersAsOf %s" % short(req))
    assert all(p["total"] == len(want) for p in pages), "OrdersAsOf totals %s, want %d" % (
        [p["total"] for p in pages], len(want))
    r = ok(proj, {"type": "OrdersAsOf", "at_us": hi})  # default limit 100
    assert len(r["orders"]) == 100 and r["total"] == 350 and isinstance(r["next_cursor"], str)

    # and every read model, in one comparison
    check_models(proj, truth)


def test_min_position(run):
    """A query with min_position P after a command answered with position P
    sees it, on every projection; far beyond the head: lagging."""
    assert run.env, "the scenario did not set up"
    srv, proj = run.env["srv"], run.env["proj"]
    mp = lambda p: {"min_position": p, "wait_ms": 5000}  # noqa: E731
    for k in range(8):
        oid, uid, rid = "mp:%d" % k, USERS[k % 7], RESTAURANTS[k % 4]
        r = srv.call({"type": "CreateOrder", "order_id": oid, "data": {
            "user_id": uid, "restaurant_id": rid, "delivery_address": "x",
            "items": [{"sku": "a", "name": "b", "qty": 3, "price_cents": 250}]}})
        assert r["ok"], r
        p = r["position"]
        g = ok(proj, dict({"type": "GetOrderSummary", "order_id": oid}, **mp(p)))
        assert g["order"]["status"] == "Created" and g["order"]["item_count"] == 3, g
        r = srv.call({"type": "ConfirmOrder", "order_id": oid})
        assert r["ok"], r
        p = r["position"]
        def seen(q, key, field):  # oid's `field` in the reply to q with min_position p
            r = ok(proj, dict(q, **mp(p)))
            got = {o["order_id"]: o[field] for o in r[key]}.get(oid)
            return got, "%s after ConfirmOrder of %s at position %d: %s %r" % (
                short(q), oid, p, field, got)

        got, what = seen({"type": "ListOrders", "user_id": uid, "limit": 1000}, "orders",
                         "status")
        assert got == "Confirmed", what
        got, what = seen({"type": "RestaurantBoard", "restaurant_id": rid}, "active", "status")
        assert got == "Confirmed", what
        u = ok(proj, dict({"type": "UserHistory", "user_id": uid, "limit": 1}, **mp(p)))
        assert [(o["order_id"], o["status"]) for o in u["orders"]] == [(oid, "Confirmed")], u
        got, what = seen({"type": "OrdersAsOf", "at_position": p, "limit": 1000}, "orders",
                         "version")
        assert got == 2, what + " (want version 2: the event at position %d included)" % p
        ts = r["event"]["timestamp_us"]
        an = ok(proj, dict({"type": "Analytics", "from_us": ts - ts % MINUTE,
                            "to_us": ts - ts % MINUTE + MINUTE, "bucket": "minute",
                            "restaurant_id": rid}, **mp(p)))
        assert an["buckets"][0]["confirmed"] >= 1, an
    # a query waiting for a position the engine has not reached yet gets its
    # answer once it is reached
    head = srv.head()
    proj.sock.send(msgpack.packb({"type": "GetOrderSummary", "order_id": "mp:late",
                                  "min_position": head + 1, "wait_ms": 8000}))
    r = srv.call({"type": "CreateOrder", "order_id": "mp:late", "data": {
        "user_id": 1, "restaurant_id": 11, "delivery_address": "x",
        "items": [{"sku": "a", "name": "b", "qty": 1, "price_cents": 1}]}})
    assert r["ok"] and r["position"] == head + 1, r
    proj.wait_reply("the waiting query", 20000)
    g = unpack(proj.sock.recv_multipart())
    assert g["ok"] and g["position"] == head + 1 and g["order"]["order_id"] == "mp:late", g
    # far beyond the head: lagging after wait_ms, with the positions
    far = head + 10**6
    for q in ({"type": "ListOrders"}, {"type": "GetOrderSummary", "order_id": "mp:late"},
              {"type": "RestaurantBoard", "restaurant_id": 11},
              {"type": "UserHistory", "user_id": 1},
              {"type": "Analytics", "from_us": 0, "to_us": DAY, "bucket": "day"},
              {"type": "OrdersAsOf", "at_position": 5}):
        t0 = time.monotonic()
        r = err(proj, dict(q, min_position=far, wait_ms=200, request_id="lag"), "lagging")
        took = time.monotonic() - t0
        e = r["error"]
        assert e["min_position"] == far and is_int(e["position"]) and \
            head + 1 <= e["position"] < far, e
        assert 0.15 <= took < 10, "lagging after %.3f s for wait_ms 200" % took
        r = err(proj, dict(q, min_position=far, wait_ms=0), "lagging")
    r = ok(proj, {"type": "ListOrders", "min_position": 0, "wait_ms": 0, "limit": 1})


def test_malformed(run):
    """Malformed queries: each its code and field; none changes anything."""
    assert run.env, "the scenario did not set up"
    srv, proj = run.env["srv"], run.env["proj"]
    truth = settle(srv, proj)
    spec = make_spec(truth)
    before = dump(proj, spec)
    ts = truth.events[-1]["timestamp_us"]
    hour0 = ts - ts % HOUR
    uh_cursor = ok(proj, {"type": "UserHistory", "user_id": 1, "limit": 2})["next_cursor"]
    lo_cursor = ok(proj, {"type": "ListOrders", "limit": 2})["next_cursor"]
    asof_cursor = ok(proj, {"type": "OrdersAsOf", "at_us": ts, "limit": 2})["next_cursor"]
    assert all(isinstance(c, str) for c in (uh_cursor, lo_cursor, asof_cursor)), \
        (uh_cursor, lo_cursor, asof_cursor)
    def nest(levels):  # a body of exactly `levels` levels of maps
        v = 1
        for _ in range(levels - 1):
            v = {"a": v}
        return {"type": "Ping", "x": v} if levels > 1 else {"type": "Ping"}

    def sized(n):  # a Ping body of exactly n bytes
        body = msgpack.packb({"type": "Ping", "pad": ""})
        pad = n - len(body)
        for extra in range(0, 6):  # the str header grows with its length
            b = msgpack.packb({"type": "Ping", "pad": "x" * (pad - extra)})
            if len(b) == n:
                return b
        raise AssertionError("cannot make a body of %d bytes" % n)
    raw_cases = [
        (b"\xc1", "not MessagePack"),
        (b"", "empty body"),
        (msgpack.packb({"type": "Ping"}) + b"\x00", "trailing bytes"),
        (msgpack.packb([1, 2, 3]), "an array"),
        (msgpack.packb("Ping"), "a string"),
        (msgpack.packb({"type": "Ping", "pad": "x" * (1 << 20)}), "over 1 MiB"),
        (b"\x81\xa4type\xa4P\xffng", "bad UTF-8"),
        (b"\x82\xa4type\xa4Ping\xa3bad", "truncated map"),
        (msgpack.packb(nest(17)), "nested 17 levels"),
        (sized(1048577), "1 MiB + 1 byte"),
        (b"\x82\xa4type\xa4Ping\xa2\xff\xfe\x01", "a key in bad UTF-8"),
        (msgpack.packb({1: 2, "type": "Ping"}), "a key not a string"),
    ]
    for body, what in raw_cases:
        r = err(proj, body, "bad_request", raw=True)
    cases = [
        ({}, "bad_request", "type"),
        ({"type": 5}, "bad_request", "type"),
        ({"type": None}, "bad_request", "type"),
        ({"type": 5, "limit": "x"}, "bad_request", "type"),
        ({"type": "Frobnicate"}, "unknown_type", None),
        ({"type": ""}, "unknown_type", None),
        ({"type": "GetOrder", "order_id": "x"}, "unknown_type", None),  # an engine query
        ({"type": "GetOrderSummary"}, "bad_request", "order_id"),
        ({"type": "GetOrderSummary", "order_id": "bad id!"}, "bad_request", "order_id"),
        ({"type": "GetOrderSummary", "order_id": ""}, "bad_request", "order_id"),
        ({"type": "GetOrderSummary", "order_id": 12}, "bad_request", "order_id"),
        ({"type": "GetOrderSummary", "order_id": "x" * 65}, "bad_request", "order_id"),
        ({"type": "ListOrders", "limit": 0}, "bad_request", "limit"),
        ({"type": "ListOrders", "limit": -3}, "bad_request", "limit"),
        ({"type": "ListOrders", "limit": "10"}, "bad_request", "limit"),
        ({"type": "UserHistory", "user_id": 1, "limit": 0}, "bad_request", "limit"),
        ({"type": "ListOrders", "status": "Nope"}, "bad_request", "status"),
        ({"type": "ListOrders", "status": "created"}, "bad_request", "status"),
        ({"type": "ListOrders", "status": []}, "bad_request", "status"),
        ({"type": "ListOrders", "status": [1]}, "bad_request", "status"),
        ({"type": "ListOrders", "status": ["Created", "Nope"]}, "bad_request", "status"),
        ({"type": "ListOrders", "status": 3}, "bad_request", "status"),
        ({"type": "ListOrders", "restaurant_id": "x"}, "bad_request", "restaurant_id"),
        ({"type": "ListOrders", "restaurant_id": -1}, "bad_request", "restaurant_id"),
        ({"type": "ListOrders", "user_id": "x"}, "bad_request", "user_id"),
        ({"type": "ListOrders", "created_from_us": "x"}, "bad_request", "created_from_us"),
        ({"type": "ListOrders", "created_to_us": 1.5}, "bad_request", "created_to_us"),
        ({"type": "ListOrders", "cursor": "garbage"}, "bad_request", "cursor"),
        ({"type": "ListOrders", "cursor": ""}, "bad_request", "cursor"),
        ({"type": "ListOrders", "cursor": 7}, "bad_request", "cursor"),
        ({"type": "ListOrders", "cursor": "f" * 5000}, "bad_request", "cursor"),
        ({"type": "ListOrders", "cursor": lo_cursor + "!"}, "bad_request", "cursor"),
        ({"type": "ListOrders", "cursor": uh_cursor}, "bad_request", "cursor"),
        ({"type": "ListOrders", "cursor": asof_cursor}, "bad_request", "cursor"),
        ({"type": "UserHistory", "user_id": 1, "cursor": lo_cursor}, "bad_request", "cursor"),
        ({"type": "OrdersAsOf", "at_us": ts, "cursor": lo_cursor}, "bad_request", "cursor"),
        ({"type": "RestaurantBoard"}, "bad_request", "restaurant_id"),
        ({"type": "RestaurantBoard", "restaurant_id": -1}, "bad_request", "restaurant_id"),
        ({"type": "UserHistory"}, "bad_request", "user_id"),
        ({"type": "UserHistory", "user_id": "1"}, "bad_request", "user_id"),
        ({"type": "Analytics", "to_us": hour0}, "bad_request", "from_us"),
        ({"type": "Analytics", "from_us": hour0}, "bad_request", "to_us"),
        ({"type": "Analytics", "from_us": hour0, "to_us": hour0}, "bad_request", "to_us"),
        ({"type": "Analytics", "from_us": hour0 + 1, "to_us": hour0}, "bad_request", "to_us"),
        ({"type": "Analytics", "from_us": hour0, "to_us": hour0 + 10001 * MINUTE,
          "bucket": "minute"}, "bad_request", "to_us"),
        ({"type": "Analytics", "from_us": 0, "to_us": 10**18}, "bad_request", "to_us"),
        ({"type": "Analytics", "from_us": hour0, "to_us": hour0 + HOUR, "bucket": "week"},
         "bad_request", "bucket"),
        ({"type": "Analytics", "from_us": hour0, "to_us": hour0 + HOUR, "bucket": 60},
         "bad_request", "bucket"),
        ({"type": "Analytics", "from_us": hour0, "to_us": hour0 + HOUR, "restaurant_id": "x"},
         "bad_request", "restaurant_id"),
        ({"type": "OrdersAsOf"}, "bad_request", "at_position"),
        ({"type": "OrdersAsOf", "at_us": ts, "at_position": 5}, "bad_request", "at_position"),
        ({"type": "OrdersAsOf", "at_us": "x"}, "bad_request", "at_us"),
        ({"type": "OrdersAsOf", "at_us": ts, "status": "Nope"}, "bad_request", "status"),
        ({"type": "OrdersAsOf", "at_us": ts, "restaurant_id": -1}, "bad_request",
         "restaurant_id"),
        ({"type": "OrdersAsOf", "at_us": ts, "limit": 0}, "bad_request", "limit"),
        ({"type": "Rebuild"}, "bad_request", "projection"),
        ({"type": "Rebuild", "projection": "nope"}, "bad_request", "projection"),
        ({"type": "Rebuild", "projection": 1}, "bad_request", "projection"),
        ({"type": "Ping", "min_position": -1}, "bad_request", "min_position"),
        ({"type": "ListOrders", "min_position": "x"}, "bad_request", "min_position"),
        ({"type": "ListOrders", "wait_ms": 20000}, "bad_request", "wait_ms"),
        ({"type": "ListOrders", "wait_ms": -1}, "bad_request", "wait_ms"),
        ({"type": "Ping", "request_id": 5}, "bad_request", "request_id"),
        ({"type": "Ping", "request_id": ""}, "bad_request", "request_id"),
        ({"type": "Ping", "request_id": "r" * 129}, "bad_request", "request_id"),
    ]
    for i, (req, code, field) in enumerate(cases):
        req = dict(req)
        if "request_id" not in req:
            req["request_id"] = "bad-%d" % i  # echoed on errors too (check_reply)
        err(proj, req, code, field)
    # limits at their edges are fine
    assert ok_raw(proj, msgpack.packb(nest(16)))
    assert ok_raw(proj, sized(1048576))
    r = ok(proj, {"type": "ListOrders", "limit": 2**64 - 1})  # clamped like any larger one
    assert 0 < len(r["orders"]) <= 1000, len(r["orders"])
    ok(proj, {"type": "ListOrders", "limit": 1, "wait_ms": 10000, "min_position": 0})
    err(proj, {"type": "ListOrders", "wait_ms": 10001}, "bad_request", "wait_ms")
    # buckets are the ones that start in [from_us, to_us): an unaligned start
    # holds 10,000 in a span just over 10,000 minutes, and none in a moment
    r = ok(proj, {"type": "Analytics", "from_us": hour0 + 1, "to_us": hour0 + 10000 * MINUTE + 1,
                  "bucket": "minute"})
    assert len(r["buckets"]) == 10000 and r["buckets"][0]["start_us"] == hour0 + MINUTE, \
        (len(r["buckets"]), r["buckets"][0]["start_us"])
    r = ok(proj, {"type": "Analytics", "from_us": hour0 + 1, "to_us": hour0 + 2})
    assert r["buckets"] == [], r
    # envelopes: REQ's empty delimiter, and several frames, come back as sent
    q = proj.ctx.socket(zmq.REQ)
    q.setsockopt(zmq.LINGER, 0)
    q.connect(proj.bind)
    q.send(msgpack.packb({"type": "Ping", "request_id": "via-req"}))
    assert q.poll(10000), "no reply to REQ"
    r = unpack([q.recv()])
    assert r.get("request_id") == "via-req", "REQ: %s" % short(r)
    q.close()
    proj.sock.send_multipart([b"env-1", b"", b"env-2", msgpack.packb({"type": "Ping"})])
    proj.wait_reply("a Ping with a 3-frame envelope")
    frames = proj.sock.recv_multipart()
    assert frames[:-1] == [b"env-1", b"", b"env-2"] and unpack(frames)["ok"], frames
    r = ok(proj, {"type": "ListOrders", "limit": 5000})
    assert 0 < len(r["orders"]) <= 1000, len(r["orders"])
    r = ok(proj, {"type": "Analytics", "from_us": hour0, "to_us": hour0 + 10000 * MINUTE,
                  "bucket": "minute"})
    assert len(r["buckets"]) == 10000, "Analytics of exactly 10,000 buckets: %d" % len(
        r["buckets"])
    ok(proj, {"type": "ListOrders", "wait_ms": 10000, "limit": 1, "unknown_key": [1, {"a": 2}]})
    ok(proj, {"type": "Ping", "request_id": "r" * 128})
    # nothing changed
    assert srv.head() == truth.head, "the log moved"
    check_status(ok(proj, {"type": "ProjectionStatus"}), truth.head)
    assert_same(dump(proj, spec), before, "read models after the malformed queries")
    assert proj.proc.poll() is None, "projector exited"


def test_kill_projector(run):
    """kill -9 of the projector under load, at several moments, restarts on
    the same folder; kill -9 of the engine while the projector runs. Each
    time the read models equal a fresh projector's and the log's."""
    srv = run.server()
    proj = run.projector(srv, save_every=37)

    def kill():
        proj.stop(signal.SIGKILL)

    def start():
        proj.start()

    def kill_start():
        proj.stop(signal.SIGKILL)
        proj.start()

    # round 1: killed early and left down while commands go on, then killed
    # and restarted at once mid-stream
    plans = make_plans("k1", 400, seed=2)
    n = n_commands(plans)
    drive(srv, plans, {n // 10: kill, n // 3: start, 2 * n // 3: kill_start})
    truth = settle(srv, proj)
    fresh_equal(run, srv, proj, truth, "after kill -9 (round 1)")

    # round 2: new orders and old ones moving on; killed twice, saving rarely
    proj.stop(signal.SIGKILL)
    proj.save_every = 5000
    proj.start()
    plans = dict(make_plans("k2", 200, seed=3), **advance_plans(truth, "a", seed=4))
    n = n_commands(plans)
    drive(srv, plans, {n // 4: kill_start, 3 * n // 4: kill_start})
    truth = settle(srv, proj)
    fresh_equal(run, srv, proj, truth, "after kill -9 (round 2)")

    # the engine killed under load while the projector runs
    plans = dict(make_plans("k3", 200, seed=5), **advance_plans(truth, "b", seed=6))
    drive(srv, plans, {n_commands(plans) // 2: lambda: "stop"})
    srv.stop(signal.SIGKILL)
    for q in ({"type": "Ping"}, {"type": "ListOrders", "limit": 10},
              {"type": "OrdersAsOf", "at_position": 1}):  # it answers from what it has
        assert ok(proj, q)["position"] > 0, "engine down: %s" % short(q)
    srv.start()
    truth = Truth(read_log(srv))
    plans = dict(make_plans("k4", 100, seed=7), **advance_plans(truth, "c", seed=8))
    drive(srv, plans)
    truth = settle(srv, proj)
    fresh_equal(run, srv, proj, truth, "after kill -9 of the engine")
    assert proj.stop() == 0, "SIGTERM must exit 0"


def test_drops(run):
    """The projector stopped (SIGSTOP) through a burst of thousands of events:
    PUB drops what it cannot deliver; after SIGCONT the gap is filled from
    ReadAll with no event lost or counted twice."""
    srv = run.server()
    proj = run.projector(srv, save_every=500)
    drive(srv, make_plans("d0", 150, seed=9))
    settle(srv, proj)
    proj.send_signal(signal.SIGSTOP)
    try:
        plans = make_plans("d1", 950, seed=10)
        drive(srv, plans)
        assert n_commands(plans) > 3500, n_commands(plans)
    finally:
        proj.send_signal(signal.SIGCONT)
    truth = settle(srv, proj)
    assert len(truth.orders) == 1100, len(truth.orders)
    check_models(proj, truth, label="after the burst")
    r = ok(proj, {"type": "ListOrders", "limit": 5000})  # clamped to 1000
    assert len(r["orders"]) == 1000 and isinstance(r["next_cursor"], str), len(r["orders"])
    r = ok(proj, {"type": "OrdersAsOf", "at_position": truth.head, "limit": 5000})
    assert len(r["orders"]) == 1000 and r["total"] == 1100, (len(r["orders"]), r["total"])
    # and the tail of a burst is filled too when nothing more is published
    proj.send_signal(signal.SIGSTOP)
    try:
        drive(srv, advance_plans(truth, "t", seed=11, fraction=0.5))
    finally:
        proj.send_signal(signal.SIGCONT)
    truth = settle(srv, proj)
    check_models(proj, truth, label="after a burst at the end")
    assert proj.stop() == 0, "SIGTERM must exit 0"


def test_late_start(run):
    """A projector started after the workload (configured through ORDO_*
    variables alone) catches up from position 1; a restaurant with over 500
    active orders shows the 500 oldest."""
    srv = run.server()
    busy = ["created", "confirmed", "preparing", "ready", "out", "delivered"]
    drive_waves(srv, dict(make_plans("l", 250, seed=12),
                          **make_plans("busy", 640, seed=23, restaurants=[55], mix=busy)), 2)
    proj = run.projector(srv, by_env=True, save_every=200)
    truth = settle(srv, proj)
    board = truth.board(55)
    assert len(board["active"]) == 500 and sum(board["counts"].values()) == 640, board["counts"]
    check_models(proj, truth, label="after a late start")
    r = ok(proj, {"type": "RestaurantBoard", "restaurant_id": 55})
    assert len(r["active"]) == 500, len(r["active"])
    assert proj.stop() == 0, "SIGTERM must exit 0"
    check_indexes_built_late(proj, truth.head)
    # a query index missing from an indexed file (one a newer version
    # added) is created when the file is opened
    db = sqlite3.connect(os.path.join(proj.data, "timeline.1.db"))
    db.execute("DROP INDEX timeline_fin63_t")
    db.commit()
    db.close()
    assert "timeline_fin63_t" not in index_names(proj, "timeline")
    # flags beat the environment
    proj.env = {"ORDO_ENGINE": "tcp://127.0.0.1:%d" % free_port(),
                "ORDO_ENGINE_PUB": "tcp://127.0.0.1:%d" % free_port(),
                "ORDO_PROJECTOR_BIND": "tcp://127.0.0.1:%d" % free_port(),
                "ORDO_PROJECTOR_DATA_DIR": os.path.join(proj.base, "elsewhere"),
                "ORDO_PROJECTOR_SAVE_EVERY": "3"}
    proj.by_env = False
    proj.start()
    drive(srv, make_plans("l2", 30, seed=24))
    truth = settle(srv, proj)
    check_models(proj, truth, label="flags over the environment")
    assert not os.path.exists(os.path.join(proj.base, "elsewhere")), \
        "ORDO_PROJECTOR_DATA_DIR was used over --data-dir"
    assert proj.stop() == 0, "SIGTERM must exit 0"
    assert QUERY_INDEXES["timeline"] <= index_names(proj, "timeline")


def test_paging_under_writes(run):
    """Cursors given back while commands go on continue each listing: no
    order repeated, none skipped of those that matched throughout, the
    order kept; listings of the past (OrdersAsOf) are exact."""
    srv = run.server()
    proj = run.projector(srv, save_every=300)
    drive_waves(srv, make_plans("pw", 500, seed=20), 2)
    truth = settle(srv, proj)
    load = Load(srv, dict(make_plans("pw2", 300, seed=21), **advance_plans(truth, "m", seed=22)))

    def pump():  # at least one more command applied before each page
        load.send(4)
        if load.pending:
            assert load.receive(20000), "engine replies stopped"
        while load.receive(0):
            pass

    created = lambda o: (o["created_at_us"], o["order_id"])  # noqa: E731
    old = truth.orders.values()
    ts = truth.events[len(truth.events) // 2]["timestamp_us"]
    cases = [  # query, page size, orders that match throughout, sort key, reversed
        ({"type": "ListOrders"}, 23, list(old), created, False),
        ({"type": "ListOrders", "status": "Delivered"}, 7,
         [o for o in old if o["status"] == "Delivered"], created, False),
        ({"type": "ListOrders", "status": ["Cancelled", "Delivered"], "restaurant_id": 22}, 5,
         [o for o in old if o["status"] in TERMINAL and o["restaurant_id"] == 22], created,
         False),
        ({"type": "UserHistory", "user_id": 3}, 6, [o for o in old if o["user_id"] == 3],
         created, True),
        ({"type": "OrdersAsOf", "at_position": truth.head}, 17, None, None, False),
        ({"type": "OrdersAsOf", "at_us": ts, "status": ["Ready", "Created"]}, 4, None, None,
         False),
    ]
    try:
        pump()
        for req, limit, stable, key, rev in cases:
            acked = load.acked
            got, pages = page_all(proj, req, limit, between=pump)
            what = "%s by %d while commands go on" % (short(req), limit)
            assert load.acked > acked, "%s: no command applied meanwhile" % what
            if stable is None:  # the past does not change
                want = truth.as_of(req)
                assert_same({"total": pages[0]["total"], "orders": [norm_asof(o) for o in got]},
                            {"total": len(want), "orders": want}, what)
                continue
            ids = [o["order_id"] for o in got]
            rep_ = [i for i, c in collections.Counter(ids).items() if c > 1]
            assert not rep_, "%s: repeated %s" % (what, short(rep_))
            missing = {o["order_id"] for o in stable} - set(ids)
            assert not missing, "%s: skipped %s" % (what, short(sorted(missing)))
            keys = [key(o) for o in got]
            assert keys == sorted(keys, reverse=rev), "%s: out of order" % what
        while not load.done:
            load.send()
            assert load.receive(20000), "engine replies stopped"
    finally:
        load.close()
    truth = settle(srv, proj)
    check_models(proj, truth, label="after paging under writes")
    assert proj.stop() == 0, "SIGTERM must exit 0"


def test_rebuild(run):
    """Rebuild of summary while commands go on and ListOrders keeps being
    asked: every answer ok (or lagging), never unavailable, positions never
    going back, each answer right for its position; then the new generation
    answers, equal to the log's."""
    srv = run.server()
    proj = run.projector(srv, save_every=200)
    drive(srv, make_plans("r0", 500, seed=13))
    truth = settle(srv, proj)
    g0 = status_of(proj)[1]["summary"]["generation"]
    t_live = truth.events[-1]["timestamp_us"] + 1
    load = Load(srv, make_plans("r1", 250, seed=14))
    # the summary answers at the head already: no answer may come from further back
    answers, last_pos, switched, rebuilt = [], truth.head, False, None
    deadline = time.monotonic() + 2 * WAIT
    try:
        load.send(30)
        r = ok(proj, {"type": "Rebuild", "projection": "summary", "request_id": "rb"})
        assert r["projection"] == "summary" and is_int(r["generation"]) and \
            r["generation"] > g0, (g0, r)
        assert r["position"] >= last_pos, "Rebuild answered at %d, below %d" % (r["position"],
                                                                               last_pos)
        last_pos = r["position"]
        rebuilt = r["generation"]
        i = 0
        while not (switched and load.done):
            assert time.monotonic() < deadline, "rebuild did not finish (switched %s, %d " \
                "commands left)" % (switched, len(load.pending) + len(load.ready))
            while load.receive(0):
                pass
            load.send(15)
            q = {"type": "ListOrders", "created_from_us": t_live, "limit": 1000}
            if i % 2:
                q.update(min_position=load.position, wait_ms=1000)
            r = proj.call(q)
            if r["ok"]:
                assert r["position"] >= last_pos, "position went back: %d after %d" % (
                    r["position"], last_pos)
                last_pos = r["position"]
                answers.append((r["position"], [norm_summary(o) for o in r["orders"]]))
            else:
                assert r["error"]["code"] == "lagging", "during a rebuild: %s" % short(r)
            st = status_of(proj)[1]["summary"]
            if st["generation"] == rebuilt and st["state"] == "live":
                switched = True
            if not load.pending and not load.ready:
                time.sleep(0.02)  # only the rebuild is left: poll interval
            elif load.pending and not load.ready:
                load.receive(50)
            i += 1
    finally:
        load.close()
    assert len(answers) > 10, len(answers)
    truth = settle(srv, proj)
    # each answer is the listing as of its position: no stale or mixed answer
    for pos, got in answers:
        want = truth.at(at_position=pos).list_orders({"created_from_us": t_live})
        assert_same(got, want, "ListOrders during the rebuild at position %d" % pos)
    _, st = status_of(proj)
    assert st["summary"]["generation"] == rebuilt and st["summary"]["state"] == "live", st
    check_models(proj, truth, label="after the rebuild")
    # every projection rebuilt, the projector killed (-9) while they build and
    # restarted; then once more, stopped by SIGTERM: the models end the same
    for sig in (signal.SIGKILL, signal.SIGTERM):
        gens = {n: p["generation"] for n, p in status_of(proj)[1].items()}
        for name in PROJECTIONS:
            r = ok(proj, {"type": "Rebuild", "projection": name})
            assert r["projection"] == name and r["generation"] > gens[name], (gens, r)
        drive(srv, make_plans("r%d" % sig, 40, seed=30 + sig))
        rc = proj.stop(sig)
        assert sig == signal.SIGKILL or rc == 0, rc
        proj.start()
        truth = settle(srv, proj)
        fresh_equal(run, srv, proj, truth,
                    "after Rebuild of all and %s" % signal.Signals(sig).name)
    assert proj.stop() == 0, "SIGTERM must exit 0"


def test_sigterm_resume(run):
    """SIGTERM saves every projection and exits 0; a restart (the engine down)
    resumes from the saved checkpoint and answers from it; with the engine
    back it goes on."""
    srv = run.server()
    proj = run.projector(srv, save_every=100000)  # no save by count: by time and SIGTERM
    drive(srv, make_plans("t", 250, seed=15))
    truth = settle(srv, proj)
    assert proj.stop() == 0, "SIGTERM must exit 0"
    assert srv.stop() == 0, "engine: SIGTERM must exit 0"
    proj.start()  # the engine is down: all it has is what it saved
    r, st = status_of(proj)
    assert sorted(st) == sorted(PROJECTIONS), st
    for name, p in st.items():
        assert p["position"] == truth.head, "%s resumed at %s, saved at %d" % (
            name, p["position"], truth.head)
    check_models(proj, truth, label="resumed, engine down")
    srv.start()
    plans = dict(make_plans("t2", 50, seed=16), **advance_plans(truth, "x", seed=17))
    drive(srv, plans)
    truth = settle(srv, proj)
    check_models(proj, truth, label="resumed, engine back")
    assert proj.stop(signal.SIGINT) == 0, "SIGINT must exit 0"


def test_bucket_boundary(run):
    """Commands trickle across the next minute boundary (the engine's clock
    cannot be set: this waits for it, at most a minute, sending all along),
    with the projector killed (-9) before it and restarted after it: minute
    buckets on both sides, stages that start in one and end in the next,
    equal to the log's and to a fresh projector's."""
    srv = run.server()
    proj = run.projector(srv, save_every=25)
    now = int(time.time() * 10**6)
    boundary = (now // MINUTE + 1) * MINUTE
    if boundary - now < 4 * 10**6:
        boundary += MINUTE  # some seconds of data before it
    rng = random.Random(40)
    status, tick = {}, 0
    killed = restarted = False
    while time.time() * 10**6 < boundary + 2.5 * 10**6:
        plans = {}
        for k in range(2):  # new orders
            oid = "b:%05d" % (tick * 2 + k)
            plans[oid] = [{"type": "CreateOrder", "order_id": oid, "request_id": oid + "#c",
                           "data": {"user_id": rng.choice(USERS),
                                    "restaurant_id": rng.choice(RESTAURANTS),
                                    "delivery_address": "x", "items": [
                                        {"sku": "s", "name": "n", "qty": rng.randint(1, 4),
                                         "price_cents": rng.randint(100, 900)}]}}]
            status[oid] = "Created"
        live = [o for o in sorted(status) if status[o] not in TERMINAL and o not in plans]
        for oid in rng.sample(live, min(5, len(live))):  # older ones move on one step
            st = status[oid]
            step = "CancelOrder" if st in ("Created", "Confirmed", "Preparing") and \
                rng.random() < 0.1 else NEXT[st]
            plans[oid] = [command(rng, oid, step, "%s#%d" % (oid, tick))]
            status[oid] = AFTER[step]
        drive(srv, plans)
        t = time.time() * 10**6
        if not killed and t > boundary - 1.5 * 10**6:
            proj.stop(signal.SIGKILL)
            killed = True
        if killed and not restarted and t > boundary + 0.5 * 10**6:
            proj.start()
            restarted = True
        tick += 1
        time.sleep(0.2)  # paces the trickle (not a synchronisation)
    assert killed and restarted, (killed, restarted)
    truth = settle(srv, proj)
    spec = make_spec(truth)
    minute = truth.analytics(spec["ranges"][0][1], spec["ranges"][0][2], "minute")
    busy = [b for b in minute if b["created"]]
    assert len(busy) >= 2, "the trickle did not cross a minute boundary: %s" % short(minute)
    crossing = [e for e in truth.events if e["type"] != "OrderCreated" and
                e["timestamp_us"] >= boundary and
                truth.orders[e["order_id"]]["created_at_us"] < boundary]
    assert crossing, "no order moved on across the boundary"
    fresh_equal(run, srv, proj, truth, "across a minute boundary")
    assert proj.stop() == 0, "SIGTERM must exit 0"


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_flood(run):
    """A client pipelines 1200 Analytics of 10,000 buckets (~1.3 MB each) and
    reads nothing (as e2e_server's ReadAll flood does to the engine): the
    projector's memory stays bounded (later ones may get overloaded), other
    clients are answered meanwhile, and every request gets its reply."""
    srv = run.server()
    proj = run.projector(srv)
    drive(srv, make_plans("fl", 60, seed=50))
    settle(srv, proj)
    flood = proj.dealer()
    flood.setsockopt(zmq.RCVHWM, 1)  # read nothing: ZeroMQ queues little on our side
    base = rss_mb(proj.proc.pid)
    sent = 0
    for i in range(1200):
        try:
            flood.send(msgpack.packb({"type": "Analytics", "request_id": "fl-%d" % i,
                                      "from_us": 0, "to_us": 10000 * MINUTE,
                                      "bucket": "minute"}), zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            break
    peak, slowest, idle, ticks = 0, 0.0, 0, -1
    others = [{"type": "GetOrderSummary", "order_id": "fl:00000"},
              {"type": "RestaurantBoard", "restaurant_id": 11}, {"type": "ListOrders", "limit": 5}]
    deadline = time.monotonic() + WAIT
    for i in range(100000):  # until it has worked through them (its CPU time stops moving):
        t0 = time.monotonic()  # other projections' clients get answers meanwhile
        ok(proj, others[i % 3])
        slowest = max(slowest, time.monotonic() - t0)
        peak = max(peak, rss_mb(proj.proc.pid))
        if peak >= base + 600 or time.monotonic() > deadline:
            break
        t = cpu_ticks(proj.proc.pid)
        idle = idle + 1 if t - ticks <= 1 else 0
        ticks = t
        if idle >= 4 and i >= 10:
            break
        time.sleep(0.1)  # sampling interval
    codes = collections.Counter()
    try:
        while sum(codes.values()) < sent:
            assert flood.poll(20000), "flood: %d replies of %d came" % (sum(codes.values()),
                                                                       sent)
            body = flood.recv_multipart()[-1]
            if len(body) < 65536:  # an error (decoding 1.3 MB ok replies is slow)
                r = unpack([body])
                codes["ok" if r["ok"] else r["error"]["code"]] += 1
            else:
                codes["ok"] += 1
    finally:
        flood.close()
    assert sent >= 1000 and set(codes) <= {"ok", "overloaded"}, (sent, codes)
    faults = []
    if peak >= base + 600:
        faults.append("RSS went from %d MB to at least %d MB" % (base, peak))
    if slowest >= 5:
        faults.append("another client's query waited %.1f s" % slowest)
    assert not faults, "one client pipelining %d large queries: %s (replies: %s)" % (
        sent, "; ".join(faults), dict(codes))
    assert proj.stop() == 0, "SIGTERM must exit 0"


def test_bad_settings(run):
    base = tempfile.mkdtemp(prefix="ordo-e2e-proj-")
    try:
        common = ["--bind", "tcp://127.0.0.1:%d" % free_port(), "--engine",
                  "tcp://127.0.0.1:%d" % free_port(), "--engine-pub",
                  "tcp://127.0.0.1:%d" % free_port(), "--data-dir", base + "/d"]
        env = dict(os.environ)
        for extra, env_extra in ((["--save-every", "0"], {}), (["--save-every", "x"], {}),
                                 (["--save-every", "-5"], {}), (["--save-every"], {}),
                                 (["--frobnicate"], {}), (["--frobnicate", "1"], {}),
                                 ([], {"ORDO_PROJECTOR_SAVE_EVERY": "0"})):
            p = subprocess.run([PROJECTOR] + common + extra, capture_output=True, text=True,
                               timeout=30, env=dict(env, **env_extra))
            assert p.returncode == 2 and p.stderr.strip(), (extra, env_extra, p.returncode,
                                                            p.stderr[-500:])
        p = subprocess.run([PROJECTOR, "--help"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "--save-every" in p.stdout and "--engine" in p.stdout, \
            (p.returncode, p.stdout[-500:], p.stderr[-500:])
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main():
    passed = failed = 0
    shared = Run()  # the scenario's engine and projector serve the next two tests
    groups = [(shared, [("scenario: every query, answers from the log", test_scenario),
                        ("min_position: read your own write, lagging", test_min_position),
                        ("malformed queries: code and field each, nothing changes",
                         test_malformed)])]
    for name, fn in [("kill -9 of the projector under load, and of the engine",
                      test_kill_projector),
                     ("SIGSTOP through a burst: PUB drops filled, no double count", test_drops),
                     ("late start catches up (settings from the environment)",
                      test_late_start),
                     ("paging with cursors while commands go on", test_paging_under_writes),
                     ("Rebuild under live load", test_rebuild),
                     ("SIGTERM exits 0, restart resumes from the checkpoint",
                      test_sigterm_resume),
                     ("minute buckets across a boundary, kill -9 on it", test_bucket_boundary),
                     ("a client that reads nothing: memory bounded", test_flood),
                     ("bad settings refused, --help", test_bad_settings)]:
        groups.append((None, [(name, fn)]))
    only = os.environ.get("E2E_PROJECTOR_ONLY")  # a debugging aid: tests whose name has it
    if only:  # (the first group's later tests need its scenario)
        groups = [(r, t) for r, t in groups if any(only in name for name, _ in t)]
        groups = [(r, t if r is None else [x for x in t if x[1] is test_scenario or only in x[0]])
                  for r, t in groups]
    for run, tests in groups:
        run = run or Run()
        try:
            for name, fn in tests:
                t0 = time.monotonic()
                try:
                    fn(run)
                    passed += 1
                    print("ok   %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
                except Exception:
                    failed += 1
                    print("FAIL %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
                    traceback.print_exc()
                    run.print_logs()
                    sys.stdout.flush()
        finally:
            run.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
