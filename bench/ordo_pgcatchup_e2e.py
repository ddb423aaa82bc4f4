#!/usr/bin/python3
"""The real ordo-projector --postgres catching up from position 1: a
throwaway PostgreSQL (tests/pg_server.py), the real engine filled by
ordo-benchmark with --orders whole order lives, then a fresh projector;
prints how long its PostgreSQL checkpoint takes to reach the engine's head,
and its query indexes after. The projector's five SQLite read models catch
up at the same time, on the same cores.

    bench/ordo_pgcatchup_e2e.py BUILD_DIR [--orders N] [--batch N]

(BUILD_DIR: a Release build, such as build-bench.)"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    ap.add_argument("--orders", type=int, default=360000, help="about 5.5 events each")
    ap.add_argument("--batch", type=int, default=500000)
    a = ap.parse_args()
    b = os.path.abspath(a.build)
    sys.argv = ["bench", os.path.join(b, "engine/ordo-server"),
                os.path.join(b, "projections/ordo-projector"),
                os.path.join(b, "bench/ordo-benchmark")]
    import e2e_postgres as t  # the tests' engine and projector harness
    from pg_server import PgServer
    top = tempfile.mkdtemp(prefix="ordo-pgcatchup-")
    with PgServer() as pg:
        e = t.Engine(top).start()
        print("filling the engine with %d orders..." % a.orders, file=sys.stderr)
        subprocess.run([t.BENCH, "--server", e.bind, "--no-stub", "--orders", str(a.orders),
                        "--duration", "3600", "--warmup", "0", "--seed", "3"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        head = e.head()
        print("engine head %d; starting the projector" % head, file=sys.stderr)
        p = t.Projector(top, e, pg, batch=a.batch)
        t0 = time.monotonic()
        p.start()
        t.wait_for("the head", lambda: t.checkpoint(pg) == head, timeout=3600)
        t1 = time.monotonic()
        t.wait_for("the query indexes", lambda: pg.query(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'ordo' AND indexname IN"
            " ('orders_open_by_restaurant', 'orders_by_user', 'order_status_history_by_order',"
            "  'order_status_history_as_of')")[0][0] == 4, timeout=3600)
        t2 = time.monotonic()
        print("postgres: %d events to the head in %.1f s (%.0f events/s); query indexes %.1f s "
              "later (%.0f events/s in all)" % (head, t1 - t0, head / (t1 - t0), t2 - t1,
                                                head / (t2 - t0)))
        p.kill()
        e.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
