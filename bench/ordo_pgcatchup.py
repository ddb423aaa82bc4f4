#!/usr/bin/python3
"""The PostgreSQL read models' catch-up speed, beside the in-memory (SQLite)
read models', in one run, on a throwaway PostgreSQL server started here
(tests/pg_server.py: initdb into a temporary folder, a free loopback port).

In-process (ordo-projbench): the realistic workload's events fed to every
SQLite model in turn, then to the PostgreSQL writer's batches
(ordo_pgbatch), --runs times; figures are medians.

    bench/ordo_pgcatchup.py build/bench/ordo-projbench [--events N] [--runs N]
                            [--batch N] [--synchronous-commit on|off]
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from pg_server import PgServer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("projbench")
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=500000)
    ap.add_argument("--only", default=None, help="one model, or postgres")
    ap.add_argument("--indexes-first", action="store_true",
                    help="the query indexes exist from the start, as once live")
    ap.add_argument("--tuned", action="store_true",
                    help="PostgreSQL with the usual settings for a bulk load: shared_buffers 2GB,"
                         " max_wal_size 8GB, checkpoint_timeout 30min, wal_buffers 64MB")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with PgServer() as pg:
        if a.tuned:
            with open(os.path.join(pg.data, "postgresql.conf"), "a") as f:
                f.write("shared_buffers = 2GB\nmax_wal_size = 8GB\n"
                        "checkpoint_timeout = 30min\nwal_buffers = 64MB\n")
            pg.restart()
        print("PostgreSQL on port %d (%s)" % (pg.port, pg.query("SHOW server_version")[0][0]),
              file=sys.stderr)
        args = [a.projbench, "--events", str(a.events), "--runs", str(a.runs),
                "--postgres", pg.conninfo, "--postgres-batch", str(a.batch)]
        if a.only:
            args += ["--only", a.only]
        if a.json:
            args.append("--json")
        if a.indexes_first:
            args.append("--indexes-first")
        return subprocess.call(args)


if __name__ == "__main__":
    sys.exit(main())
