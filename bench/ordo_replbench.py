#!/usr/bin/python3
"""Events/s of one engine (one partition) with --fsync replicated beside
--fsync always, in one go on this machine: each run starts a fresh 3-node
NATS JetStream cluster on loopback (tests/nats_cluster.py), then
ordo-benchmark spawns the engine once with each mode, alternating which
goes first; figures are medians of the runs.

    bench/ordo_replbench.py build/bench/ordo-benchmark build/engine/ordo-server
                            [--runs 3] [--duration 8] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from nats_cluster import NatsCluster  # noqa: E402


def once(bench, server, mode, nats, a):
    args = [bench, "--spawn", server, "--no-stub", "--duration", str(a.duration),
            "--warmup", str(a.warmup), "--seed", "7", "--json", "--fsync", mode]
    if nats:
        args += ["--server-arg", "--nats", "--server-arg", nats]
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit("ordo-benchmark failed (%s):\n%s" % (mode, p.stderr[-3000:]))
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench")
    ap.add_argument("server")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = {"always": [], "replicated": []}
    for r in range(a.runs):
        order = ["always", "replicated"] if r % 2 == 0 else ["replicated", "always"]
        for mode in order:
            print("run %d/%d: --fsync %s" % (r + 1, a.runs, mode), file=sys.stderr)
            if mode == "replicated":
                with NatsCluster(3) as nc:
                    res[mode].append(once(a.bench, a.server, mode, nc.urls, a))
            else:
                res[mode].append(once(a.bench, a.server, mode, None, a))
    out = {}
    for mode, runs in res.items():
        eng = [x["engine"] for x in runs]
        out[mode] = {"events_per_s": statistics.median(e["events_per_s"] for e in eng),
                     "p50_ms": statistics.median(e["latency_us"]["p50"] for e in eng) / 1000,
                     "p99_ms": statistics.median(e["latency_us"]["p99"] for e in eng) / 1000,
                     "runs": [round(e["events_per_s"]) for e in eng]}
    if a.json:
        print(json.dumps(out))
    else:
        for mode, f in out.items():
            print("%-11s %9.0f events/s   p50 %6.2f ms   p99 %6.2f ms   runs %s"
                  % (mode, f["events_per_s"], f["p50_ms"], f["p99_ms"], f["runs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
