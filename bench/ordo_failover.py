#!/usr/bin/python3
"""Failover time of one partition: from kill -9 of the owner to the first
command the new owner acknowledges, on this machine. Each run starts a
fresh 3-node NATS JetStream cluster on loopback (tests/nats_cluster.py),
an owner and a standby (ordo-server --fsync replicated --nats), has a
client send commands to the owner as fast as it reads their replies, kills
the owner once 2,000 are acknowledged and then a random wait of up to a
third of the lease (the owner renews its lease every third: so the kill
lands anywhere in that cycle, not always at the same point of it, which
would make the figure an artefact of the timing), then asks the standby with one
CreateOrder (one request_id, retried every 100 ms) until it is
acknowledged. Figures are medians of the runs. With --preload-orders N,
ordo-benchmark first drives N whole orders (about 6 events each) into the
owner, so that the standby takes over a long log; the standby's own
figure for its takeover (the lease won to the stream claimed: catching up
and reconciling) is read from its log line "took over ... in X ms".

    bench/ordo_failover.py build/engine/ordo-server [--runs 5] [--lease-ms 2000]
                           [--preload-orders N] [--bench build/bench/ordo-benchmark] [--json]
"""
import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def preload(bench, endpoint, orders):
    """Drives `orders` whole orders into the engine at `endpoint`; its events."""
    p = subprocess.run([bench, "--server", endpoint, "--no-stub", "--orders", str(orders),
                        "--duration", "3600", "--warmup", "0", "--seed", "7", "--json"],
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit("ordo-benchmark failed:\n%s" % p.stderr[-3000:])
    return json.loads(p.stdout)["engine"]["events"]


def took_over_ms(server):
    """The standby's figure from its log: the lease won to the stream claimed."""
    with open(os.path.join(server.data, "server.log"), "rb") as f:
        m = re.search(rb"took over at position (\d+) in ([0-9.]+) ms", f.read())
    if not m:
        raise SystemExit("the standby's log has no \"took over ... in X ms\" line")
    return int(m.group(1)), float(m.group(2))


def one(es, NatsCluster, start_standby, lease_ms, bench=None, orders=0, delay_s=0.0):
    with NatsCluster(3) as nc:
        args = ["--fsync", "replicated", "--nats", nc.urls, "--shards", "2",
                "--lease-ms", str(lease_ms)]
        a = es.Server(args=args)
        b = None
        try:
            a.start()
            b = start_standby(nc, lease_ms)
            if orders:
                preload(bench, a.bind, orders)
            acked, stop = [0], threading.Event()

            def client():
                sock = a.dealer()
                i = 0
                try:
                    while not stop.is_set():
                        for _ in range(100):
                            try:  # never blocks: once the owner is dead its queue fills
                                sock.send(msgpack.packb(es.create("f-%d" % i)), zmq.NOBLOCK)
                            except zmq.Again:
                                break
                            i += 1
                        while sock.poll(1):
                            if msgpack.unpackb(sock.recv_multipart()[-1], raw=False).get("ok"):
                                acked[0] += 1
                finally:
                    sock.close()

            t = threading.Thread(target=client, daemon=True)
            t.start()
            deadline = time.monotonic() + 60
            while acked[0] < 2000 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(delay_s)  # under load: where the kill lands in the renewal cycle
            a.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            stop.set()
            while True:
                sock = b.dealer()
                try:
                    sock.send(msgpack.packb(es.create("after", rid="after")))
                    if sock.poll(100) and \
                            msgpack.unpackb(sock.recv_multipart()[-1], raw=False).get("ok"):
                        return time.monotonic() - killed, took_over_ms(b)
                finally:
                    sock.close()
                if time.monotonic() - killed > 60:
                    raise SystemExit("no acknowledgement from the standby within 60 s")
        finally:
            a.kill_and_cleanup()
            if b:
                b.kill_and_cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lease-ms", type=int, default=2000)
    ap.add_argument("--preload-orders", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1, help="for the kills' random waits")
    ap.add_argument("--bench", help="ordo-benchmark (default: beside the server's build)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    bench = a.bench or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(a.server))),
                                    "bench", "ordo-benchmark")
    sys.argv = [sys.argv[0], a.server]  # e2e_server reads the server from argv
    import e2e_server as es
    from e2e_failover import start_standby
    from nats_cluster import NatsCluster
    times, takeovers, heads = [], [], []
    rng = random.Random(a.seed)
    for r in range(a.runs):
        s, (head, ms) = one(es, NatsCluster, start_standby, a.lease_ms, bench, a.preload_orders,
                            rng.uniform(0, a.lease_ms / 3000.0))
        times.append(s)
        takeovers.append(ms)
        heads.append(head)
        print("run %d/%d: %.2f s (the standby took over at position %d in %.1f ms)"
              % (r + 1, a.runs, s, head, ms), file=sys.stderr)
    out = {"lease_ms": a.lease_ms, "median_s": statistics.median(times),
           "min_s": min(times), "max_s": max(times), "runs_s": [round(t, 3) for t in times],
           "takeover_ms_median": statistics.median(takeovers),
           "takeover_ms_runs": takeovers, "log_head_median": statistics.median(heads)}
    if a.json:
        print(json.dumps(out))
    else:
        print("failover (kill -9 to the first acknowledged command), lease %d ms: median %.2f s "
              "(min %.2f, max %.2f, %d runs); the standby's takeover %.1f ms median at "
              "position %d" % (a.lease_ms, out["median_s"], out["min_s"], out["max_s"], a.runs,
                               out["takeover_ms_median"], out["log_head_median"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
