#!/usr/bin/python3
"""Failover as clients see it: from kill -9 of a partition's owner to the
first command a libordo router acknowledges on that partition's new owner,
on this machine. Each run starts a fresh 3-node NATS JetStream cluster on
loopback (tests/nats_cluster.py) and, for 2 partitions, their owners and a
standby of partition 0 (ordo-server --fsync replicated --nats --partition);
tests/router_load runs 4 routers, seeded with the two owners only, each
creating orders one after another; partition 0's owner is killed after 400
acknowledgements and a random wait of up to a third of the lease (so the
kill lands anywhere in the owner's renewal cycle; --seed). The figure is the time from the kill to the first
acknowledgement of a partition-0 order by the standby, and the longest a
router waited on one command across it. Medians of the runs.

    bench/ordo_routerfailover.py BUILD_DIR [--runs 5] [--lease-ms 2000] [--seed 1] [--json]
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def one(build, lease_ms, delay_s):
    sys.argv = ["bench", os.path.join(build, "engine/ordo-server")]
    import e2e_server as es
    from e2e_util import wait_for
    from nats_cluster import NatsCluster

    def log_of(s):
        with open(os.path.join(s.data, "server.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    with NatsCluster(3) as nc:
        def args(k):
            return ["--fsync", "replicated", "--nats", nc.urls, "--shards", "2",
                    "--lease-ms", str(lease_ms), "--partition", "%d/2" % k]
        a, b, s = es.Server(args=args(0)), es.Server(args=args(1)), None
        load = None
        try:
            a.start()
            b.start()
            s = es.Server(args=args(0))
            s.log = open(os.path.join(s.data, "server.log"), "ab")
            s.proc = subprocess.Popen([es.SERVER, "--data-dir", os.path.join(s.data, "d"),
                                       "--bind", s.bind, "--pub", s.pub] + s.args,
                                      stdout=s.log, stderr=s.log)
            wait_for("the standby", lambda: "following stream" in log_of(s), 30)
            load = subprocess.Popen([os.path.join(build, "tests/router_load"),
                                     "%s,%s" % (a.bind, b.bind), "b", "4", "600", "30000"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            acks, killed, kill_at = [], None, None
            for line in load.stdout:
                acks.append(json.loads(line))
                if len(acks) == 400:
                    kill_at = time.monotonic() + delay_s
                if killed is None and kill_at is not None and time.monotonic() >= kill_at:
                    a.proc.send_signal(signal.SIGKILL)
                    killed = time.monotonic() * 1000
                    a.proc.wait(30)
            load.wait(300)
            if load.returncode != 0 or killed is None:
                raise SystemExit("router_load failed (%s)" % load.returncode)
            after = [x for x in acks if x["t_ms"] > killed and x["partition"] == 0]
            first = min(x["t_ms"] for x in after if x["owner"] == s.bind) - killed
            # The longest gap between a thread's acknowledgements across the kill.
            gaps = []
            for t in range(4):
                ts = sorted(x["t_ms"] for x in acks if x["order_id"].startswith("b-%d-" % t))
                gaps.append(max(y - x for x, y in zip(ts, ts[1:])))
            return first / 1000, max(gaps) / 1000
        finally:
            if load and load.poll() is None:
                load.kill()
            for srv in (a, b, s):
                if srv:
                    srv.kill_and_cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lease-ms", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1, help="for the kills' random waits")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    firsts, waits = [], []
    rng = random.Random(a.seed)
    for r in range(a.runs):
        f, w = one(build, a.lease_ms, rng.uniform(0, a.lease_ms / 3000.0))
        firsts.append(f)
        waits.append(w)
        print("run %d/%d: first acknowledgement on the new owner %.2f s after the kill; "
              "longest wait of a client %.2f s" % (r + 1, a.runs, f, w), file=sys.stderr)
    out = {"first_ack_s": round(statistics.median(firsts), 3),
           "longest_wait_s": round(statistics.median(waits), 3),
           "runs": [round(x, 3) for x in firsts]}
    if a.json:
        print(json.dumps(out))
    else:
        print("failover seen by routing clients: first acknowledgement %.2f s after the kill "
              "(median of %d: %s); a client's longest wait %.2f s"
              % (out["first_ack_s"], a.runs, out["runs"], out["longest_wait_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
