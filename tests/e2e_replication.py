#!/usr/bin/python3
"""ordo-server --fsync replicated --nats: the log replicated through NATS
JetStream, end to end, against a real 3-node nats-server cluster that the
test starts itself (tests/nats_cluster.py) on free loopback ports. The
stream is read with the test's own small client, and the engine's log
files with the test's own reading of their format.
  1. Every acknowledged event is in the stream, whose frames are the
     log's frames byte for byte, one message per frame, positions
     gap-free, under pipelined load.
  2. An engine that ran without replication seeds an empty stream with
     its whole log at start; a restart on the same stream publishes
     nothing; an engine on an empty data folder catches up from the
     stream; an engine with another history is refused.
  3. kill -9 of the engine under pipelined load: after a restart the log
     and the stream agree, and every acknowledged event is in both.
  4. One of the three NATS nodes killed under load: commands go on, and
     nothing acknowledged is lost.
  5. Two of three nodes stopped (no quorum): no command is acknowledged;
     the owner, unable to renew its lease, steps down (exit 3); after the
     nodes and the engine are back, the log and the stream agree again.
  6. Bad settings: --nats without --fsync replicated and the reverse are
     refused; no server reachable: the engine does not start.
Waits are bounded polls.
Usage: e2e_replication.py ordo-server"""
import os
import signal
import struct
import subprocess
import sys
import time

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_server as es  # noqa: E402  (reads sys.argv[1]: the server)
from e2e_util import run_tests  # noqa: E402
from nats_cluster import JetStream, NatsCluster  # noqa: E402

SERVER = sys.argv[1]
STREAM = "ORDO_P0"
HDR = struct.Struct("<4sHHQIIII")  # magic, version, flags, first, count, clen, rlen, crc


def local_frames(data):
    """The log's frames, in order: [(first, count, bytes)], read from the
    segment files as docs/wal.md lays them out (identity frames skipped)."""
    wal = os.path.join(data, "d", "wal")
    frames = []
    for name in sorted(n for n in os.listdir(wal) if n.endswith(".wal")):
        with open(os.path.join(wal, name), "rb") as f:
            buf = f.read()
        off = 0
        while off + 32 <= len(buf):
            magic, _ver, flags, first, count, clen, _rlen, _crc = HDR.unpack_from(buf, off)
            if magic != b"OWAL":
                break  # zeros: the end of the data
            if not flags & 1:
                frames.append((first, count, buf[off:off + 32 + clen]))
            off += 32 + clen
    return frames


def stream_frames(js):
    info = js.stream_info(STREAM)
    last = info["state"]["last_seq"]
    out = []
    for seq in range(1, last + 1):
        h, data = js.get(STREAM, seq)
        if int(h["Ordo-Count"]) == 0:
            assert data == b"" and int(h["Ordo-Lease"]) > 0, h  # a lease marker
            continue
        out.append((int(h["Ordo-First"]), int(h["Ordo-Count"]), data))
    return out


def check_same(data, js):
    """The stream is the log: same frames, same bytes, positions gap-free.
    Returns the last position."""
    local, remote = local_frames(data), stream_frames(js)
    assert len(local) == len(remote), (len(local), len(remote))
    expect = 1
    for (lf, lc, lb), (rf, rc, rb) in zip(local, remote):
        assert (lf, lc) == (rf, rc) and lf == expect, ((lf, lc), (rf, rc), expect)
        assert lb == rb, "frame at %d differs" % lf
        expect += lc
    return expect - 1


def read_all(server):
    """Every event the engine has, ReadAll page by page."""
    events, frm = [], 1
    while True:
        r = server.call({"type": "ReadAll", "from_position": frm, "limit": 5000})
        assert r["ok"], r
        events += r["events"]
        if len(r["events"]) < 5000:
            return events
        frm = r["events"][-1]["position"] + 1


def log_tail(server, n=5000):
    try:
        with open(os.path.join(server.data, "server.log"), "rb") as f:
            return "--- server log ---\n" + f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return "(no server log)"


def replicated(nc, extra=()):
    # A lease of 5 s: longer than a NATS leader election after a node is
    # lost (these tests are about the log, not about failover).
    return ["--fsync", "replicated", "--nats", nc.urls, "--shards", "2",
            "--lease-ms", "5000"] + list(extra)


def pipelined(server, prefix, n, tolerate_errors=False):
    """n CreateOrders in flight together; {order_id: position} of the ok
    replies. Stops reading at the first silence of 20 s."""
    sock = server.dealer()
    try:
        for i in range(n):
            sock.send(msgpack.packb(es.create("%s-%d" % (prefix, i))))
        acked, errors = {}, {}
        while len(acked) + len(errors) < n and sock.poll(20000):
            r = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
            if r.get("ok"):
                acked[r["order_id"]] = r["position"]
            else:
                errors[r.get("order_id", "?")] = r["error"]["code"]
        if not tolerate_errors:
            assert not errors, errors
        return acked, errors
    finally:
        sock.close()


def test_load_and_bytes(nc):
    s = es.Server(args=replicated(nc))
    try:
        s.start()
        acked, _ = pipelined(s, "a", 3000)
        assert len(acked) == 3000
        js = JetStream(nc.client_port(2))
        last = check_same(s.data, js)
        assert last == max(acked.values()) == 3000, (last, max(acked.values()))
        frames = js.stream_info(STREAM)["state"]["messages"]
        assert 1 <= frames <= 3000
        # ReadAll sees exactly the acknowledged events.
        r = s.call({"type": "ReadAll", "from_position": 1, "limit": 5000})
        assert [e["position"] for e in r["events"]] == list(range(1, 3001))
        js.close()
        assert s.stop() == 0
        print("  3000 pipelined commands: %d frames, the stream equals the log byte for byte"
              % frames)
    finally:
        s.kill_and_cleanup()


def test_seed_restart_refuse(nc_unused):
    with NatsCluster(3) as nc:
        s = es.Server(args=["--shards", "2"])  # no replication first
        other = es.Server(args=replicated(nc))
        try:
            s.start()
            acked, _ = pipelined(s, "s", 500)
            assert s.stop() == 0
            s.args = replicated(nc)
            s.start()  # seeds the empty stream with the whole log
            js = JetStream(nc.client_port(0))
            assert check_same(s.data, js) == 500
            assert "publishing" in open(os.path.join(s.data, "server.log")).read()
            acked, _ = pipelined(s, "t", 200)
            assert s.stop() == 0
            frames = len(stream_frames(js))
            s.start()  # same history: no frame published (a lease marker only)
            assert len(stream_frames(js)) == frames
            assert check_same(s.data, js) == 700
            assert s.stop() == 0
            # An empty data folder on the same stream catches up from it
            # (byte for byte) and serves every event.
            fresh = es.Server(args=replicated(nc))
            try:
                fresh.start()
                assert check_same(fresh.data, js) == 700
                r = fresh.call({"type": "ReadAll", "from_position": 1, "limit": 1000})
                assert [e["position"] for e in r["events"]] == list(range(1, 701))
                assert fresh.stop() == 0
            finally:
                fresh.kill_and_cleanup()
            # A data folder with another history, the same stream: refused,
            # and the stream is left as it was.
            other.args = ["--shards", "2"]
            other.start()
            pipelined(other, "x", 50)
            assert other.stop() == 0
            other.args = replicated(nc)
            try:
                other.start()
                raise AssertionError("an engine with another history started")
            except AssertionError as e:
                assert "the log and the stream differ" in str(e) or \
                    "histories differ" in str(e), str(e)
            assert len(stream_frames(js)) == frames
            js.close()
            print("  a log of 500 events seeded the stream; a restart published nothing; an "
                  "empty folder caught up; another history was refused")
        finally:
            s.kill_and_cleanup()
            other.kill_and_cleanup()


def test_kill9(nc):
    # The stream of test 1 is there: a fresh one for this engine's log.
    with NatsCluster(3) as nc2:
        s = es.Server(args=replicated(nc2))
        try:
            s.start()
            sock = s.dealer()
            n = 30000
            for i in range(n):
                sock.send(msgpack.packb(es.create("k-%d" % i)))
            acked = {}

            def drain():
                while sock.poll(0):
                    r = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
                    if r.get("ok"):
                        acked[r["order_id"]] = r["position"]

            deadline = time.monotonic() + 60
            while len(acked) < 2000 and time.monotonic() < deadline:  # bounded poll
                if sock.poll(1000):
                    drain()
            assert len(acked) >= 2000, len(acked)
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait(30)
            drain()
            if len(acked) == n:  # the engine was quicker than the reading: still a kill -9
                print("  (every command was acknowledged before the kill)")
            sock.close()
            s.stop()
            s.start()
            js = JetStream(nc2.client_port(1))
            last = check_same(s.data, js)
            assert max(acked.values()) <= last
            for oid in list(acked)[:200]:
                r = s.call({"type": "GetOrder", "order_id": oid})
                assert r["ok"] and r["order"]["version"] == 1, r
            got = {e["order_id"]: e["position"] for e in read_all(s)}
            assert all(got[o] == p for o, p in acked.items())
            js.close()
            assert s.stop() == 0
            print("  kill -9 after %d acknowledged: all in the log and the stream (head %d)"
                  % (len(acked), last))
        finally:
            s.kill_and_cleanup()


def test_lose_one_node():
    with NatsCluster(3) as nc:
        s = es.Server(args=replicated(nc))
        try:
            s.start()
            acked, _ = pipelined(s, "b", 1000)
            victim = nc.serving("ordo-server")
            assert len(victim) == 1, victim
            nc.stop(victim[0], kill=True)  # the node the engine is connected to
            more, _ = pipelined(s, "c", 2000)
            assert len(more) == 2000
            acked.update(more)
            js = JetStream(nc.client_port((victim[0] + 1) % 3))
            last = check_same(s.data, js)
            assert last == max(acked.values()) == 3000
            js.close()
            nc.start(victim[0])  # it catches up from the others
            rc = s.stop()
            # Every command was acknowledged above. A known limit (issue 12's
            # note): if the lost node held the lease bucket's leader and the
            # election outlasted the lease, the owner steps down (exit 3)
            # afterwards; it is reported, the rest must hold.
            if rc == 3:
                assert "lease" in log_tail(s), log_tail(s)
                print("  (the owner stepped down after the load: its lease lapsed during the "
                      "bucket's leader election)")
            else:
                assert rc == 0, "exit %s\n%s" % (rc, log_tail(s))
            print("  one of three NATS nodes killed under load: 2000 more commands "
                  "acknowledged, nothing lost")
        finally:
            s.kill_and_cleanup()


def test_no_quorum():
    with NatsCluster(3) as nc:
        s = es.Server(args=replicated(nc))
        try:
            s.start()
            acked, _ = pipelined(s, "q", 300)
            nc.stop(1)
            nc.stop(2)
            # No majority: nothing is acknowledged. The publish waits out its
            # tries (3 x 5 s) and the writer fails for good, or the owner,
            # unable to renew its lease, steps down (exit 3) first: either
            # way no reply is ok.
            sock = s.dealer()
            sock.send(msgpack.packb(es.create("q-late")))
            replies = []
            t_lost = time.monotonic()
            deadline = t_lost + 120
            while s.proc.poll() is None and time.monotonic() < deadline:  # bounded poll
                if sock.poll(200):
                    replies.append(msgpack.unpackb(sock.recv_multipart()[-1], raw=False))
            while sock.poll(0):
                replies.append(msgpack.unpackb(sock.recv_multipart()[-1], raw=False))
            assert s.proc.poll() == 3, "the owner did not step down without a quorum"
            print("  (stepped down %.1f s after the quorum was lost)" % (time.monotonic() - t_lost))
            assert all(not r["ok"] and r["error"]["code"] == "unavailable" for r in replies), \
                replies
            assert "lease is lost" in open(os.path.join(s.data, "server.log")).read()
            sock.close()
            s.stop()
            nc.start(1)
            nc.start(2)
            s.start()  # reconciles: the unacknowledged frame is published or was there
            js = JetStream(nc.client_port(0))
            last = check_same(s.data, js)
            assert last >= 300
            r = s.call(es.create("q-after"))
            assert r["ok"], r
            js.close()
            assert s.stop() == 0
            print("  without a quorum: nothing acknowledged, the owner stepped down; after a "
                  "restart the log and the stream agree at %d" % last)
        except Exception:
            print(log_tail(s))
            raise
        finally:
            s.kill_and_cleanup()


def test_bad_settings(nc):
    for args, words in [(["--nats", nc.urls], "--nats needs --fsync replicated"),
                        (["--fsync", "replicated"], "--fsync replicated needs --nats"),
                        (["--fsync", "replicated", "--nats", "127.0.0.1:4222"],
                         "--nats must be NATS server URLs"),
                        (["--nats-replicas", "7"], "--nats-replicas must be a number from 1 to 5")]:
        p = subprocess.run([SERVER] + args, capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and words in p.stderr, (args, p.returncode, p.stderr)
    port = es.free_port()  # nothing listens there
    s = es.Server(args=["--fsync", "replicated", "--nats", "nats://127.0.0.1:%d" % port])
    try:
        s.start()
        raise AssertionError("started without a NATS server")
    except AssertionError as e:
        assert "connecting to NATS" in str(e), str(e)
    finally:
        s.kill_and_cleanup()
    print("  bad settings refused; no NATS server: no start")


def main():
    with NatsCluster(3) as nc:
        def nats_logs():
            for k in range(nc.n):
                print("--- nats n%d ---\n%s" % (k, nc.log_tail(k, 1500)))
        return run_tests([("load and bytes", lambda: test_load_and_bytes(nc)),
                          ("seed, restart, refuse", lambda: test_seed_restart_refuse(nc)),
                          ("kill -9", lambda: test_kill9(nc)),
                          ("lose one node", test_lose_one_node),
                          ("no quorum", test_no_quorum),
                          ("bad settings", lambda: test_bad_settings(nc))], on_fail=nats_logs)


if __name__ == "__main__":
    sys.exit(main())
