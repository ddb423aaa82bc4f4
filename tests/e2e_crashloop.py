#!/usr/bin/python3
"""The crash loop: the real ordo-server, killed with SIGKILL again and again
under pipelined load, restarted each time, and checked each time.

Each round sends a pipelined stream of commands (new orders created, the
others moved through their lives; refusals are expected and fine), reads a
seeded random number of replies (from none to all of them), then kills the
server while it still has work in flight: mid-frame, between a write and
its fsync, while a snapshot is packed (every 300 events), while a segment
rolls (64 KiB segments), while finished orders go to the order index
(--retain-finished 0). After the restart: positions are gap-free, every
event acknowledged in this round is in the log at the position its reply
gave, with the same content; every 25 rounds and at the end, every event
acknowledged since the start is checked, and each order's state agrees
with its last event in the log.

Usage: e2e_crashloop.py PATH-TO-ordo-server [ROUNDS] [SEED]
(CTest runs 20 rounds; tests/crashloop-long.sh runs 200 or more.)"""
import random
import signal
import sys
import time
import traceback

import msgpack

import e2e_server  # noqa: F401  (reads the server's path from argv)
from e2e_server import Server, cmd, create

STEPS = ["ConfirmOrder", "StartPreparing", "MarkReady", "PickUp", "Deliver"]


def read_log(srv, start=1):
    """Every event from `start` to the head, by position (ReadAll pages)."""
    head = srv.call({"type": "Ping"})["head_position"]
    events, nxt = {}, start
    while nxt <= head:
        page = srv.call({"type": "ReadAll", "from_position": nxt, "limit": 10000})
        assert page["ok"], page
        for e in page["events"]:
            events[e["position"]] = e
        if not page["events"]:
            break
        nxt = page["next_position"]
    return head, events


def check(srv, acked, since, full):
    """Gap-free positions from `since`; acknowledged events unchanged."""
    head, events = read_log(srv, 1 if full else since)
    first = 1 if full else since
    assert sorted(events) == list(range(first, head + 1)), "positions not gap-free"
    lost = [p for p, ev in acked.items() if (full or p >= since) and events.get(p) != ev]
    assert not lost, "acknowledged events lost or changed at positions %s" % lost[:5]
    if full:
        last = {}
        for ev in events.values():
            last[ev["order_id"]] = max(last.get(ev["order_id"], 0), ev["version"])
        for oid, version in last.items():
            o = srv.call({"type": "GetOrder", "order_id": oid})
            assert o["ok"] and o["order"]["version"] == version, (oid, o, version)
    return head


def main():
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    rng = random.Random(seed)
    srv = Server(args=["--segment-bytes", "65536", "--snapshot-every", "300",
                       "--retain-finished", "0"])
    acked, orders, kills, checked = {}, [], 0, 0
    t0 = time.monotonic()
    try:
        srv.start()
        head = 0
        for rnd in range(rounds):
            d = srv.dealer()
            sent = 0
            for i in range(rng.randint(200, 1500)):
                if not orders or rng.random() < 0.25:
                    oid = "c%d-%d" % (rnd, i)
                    orders.append(oid)
                    req = create(oid, rid="c%d-%d-create" % (rnd, i))
                else:
                    oid = rng.choice(orders)
                    req = cmd(rng.choice(STEPS), oid, rid="c%d-%d" % (rnd, i))
                d.send(msgpack.packb(req))
                sent += 1
            take = rng.randint(0, sent)
            for _ in range(take):
                assert d.poll(20000), "replies stopped in round %d" % rnd
                r = msgpack.unpackb(d.recv_multipart()[-1], raw=False)
                if r["ok"] and not r.get("duplicate"):
                    acked[r["position"]] = r["event"]
            d.close()
            srv.stop(signal.SIGKILL)
            kills += 1
            srv.start()
            full = (rnd + 1) % 25 == 0 or rnd == rounds - 1
            head = check(srv, acked, 1 if full else head + 1, full)
            checked = len(acked)
            if (rnd + 1) % 10 == 0:
                print("  %d kills, head at %d, %d acknowledged events checked (%.0f s)"
                      % (kills, head, checked, time.monotonic() - t0), flush=True)
        assert srv.stop() == 0, "SIGTERM must exit 0"
        print("%d kill -9 under pipelined load, %d acknowledged events checked, 0 lost (%.0f s)"
              % (kills, checked, time.monotonic() - t0))
        print("1 passed, 0 failed")
        return 0
    except Exception:
        traceback.print_exc()
        print("after %d kills" % kills)
        print("0 passed, 1 failed")
        return 1
    finally:
        srv.kill_and_cleanup()


if __name__ == "__main__":
    sys.exit(main())
