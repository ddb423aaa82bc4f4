"""A throwaway PostgreSQL server for tests: initdb into a temporary folder,
started on a free loopback port with its socket in that folder, stopped
(and the folder removed) at the end. PostgreSQL refuses to run as root, so
as root the server runs as the `postgres` user (Debian's package makes it).

    with PgServer() as pg:
        conninfo = pg.conninfo          # for ordo-projector --postgres
        rows = pg.query("SELECT ...")   # psycopg2
        pg.restart(mode="immediate")    # a crash: no shutdown checkpoint
"""
import glob
import os
import shutil
import subprocess
import tempfile
import time

import psycopg2

from e2e_util import free_port as _free_port  # noqa: E402


def _bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's server is not installed (Debian: postgresql)")
    return os.path.dirname(found[-1])


class PgServer:
    def __init__(self, top=None):
        self.bindir = _bindir()
        self.own_top = top is None
        self.top = top or tempfile.mkdtemp(prefix="ordo-pg-")
        self.data = os.path.join(self.top, "pgdata")
        self.port = _free_port()
        self.log = os.path.join(self.top, "postgres.log")
        self.as_root = os.geteuid() == 0
        self.conninfo = "host=127.0.0.1 port=%d user=ordo dbname=postgres" % self.port
        self.running = False

    def _run(self, args, check=True):
        cmd = [os.path.join(self.bindir, args[0])] + args[1:]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (args[0], p.returncode, p.stdout,
                                                         p.stderr))
        return p

    def __enter__(self):
        os.makedirs(self.data, exist_ok=True)
        if self.as_root:
            shutil.chown(self.top, "postgres")
            shutil.chown(self.data, "postgres")
            os.chmod(self.top, 0o755)
        self._run(["initdb", "-D", self.data, "-U", "ordo", "--auth=trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nfsync = on\n"
                    "max_connections = 20\nshared_buffers = 128MB\n"
                    "logging_collector = off\n" % (self.port, self.top))
        self.start()
        return self

    def start(self):
        self._run(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"])
        self.running = True
        deadline = time.monotonic() + 30
        while True:  # bounded poll until it takes connections
            try:
                psycopg2.connect(self.conninfo).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, mode="fast"):
        if self.running:
            self._run(["pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"],
                      check=False)
            self.running = False

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def connect(self):
        c = psycopg2.connect(self.conninfo)
        c.autocommit = True
        return c

    def query(self, sql, args=None):
        with self.connect() as c, c.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description else []
        c.close()
        return rows

    def log_tail(self, n=3000):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __exit__(self, *exc):
        self.stop("immediate")
        if self.own_top:
            shutil.rmtree(self.top, ignore_errors=True)
        return False
