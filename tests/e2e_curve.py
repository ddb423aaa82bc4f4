#!/usr/bin/python3
"""CURVE end to end: ordo-keygen's certificates, the real ordo-server with
--curve-secret / --curve-clients bound beyond loopback, ordo-cli and
ordo-projector with their keys, and everyone else.

Checked: settings refused with exit 2 (a bind beyond loopback without
CURVE unless --insecure, half a CURVE pair, a missing folder, a public
certificate given as the secret one); ordo-keygen's files and its refusal
to overwrite; a listed client is served over DEALER and SUB; an unlisted
client, a plain client, a plain SUB and an unlisted SUB get nothing, their
commands change nothing, and the listed client is served all along;
ordo-cli (commands and tail) with keys, and exit 3 without; ordo-projector
following the CURVE engine and answering only its own listed clients.

Usage: e2e_curve.py ordo-server ordo-cli ordo-keygen ordo-projector"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack
import zmq
import zmq.auth

from e2e_util import free_port  # noqa: E402,F401  (also for importers)

SERVER, CLI, KEYGEN, PROJECTOR = sys.argv[1:5]


def run(args, timeout=60, env=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def keygen(path):
    p = run([KEYGEN, path])
    assert p.returncode == 0, p.stderr
    return path


class Keys:
    """Certificates made by ordo-keygen in a temporary folder."""

    def __init__(self, top):
        self.top = top
        self.clients = os.path.join(top, "clients")  # the engine's allow-list
        self.pclients = os.path.join(top, "pclients")  # the projector's
        os.makedirs(self.clients)
        os.makedirs(self.pclients)
        self.server = keygen(os.path.join(top, "server"))
        self.alice = keygen(os.path.join(top, "alice"))  # let in by both
        self.bob = keygen(os.path.join(top, "bob"))  # let in by no one
        self.proj = keygen(os.path.join(top, "proj"))  # the projector, towards the engine
        self.projsrv = keygen(os.path.join(top, "projsrv"))  # the projector's own ROUTER
        for name in ("alice", "proj"):
            shutil.copy(os.path.join(top, name), self.clients)
        shutil.copy(self.alice, self.pclients)
        # Not certificates, and a repeated key: skipped, with a warning.
        with open(os.path.join(self.clients, "README"), "w") as f:
            f.write("public certificates of the clients let in\n")
        shutil.copy(self.alice, os.path.join(self.clients, "alice-again"))

    def pair(self, name):
        """(public, secret) of a certificate, as pyzmq reads czmq's files."""
        return zmq.auth.load_certificate(os.path.join(self.top, name + "_secret"))

    def public(self, name):
        return zmq.auth.load_certificate(os.path.join(self.top, name))[0]


class Server:
    def __init__(self, keys, data):
        self.keys = keys
        self.data = data
        self.port = free_port()
        self.pub_port = free_port()
        # Beyond loopback: allowed because CURVE guards it; reached over 127.0.0.1.
        self.bind = "tcp://127.0.0.1:%d" % self.port
        self.pub = "tcp://127.0.0.1:%d" % self.pub_port
        self.ctx = zmq.Context.instance()
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.data, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [SERVER, "--data-dir", os.path.join(self.data, "d"),
             "--bind", "tcp://0.0.0.0:%d" % self.port, "--pub", "tcp://0.0.0.0:%d" % self.pub_port,
             "--curve-secret", self.keys.server + "_secret", "--curve-clients", self.keys.clients],
            stdout=self.log, stderr=self.log)
        probe = self.dealer("alice")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # bounded poll until it answers
                assert self.proc.poll() is None, "server exited with %s" % self.proc.returncode
                probe.send(msgpack.packb({"type": "Ping"}))
                if probe.poll(200):
                    return self
            raise AssertionError("server did not answer Ping within 30 s")
        finally:
            probe.close()

    def secure(self, s, name):
        if name:
            pub, sec = self.keys.pair(name)
            s.curve_serverkey = self.keys.public("server")
            s.curve_publickey = pub
            s.curve_secretkey = sec

    def dealer(self, name):
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        self.secure(s, name)
        s.connect(self.bind)
        return s

    def sub(self, name):
        s = self.ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        self.secure(s, name)
        s.connect(self.pub)
        return s

    def log_text(self):
        with open(os.path.join(self.data, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(60)
        return self.proc.returncode if self.proc else 0

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def call(sock, req, timeout_ms=10000):
    sock.send(msgpack.packb(req))
    assert sock.poll(timeout_ms), "no reply to %r" % (req,)
    return msgpack.unpackb(sock.recv_multipart()[-1], raw=False)


def create(order_id):
    return {"type": "CreateOrder", "order_id": order_id, "request_id": "r-" + order_id,
            "data": {"user_id": 1, "restaurant_id": 2, "delivery_address": "1 Main St",
                     "items": [{"sku": "s", "name": "n", "qty": 1, "price_cents": 100}]}}


def test_settings(keys, top):
    """Refused settings exit 2 with a message and touch nothing."""
    data = os.path.join(top, "refused")
    lo = "tcp://127.0.0.1:%d" % free_port()
    cases = [
        (["--bind", "tcp://0.0.0.0:%d" % free_port(), "--pub", lo], "--insecure"),
        (["--pub", "tcp://*:%d" % free_port()], "--insecure"),
        (["--bind", "tcp://eth0:%d" % free_port()], "--insecure"),
        (["--curve-secret", keys.server + "_secret"], "--curve-clients"),
        (["--curve-clients", keys.clients], "--curve-secret"),
        (["--curve-secret", keys.server + "_secret", "--curve-clients", top + "/none"], "folder"),
        (["--curve-secret", os.path.join(keys.clients, "alice"), "--curve-clients", keys.clients],
         "no secret key"),
        (["--curve-secret", top + "/missing", "--curve-clients", keys.clients], "no such file"),
    ]
    for args, words in cases:
        p = run([SERVER, "--data-dir", data] + args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert words in p.stderr, (args, p.stderr)
        assert not os.path.exists(data), args
    # The same refusal through the environment.
    env = dict(os.environ, ORDO_CURVE_SECRET=keys.server + "_secret")
    p = run([SERVER, "--data-dir", data], env=env)
    assert p.returncode == 2 and "--curve-clients" in p.stderr, p.stderr
    # --insecure lets a bind beyond loopback through, and plain clients in.
    port = free_port()
    proc = subprocess.Popen([SERVER, "--data-dir", data, "--insecure",
                             "--bind", "tcp://0.0.0.0:%d" % port,
                             "--pub", "tcp://127.0.0.1:%d" % free_port()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect("tcp://127.0.0.1:%d" % port)
        assert call(s, {"type": "Ping"}, 30000)["ok"]
        s.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        err = proc.stderr.read().decode()
        proc.stderr.close()
    assert "--insecure" in err, err  # it says so in its log


def test_keygen(keys, top):
    st = os.stat(keys.server + "_secret")
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    before = open(keys.server + "_secret").read()
    p = run([KEYGEN, keys.server])
    assert p.returncode == 1 and "exists" in p.stderr, (p.returncode, p.stderr)
    assert open(keys.server + "_secret").read() == before, "overwrote a key"
    p = run([KEYGEN, "--json", os.path.join(top, "carol")])
    assert p.returncode == 0, p.stderr
    out = __import__("json").loads(p.stdout)
    assert out["public_key"] == keys.public("carol").decode(), out
    assert run([KEYGEN, "--help"]).returncode == 0


def test_signals_blocked(srv):
    """With CURVE, czmq's zauth runs a thread of its own: like every thread
    of the server it must block SIGTERM and SIGINT, or a stop signal could
    land there and kill the process without a clean stop. Read from
    /proc: every thread's blocked mask holds both, but the main thread's,
    which takes them in sigtimedwait (Linux unblocks what it waits for
    while it waits)."""
    tasks = [t for t in os.listdir("/proc/%d/task" % srv.proc.pid) if t != str(srv.proc.pid)]
    assert len(tasks) > 5, tasks
    for t in tasks:
        with open("/proc/%d/task/%s/status" % (srv.proc.pid, t)) as f:
            blk = int([line for line in f if line.startswith("SigBlk:")][0].split()[1], 16)
        for sig in (signal.SIGTERM, signal.SIGINT):
            assert blk & (1 << (sig - 1)), (t, hex(blk), sig)
    # Two stop signals close together still give one clean stop (below, exit 0).
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.send_signal(signal.SIGTERM)


def test_listed_and_others(srv):
    """Only listed keys get in, on DEALER and on SUB; the rest get nothing
    and disturb no one."""
    alice, alice_sub = srv.dealer("alice"), srv.sub("alice")
    bob, plain = srv.dealer("bob"), srv.dealer(None)
    bob_sub, plain_sub = srv.sub("bob"), srv.sub(None)
    try:
        for s, who in ((bob, "bob"), (plain, "plain")):
            for i in range(20):  # commands that must never run
                s.send(msgpack.packb(create("%s-%d" % (who, i))))
        # Alice's SUB: subscriptions travel after the handshake, so create
        # orders until one shows (bounded).
        n = 0
        deadline = time.monotonic() + 30
        while not alice_sub.poll(50):
            assert time.monotonic() < deadline, "alice's SUB received nothing"
            r = call(alice, create("warm-%d" % n))
            assert r["ok"], r
            n += 1
        seen = 0
        while alice_sub.poll(0):
            alice_sub.recv_multipart()
            seen += 1
        for i in range(200):  # served all along
            r = call(alice, create("alice-%d" % i))
            assert r["ok"], r
        got = 0
        while got < 200:
            assert alice_sub.poll(10000), "alice's SUB missed events (%d of 200)" % got
            frames = alice_sub.recv_multipart()
            ev = msgpack.unpackb(frames[-1], raw=False)
            if ev["order_id"].startswith("alice-"):
                got += 1
        for s, who in ((bob, "bob"), (plain, "plain")):
            assert not s.poll(0), "%s got a reply" % who
        for s, who in ((bob_sub, "bob's SUB"), (plain_sub, "a plain SUB")):
            assert not s.poll(0), "%s received an event" % who
        for who in ("bob", "plain"):  # and nothing they sent was done
            r = call(alice, {"type": "GetOrder", "order_id": "%s-0" % who})
            assert not r["ok"] and r["error"]["code"] == "not_found", r
        st = call(alice, {"type": "Stats"})
        assert st["ok"] and st["stats"]["orders"] == n + 200, st
    finally:
        for s in (alice, alice_sub, bob, plain, bob_sub, plain_sub):
            s.close()
    log = srv.log_text()
    assert "2 client keys let in" in log, log
    assert "README" in log and "alice-again" in log, log  # skipped, with a warning


def test_cli(srv, keys):
    base = [CLI, "--endpoint", srv.bind, "--pub", srv.pub, "--timeout", "3000"]
    alice = ["--curve-server", keys.server, "--curve-cert", keys.alice + "_secret"]
    p = run(base + alice + ["--json", "get", "alice-1"])
    assert p.returncode == 0 and '"order_id":"alice-1"' in p.stdout, (p.returncode, p.stdout, p.stderr)
    p = run(base + alice + ["--json", "tail", "--from", "1", "--count", "3"])
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 3, (p.returncode, p.stdout, p.stderr)
    env = dict(os.environ, ORDO_CURVE_SERVER=keys.server, ORDO_CURVE_CERT=keys.alice + "_secret")
    assert run(base + ["ping"], env=env).returncode == 0
    for args, status in (([], 3),  # plain: no answer
                         (["--curve-server", keys.server, "--curve-cert", keys.bob + "_secret"], 3),
                         (["--curve-server", keys.server], 2),
                         # PATH (public) finds PATH_secret beside it, as czmq does: bob's
                         # key, which is not listed
                         (["--curve-server", keys.server, "--curve-cert", keys.bob], 3),
                         (["--curve-server", keys.server,
                           "--curve-cert", os.path.join(keys.clients, "alice")], 2),
                         (["--curve-server", "/nonexistent", "--curve-cert", keys.alice], 2)):
        p = run(base + args + ["--timeout", "1000", "ping"])
        assert p.returncode == status, (args, p.returncode, p.stderr)
    p = run(base + ["--curve-server", keys.server, "--curve-cert",
                    os.path.join(keys.clients, "alice"), "ping"])
    assert "no secret key" in p.stderr, p.stderr


def test_projector(srv, keys, top):
    """The projector follows the CURVE engine with its own key and answers
    only clients of its own allow-list."""
    port = free_port()
    bind = "tcp://127.0.0.1:%d" % port
    log = open(os.path.join(top, "projector.log"), "ab")
    proc = subprocess.Popen(
        [PROJECTOR, "--engine", srv.bind, "--engine-pub", srv.pub, "--bind", bind,
         "--data-dir", os.path.join(top, "proj-data"),
         "--curve-server", keys.server, "--curve-cert", keys.proj + "_secret",
         "--curve-secret", keys.projsrv + "_secret", "--curve-clients", keys.pclients],
        stdout=log, stderr=log)
    try:
        base = [CLI, "--projector", bind, "--timeout", "3000"]
        alice = ["--curve-server", keys.projsrv, "--curve-cert", keys.alice + "_secret"]
        p = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded: until it has caught up
            p = run(base + alice + ["--json", "summary", "alice-199", "--min-position", "1",
                                    "--wait-ms", "2000"])
            if p.returncode == 0:
                break
            assert proc.poll() is None, "projector exited with %s" % proc.returncode
        assert p.returncode == 0 and '"order_id":"alice-199"' in p.stdout, (p.stdout, p.stderr)
        for args in ([], ["--curve-server", keys.projsrv, "--curve-cert", keys.bob + "_secret"]):
            p = run(base + args + ["--timeout", "1000", "projections"])
            assert p.returncode == 3, (args, p.returncode, p.stdout, p.stderr)
        # Refused: its own ROUTER beyond loopback without CURVE.
        p = run([PROJECTOR, "--bind", "tcp://0.0.0.0:%d" % free_port(),
                 "--data-dir", os.path.join(top, "p2")])
        assert p.returncode == 2 and "--insecure" in p.stderr, p.stderr
        p = run([PROJECTOR, "--curve-server", keys.server, "--data-dir", os.path.join(top, "p2")])
        assert p.returncode == 2 and "--curve-cert" in p.stderr, p.stderr
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        log.close()


def run_steps(steps, counts):
    """Runs each (name, fn), printing ok or FAIL; counts = [passed, failed]."""
    for name, fn in steps:
        try:
            fn()
            counts[0] += 1
            print("ok   %s" % name)
        except Exception:
            counts[1] += 1
            print("FAIL %s" % name)
            traceback.print_exc()


def main():
    top = tempfile.mkdtemp(prefix="ordo-curve-")
    counts = [0, 0]
    srv = None
    try:
        keys = Keys(top)
        run_steps([("settings refused", lambda: test_settings(keys, top)),
                   ("ordo-keygen", lambda: test_keygen(keys, top))], counts)
        data = os.path.join(top, "engine-data")
        os.makedirs(data)
        srv = Server(keys, data).start()
        run_steps([("listed client served, others get nothing",
                    lambda: test_listed_and_others(srv)),
                   ("ordo-cli with and without keys", lambda: test_cli(srv, keys)),
                   ("ordo-projector both ways", lambda: test_projector(srv, keys, top)),
                   ("every thread blocks the stop signals", lambda: test_signals_blocked(srv))],
                  counts)
        rc = srv.stop()
        if rc != 0:
            counts[1] += 1
            print("FAIL server exit status %s" % rc)
    except Exception:
        counts[1] += 1
        traceback.print_exc()
    finally:
        if srv:
            srv.kill()
            if counts[1]:
                sys.stdout.write(srv.log_text()[-4000:])
        shutil.rmtree(top, ignore_errors=True)
    print("%d passed, %d failed" % tuple(counts))
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())
