"""A throwaway NATS JetStream cluster for tests and trials: N nats-server
nodes (Debian's nats-server) on free loopback ports, each with its own
JetStream folder under a temporary directory, routed to each other, with
max_payload 64MB (a log frame may be that large). Started and stopped by
the caller; every wait is a bounded poll.

    with NatsCluster(3) as nc:
        nc.urls                  # for ordo-server --nats
        nc.stop(1); nc.start(1)  # lose a node, bring it back
        js = JetStream(nc.client_port(0))
        js.stream_info("ORDO_P0"); js.get("ORDO_P0", 1)

JetStream here is a minimal client of NATS's text protocol and the
JetStream API over it (request and reply, JSON), enough to read a
stream's state and its messages: the tests read the stream with their
own code, not with the engine's library."""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

from e2e_util import free_port as _free_port  # noqa: E402

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


class PortTaken(Exception):
    pass


class NatsCluster:
    def __init__(self, nodes=3, top=None):
        self.n = nodes
        self.own_top = top is None
        self.top = top or tempfile.mkdtemp(prefix="ordo-nats-")
        os.makedirs(self.top, exist_ok=True)
        self.ports = [(_free_port(), _free_port(), _free_port()) for _ in range(nodes)]
        self.procs = [None] * nodes
        self.logs = [None] * nodes

    @property
    def urls(self):
        return ",".join("nats://127.0.0.1:%d" % p[0] for p in self.ports)

    def client_port(self, i):
        return self.ports[i][0]

    def _conf(self, i):
        client, route, monitor = self.ports[i]
        routes = ", ".join("nats-route://127.0.0.1:%d" % p[1]
                           for j, p in enumerate(self.ports) if j != i)
        store = os.path.join(self.top, "n%d" % i)
        os.makedirs(store, exist_ok=True)
        path = os.path.join(self.top, "n%d.conf" % i)
        with open(path, "w") as f:
            f.write('server_name: "n%d"\nlisten: "127.0.0.1:%d"\nhttp: "127.0.0.1:%d"\n'
                    'max_payload: 64MB\nmax_pending: 128MB\n'
                    'jetstream { store_dir: "%s", max_memory_store: 64MB, max_file_store: 4GB }\n'
                    % (i, client, monitor, store))
            if self.n > 1:
                f.write('cluster { name: "ordo", listen: "127.0.0.1:%d", routes: [%s] }\n'
                        % (route, routes))
        return path

    def start(self, i=None):
        nodes = [i] if i is not None else list(range(self.n))
        for attempt in range(3):
            for k in nodes:
                self.logs[k] = open(os.path.join(self.top, "n%d.log" % k), "ab")
                self.procs[k] = subprocess.Popen([NATS_SERVER, "-c", self._conf(k)],
                                                 stdout=self.logs[k], stderr=self.logs[k])
            try:
                self.wait_ready()
                return self
            except PortTaken:
                # Another program took a port between _free_port() and the
                # bind: the whole cluster again on fresh ports (routes
                # name them all).
                if i is not None or attempt == 2:
                    raise
                for k in range(self.n):
                    self.stop(k, kill=True)
                self.ports = [(_free_port(), _free_port(), _free_port()) for _ in range(self.n)]
        return self

    def running(self):
        return [k for k in range(self.n) if self.procs[k] and self.procs[k].poll() is None]

    def wait_ready(self, timeout=60):
        """Bounded poll: every running node answers, and JetStream's meta
        group has a leader that they all know."""
        deadline = time.monotonic() + timeout
        while True:
            ok = True
            for k in self.running():
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/jsz" % self.ports[k][2],
                                                timeout=1) as r:
                        jsz = json.loads(r.read())
                    if self.n > 1 and not (jsz.get("meta_cluster") or {}).get("leader"):
                        ok = False
                except OSError:
                    ok = False
            if ok:
                return
            for k in range(self.n):
                p = self.procs[k]
                if p and p.poll() is not None and p.returncode not in (0, -9, -15):
                    if "address already in use" in self.log_tail(k).lower():
                        raise PortTaken(self.log_tail(k))
                    raise AssertionError("nats-server n%d exited with %s:\n%s"
                                         % (k, p.returncode, self.log_tail(k)))
            if time.monotonic() > deadline:
                raise AssertionError("the NATS cluster is not ready after %d s" % timeout)
            time.sleep(0.1)

    def serving(self, client_name):
        """The nodes a client of this name is connected to (monitoring's
        /connz)."""
        out = []
        for k in self.running():
            with urllib.request.urlopen("http://127.0.0.1:%d/connz" % self.ports[k][2],
                                        timeout=5) as r:
                conns = json.loads(r.read()).get("connections") or []
            if any(c.get("name") == client_name for c in conns):
                out.append(k)
        return out

    def stop(self, i, kill=False):
        p = self.procs[i]
        if p and p.poll() is None:
            p.kill() if kill else p.terminate()
            p.wait(30)
        self.procs[i] = None
        if self.logs[i]:
            self.logs[i].close()
            self.logs[i] = None

    def log_tail(self, i, n=2000):
        try:
            with open(os.path.join(self.top, "n%d.log" % i), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        for k in range(self.n):
            self.stop(k, kill=True)
        if self.own_top:
            shutil.rmtree(self.top, ignore_errors=True)
        return False


class JetStream:
    """A minimal NATS client: CONNECT, one inbox, JetStream API requests."""

    def __init__(self, port, timeout=10):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self._line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                          b'"no_responders":true,"lang":"python-test","version":"0"}\r\n'
                          b'SUB _INBOX.ordo-test 1\r\nPING\r\n')
        while self._line() != b"PONG":
            pass

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("NATS closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def request(self, subject, body):
        payload = json.dumps(body).encode() if body is not None else b""
        self.sock.sendall(b"PUB %s _INBOX.ordo-test %d\r\n%s\r\n"
                          % (subject.encode(), len(payload), payload))
        while True:
            line = self._line()
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                return json.loads(self._bytes(int(line.split()[-1])))
            elif line.startswith(b"HMSG "):
                parts = line.split()
                hlen, total = int(parts[-2]), int(parts[-1])
                data = self._bytes(total)
                if b"503" in data[:hlen]:
                    raise ConnectionError("no JetStream responders for %s" % subject)
                return json.loads(data[hlen:])
            elif line.startswith(b"-ERR"):
                raise ConnectionError(line.decode())

    def stream_info(self, stream):
        return self.request("$JS.API.STREAM.INFO." + stream, None)

    def get(self, stream, seq):
        """(headers dict, data bytes) of message `seq`, or None if none."""
        r = self.request("$JS.API.STREAM.MSG.GET." + stream, {"seq": seq})
        if "error" in r:
            return None
        m = r["message"]
        headers = {}
        raw = base64.b64decode(m.get("hdrs", "")) if m.get("hdrs") else b""
        for line in raw.split(b"\r\n")[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.decode().strip()] = v.decode().strip()
        return headers, base64.b64decode(m.get("data", ""))

    def close(self):
        self.sock.close()
