#!/usr/bin/python3
"""ordo_loadback.py: latency of GetOrder and GetHistory on orders that left
the engine's memory (each one loaded back from the log through the order
index), measured from a client, one request at a time.

Start the engine with --retain-finished 0 first; this creates and finishes
--orders orders, waits (bounded poll) until they have left memory, then asks
for each once, in random order, and prints percentiles (client round trip,
so Python's own overhead of ~50 us is included). Run ordo-benchmark against
the same engine at the same time to measure it beside load.

Usage: ordo_loadback.py [--endpoint tcp://127.0.0.1:7700] [--orders 2000] [--json]"""
import argparse
import json
import random
import sys
import time

import msgpack
import zmq


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", default="tcp://127.0.0.1:7700")
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    s = zmq.Context().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(a.endpoint)

    def call(req):
        s.send(msgpack.packb(req))
        if not s.poll(10000):
            sys.exit("ordo_loadback: no answer from %s" % a.endpoint)
        return msgpack.unpackb(s.recv_multipart()[-1], raw=False)

    tag = "lb-%x" % random.getrandbits(32)
    ids = ["%s-%d" % (tag, i) for i in range(a.orders)]
    steps = ["ConfirmOrder", "StartPreparing", "MarkReady", "PickUp", "Deliver"]
    for n, oid in enumerate(ids):
        r = call({"type": "CreateOrder", "order_id": oid,
                  "data": {"user_id": 1, "restaurant_id": 2, "delivery_address": "x",
                           "items": [{"sku": "a", "name": "b", "qty": 1, "price_cents": 100}]}})
        assert r["ok"], r
        for t in steps:
            assert call({"type": t, "order_id": oid})["ok"]
        if n % 500 == 0:
            print("ordo_loadback: %d orders made" % n, file=sys.stderr)
    deadline = time.monotonic() + 60
    while True:  # bounded poll: until ours have left memory
        st = call({"type": "Stats"})["stats"]
        probe = call({"type": "Stats"})["stats"]["orders_loaded"]
        call({"type": "GetOrder", "order_id": ids[-1]})
        if call({"type": "Stats"})["stats"]["orders_loaded"] > probe:
            break
        if time.monotonic() > deadline:
            sys.exit("ordo_loadback: the orders did not leave memory; is the engine running "
                     "with --retain-finished 0? (orders_in_memory %s)" % st.get("orders_in_memory"))
        time.sleep(0.2)
    loaded0 = call({"type": "Stats"})["stats"]["orders_loaded"]
    out = {}
    for kind in ("GetOrder", "GetHistory"):
        order = ids[:-1]
        random.shuffle(order)
        lat = []
        for oid in order:
            t = time.perf_counter()
            r = call({"type": kind, "order_id": oid})
            lat.append((time.perf_counter() - t) * 1e6)
            assert r["ok"], r
        lat.sort()
        out[kind] = {"n": len(lat), "p50_us": round(lat[len(lat) // 2]),
                     "p99_us": round(lat[int(len(lat) * 0.99)]), "max_us": round(lat[-1])}
        if kind == "GetOrder":  # and let them leave again before GetHistory
            time.sleep(1.5)
    loaded = call({"type": "Stats"})["stats"]["orders_loaded"] - loaded0
    out["loaded_back"] = loaded
    if a.json:
        print(json.dumps(out))
    else:
        for k in ("GetOrder", "GetHistory"):
            print("%-10s n %d  p50 %d us  p99 %d us  max %d us" %
                  (k, out[k]["n"], out[k]["p50_us"], out[k]["p99_us"], out[k]["max_us"]))
        print("orders loaded back from the index meanwhile: %d" % loaded)


if __name__ == "__main__":
    main()
