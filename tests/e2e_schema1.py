#!/usr/bin/python3
"""The engine on a data folder written by version 0.2 (tests/fixtures/schema1,
made by tests/fixtures/make_schema1.py): it starts on it, from its snapshot
and again from the log alone, and every read path answers what that engine
answered. Every order of expected.json (some in memory, some in the order
index) reads back with the same fields; ReadAll returns every position once.
PROTOCOL.md 1.1: the stored OrderCreated events (schema 1) read as schema
2 with currency "USD" on every read path (history, ReadAll, duplicate
replies, past states, the orders), they have no hash, and the first event
written after the upgrade chains from 32 zero bytes. ordo-projector,
following the upgraded engine from position 1, builds read models whose
summaries match every order of expected.json.

Usage: e2e_schema1.py PATH-TO-ordo-server PATH-TO-ordo-projector"""
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

import e2e_server  # noqa: F401  (reads the server's path from argv)
from e2e_server import Server, chain_hash, verify_chain

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "schema1")
PROJECTOR = sys.argv[2]


def check_projector(srv, expected, data):
    """The projector reads the 0.2 log through the upgraded engine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.path.join(data, "projector.log"), "ab")
    proc = subprocess.Popen([PROJECTOR, "--engine", srv.bind, "--engine-pub", srv.pub,
                             "--bind", "tcp://127.0.0.1:%d" % port,
                             "--data-dir", os.path.join(data, "proj")], stdout=log, stderr=log)
    d = zmq.Context.instance().socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.connect("tcp://127.0.0.1:%d" % port)

    def ask(req):
        d.send(msgpack.packb(req))
        assert d.poll(10000), req
        return msgpack.unpackb(d.recv())

    try:
        head = srv.call({"type": "Ping"})["head_position"]
        deadline = time.monotonic() + 60
        while True:  # bounded poll until every projection has the whole log
            assert proc.poll() is None, "projector exited with %s" % proc.returncode
            st = ask({"type": "ProjectionStatus"})
            if st["ok"] and all(p["position"] == head for p in st["projections"]):
                break
            assert time.monotonic() < deadline, st
            time.sleep(0.05)
        for want in expected["orders"]:
            r = ask({"type": "GetOrderSummary", "order_id": want["order_id"]})
            assert r["ok"], r
            got = r["order"]
            for k in ("status", "version", "user_id", "restaurant_id", "total_cents"):
                assert got[k] == want[k], (want["order_id"], k, got[k], want[k])
    finally:
        d.close()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log.close()
    assert rc == 0, "projector exited with %d" % rc


def check(srv, expected):
    for want in expected["orders"]:
        r = srv.call({"type": "GetOrder", "order_id": want["order_id"]})
        assert r["ok"], r
        got = r["order"]
        for k, v in want.items():
            assert got.get(k) == v, (want["order_id"], k, got.get(k), v)
        h = srv.call({"type": "GetHistory", "order_id": want["order_id"]})
        assert h["ok"] and len(h["events"]) == want["version"], h
        assert [e["version"] for e in h["events"]] == list(range(1, want["version"] + 1))
        # Stored as schema 1; read as schema 2 in dollars (PROTOCOL.md 1.1).
        created = h["events"][0]
        assert created["schema"] == 2 and created["data"]["currency"] == "USD", created
        assert all(e["schema"] == 1 for e in h["events"][1:]), h
        assert got["currency"] == "USD", got
        past = srv.call({"type": "GetOrder", "order_id": want["order_id"], "as_of_version": 1})
        assert past["order"]["currency"] == "USD" and past["order"]["version"] == 1, past
        # A retried command gets the original reply, marked duplicate.
        d = srv.call({"type": "CreateOrder", "order_id": want["order_id"],
                      "request_id": want["order_id"] + "-create",
                      "data": {"user_id": 1, "restaurant_id": 1, "delivery_address": "x",
                               "items": [{"sku": "s", "name": "n", "qty": 1,
                                          "price_cents": 1}]}})
        assert d["ok"] and d.get("duplicate") is True and d["version"] == 1, d
        assert d["event"]["schema"] == 2 and d["event"]["data"]["currency"] == "USD", d
    seen, pos = 0, 1
    while True:
        r = srv.call({"type": "ReadAll", "from_position": pos, "limit": 500})
        assert r["ok"], r
        for e in r["events"]:
            assert e["position"] == pos, (e["position"], pos)
            if e["type"] == "OrderCreated":
                assert e["schema"] == 2 and e["data"]["currency"] == "USD", e
            pos += 1
            seen += 1
        if not r["events"]:
            break
    assert seen == expected["head_position"], (seen, expected["head_position"])


def check_chain(srv, expected):
    """Events written before 1.1 have no hash, their orders no head_hash;
    the first event written now chains from 32 zero bytes (PROTOCOL.md 1.1)
    and the next from it, across a restart."""
    created = [o for o in expected["orders"] if o["status"] == "Created"]
    oid = created[0]["order_id"]
    h = srv.call({"type": "GetHistory", "order_id": oid})["events"]
    assert all("hash" not in e for e in h), h
    assert srv.call({"type": "GetOrder", "order_id": oid})["order"]["head_hash"] is None
    r = srv.call({"type": "ConfirmOrder", "order_id": oid, "request_id": oid + "-now"})
    assert r["ok"], r
    assert r["event"]["hash"] == chain_hash(bytes(32), r["event"]), r
    o = srv.call({"type": "GetOrder", "order_id": oid})["order"]
    assert o["head_hash"] == r["event"]["hash"], o
    return oid


def check_chain_after_restart(srv, oid):
    o = srv.call({"type": "GetOrder", "order_id": oid})["order"]
    r = srv.call({"type": "StartPreparing", "order_id": oid, "request_id": oid + "-next"})
    assert r["ok"], r
    assert r["event"]["hash"] == chain_hash(bytes.fromhex(o["head_hash"]), r["event"])
    h = srv.call({"type": "GetHistory", "order_id": oid})["events"]
    assert verify_chain(h, r["event"]["hash"]) is None


def main():
    with open(os.path.join(FIXTURE, "expected.json")) as f:
        expected = json.load(f)
    top = tempfile.mkdtemp(prefix="ordo-schema1-")
    failed = 0
    try:
        for name, drop_snapshot in (("from its snapshot", False), ("from the log alone", True)):
            data = os.path.join(top, name.replace(" ", "-"))
            os.makedirs(data)
            shutil.copytree(FIXTURE, os.path.join(data, "d"))
            if drop_snapshot:
                shutil.rmtree(os.path.join(data, "d", "snapshots"))
            srv = Server(data=data, args=["--retain-finished", "0"])
            try:
                srv.start()
                check(srv, expected)
                check_projector(srv, expected, data)
                oid = check_chain(srv, expected)
                assert srv.stop() == 0
                srv.start()  # the head hash survives, in the snapshot or the log
                check_chain_after_restart(srv, oid)
                assert srv.stop() == 0
                print("ok   version 0.2's data folder, %s" % name)
            except Exception:
                failed += 1
                print("FAIL version 0.2's data folder, %s" % name)
                traceback.print_exc()
            finally:
                srv.kill_and_cleanup()
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
