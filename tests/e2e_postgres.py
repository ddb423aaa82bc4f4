#!/usr/bin/python3
"""ordo-projector --postgres end to end, against a real PostgreSQL server
that the test starts itself (tests/pg_server.py) and the real ordo-server.

The truth is computed here, in Python, from the engine's log (ReadAll):
every order, every status interval, every hourly count. The tables must
equal it exactly:
  1. after a first catch-up (the schema made by migration 1);
  2. after kill -9 of the projector in the middle of a stream of batches,
     several times, under load;
  3. after PostgreSQL is stopped abruptly (pg_ctl -m immediate) under
     load, and started again;
  4. after kill -9 of the engine under load, and a restart.
Also: rows with tabs, newlines, backslashes, quotes and non-ASCII text
survive COPY and JSON; currency; "which orders were OutForDelivery at T"
is one range scan of the as-of index and answers what the truth says; a restart applies no
migration again; a second projector on the same schema never counts an
event twice; the metrics say where it is.

Usage: e2e_postgres.py ordo-server ordo-projector ordo-benchmark"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_util  # noqa: E402
from e2e_util import free_port, wait_for  # noqa: E402
from pg_server import PgServer  # noqa: E402

SERVER, PROJECTOR, BENCH = sys.argv[1:4]
CTX = zmq.Context.instance()
HOUR_US = 3600 * 1000000
STATUS = {"OrderCreated": "Created", "OrderConfirmed": "Confirmed",
          "OrderPreparing": "Preparing", "OrderReady": "Ready",
          "OrderOutForDelivery": "OutForDelivery", "OrderDelivered": "Delivered",
          "OrderCancelled": "Cancelled"}




class Engine:
    def __init__(self, top):
        self.dir = os.path.join(top, "engine")
        self.bind = "tcp://127.0.0.1:%d" % free_port()
        self.pub = "tcp://127.0.0.1:%d" % free_port()
        self.log_path = os.path.join(top, "engine.log")
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SERVER, "--data-dir", self.dir, "--bind", self.bind,
                                      "--pub", self.pub, "--shards", "2"],
                                     stdout=self.log, stderr=self.log)
        wait_for("the engine", self.ping)
        self.dealer = CTX.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(self.bind)
        return self

    def ping(self):
        assert self.proc.poll() is None, "engine exited with %s" % self.proc.returncode
        return e2e_util.ping(self.bind)

    def call(self, req):
        self.dealer.send(msgpack.packb(req))
        assert self.dealer.poll(20000), req
        return msgpack.unpackb(self.dealer.recv())

    def head(self):
        return self.call({"type": "Ping"})["head_position"]

    def events(self):
        out, pos = [], 1
        while True:
            r = self.call({"type": "ReadAll", "from_position": pos, "limit": 10000})
            assert r["ok"], r
            if not r["events"]:
                return out
            out.extend(r["events"])
            pos = out[-1]["position"] + 1

    def kill(self):
        self.dealer.close()
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self):
        self.dealer.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.log.close()
        assert rc == 0, rc


class Projector:
    def __init__(self, top, engine, pg, name="projector", schema=None, batch=500):
        self.top = top
        self.engine = engine
        self.pg = pg
        self.name = name
        self.schema = schema
        self.batch = batch
        self.metrics_port = free_port()
        self.port = free_port()
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.top, self.name + ".log"), "ab")
        args = [PROJECTOR, "--engine", self.engine.bind, "--engine-pub", self.engine.pub,
                "--bind", "tcp://127.0.0.1:%d" % self.port,
                "--data-dir", os.path.join(self.top, self.name),
                "--postgres", self.pg.conninfo, "--postgres-batch", str(self.batch),
                "--metrics", "127.0.0.1:%d" % self.metrics_port]
        if self.schema:
            args += ["--postgres-schema", self.schema]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        return self

    def metric(self, name):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                        timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith(name + " "):
                        return float(line.split()[1])
        except OSError:
            return None
        return None

    def ask(self, req):
        d = CTX.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.connect("tcp://127.0.0.1:%d" % self.port)
        try:
            d.send(msgpack.packb(req))
            assert d.poll(20000), req
            return msgpack.unpackb(d.recv())
        finally:
            d.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.log.close()
        assert rc == 0, "projector exited with %d" % rc


def checkpoint(pg, schema="ordo"):
    try:
        rows = pg.query('SELECT position FROM "%s".checkpoint' % schema)
    except Exception:  # not made yet, or PostgreSQL restarting
        return None
    return rows[0][0] if rows else None


def wait_caught_up(pg, engine, proj, schema="ordo"):
    head = engine.head()
    seen = {}

    def there():
        assert proj.proc.poll() is None, "projector exited with %s" % proj.proc.returncode
        seen["checkpoint"] = checkpoint(pg, schema)
        return seen["checkpoint"] == head

    try:
        wait_for("the tables at position %d" % head, there, timeout=180)
    except AssertionError:
        raise AssertionError("the tables did not reach the engine's head %d: checkpoint %r" %
                             (head, seen.get("checkpoint")))
    return head


# ---- the truth, from the log ------------------------------------------------

def fold(events):
    orders, history, analytics = {}, [], {}
    open_interval = {}
    for e in events:
        oid, t, at, pos = e["order_id"], e["type"], e["timestamp_us"], e["position"]
        d = e["data"]
        status = STATUS[t]
        if t == "OrderCreated":
            orders[oid] = {"user_id": d["user_id"], "restaurant_id": d["restaurant_id"],
                           "status": status, "items": d["items"],
                           "total_cents": d["total_cents"], "currency": d["currency"],
                           "delivery_address": d["delivery_address"], "created_at": at,
                           "updated_at": at, "version": e["version"],
                           "estimated_minutes": None, "courier_id": None,
                           "cancel_reason": None, "cancelled_from": None, "position": pos}
        else:
            o = orders[oid]
            o.update(status=status, version=e["version"], updated_at=at, position=pos)
            if "estimated_minutes" in d:
                o["estimated_minutes"] = d["estimated_minutes"]
            if "courier_id" in d:
                o["courier_id"] = d["courier_id"]
            if t == "OrderCancelled":
                o["cancel_reason"] = d["reason"]
                o["cancelled_from"] = d["previous_status"]
        if oid in open_interval:
            open_interval[oid][3] = at
            open_interval[oid][5] = pos
        row = [oid, status, at, None, pos, None]
        history.append(row)
        open_interval[oid] = row
        o = orders[oid]
        key = (at - at % HOUR_US, o["restaurant_id"], o["currency"])
        a = analytics.setdefault(key, {c: 0 for c in ANALYTICS_COLUMNS})
        a[{"OrderCreated": "created", "OrderConfirmed": "confirmed",
           "OrderPreparing": "preparing", "OrderReady": "ready",
           "OrderOutForDelivery": "out_for_delivery", "OrderDelivered": "delivered",
           "OrderCancelled": "cancelled"}[t]] += 1
        if t == "OrderCancelled":
            a["cancelled_from_" + d["previous_status"].lower()] += 1
        if t == "OrderDelivered":
            a["revenue_cents"] += o["total_cents"]
    return orders, sorted(tuple(r) for r in history), analytics


ANALYTICS_COLUMNS = ["created", "confirmed", "preparing", "ready", "out_for_delivery",
                     "delivered", "cancelled", "cancelled_from_created",
                     "cancelled_from_confirmed", "cancelled_from_preparing", "revenue_cents"]


def us(column):
    return "(extract(epoch FROM %s) * 1000000)::bigint" % column


def check_tables(pg, engine, schema="ordo"):
    events = engine.events()
    orders, history, analytics = fold(events)
    rows = pg.query(
        'SELECT id, user_id, restaurant_id, status, items, total_cents, currency,'
        ' delivery_address, %s, %s, version, estimated_minutes, courier_id, cancel_reason,'
        ' cancelled_from, position FROM "%s".orders' % (us("created_at"), us("updated_at"), schema))
    got = {}
    for r in rows:
        got[r[0]] = dict(zip(["user_id", "restaurant_id", "status", "items", "total_cents",
                              "currency", "delivery_address", "created_at", "updated_at",
                              "version", "estimated_minutes", "courier_id", "cancel_reason",
                              "cancelled_from", "position"], r[1:]))
    assert len(got) == len(orders), (len(got), len(orders))
    for oid, want in orders.items():
        assert got.get(oid) == want, (oid, got.get(oid), want)
    h = pg.query('SELECT order_id, status, %s, %s, from_position, to_position'
                 ' FROM "%s".order_status_history' % (us("from_at"), us("to_at"), schema))
    assert sorted(tuple(r) for r in h) == history, "status history differs"
    a = pg.query('SELECT %s, restaurant_id, currency, %s FROM "%s".analytics_hourly'
                 % (us("hour"), ", ".join(ANALYTICS_COLUMNS), schema))
    got_a = {(r[0], r[1], r[2]): dict(zip(ANALYTICS_COLUMNS, r[3:])) for r in a}
    assert got_a == analytics, "hourly analytics differ"
    board = pg.query('SELECT restaurant_id, status, orders FROM "%s".restaurant_board' % schema)
    want_board = {}
    for o in orders.values():
        if o["status"] not in ("Delivered", "Cancelled"):
            k = (o["restaurant_id"], o["status"])
            want_board[k] = want_board.get(k, 0) + 1
    assert {(r[0], r[1]): r[2] for r in board} == want_board, "restaurant board differs"
    return len(events), orders, history


# ---- the steps ----------------------------------------------------------------

def load(engine, orders, seed):
    """Whole order lives through the engine (ordo-benchmark's workload)."""
    return subprocess.Popen([BENCH, "--server", engine.bind, "--no-stub", "--orders",
                             str(orders), "--duration", "120", "--warmup", "0", "--seed",
                             str(seed), "--connections", "2", "--window", "64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tricky_orders(engine):
    texts = ["tab\there", "new\nline", "back\\slash \\N", "quote \" and ' both",
             "unicode: ünïcødé ✓ 注文", "carriage\rreturn", "json {\"x\": [1]}",
             "\"\x01edge\x1f\x7f ü\\"]  # escapes first and last, other control chars
    for i, t in enumerate(texts):
        oid = "tricky-%d" % i
        r = engine.call({"type": "CreateOrder", "order_id": oid, "request_id": oid,
                         "data": {"user_id": 900 + i, "restaurant_id": 77,
                                  "delivery_address": t, "currency": "EUR" if i % 2 else "USD",
                                  "items": [{"sku": t[:16], "name": t, "qty": i + 1,
                                             "price_cents": 100 * (i + 1)}]}})
        assert r["ok"], r
    r = engine.call({"type": "CancelOrder", "order_id": "tricky-2",
                     "data": {"reason": "changed\tmy\nmind \\ \"really\""}})
    assert r["ok"], r
    assert engine.call({"type": "ConfirmOrder", "order_id": "tricky-3"})["ok"]
    r = engine.call({"type": "StartPreparing", "order_id": "tricky-3",
                     "data": {"estimated_minutes": 25}})
    assert r["ok"], r
    # Two EUR orders of one restaurant delivered in the first batch: their
    # revenue summed in memory in one (hour, restaurant, currency) row.
    for oid in ("sum-a", "sum-b"):
        r = engine.call({"type": "CreateOrder", "order_id": oid, "request_id": oid,
                         "data": {"user_id": 950, "restaurant_id": 78, "delivery_address": "x",
                                  "currency": "EUR", "items": [{"sku": "s", "name": "n",
                                                                "qty": 1, "price_cents": 1234}]}})
        assert r["ok"], r
        steps(engine, oid, "ConfirmOrder", "StartPreparing", "MarkReady", "PickUp", "Deliver")


def steps(engine, oid, *types, reason=None):
    for t in types:
        req = {"type": t, "order_id": oid}
        if t == "CancelOrder":
            req["data"] = {"reason": reason}
        r = engine.call(req)
        assert r["ok"], (oid, t, r)


def tricky_later(engine):
    """The tricky orders again, many batches after their OrderCreated: older
    orders (ordo_batch_order, revenue and cancellations joined in SQL)."""
    steps(engine, "tricky-3", "CancelOrder", reason="\"\x01 tab\there \\N ü\n\\")
    steps(engine, "tricky-1", "ConfirmOrder", "CancelOrder", reason="\\")
    steps(engine, "tricky-5", "ConfirmOrder", "StartPreparing", "MarkReady", "PickUp", "Deliver")


def check_as_of(pg, orders, history):
    """OutForDelivery at an instant: one range scan of the as-of index, and
    the truth."""
    ofd = [h for h in history if h[1] == "OutForDelivery"]
    assert ofd, "the workload made no OutForDelivery interval"
    t = ofd[len(ofd) // 2][2] + 1
    want = sorted(h[0] for h in history
                  if h[1] == "OutForDelivery" and h[2] <= t and (h[3] is None or t < h[3]))
    at = "to_timestamp(%d / 1e6)" % t
    got = sorted(r[0] for r in pg.query(
        "SELECT order_id FROM ordo.orders_in_status_at('OutForDelivery', %s)" % at))
    assert got == want, (len(got), len(want))
    sql = ("SELECT order_id FROM ordo.order_status_history WHERE status = 'OutForDelivery'"
           " AND coalesce(to_at, 'infinity') > %s AND from_at <= %s" % (at, at))
    assert sorted(r[0] for r in pg.query(sql)) == want
    # Made once the writer caught up (not while it copied the log in).
    wait_for("the query indexes", lambda: pg.query(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'ordo' AND indexname IN"
        " ('orders_open_by_restaurant', 'orders_by_user', 'order_status_history_by_order',"
        "  'order_status_history_as_of')")[0][0] == 4)
    pg.query("ANALYZE ordo.order_status_history")
    plan = "\n".join(r[0] for r in pg.query("EXPLAIN " + sql))
    assert "order_status_history_as_of" in plan and "Seq Scan" not in plan, plan
    print("as-of: %d orders OutForDelivery at T; plan: %s" %
          (len(got), plan.splitlines()[0].split("  (")[0].strip()))


def test_rebuild(pg, engine, proj):
    import threading
    seen = {"reads": 0, "errors": [], "drops": [], "pairs": []}
    stop = threading.Event()
    holding, release = threading.Event(), threading.Event()

    def reader():
        c = pg.connect()
        last = (0, 0)
        while not stop.is_set():
            try:
                with c.cursor() as cur:
                    cur.execute("SELECT (SELECT position FROM ordo.checkpoint),"
                                " (SELECT count(*) FROM ordo.orders)")
                    now = cur.fetchone()
            except Exception as e:  # noqa: BLE001 (any failure is the finding)
                seen["errors"].append(repr(e))
                c.close()
                c = pg.connect()
                continue
            if now[0] < last[0] or now[1] < last[1]:
                seen["drops"].append((last, now))
            seen["pairs"].append(now)  # checked against the log below: never a mix
            last = now
            seen["reads"] += 1
        c.close()

    def holder():
        # A long reader, in a transaction on the tables: the swap waits for
        # it (and tries again) rather than change the tables under it.
        c = pg.connect()
        c.autocommit = False
        with c.cursor() as cur:
            cur.execute("SELECT count(*) FROM ordo.orders")
            holding.set()
            release.wait()
        c.rollback()
        c.close()

    t = threading.Thread(target=reader)
    t.start()
    h = threading.Thread(target=holder)
    h.start()
    try:
        gen0 = proj.metric("ordo_postgres_generation")
        b = load(engine, 3000, 7)
        start = checkpoint(pg) or 0
        wait_for("batches moving", lambda: (checkpoint(pg) or 0) > start + 500, timeout=120)
        r = proj.ask({"type": "Rebuild", "projection": "postgres"})
        assert r["ok"] and r["projection"] == "postgres" and r["generation"] == gen0 + 1, r
        st = proj.ask({"type": "ProjectionStatus"})
        names = [p["name"] for p in st["projections"]]
        assert names[-1] == "postgres", names
        log = os.path.join(proj.top, proj.name + ".log")

        def swap_waits():
            with open(log, errors="replace") as f:
                return "canceling statement due to lock timeout" in f.read()
        wait_for("the swap waiting for the long reader", swap_waits, timeout=300)
        assert proj.metric("ordo_postgres_generation") == gen0  # nothing changed under it
        release.set()
        wait_for("the rebuild swapped in",
                 lambda: proj.metric("ordo_postgres_generation") == gen0 + 1 and
                 proj.metric("ordo_postgres_rebuilding") == 0, timeout=300)
        assert b.wait(timeout=300) == 0
        wait_caught_up(pg, engine, proj)
    finally:
        stop.set()
        release.set()
        t.join()
        h.join()
    assert not seen["errors"], seen["errors"][:3]
    assert not seen["drops"], seen["drops"][:3]
    assert seen["reads"] > 10, seen["reads"]
    # Each read saw one set of tables: the orders created up to the
    # checkpoint it read, no more and no fewer.
    created = sorted(e["position"] for e in engine.events() if e["type"] == "OrderCreated")
    import bisect
    mixed = [(p, n) for p, n in seen["pairs"] if bisect.bisect_right(created, p) != n]
    assert not mixed, "reads that mixed the old tables and the new: %s" % mixed[:3]
    n, _, _ = check_tables(pg, engine)
    wait_for("the replaced tables dropped", lambda: sorted(r[0] for r in pg.query(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ordo%'")) == ["ordo"], timeout=60)
    assert pg.query("SELECT generation FROM ordo.checkpoint")[0][0] == gen0 + 1
    assert pg.query("SELECT count(*) FROM ordo.orders_in_status_at('Delivered', now())")[0][0] > 0
    print("6. a rebuild under load: the swap waited for a long reader, then generation %d "
          "swapped in; %d reads, each of one set of tables, none going back; the old tables "
          "dropped; %d events, tables exact" % (gen0 + 1, seen["reads"], n))


def main():
    top = tempfile.mkdtemp(prefix="ordo-e2e-pg-")
    ok = False
    engine = proj = None
    try:
        for bad in ("ordo_old", "x_rebuild", "pg_x", "Ordo", "1x", ""):
            p = subprocess.run([PROJECTOR, "--postgres", "host=x", "--postgres-schema", bad],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == 2 and "--postgres" in p.stderr, (bad, p.returncode, p.stderr)
        with PgServer() as pg:
            try:
                engine = Engine(top).start()
                tricky_orders(engine)
                b = load(engine, 1500, 1)
                assert b.wait(timeout=300) == 0
                tricky_later(engine)
                t0 = time.monotonic()
                proj = Projector(top, engine, pg).start()
                wait_caught_up(pg, engine, proj)
                n, orders, history = check_tables(pg, engine)
                print("1. first catch-up: %d events in %.1f s, tables exact (%d orders, %d "
                      "intervals)" % (n, time.monotonic() - t0, len(orders), len(history)))
                assert pg.query("SELECT count(*) FROM ordo.migrations")[0][0] == 2
                check_as_of(pg, orders, history)
                assert proj.metric("ordo_postgres_position") == n
                assert proj.metric("ordo_postgres_lag_events") == 0
                assert proj.metric("ordo_postgres_connected") == 1

                # 2. kill -9 of the projector while batches stream in.
                b = load(engine, 3000, 2)
                kills = 0
                for _ in range(4):
                    start = checkpoint(pg) or 0
                    wait_for("batches moving", lambda: (checkpoint(pg) or 0) > start + 500,
                             timeout=120)
                    proj.kill()
                    kills += 1
                    proj = Projector(top, engine, pg).start()
                assert b.wait(timeout=300) == 0
                wait_caught_up(pg, engine, proj)
                n, _, _ = check_tables(pg, engine)
                print("2. %d kill -9 of the projector under load: %d events, tables exact" %
                      (kills, n))

                # 3. PostgreSQL stopped abruptly under load, then started again.
                b = load(engine, 3000, 3)
                for _ in range(2):
                    start = checkpoint(pg) or 0
                    wait_for("batches moving", lambda: (checkpoint(pg) or 0) > start + 500,
                             timeout=120)
                    pg.stop("immediate")
                    wait_for("the projector noticing",
                             lambda: proj.metric("ordo_postgres_connected") == 0, timeout=60)
                    pg.start()
                assert b.wait(timeout=300) == 0
                wait_caught_up(pg, engine, proj)
                n, _, _ = check_tables(pg, engine)
                failures = proj.metric("ordo_postgres_failures_total")
                assert failures and failures >= 2, failures
                print("3. 2 crashes of PostgreSQL under load: %d events, tables exact, %d "
                      "failures retried" % (n, failures))

                # 4. kill -9 of the engine under load, and a restart.
                b = load(engine, 2000, 4)
                start = checkpoint(pg) or 0
                wait_for("batches moving", lambda: (checkpoint(pg) or 0) > start + 500,
                         timeout=120)
                engine.kill()
                b.kill()  # its requests in flight would wait for the dead engine
                b.wait(timeout=60)
                engine.start()
                b = load(engine, 1000, 5)
                assert b.wait(timeout=300) == 0
                wait_caught_up(pg, engine, proj)
                n, _, _ = check_tables(pg, engine)
                print("4. kill -9 of the engine under load: %d events, tables exact" % n)

                # 5. A second projector on the same schema: the checkpoint lets
                # one writer through per batch; nothing is counted twice.
                second = Projector(top, engine, pg, name="second").start()
                b = load(engine, 1500, 6)
                assert b.wait(timeout=300) == 0
                wait_caught_up(pg, engine, proj)
                wait_caught_up(pg, engine, second)
                n, _, _ = check_tables(pg, engine)
                second.stop()
                proj.stop()
                proj = Projector(top, engine, pg).start()  # a restart: no migration again
                wait_for("the restart connected", lambda: proj.metric("ordo_postgres_connected")
                         == 1, timeout=60)
                assert pg.query("SELECT count(*) FROM ordo.migrations")[0][0] == 2
                print("5. two projectors on one schema: %d events, tables exact; a restart "
                      "migrates nothing" % n)

                # 6. A rebuild under load: readers see the old tables or the
                # new ones, never fewer orders or an earlier checkpoint.
                test_rebuild(pg, engine, proj)
                proj.stop()
                proj = None
                engine.stop()
                engine = None
                ok = True
            except Exception:
                traceback.print_exc()
                sys.stderr.write("---- postgres.log (tail)\n%s\n" % pg.log_tail())
            finally:
                for p in (proj, engine):
                    if p is not None and p.proc and p.proc.poll() is None:
                        p.proc.kill()
                        p.proc.wait()
    finally:
        if not ok:
            for name in ("engine.log", "projector.log", "second.log"):
                path = os.path.join(top, name)
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        lines = f.read().decode("utf-8", "replace").splitlines()
                    sys.stderr.write("---- %s (last 40 lines)\n%s\n" %
                                     (name, "\n".join(lines[-40:])))
        shutil.rmtree(top, ignore_errors=True)
    print("e2e_postgres: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
