#!/usr/bin/python3
"""Failover of a partition between two real ordo-server processes through a
real 3-node NATS JetStream cluster (tests/nats_cluster.py), on loopback:
an owner (it took the partition's lease) and a standby (it follows the
stream). Every check reads the stream with the test's own client and the
logs' files with the test's own reading of their format.
  1. kill -9 of the owner under pipelined load: the standby takes over;
     every acknowledged event is on the new owner at the same position
     with the same bytes; positions are gap-free; new commands go on from
     the next position. The time from the kill to the first command
     acknowledged by the new owner is printed.
  2. No split brain: the owner frozen (SIGSTOP) past its lease, with
     commands waiting for it; the standby takes over; the old owner,
     continued, acknowledges none of them and steps down (exit 3).
  3. A planned stop (SIGTERM) releases the lease: the standby takes over
     without waiting for it to lapse.
  4. A deposed owner's log that JetStream never saw, written over by the
     new owner while it stands by, is set aside then.
  5. A standby's finished orders leave memory for its order index; the
     engine it becomes answers for them from there.
Waits are bounded polls.
Usage: e2e_failover.py ordo-server [ordo-admin]"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_server as es  # noqa: E402  (reads sys.argv[1]: the server)
from e2e_replication import local_frames, read_all, stream_frames  # noqa: E402
from e2e_util import run_tests, wait_for  # noqa: E402
from nats_cluster import JetStream, NatsCluster  # noqa: E402

STREAM = "ORDO_P0"
# ordo-admin: the second argument, or beside the server in the build.
ADMIN = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(es.SERVER))), "admin", "ordo-admin")


def args(nc, lease_ms=2000):
    return ["--fsync", "replicated", "--nats", nc.urls, "--shards", "2",
            "--lease-ms", str(lease_ms)]


def log_of(server):
    with open(os.path.join(server.data, "server.log"), "rb") as f:
        return f.read().decode("utf-8", "replace")


def run_engine(s):
    """Starts the engine process of es.Server `s` (again) on its folder,
    without waiting for it to answer: a standby binds nothing until it
    takes over."""
    s.log = open(os.path.join(s.data, "server.log"), "ab")
    s.proc = subprocess.Popen([es.SERVER, "--data-dir", os.path.join(s.data, "d"), "--bind",
                               s.bind, "--pub", s.pub] + s.args, stdout=s.log, stderr=s.log)
    return s


def start_standby(nc, lease_ms=2000, engine_args=None):
    """Another engine of the partition: it finds the lease held and stands
    by, following the stream."""
    s = run_engine(es.Server(args=engine_args or args(nc, lease_ms)))
    wait_for("the standby follows the stream", lambda: "following stream" in log_of(s), 30)
    return s


def first_ack(server, oid, timeout=30):
    """Sends the same CreateOrder (one request_id) until it is acknowledged
    (a retry of one request: at most one event); (position, when)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded poll
        sock = server.dealer()
        try:
            sock.send(msgpack.packb(es.create(oid, rid="rid-" + oid)))
            if sock.poll(500):
                r = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
                if r.get("ok"):
                    return r["position"], time.monotonic()
        finally:
            sock.close()
    raise AssertionError("no acknowledgement from %s in %d s" % (server.bind, timeout))


def test_kill9_under_load():
    with NatsCluster(3) as nc:
        a = es.Server(args=args(nc))
        b = None
        try:
            a.start()
            b = start_standby(nc)
            # A client that keeps sending while it reads (its own thread and
            # socket), so that the kill lands with commands in flight.
            acked, stop = {}, threading.Event()
            sent = [0]

            def client():
                sock = a.dealer()
                try:
                    while not stop.is_set() and sent[0] < 200000:
                        for _ in range(200):
                            try:  # never blocks: once the owner is dead its queue fills
                                sock.send(msgpack.packb(es.create("k-%d" % sent[0])),
                                          zmq.NOBLOCK)
                            except zmq.Again:
                                break
                            sent[0] += 1
                        while sock.poll(1):
                            r = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
                            if r.get("ok"):
                                acked[r["order_id"]] = r["position"]
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline and sock.poll(200):  # late replies
                        r = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
                        if r.get("ok"):
                            acked[r["order_id"]] = r["position"]
                finally:
                    sock.close()

            t = threading.Thread(target=client, daemon=True)
            t.start()
            wait_for("3000 acknowledged", lambda: len(acked) >= 3000, timeout=60)
            # On a busy machine the owner may miss its renewals and step down
            # before the kill: the checks below hold either way.
            was_owner = a.proc.poll() is None and "stepping down" not in log_of(a)
            a.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            a.proc.wait(30)
            pos, at = first_ack(b, "after-kill")
            failover = at - killed
            stop.set()
            t.join(60)
            assert not t.is_alive(), "the client thread is stuck"
            n = sent[0]
            a.stop()
            b.sock = b.dealer()
            events = read_all(b)
            positions = [e["position"] for e in events]
            assert positions == list(range(1, len(positions) + 1)), "positions not gap-free"
            assert pos == positions[-1], (pos, positions[-1])
            got = {e["order_id"]: e["position"] for e in events}
            lost = [o for o, p in acked.items() if got.get(o) != p]
            assert not lost, "acknowledged but not on the new owner: %s" % lost[:5]
            # The same bytes: the new owner's log is the stream; the old
            # owner's frames that the stream has are the same frames.
            js = JetStream(nc.client_port(0))
            remote = stream_frames(js)
            mine = local_frames(b.data)
            assert mine[:len(remote)] == remote
            old = local_frames(a.data)
            k = sum(1 for f in old if f in remote)
            assert old[:k] == remote[:k] and k >= 1
            assert max(acked.values()) <= remote[k - 1][0] + remote[k - 1][1] - 1
            # Every frame carries the lease it was written under; the new
            # owner's are under a later one.
            leases = []
            for seq in range(1, js.stream_info(STREAM)["state"]["last_seq"] + 1):
                h, _ = js.get(STREAM, seq)
                leases.append(int(h["Ordo-Lease"]))
            assert leases == sorted(leases) and leases[0] < leases[-1], leases[:3] + leases[-3:]
            js.close()
            r = b.call(es.create("after-2"))
            assert r["ok"] and r["position"] == pos + 1, r
            assert b.stop() == 0
            print("  kill -9 with %d of %d sent acknowledged: the standby took over; "
                  "first command acknowledged %.2f s after the kill%s; %d events, gap-free"
                  % (len(acked), n, failover,
                     "" if was_owner else " (the owner had stepped down before it)",
                     len(events)))
        finally:
            a.kill_and_cleanup()
            if b:
                b.kill_and_cleanup()


def test_no_split_brain():
    with NatsCluster(3) as nc:
        a = es.Server(args=args(nc))
        b = None
        try:
            a.start()
            b = start_standby(nc)
            for i in range(100):
                assert a.call(es.create("s-%d" % i))["ok"]
            a.proc.send_signal(signal.SIGSTOP)
            # Commands for the frozen owner wait in its socket.
            sock = a.dealer()
            for i in range(200):
                sock.send(msgpack.packb(es.create("frozen-%d" % i)))
            wait_for("the standby took over", lambda: "took over" in log_of(b), 30)
            pos, _ = first_ack(b, "new-owner")
            assert pos == 101, pos
            a.proc.send_signal(signal.SIGCONT)
            replies = []
            deadline = time.monotonic() + 30
            while a.proc.poll() is None and time.monotonic() < deadline:  # bounded poll
                if sock.poll(200):
                    replies.append(msgpack.unpackb(sock.recv_multipart()[-1], raw=False))
            while sock.poll(0):
                replies.append(msgpack.unpackb(sock.recv_multipart()[-1], raw=False))
            sock.close()
            assert a.proc.poll() == 3, "the old owner did not step down (%s)" % a.proc.poll()
            oks = [r for r in replies if r.get("ok")]
            assert not oks, "the old owner acknowledged %d commands: %s" % (len(oks), oks[:2])
            assert all(r["error"]["code"] == "unavailable" for r in replies), replies[:3]
            # Fenced either way: its keeper found the lease taken, or JetStream
            # refused its frame first (the stream moved on under a new claim).
            assert "lease is lost" in log_of(a) or "the stream moved on" in log_of(a), \
                log_of(a)[-2000:]
            # None of them is anywhere: not on the new owner, not in the stream.
            b.sock = b.dealer()
            events = read_all(b)
            assert not any(e["order_id"].startswith("frozen-") for e in events)
            assert [e["position"] for e in events] == list(range(1, 102))
            js = JetStream(nc.client_port(1))
            remote = stream_frames(js)
            assert remote[-1][0] + remote[-1][1] - 1 == 101
            js.close()
            # Did the old owner write a frame JetStream refused? (Its keeper
            # may have seen the lease gone before its writer tried.)
            refused = [f for f in local_frames(a.data) if f not in remote]
            assert len(refused) <= 1, "more than one frame past the stream: %d" % len(refused)
            # The deposed owner's log ends in a frame JetStream refused:
            # started again on its own folder, it finds that at start (its
            # frame holds more positions than the new owner wrote since, so
            # no stream frame ends where its log does), sets the log aside
            # before it follows, and carries on from the stream.
            a.log.close()
            mark = len(log_of(a))
            run_engine(a)
            wait_for("the old owner stands by", lambda: "following stream" in log_of(a)[mark:], 30)
            assert ("moved aside to" in log_of(a)[mark:]) == bool(refused), log_of(a)[-3000:]
            assert b.stop() == 0  # a planned stop: the lease is free at once
            wait_for("the old owner took over", lambda: "took over" in log_of(a)[mark:], 60)
            assert log_of(a)[mark:].count("moved aside to") == len(refused), log_of(a)[-3000:]
            a.sock = a.dealer()
            again = read_all(a)
            assert [(e["position"], e["order_id"]) for e in again] == \
                [(e["position"], e["order_id"]) for e in events]
            aside = [d for d in os.listdir(os.path.join(a.data, "d")) if d.startswith("diverged-")]
            assert len(aside) == len(refused)
            if refused:
                assert os.path.isdir(os.path.join(a.data, "d", aside[0], "wal"))
            r = a.call(es.create("after-rejoin"))
            assert r["ok"] and r["position"] == 102, r
            assert a.stop() == 0
            print("  frozen owner: the standby took over at 101; the old owner, continued, "
                  "answered %d commands all unavailable and stepped down; started again on its "
                  "folder, it %s and took over at 101"
                  % (len(replies), "set its log aside (a frame JetStream refused)" if refused
                     else "had nothing to set aside"))
        finally:
            if a.proc and a.proc.poll() is None:
                a.proc.send_signal(signal.SIGCONT)
            a.kill_and_cleanup()
            if b:
                b.kill_and_cleanup()


def test_planned_stop():
    with NatsCluster(3) as nc:
        a = es.Server(args=args(nc, lease_ms=30000))  # a lease that would lapse only in 30 s
        b = None
        try:
            a.start()
            b = start_standby(nc, lease_ms=30000)
            for i in range(20):
                assert a.call(es.create("p-%d" % i))["ok"]
            stopped = time.monotonic()
            assert a.stop() == 0
            pos, at = first_ack(b, "after-stop", timeout=20)
            assert pos == 21, pos
            assert at - stopped < 20  # far less than the 30 s lease: it was released
            # The old owner, started again on its folder, follows the stream
            # from its log's last frame, not from the stream's start.
            mark = len(log_of(a))
            run_engine(a)
            line = wait_for("the old owner stands by", lambda: re.search(
                r"following stream ORDO_P0 from this log's position (\d+) \(message (\d+)\)",
                log_of(a)[mark:]), 30)
            assert int(line.group(1)) == 20 and int(line.group(2)) > 1, line.group(0)
            b.sock = b.dealer()
            assert b.call(es.create("while-following"))["ok"]
            assert b.stop() == 0
            pos, _ = first_ack(a, "back-again", timeout=20)
            assert pos == 23, pos  # after-stop 21, while-following 22
            assert a.stop() == 0
            print("  SIGTERM released the lease: the standby acknowledged a command %.2f s "
                  "later (lease 30 s); the old owner, started again, followed from message %s "
                  "of the stream and took back over at 23" % (at - stopped, line.group(2)))
        finally:
            a.kill_and_cleanup()
            if b:
                b.kill_and_cleanup()


def test_unacknowledged_tail_written_over():
    """An owner's last frame that JetStream never saw (all NATS nodes down),
    then killed: its folder, started again beside a new owner, agrees with
    the stream where both have frames and follows; when the new owner
    writes other frames at those positions, the standby sees it as they
    come (not only when it takes over, holding the lease) and sets its log
    aside."""
    with NatsCluster(3) as nc:
        a = es.Server(args=args(nc))
        b = None
        try:
            a.start()
            for i in range(100):
                assert a.call(es.create("u-%d" % i))["ok"]
            for k in range(3):
                nc.stop(k, kill=True)
            sock = a.dealer()
            sock.send(msgpack.packb(es.create("never-acknowledged")))
            wait_for("the owner wrote its frame locally",
                     lambda: local_frames(a.data)[-1][0] == 101, 30)
            sock.close()
            a.proc.kill()
            a.proc.wait(30)
            nc.start()
            b = run_engine(es.Server(args=args(nc)))
            wait_for("the new owner took over", lambda: "took over" in log_of(b), 60)
            a.log.close()
            mark = len(log_of(a))
            run_engine(a)
            line = wait_for("the old owner stands by", lambda: re.search(
                r"following stream ORDO_P0 from this log's position (\d+)", log_of(a)[mark:]), 30)
            assert line.group(1) == "101", line.group(0)
            assert "moved aside to" not in log_of(a)[mark:]  # they agree as far as the stream goes
            b.sock = b.dealer()
            pos, _ = first_ack(b, "new-owner")
            assert pos == 101, pos
            wait_for("the standby set its log aside while following",
                     lambda: "moved aside to" in log_of(a)[mark:], 30)
            assert "took over" not in log_of(a)[mark:]
            assert b.stop() == 0
            pos, _ = first_ack(a, "back-again", timeout=30)
            assert pos == 102, pos
            a.sock = a.dealer()
            events = read_all(a)
            assert [e["position"] for e in events] == list(range(1, 103))
            assert not any(e["order_id"] == "never-acknowledged" for e in events)
            aside = [d for d in os.listdir(os.path.join(a.data, "d")) if d.startswith("diverged-")]
            assert len(aside) == 1 and os.path.isdir(os.path.join(a.data, "d", aside[0], "wal"))
            assert a.stop() == 0
            print("  a frame NATS never saw: the old owner's folder followed from 101, set its "
                  "log aside once the new owner wrote position 101, and took over at 102")
        except BaseException:
            for name, srv in (("old owner", a), ("new owner", b)):
                if srv:
                    print("--- %s log ---\n%s" % (name, log_of(srv)[-3000:]))
            raise
        finally:
            a.kill_and_cleanup()
            if b:
                b.kill_and_cleanup()


def index_orders(server):
    """Orders in the engine's order index, as ordo-admin reads it beside it."""
    p = subprocess.run([ADMIN, "--data-dir", os.path.join(server.data, "d"), "--json", "index",
                        "info"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["orders"]


def test_standby_memory():
    with NatsCluster(3) as nc:
        eargs = args(nc, lease_ms=30000) + ["--retain-finished", "0", "--snapshot-every", "100"]
        a = es.Server(args=eargs)
        b = None
        try:
            a.start()
            b = start_standby(nc, engine_args=eargs)
            for i in range(200):
                assert a.call(es.create("m-%d" % i))["ok"]
            for i in range(150):
                assert a.call(es.cmd("CancelOrder", "m-%d" % i, data={"reason": "test"}))["ok"]
            # The standby's own index gets the 150 finished orders.
            wait_for("the standby's finished orders left memory", lambda: index_orders(b) == 150,
                     30)
            # Its snapshots: every 100 events, and one when it stops, of the
            # 50 orders left in memory; started again, it replays from there.
            assert b.stop() == 0
            assert re.search(r"standby: snapshot at position 350 in [0-9.]+ ms: 50 orders",
                             log_of(b)), log_of(b)[-2000:]
            assert log_of(b).count("standby: snapshot at position") >= 2
            b.log.close()
            mark = len(log_of(b))
            run_engine(b)
            wait_for("the standby follows again", lambda: "following stream" in log_of(b)[mark:],
                     30)
            assert "recovered 50 orders" in log_of(b)[mark:] and \
                "snapshot at position 350 + 0 events" in log_of(b)[mark:], log_of(b)[-2000:]
            assert a.stop() == 0
            pos, _ = first_ack(b, "after-stop")
            assert pos == 351, pos
            line = re.search(r"took over at position 350 in [0-9.]+ ms; (\d+) orders in memory",
                             log_of(b)[mark:])
            assert line and line.group(1) == "50", log_of(b)[-2000:]
            assert "kept open from standing by" in log_of(b)[mark:]
            # The engine it became answers for them from that index: past
            # states, and already_exists through the filters it was given.
            b.sock = b.dealer()
            o = b.call({"type": "GetOrder", "order_id": "m-7"})["order"]
            assert o["status"] == "Cancelled" and o["version"] == 2, o
            r = b.call(es.create("m-7"))
            assert not r["ok"] and r["error"]["code"] == "already_exists", r
            assert b.call({"type": "GetOrder", "order_id": "m-170"})["order"]["status"] == \
                "Created"
            assert index_orders(b) == 150
            st = b.call({"type": "Stats"})["stats"]  # every order counted once
            assert st["orders"] == 201 and st["orders_indexed"] == 150, st
            assert b.stop() == 0
            print("  the standby sent 150 finished orders to its order index and wrote snapshots "
                  "of the 50 left while it stood by; started again, it replayed nothing, took "
                  "over with 50 in memory and answered for the others from the index")
        finally:
            a.kill_and_cleanup()
            if b:
                b.kill_and_cleanup()


if __name__ == "__main__":
    sys.exit(run_tests([("kill -9 under load", test_kill9_under_load),
                        ("no split brain", test_no_split_brain),
                        ("planned stop", test_planned_stop),
                        ("an unacknowledged tail written over", test_unacknowledged_tail_written_over),
                        ("a standby's memory", test_standby_memory)]))
