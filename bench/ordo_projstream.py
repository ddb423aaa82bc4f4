#!/usr/bin/python3
"""How fast a fresh ordo-projector catches up reading a partition's stream
in NATS JetStream (--nats) beside one reading the engine (ReadAll + PUB),
in one go on this machine: a 3-node JetStream cluster on loopback
(tests/nats_cluster.py), one engine with --fsync replicated filled by
ordo-benchmark with --orders whole order lives, then fresh projectors
(new folders, new durable consumers), the two kinds alternating; each run
is timed from the start of the projector to all five read models at the
engine's head. Figures are medians of the runs.

    bench/ordo_projstream.py BUILD_DIR [--orders 100000] [--runs 3]
                             [--compare PROJECTOR] [--json]

(BUILD_DIR: a Release build, such as build-bench.) --compare times
another ordo-projector binary (an older build) on the stream too, in the
same runs, the three kinds taking turns going first."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from e2e_util import free_port, wait_for  # noqa: E402
from nats_cluster import NatsCluster  # noqa: E402


def call(endpoint, req, timeout_ms=10000):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send(msgpack.packb(req))
        if not s.poll(timeout_ms):
            return None
        return msgpack.unpackb(s.recv_multipart()[-1], raw=False)
    finally:
        s.close()


def catch_up(projector, top, engine, pub, head, extra, n):
    """Seconds from a fresh projector's start to all models at `head`."""
    data = os.path.join(top, "proj-%d" % n)
    bind = "tcp://127.0.0.1:%d" % free_port()
    log = open(os.path.join(top, "proj-%d.log" % n), "wb")
    t0 = time.monotonic()
    p = subprocess.Popen([projector, "--engine", engine,
                          "--engine-pub", pub, "--bind", bind, "--data-dir", data] + extra,
                         stdout=log, stderr=log)

    def at_head():
        r = call(bind, {"type": "ProjectionStatus"}, 1000)
        ps = (r or {}).get("projections") or []
        return len(ps) == 5 and all(x.get("position") == head for x in ps)
    try:
        wait_for("the projector at the head", at_head, timeout=3600)
        return time.monotonic() - t0
    finally:
        p.terminate()
        p.wait(60)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    ap.add_argument("--orders", type=int, default=100000, help="about 5.5 events each")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compare", help="another ordo-projector, timed on the stream too")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    b = os.path.abspath(a.build)
    top = tempfile.mkdtemp(prefix="ordo-projstream-")
    projector = os.path.join(b, "projections/ordo-projector")
    res = {"engine": [], "stream": []}
    if a.compare:
        res["stream (compared)"] = []
    with NatsCluster(3) as nc:
        bind = "tcp://127.0.0.1:%d" % free_port()
        pub = "tcp://127.0.0.1:%d" % free_port()
        elog = open(os.path.join(top, "engine.log"), "wb")
        eng = subprocess.Popen([os.path.join(b, "engine/ordo-server"), "--data-dir",
                                os.path.join(top, "engine"), "--bind", bind, "--pub", pub,
                                "--fsync", "replicated", "--nats", nc.urls],
                               stdout=elog, stderr=elog)
        try:
            wait_for("the engine", lambda: call(bind, {"type": "Ping"}, 300), 60)
            print("filling the engine with %d orders..." % a.orders, file=sys.stderr)
            subprocess.run([os.path.join(b, "bench/ordo-benchmark"), "--server", bind,
                            "--no-stub", "--orders", str(a.orders), "--duration", "3600",
                            "--warmup", "0", "--seed", "3"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            head = call(bind, {"type": "Ping"})["head_position"]
            print("engine head %d" % head, file=sys.stderr)
            n = 0
            for r in range(a.runs):
                kinds = list(res)
                kinds = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
                for kind in kinds:
                    n += 1
                    extra = [] if kind == "engine" else [
                        "--nats", nc.urls, "--nats-durable", "bench-%d" % n]
                    prog = os.path.abspath(a.compare) if kind == "stream (compared)" else projector
                    s = catch_up(prog, top, bind, pub, head, extra, n)
                    res[kind].append(head / s)
                    print("run %d/%d, from the %s: %.1f s, %.0f events/s"
                          % (r + 1, a.runs, kind, s, head / s), file=sys.stderr)
        finally:
            eng.terminate()
            eng.wait(60)
            elog.close()
    shutil.rmtree(top, ignore_errors=True)
    out = {k: {"events_per_s": round(statistics.median(v)), "runs": [round(x) for x in v]}
           for k, v in res.items()}
    out["events"] = head
    if a.json:
        print(json.dumps(out))
    else:
        for k in res:
            print("catch-up from the %-17s %9d events/s (runs %s), %d events"
                  % (k, out[k]["events_per_s"], out[k]["runs"], head))
    return 0


if __name__ == "__main__":
    sys.exit(main())
