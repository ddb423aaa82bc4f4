"""Helpers the end-to-end tests share: a free loopback port, a bounded poll
(the only way a test waits: never a bare sleep as synchronisation), and a
Ping that cannot answer a later request."""
import socket
import sys
import time

import msgpack
import zmq


_given = set()


def free_port():
    """A loopback port nobody listens on now, and never one this process
    was given before: two asked for in a row (a server's requests and its
    metrics) may otherwise be the same, the first being free again until
    its server binds it. Another program may still take it before we
    bind: a server's start retries with a new one."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port


def wait_for(what, check, timeout=60.0):
    """Calls check() until it returns a true value, which it returns; fails
    after `timeout` seconds, naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def ping(endpoint, timeout_ms=200):
    """One Ping to an engine on a socket of its own, closed after (a late
    reply goes with it instead of answering a later request): the reply,
    or None if none came within timeout_ms."""
    probe = zmq.Context.instance().socket(zmq.DEALER)
    probe.setsockopt(zmq.LINGER, 0)
    probe.connect(endpoint)
    try:
        probe.send(msgpack.packb({"type": "Ping"}))
        return msgpack.unpackb(probe.recv()) if probe.poll(timeout_ms) else None
    finally:
        probe.close()


def run_tests(tests, on_fail=None):
    """Runs (name, fn) pairs in order, each to its end whatever the others
    did; fn returns a reason to skip, or None. Prints ok/FAIL/skip with the
    time taken and a count, and calls on_fail() (if given) after a failure
    to print what else tells why; returns the exit status (1 if any
    failed)."""
    import traceback
    passed = failed = 0
    for name, fn in tests:
        t0 = time.monotonic()
        try:
            skipped = fn()
            if skipped:
                print("skip %s: %s" % (name, skipped))
                continue
            passed += 1
            print("ok   %s (%.1f s)" % (name, time.monotonic() - t0))
        except Exception:
            failed += 1
            print("FAIL %s" % name)
            traceback.print_exc()
            if on_fail:
                on_fail()
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
