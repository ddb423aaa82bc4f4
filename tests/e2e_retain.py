#!/usr/bin/python3
"""End-to-end tests of finished orders leaving the engine's memory
(--retain-finished, DESIGN.md): every request of PROTOCOL.md on an order
that left memory (GetOrder now and at past versions and times, GetHistory
and its paging, a duplicate command getting the original reply,
already_exists, invalid_transition, conflict) answers exactly as it does on
an order in memory, while eviction runs under pipelined load, and after
SIGTERM and kill -9 restarts. The reference answers come from a second
engine started on a copy of the same log alone (no snapshot, no order
index) that keeps every order in memory. Waits are bounded polls.
With the path of ordo-benchmark as well, a short form of its day
benchmark checks that the engine's memory stays flat over three simulated
days.
Usage: e2e_retain.py PATH-TO-ordo-server [PATH-TO-ordo-benchmark]"""
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback

import json

import msgpack

import e2e_server as e2e
from e2e_server import Server, cmd, create

STEPS = ["ConfirmOrder", "StartPreparing", "MarkReady", "PickUp", "Deliver"]


def scenario():
    """Orders in every final state and in progress: (order_id, commands)."""
    orders = []
    for i in range(48):
        oid = "r-%d" % i
        kind = i % 8
        reqs = [create(oid, rid="%s-v1" % oid)]
        if kind == 0 or kind == 1:  # delivered
            n = 5
        elif kind in (2, 3, 4):  # cancelled from Created, Confirmed, Preparing
            n = kind - 2
        else:  # in progress: Created, Confirmed .. OutForDelivery
            n = {5: 0, 6: 2, 7: 4}[kind]
        for v, step in enumerate(STEPS[:n], start=2):
            data = {"courier_id": 900 + i} if step == "PickUp" else None
            reqs.append(cmd(step, oid, rid="%s-v%d" % (oid, v), data=data))
        if kind in (2, 3, 4):
            reqs.append(cmd("CancelOrder", oid, rid="%s-cancel" % oid,
                            data={"reason": "test %d" % i}))
        orders.append((oid, reqs, kind in (0, 1, 2, 3, 4)))
    return orders


def questions(srv, orders):
    """Every request whose answer must not depend on where the order is:
    a list of requests with unique request ids. None of them changes
    anything (duplicates, refusals, reads)."""
    qs = []

    def q(req):
        req = dict(req)
        req["request_id"] = "q-%d" % len(qs)
        qs.append(req)

    for oid, reqs, finished in orders:
        order = srv.call({"type": "GetOrder", "order_id": oid})["order"]
        hist = srv.call({"type": "GetHistory", "order_id": oid})["events"]
        q({"type": "GetOrder", "order_id": oid})
        q({"type": "GetHistory", "order_id": oid})
        q({"type": "GetHistory", "order_id": oid, "from_version": 2, "limit": 2})
        q({"type": "GetHistory", "order_id": oid, "from_version": 9})
        for v in range(1, order["version"] + 1):
            q({"type": "GetOrder", "order_id": oid, "as_of_version": v})
        for ev in hist:
            q({"type": "GetOrder", "order_id": oid, "as_of_time_us": ev["timestamp_us"]})
        q({"type": "GetOrder", "order_id": oid, "as_of_time_us": hist[0]["timestamp_us"] - 1})
        for r in reqs:  # each command again with its request id: the original reply
            qs.append(dict(r))
        q(create(oid))  # already_exists
        if finished:  # refusals only: on a finished order nothing is allowed
            for step in STEPS + ["CancelOrder"]:
                data = {"reason": "late"} if step == "CancelOrder" else None
                q(cmd(step, oid, data=data))
                q(cmd(step, oid, data=data, expected_version=order["version"] - 1))
    return qs


def ask(srv, qs, load=0):
    """The replies to qs by request id, sent pipelined on one DEALER; with
    `load`, as many new orders run their whole life in between."""
    d = srv.dealer()
    sent = 0
    for i, req in enumerate(qs):
        d.send(msgpack.packb(req))
        sent += 1
        if load and i % max(1, len(qs) // load) == 0:
            oid = "load-%d-%d" % (os.getpid(), i)
            for r in [create(oid)] + [cmd(s, oid) for s in STEPS]:
                d.send(msgpack.packb(r))
                sent += 1
    got = {}
    for _ in range(sent):
        assert d.poll(10000), "replies stopped"
        r = msgpack.unpackb(d.recv_multipart()[-1], raw=False)
        rid = r.get("request_id")
        if isinstance(rid, str) and not rid.startswith("load-"):
            got[rid] = r
    d.close()
    missing = [req["request_id"] for req in qs if req["request_id"] not in got]
    assert not missing, "no reply to %s" % missing[:5]
    return got


def stats(srv):
    return srv.call({"type": "Stats"})["stats"]


def wait_evicted(srv, in_memory, what):
    """Bounded poll until no more than `in_memory` orders stay in memory."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = stats(srv)
        if st["orders_in_memory"] <= in_memory:
            return st
        time.sleep(0.05)
    raise AssertionError("%s: %d orders still in memory, expected %d" %
                         (what, st["orders_in_memory"], in_memory))


def same(got, want, what):
    for rid, r in want.items():
        assert got[rid] == r, "%s: %s answered\n  %r\nexpected\n  %r" % (what, rid, got[rid], r)


def test_answers_after_eviction():
    srv = Server(args=["--retain-finished", "0", "--snapshot-every", "200"]).start()
    ref = None
    try:
        orders = scenario()
        for oid, reqs, _ in orders:
            for r in reqs:
                assert srv.call(r)["ok"], r
        unfinished = sum(1 for o in orders if not o[2])
        qs = questions(srv, orders)  # asked while the orders may be in memory still
        st = wait_evicted(srv, unfinished, "after the scenario")
        assert st["orders"] == len(orders), st
        assert st["orders_evicted"] >= len(orders) - unfinished, st
        assert st["orders_indexed"] == len(orders) - unfinished, st
        answers = {"evicted": ask(srv, qs)}
        st = stats(srv)
        assert st["orders_loaded"] >= len(orders) - unfinished, st
        # while eviction runs beside pipelined load (new orders finishing)
        answers["under load"] = ask(srv, qs, load=200)
        wait_evicted(srv, unfinished, "after the load")
        assert srv.stop(signal.SIGTERM) == 0
        srv.start()
        answers["after SIGTERM"] = ask(srv, qs)
        # kill -9 in the middle of load, then at once, then once evicted
        d = srv.dealer()
        for i in range(300):
            oid = "crash-%d" % i
            for r in [create(oid)] + [cmd(s, oid) for s in STEPS]:
                d.send(msgpack.packb(r))
        for _ in range(700):
            assert d.poll(10000), "replies stopped"
            d.recv_multipart()
        d.close()
        srv.stop(signal.SIGKILL)
        srv.start()
        answers["right after kill -9"] = ask(srv, qs)
        st = wait_evicted(srv, unfinished + 300, "after kill -9")  # crash orders may be unfinished
        answers["after kill -9, evicted"] = ask(srv, qs)
        known = stats(srv)["orders"]
        assert srv.stop() == 0

        # The reference: the same log alone, every order in memory.
        ref = Server(args=["--retain-finished", "100000000"])
        os.makedirs(os.path.join(ref.data, "d"))
        shutil.copytree(os.path.join(srv.data, "d", "wal"), os.path.join(ref.data, "d", "wal"))
        ref.start()
        want = ask(ref, qs)
        rst = stats(ref)
        assert rst["orders"] == known, (rst["orders"], known)
        assert rst["orders_in_memory"] == rst["orders"] and rst["orders_evicted"] == 0, rst
        for what, got in answers.items():
            same(got, want, what)
        kinds = {r["error"]["code"] if not r["ok"] else "ok" for r in want.values()}
        for k in ("ok", "not_found", "already_exists", "invalid_transition", "conflict"):
            assert k in kinds, "the questions never produced %s" % k
        assert any(r.get("duplicate") for r in want.values()), "no duplicate asked"
        assert ref.stop() == 0
    finally:
        srv.kill_and_cleanup()
        if ref:
            ref.kill_and_cleanup()


def test_bad_settings():
    for bad in (["--retain-finished", "-1"], ["--retain-finished", "soon"],
                ["--retain-finished", "999999999999"]):
        p = subprocess.run([e2e.SERVER, "--data-dir", "/nonexistent/never"] + bad,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "--retain-finished" in p.stderr, (bad, p.stderr)
    env = dict(os.environ, ORDO_RETAIN_FINISHED="x")
    p = subprocess.run([e2e.SERVER], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 2 and "ORDO_RETAIN_FINISHED" in p.stderr, p.stderr
    out = subprocess.run([e2e.SERVER, "--help"], capture_output=True, text=True, timeout=30)
    assert "--retain-finished" in out.stdout


def test_days_flat():
    """ordo-benchmark --days, short: three days of 600,000 events through
    one engine with --retain-finished 0. Memory must not follow history:
    the orders known grow by a day's worth each day, the ones in memory do
    not, and the engine's heap after day 3 is within 10% (plus 16 MiB for
    its filters and the allocator, which weigh more at this small scale)
    of after day 1. Under the sanitizers (ORDO_SANITIZED set) the heap is
    the sanitizer's, and only the counts are checked."""
    if len(sys.argv) < 3:
        return "no ordo-benchmark given"
    p = subprocess.run([sys.argv[2], "--spawn", e2e.SERVER, "--fsync", "never",
                        "--server-arg", "--retain-finished", "--server-arg", "0",
                        "--days", "3", "--day-events", "600000", "--seed", "5", "--json"],
                       capture_output=True, text=True, timeout=540)
    assert p.returncode == 0, p.stderr[-3000:]
    days = json.loads(p.stdout)["days"]
    assert len(days) == 3, days
    for d in days:
        print("  day %(day)d: %(events)d events, %(events_per_s)d/s, anon %(server_anon_mb)d MiB, "
              "orders %(orders)d, in memory %(orders_in_memory)d" % d)
    per_day = days[0]["orders"]
    assert per_day >= 90000, days[0]
    assert days[2]["orders"] == 3 * per_day, days
    # in memory at a day's end: at most the orders in flight of its last part
    assert all(d["orders_in_memory"] <= 60000 for d in days), days
    a1, a3 = days[0]["server_anon_mb"], days[2]["server_anon_mb"]
    assert a1 > 0 and a3 > 0, days
    if not os.environ.get("ORDO_SANITIZED"):
        assert a3 <= a1 * 1.10 + 16, "heap after day 3: %d MiB, after day 1: %d MiB" % (a3, a1)


def main():
    failed = 0
    for name, fn in [("every request answers the same after eviction, load, SIGTERM, kill -9",
                      test_answers_after_eviction),
                     ("bad --retain-finished refused, --help names it", test_bad_settings),
                     ("three short days: memory stays flat", test_days_flat)]:
        try:
            skipped = fn()
            if skipped:
                print("skip %s: %s" % (name, skipped))
                continue
            print("ok   %s" % name)
        except Exception:
            failed += 1
            print("FAIL %s" % name)
            traceback.print_exc()
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
