#!/usr/bin/python3
"""Hostile clients against the real ordo-server: 1,000 connections at once
that send and never read their replies, clients that send oversized
bodies, envelopes of too many frames, frames announced past the message
size limit, and bytes that are not ZeroMQ at all. Meanwhile a well-behaved
client must get every answer, the server's memory must stay bounded (the
peak is printed), and afterwards it answers as before and stops cleanly.

Usage: e2e_hostile.py PATH-TO-ordo-server"""
import resource
import socket
import struct
import sys
import time
import traceback

import msgpack
import zmq

import e2e_server  # noqa: F401  (reads the server's path from argv)
from e2e_server import Server, create, rss_mb

CONNECTIONS = 1000
PER_CONNECTION = 40


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:  # the server inherits it: 1,000 connections need their descriptors
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    srv = Server().start()
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, CONNECTIONS + 64)
    hostile = []
    peak = 0
    try:
        port = int(srv.bind.rsplit(":", 1)[1])
        base = rss_mb(srv.proc.pid)
        # 1,000 connections, each pipelining requests it never reads the
        # replies of: creates (each reply holds the event) and GetHistory.
        for c in range(CONNECTIONS):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVHWM, 1)
            s.setsockopt(zmq.RCVBUF, 4096)
            s.connect(srv.bind)
            hostile.append(s)
        for i in range(PER_CONNECTION):
            for c, s in enumerate(hostile):
                if i == 0:
                    s.send(msgpack.packb(create("h-%d" % c, rid="h-%d" % c)), zmq.NOBLOCK)
                else:
                    s.send(msgpack.packb({"type": "GetHistory", "order_id": "h-%d" % c,
                                          "request_id": "h-%d-%d" % (c, i)}), zmq.NOBLOCK)
        # Oversized bodies: 2 MiB gets bad_request; 20 MiB passes the
        # message limit, and the server drops that connection.
        big = srv.dealer()
        big.send(b"\x81\xa4type" + b"x" * (2 << 20))
        assert big.poll(20000), "no answer to a 2 MiB body"
        r = msgpack.unpackb(big.recv_multipart()[-1], raw=False)
        assert not r["ok"] and r["error"]["code"] == "bad_request", r
        huge = srv.dealer()
        huge.send(b"x" * (20 << 20))
        # An envelope of too many frames: dropped without a reply.
        router_like = srv.dealer()
        router_like.send_multipart([b"f"] * 12 + [msgpack.packb({"type": "Ping"})])
        # Not ZeroMQ: junk, and a ZMTP greeting then a frame of 2^40 bytes.
        junk = socket.create_connection(("127.0.0.1", port))
        junk.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 64)
        liar = socket.create_connection(("127.0.0.1", port))
        greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL" + b"\x00" * 16 + \
            b"\x00" + b"\x00" * 31
        liar.sendall(greeting)
        liar.sendall(b"\x02" + struct.pack(">Q", 1 << 40) + b"y" * 4096)
        # The well-behaved client gets every answer meanwhile.
        for i in range(200):
            r = srv.call(create("good-%d" % i, rid="good-%d" % i))
            assert r["ok"], r
            if i % 20 == 0:
                peak = max(peak, rss_mb(srv.proc.pid))
        assert not router_like.poll(500), "a 13-frame envelope got a reply"
        for _ in range(20):
            peak = max(peak, rss_mb(srv.proc.pid))
            assert srv.call({"type": "Ping"})["ok"]
            time.sleep(0.05)
        print("server RSS: %d MiB at start, at most %d MiB with %d connections that do not "
              "read (%d requests), oversized and broken clients" %
              (base, peak, CONNECTIONS, CONNECTIONS * PER_CONNECTION))
        assert peak < 1024, "server RSS reached %d MiB" % peak
        for s in hostile:
            s.close()
        for s in (big, huge, router_like):
            s.close()
        junk.close()
        liar.close()
        stats = srv.call({"type": "Stats"})["stats"]
        assert stats["errors"] >= 1
        r = srv.call({"type": "GetOrder", "order_id": "good-199"})
        assert r["ok"] and r["order"]["version"] == 1, r
        assert srv.stop() == 0, "SIGTERM must exit 0"
        print("1 passed, 0 failed")
        return 0
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        return 1
    finally:
        for s in hostile:
            s.close(0)
        ctx.term()
        srv.kill_and_cleanup()


if __name__ == "__main__":
    sys.exit(main())
