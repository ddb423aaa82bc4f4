#!/usr/bin/python3
"""A standby's memory beside its owner's, on this machine: a fresh 3-node
NATS JetStream cluster on loopback (tests/nats_cluster.py), an owner and a
standby of one partition (ordo-server --fsync replicated --nats, both with
--retain-finished RETAIN), ordo-benchmark driving --orders whole order
lives into the owner; once the standby's log has the owner's head (read
with ordo-admin wal info, which works on any version's folder) and
RETAIN + 2 s have passed, each process's resident memory (VmRSS) and
orders in its index (ordo-admin index info). With --compare SERVER, the
same with another ordo-server binary (an older build) in the same go, the
two taking turns. Medians of the runs.

    bench/ordo_standbymem.py BUILD_DIR [--orders 200000] [--retain 5] [--runs 3]
                             [--compare SERVER] [--json]

(BUILD_DIR: a Release build, such as build-bench: its ordo-server,
ordo-benchmark and ordo-admin.)"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def admin(build, data, *what):
    p = subprocess.run([os.path.join(build, "admin/ordo-admin"), "--data-dir", data, "--json",
                        "--quiet"] + list(what), capture_output=True, text=True, timeout=600)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def one(build, server, orders, retain):
    sys.argv = ["bench", server]
    import e2e_server as es
    from e2e_failover import start_standby
    from e2e_util import wait_for
    from nats_cluster import NatsCluster
    es.SERVER = server
    with NatsCluster(3) as nc:
        args = ["--fsync", "replicated", "--nats", nc.urls, "--lease-ms", "30000",
                "--retain-finished", str(retain)]
        a = es.Server(args=args)
        b = None
        try:
            a.start()
            b = start_standby(nc, 30000, engine_args=args)
            p = subprocess.run([os.path.join(build, "bench/ordo-benchmark"), "--server", a.bind,
                                "--no-stub", "--orders", str(orders), "--duration", "3600",
                                "--warmup", "0", "--seed", "7", "--json"],
                               capture_output=True, text=True, timeout=3600)
            if p.returncode != 0:
                raise SystemExit("ordo-benchmark failed:\n%s" % p.stderr[-3000:])
            head = a.call({"type": "Ping"})["head_position"]
            standby_data = os.path.join(b.data, "d")
            wait_for("the standby at the owner's head", lambda: admin(
                build, standby_data, "wal", "info").get("last_position") == head, 600)
            time.sleep(retain + 2)  # a benchmark, not a test: the finished orders' time comes
            return {"events": head,
                    "owner_rss_mb": rss_mb(a.proc.pid), "standby_rss_mb": rss_mb(b.proc.pid),
                    "owner_indexed": admin(build, os.path.join(a.data, "d"), "index",
                                           "info").get("orders", 0),
                    "standby_indexed": admin(build, standby_data, "index",
                                             "info").get("orders", 0)}
        finally:
            a.kill_and_cleanup()
            if b:
                b.kill_and_cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    ap.add_argument("--orders", type=int, default=200000)
    ap.add_argument("--retain", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compare", help="another ordo-server, measured in the same go")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    servers = {"this build": os.path.join(build, "engine/ordo-server")}
    if a.compare:
        servers["compared"] = os.path.abspath(a.compare)
    res = {k: [] for k in servers}
    for r in range(a.runs):
        kinds = list(servers)
        kinds = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        for k in kinds:
            x = one(build, servers[k], a.orders, a.retain)
            res[k].append(x)
            print("run %d/%d, %s: %d events; RSS owner %.0f MB, standby %.0f MB; indexed "
                  "owner %d, standby %d" % (r + 1, a.runs, k, x["events"], x["owner_rss_mb"],
                                            x["standby_rss_mb"], x["owner_indexed"],
                                            x["standby_indexed"]), file=sys.stderr)
    out = {k: {f: statistics.median(x[f] for x in v) for f in v[0]} for k, v in res.items()}
    if a.json:
        print(json.dumps(out))
    else:
        for k, m in out.items():
            print("%-10s %d events: RSS owner %.0f MB, standby %.0f MB; in the index: owner "
                  "%d, standby %d" % (k, m["events"], m["owner_rss_mb"], m["standby_rss_mb"],
                                      m["owner_indexed"], m["standby_indexed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
