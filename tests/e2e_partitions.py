#!/usr/bin/python3
"""Partitions (docs/cluster.md) between real ordo-server processes through a
real 3-node NATS JetStream cluster (tests/nats_cluster.py), on loopback:
  1. Two engines own partitions 0 and 1 of 2. Each answers Partitions with
     the map (both owners, their PUB endpoints, lease revisions); a request
     on the other partition's order gets wrong_partition with the map and
     changes nothing; each partition has its own stream and positions from
     1; ordo-cli routes by the map from one endpoint; a data folder refuses
     to start as another partition.
  2. Clients recover by the map: 4 libordo routers (tests/router_load.c),
     seeded with the two owners only, create orders in both partitions
     while partition 0's owner is killed (kill -9); its standby takes over,
     every client finds it through the map and goes on, and every
     acknowledged order is on the engine that acknowledged it at the same
     position, gap-free per partition.
Waits are bounded polls.
Usage: e2e_partitions.py ordo-server ordo-cli router_load"""
import json
import os
import signal
import subprocess
import sys
import time

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_server as es  # noqa: E402  (reads sys.argv[1]: the server)
import e2e_failover as ef  # noqa: E402
from e2e_failover import log_of  # noqa: E402
from e2e_replication import read_all  # noqa: E402
from e2e_util import run_tests, wait_for  # noqa: E402
from nats_cluster import JetStream, NatsCluster  # noqa: E402

CLI = sys.argv[2]
ROUTER_LOAD = sys.argv[3]


def args(nc, partition, lease_ms=2000):
    return ["--fsync", "replicated", "--nats", nc.urls, "--shards", "2",
            "--lease-ms", str(lease_ms), "--partition", partition]


def start_standby(nc, partition):
    """An engine that finds its partition owned and stands by."""
    return ef.start_standby(nc, engine_args=args(nc, partition))


def partitions(server):
    return server.call({"type": "Partitions", "request_id": "map"})


def whole_map(server, owners):
    """Partitions from `server` once its map names `owners` (the engines
    in partition order)."""
    def check():
        r = partitions(server)
        got = [m and m["endpoint"] for m in r["map"]]
        return r if got == [o.bind for o in owners] else None
    return wait_for("the map of %s" % server.bind, check, 30)


M64 = (1 << 64) - 1


def _mix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


def partition_hash(order_id):
    """H of docs/protocol.md's cluster extension, as a client in another
    language would write it from the document."""
    b = order_id.encode()
    h = 0x4f52444f50415254 ^ ((0x9e3779b97f4a7c15 * (len(b) + 1)) & M64)
    i = 0
    while len(b) - i >= 8:
        h = ((h ^ _mix(int.from_bytes(b[i:i + 8], "little"))) * 0x100000001b3) & M64
        i += 8
    r = len(b) - i
    h ^= _mix(int.from_bytes(b[i:], "little") ^ (r << 56))
    return _mix(h)


def partition_of(owner0, oid, partitions=2):
    """The documented function, checked against partition 0's owner: its
    own order is not_found, another's wrong_partition naming its
    partition."""
    k = partition_hash(oid) % partitions
    r = owner0.call({"type": "GetOrder", "order_id": oid})
    code = r["error"]["code"]
    assert code == ("not_found" if k == 0 else "wrong_partition"), (oid, k, r)
    if k:
        assert r["error"]["partition"] == k, r
    return k


def cli(*argv, timeout_ms=10000):
    p = subprocess.run([CLI, "--timeout", str(timeout_ms)] + list(argv), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_map_and_wrong_partition():
    with NatsCluster(3) as nc:
        a = es.Server(args=args(nc, "0/2"))
        b = es.Server(args=args(nc, "1/2"))
        try:
            a.start()
            b.start()
            ra = whole_map(a, [a, b])
            rb = whole_map(b, [a, b])
            assert ra["ok"] and ra["request_id"] == "map", ra
            assert (ra["partition"], ra["partitions"]) == (0, 2), ra
            assert (rb["partition"], rb["partitions"]) == (1, 2), rb
            assert ra["map"][0]["pub"] == a.pub and ra["map"][1]["pub"] == b.pub, ra
            assert all(m["revision"] > 0 for m in ra["map"] + rb["map"]), (ra, rb)
            # The documented hash, and orders of each partition.
            assert partition_hash("o-1") == 0x7d93db28271d513a
            assert partition_hash("") % 100 == 38
            ids = {0: [], 1: []}
            for i in range(200):
                oid = "p-%d" % i
                ids[partition_of(a, oid)].append(oid)
            assert len(ids[0]) > 60 and len(ids[1]) > 60, (len(ids[0]), len(ids[1]))
            # The wrong engine: wrong_partition with the map; nothing changes.
            other = ids[1][0]
            for req in (es.create(other, rid="w-1"), es.cmd("ConfirmOrder", other, rid="w-2"),
                        {"type": "GetHistory", "order_id": other}):
                r = a.call(req)
                assert not r["ok"] and r["error"]["code"] == "wrong_partition", r
                e = r["error"]
                assert (e["partition"], e["partitions"]) == (1, 2), e
                assert e["map"][1]["endpoint"] == b.bind and e["map"][0]["endpoint"] == a.bind, e
                assert b.bind in e["message"] and other in e["message"], e["message"]
                if "request_id" in req:
                    assert r["request_id"] == req["request_id"], r
            assert a.call({"type": "Ping"})["head_position"] == 0
            # Stats counts what the front end answers itself, by kind: a
            # Partitions query and a misrouted command.
            def stats():
                return a.call({"type": "Stats"})["stats"]
            s0, s1 = stats(), stats()  # s1 - s0: what a Stats call counts itself
            assert a.call({"type": "Partitions"})["ok"]
            assert a.call(es.create(other, rid="w-4"))["error"]["code"] == "wrong_partition"
            s2 = stats()
            for key, more in (("requests", 2), ("commands", 1), ("queries", 1)):
                assert s2[key] - s1[key] == (s1[key] - s0[key]) + more, (key, s0, s1, s2)
            # An invalid id is still bad_request, whatever its hash; so is an
            # invalid request on another partition's order (checked first).
            r = a.call(es.create("bad id!"))
            assert r["error"]["code"] == "bad_request", r
            bad = es.create(other, rid="w-3")
            bad["data"]["items"][0]["qty"] = 0
            r = a.call(bad)
            assert r["error"]["code"] == "bad_request" and r["error"]["field"].endswith("qty"), r
            r = a.raw(msgpack.packb({"type": "GetOrder", "order_id": other}) + b"\x00")
            assert r["error"]["code"] == "bad_request", r  # trailing bytes
            r = a.raw(msgpack.packb({"type": "Partitions"}) + b"\x00")
            assert r["error"]["code"] == "bad_request", r
            # Each engine takes its own partition's orders, positions from 1.
            for k, srv in ((0, a), (1, b)):
                for n, oid in enumerate(ids[k][:20]):
                    r = srv.call(es.create(oid))
                    assert r["ok"] and r["position"] == n + 1, r
            # ordo-cli routes by the map from one engine's endpoint.
            for oid in (ids[0][20], ids[1][20]):
                rc, out, err = cli("--endpoint", a.bind, "--route", "--json", "create", oid,
                                   "--user", "1", "--restaurant", "2", "--item", "s:soup:1:450",
                                   "--address", "x")
                assert rc == 0, (rc, out, err)
                assert json.loads(out)["position"] == 21, out
            rc, out, err = cli("--endpoint", "%s,%s" % (b.bind, a.bind), "get", ids[0][20])
            assert rc == 0 and "Created" in out, (rc, out, err)
            rc, out, err = cli("--endpoint", a.bind, "partitions")
            assert rc == 0 and "partition 1 of 2: %s" % b.bind in out, (rc, out, err)
            # Routed, the map comes from the first endpoint that answers.
            dead = "tcp://127.0.0.1:%d" % es.free_port()
            rc, out, err = cli("--endpoint", "%s,%s" % (dead, b.bind), "--json", "partitions",
                               timeout_ms=2000)
            assert rc == 0 and json.loads(out)["partition"] == 1, (rc, out, err)
            # Without routing, the refusal names the owner.
            rc, out, err = cli("--endpoint", a.bind, "get", ids[1][0])
            assert rc == 1 and "wrong_partition" in err and b.bind in err, (rc, out, err)
            # Each partition its own stream.
            js = JetStream(nc.client_port(0))
            for k in (0, 1):
                info = js.stream_info("ORDO_P%d" % k)
                assert info["state"]["messages"] >= 2, info  # a claim and frames
            js.close()
            assert [e["order_id"] for e in read_all(a)] == ids[0][:21]
            assert [e["order_id"] for e in read_all(b)] == ids[1][:21]
            # A folder holds one partition for good.
            assert a.stop() == 0
            wrong = subprocess.run([es.SERVER, "--data-dir", os.path.join(a.data, "d"),
                                    "--bind", a.bind, "--pub", a.pub] + args(nc, "1/2"),
                                   capture_output=True, text=True, timeout=60)
            assert wrong.returncode != 0 and "holds partition 0/2" in wrong.stderr, wrong.stderr
            print("  map from both owners; wrong_partition refused 3 requests and changed "
                  "nothing; 21 orders per partition, each its own positions and stream")
        finally:
            a.kill_and_cleanup()
            b.kill_and_cleanup()


def test_clients_recover_by_the_map():
    with NatsCluster(3) as nc:
        a = es.Server(args=args(nc, "0/2"))
        b = es.Server(args=args(nc, "1/2"))
        s = None
        load = None
        try:
            a.start()
            b.start()
            s = start_standby(nc, "0/2")
            whole_map(a, [a, b])
            whole_map(b, [a, b])
            # Four clients that know only the two owners.
            per_thread = 300
            errors = open(os.path.join(a.data, "router_load.err"), "w+")
            load = subprocess.Popen([ROUTER_LOAD, "%s,%s" % (a.bind, b.bind), "r", "4",
                                     str(per_thread), "30000"],
                                    stdout=subprocess.PIPE, stderr=errors, text=True)
            # One reader of its output, line by line (communicate() would
            # skip what readline() has buffered); the kill after 200.
            acks, most = [], 0
            for line in load.stdout:  # bounded: the load ends by itself
                acks.append(json.loads(line))
                if len(acks) == 200:
                    a.proc.send_signal(signal.SIGKILL)
                    a.proc.wait(30)
                if len(acks) % 50 == 0:  # its threads, looked at while it runs
                    try:
                        most = max(most, len(os.listdir("/proc/%d/task" % load.pid)))
                    except OSError:
                        pass
            load.wait(300)
            # 4 threads, each a router with connections to 2 or 3 engines:
            # they share one ZeroMQ context per router (2 threads of its
            # own), not one per connection.
            assert 0 < most <= 4 + 1 + 4 * 2, "router_load ran %d threads" % most
            errors.seek(0)
            failed = errors.read()
            errors.close()
            assert load.returncode == 0, failed
            assert a.proc.poll() is not None, "the load ended before the kill"
            assert len(acks) == 4 * per_thread, len(acks)
            moved = [x for x in acks if x["partition"] == 0 and x["owner"] == s.bind]
            assert moved, "no client reached the standby"
            assert all(x["owner"] in (a.bind, s.bind, b.bind) for x in acks)
            # Everything acknowledged is where it was acknowledged, at its
            # position; each partition's positions are gap-free.
            s.sock = s.dealer()
            for k, srv in ((0, s), (1, b)):
                events = read_all(srv)
                positions = [e["position"] for e in events]
                assert positions == list(range(1, len(positions) + 1)), "gaps in %d" % k
                got = {e["order_id"]: e["position"] for e in events}
                mine = [x for x in acks if x["partition"] == k]
                lost = [x for x in mine if got.get(x["order_id"]) != x["position"]]
                assert not lost, "partition %d lost %s" % (k, lost[:3])
            r = whole_map(b, [s, b])
            assert r["map"][0]["revision"] > 0
            print("  %d orders acknowledged through the map, %d of them by the standby "
                  "after the kill; none lost, positions gap-free" % (len(acks), len(moved)))
        except BaseException:
            for name, srv in (("owner 0", a), ("owner 1", b), ("standby 0", s)):
                if srv:
                    state = srv.proc.poll() if srv.proc else "not started"
                    print("--- %s (%s) log ---\n%s" % (
                        name, "running" if state is None else "exit status %s" % state,
                        log_of(srv)[-3000:]))
            raise
        finally:
            if load and load.poll() is None:
                load.kill()
                load.wait(30)
            for srv in (a, b, s):
                if srv:
                    srv.kill_and_cleanup()


class FakeEngine:
    """A hostile engine on a ROUTER of its own (a thread): Partitions gets
    `map`; any other request gets wrong_partition with it. Counts what it
    was sent."""

    def __init__(self, make_map):
        import threading
        import zmq
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.bind = "tcp://127.0.0.1:%d" % port
        self.map = make_map(self.bind)
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            if not self.sock.poll(50):
                continue
            frames = self.sock.recv_multipart()
            self.count += 1
            req = msgpack.unpackb(frames[-1], raw=False)
            rid = {"request_id": req["request_id"]} if "request_id" in req else {}
            m = {"partition": 0, "partitions": len(self.map), "map": self.map}
            if req.get("type") == "Partitions":
                reply = dict(ok=True, **rid, **m)
            else:
                reply = dict(ok=False, **rid, error=dict(code="wrong_partition",
                                                         message="elsewhere", **m))
            self.sock.send_multipart(frames[:-1] + [msgpack.packb(reply)])

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.sock.close()


def test_router_against_hostile_maps():
    """libordo's router (through ordo-cli) against engines whose maps lead
    nowhere: it waits between tries instead of spinning, ends at its
    timeout, and survives a map of more owners than it asks at once."""
    # A map that sends every partition back to the engine that refused.
    f = FakeEngine(lambda me: [{"endpoint": me, "pub": "", "revision": 5}] * 2)
    try:
        t0 = time.monotonic()
        rc, out, err = cli("--route", "--endpoint", f.bind, "get", "o-1", timeout_ms=1500)
        took = time.monotonic() - t0
        assert rc == 1 and "wrong_partition" in err, (rc, out, err)
        assert 1.4 < took < 5, took
        assert f.count < 200, "%d requests in 1.5 s: the router spins" % f.count
        spun = f.count
    finally:
        f.close()
    # 65 owners that do not answer, and 64 seeds: more than a refresh asks.
    dead = ["tcp://127.0.0.1:%d" % es.free_port() for _ in range(66)]
    f = FakeEngine(lambda me: [{"endpoint": d, "pub": "", "revision": 9} for d in dead[:65]])
    try:
        seeds = ",".join(dead[:63] + [f.bind])
        rc, out, err = cli("--route", "--endpoint", seeds, "get", "o-2", timeout_ms=3000)
        assert rc in (1, 3), (rc, out, err)
        assert "runtime error" not in err and "AddressSanitizer" not in err, err
    finally:
        f.close()
    print("  a map pointing back: %d requests in 1.5 s, then wrong_partition; a map of 65 "
          "silent owners: the call ends at its timeout" % spun)


if __name__ == "__main__":
    sys.exit(run_tests([
        ("the map, wrong_partition, a stream and positions per partition",
         test_map_and_wrong_partition),
        ("kill -9 of a partition's owner under load: clients recover by the map",
         test_clients_recover_by_the_map),
        ("the router against hostile maps", test_router_against_hostile_maps),
    ]))
