#!/usr/bin/python3
"""ordo_tailer.py: a client that reads the engine's log back to back in
ReadAll pages (limit 10,000, from position 1, starting over at the head),
as a projector catching up does; run it beside ordo-benchmark to measure
what large pages cost the commands. Prints the pages and events read.

Usage: ordo_tailer.py [--endpoint tcp://127.0.0.1:7700] [--seconds 15] [--limit 10000]"""
import argparse
import sys
import time

import msgpack
import zmq


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", default="tcp://127.0.0.1:7700")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--limit", type=int, default=10000)
    a = ap.parse_args()
    s = zmq.Context().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(a.endpoint)
    end = time.monotonic() + a.seconds
    pages = events = 0
    nxt = 1
    while time.monotonic() < end:
        s.send(msgpack.packb({"type": "ReadAll", "from_position": nxt, "limit": a.limit}))
        if not s.poll(10000):
            sys.exit("ordo_tailer: no answer from %s" % a.endpoint)
        r = msgpack.unpackb(s.recv_multipart()[-1], raw=False)
        if not r.get("ok"):
            sys.exit("ordo_tailer: %s" % r.get("error"))
        events += len(r["events"])
        nxt = r["next_position"] if r["events"] else 1
        pages += 1
    print("pages %d, events %d in %.0f s" % (pages, events, a.seconds))


if __name__ == "__main__":
    main()
