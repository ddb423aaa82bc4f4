#!/usr/bin/python3
"""ordo-admin on real data folders: version 0.2's fixture (its figures
match what the engine wrote), beside a running engine under load (verify
passes, the engine goes on), and on damaged copies: a flipped byte, a
segment cut short, a segment missing, a segment of another log, a hole, a
torn tail (not damage), a frame removed and two frames swapped (their
checksums all good), a damaged snapshot. Each fault is named by file
and byte offset with exit status 1; nothing crashes.

Usage: e2e_admin.py ordo-admin ordo-server"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack

ADMIN = sys.argv[1]
sys.argv = [sys.argv[0], sys.argv[2]]  # e2e_server reads the server's path from argv[1]
import e2e_server  # noqa: E402,F401
from e2e_server import Server, create  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "schema1")
SEGS = ["00000000000000000001.wal", "00000000000000000688.wal", "00000000000000001380.wal"]


def admin(data, *args):
    p = subprocess.run([ADMIN, "--data-dir", data, "--quiet"] + list(args), capture_output=True,
                       text=True, timeout=120)
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def copy_fixture(top, name):
    d = os.path.join(top, name)
    shutil.copytree(FIXTURE, d)
    return d


def crc32c(data):
    """CRC32C (Castagnoli), as the log's frames use it."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frames(data, seg):
    """(offset, clen) of each frame of a segment, from wal info's own walk:
    here read directly (32-byte headers after the 48-byte identity frame)."""
    out = []
    with open(os.path.join(data, "wal", seg), "rb") as f:
        buf = f.read()
    off = 48
    while off + 32 <= len(buf) and buf[off:off + 4] == b"OWAL":
        clen = int.from_bytes(buf[off + 20:off + 24], "little")
        out.append((off, clen))
        off += 32 + clen
    return out


def test_fixture(top):
    with open(os.path.join(FIXTURE, "expected.json")) as f:
        expected = json.load(f)
    p = admin(FIXTURE, "--json", "wal", "info")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    info = json.loads(p.stdout)
    assert info["state"] == "good" and info["segments"] == 3, info
    assert info["events"] == expected["head_position"] == info["last_position"], info
    assert info["events_by_type"]["OrderDelivered"] == 3, info
    p = admin(FIXTURE, "wal", "info")
    assert p.returncode == 0 and "state      good" in p.stdout and "OrderCreated" in p.stdout
    assert admin(FIXTURE, "wal", "verify").returncode == 0
    # dump: one order's events, in order, matching the order's figures.
    for want in expected["orders"]:
        p = admin(FIXTURE, "wal", "dump", "--order", want["order_id"])
        assert p.returncode == 0, p.stderr
        evs = [json.loads(line) for line in p.stdout.splitlines()]
        assert [e["version"] for e in evs] == list(range(1, want["version"] + 1)), evs
        assert all(e["order_id"] == want["order_id"] for e in evs)
        assert evs[-1]["timestamp_us"] == want["updated_at_us"], (evs[-1], want)
    p = admin(FIXTURE, "wal", "dump", "--from", "100", "--to", "110")
    assert [json.loads(x)["position"] for x in p.stdout.splitlines()] == list(range(100, 111))
    p = admin(FIXTURE, "wal", "dump", "--from", "1539")
    first_ts = json.loads(p.stdout)["timestamp_us"]
    p = admin(FIXTURE, "wal", "dump", "--from", str(first_ts) + "x")
    assert p.returncode == 2, p.returncode  # neither a position nor a TIME
    p = admin(FIXTURE, "snapshot", "info")
    assert p.returncode == 0 and "newest valid" in p.stdout, p.stdout
    p = admin(FIXTURE, "snapshot", "verify")
    assert p.returncode == 0 and "1,506 orders (1,512 events)" in p.stdout, p.stdout
    p = admin(FIXTURE, "--json", "snapshot", "verify")
    snap = json.loads(p.stdout)
    assert p.returncode == 0 and snap["snapshots"][0]["position"] == 1539, snap


def test_replay(top):
    """The replay debugger: each event applied with the engine's own rules,
    what it changed, and the state at any version or instant, which must
    be the state the engine answered."""
    with open(os.path.join(FIXTURE, "expected.json")) as f:
        expected = json.load(f)
    for want in expected["orders"]:
        p = admin(FIXTURE, "--json", "replay", want["order_id"])
        assert p.returncode == 0, (p.returncode, p.stderr)
        steps = [json.loads(line) for line in p.stdout.splitlines()]
        assert [s["event"]["version"] for s in steps] == list(range(1, want["version"] + 1))
        state = steps[-1]["state"]
        for k, v in want.items():
            assert state.get(k) == v, (want["order_id"], k, state.get(k), v)
        assert steps[0]["changed"][0] == "status" and "currency" in steps[0]["changed"]
        for st in steps[1:]:
            assert "status" in st["changed"] and "version" in st["changed"], st["changed"]
    full = [json.loads(x) for x in admin(FIXTURE, "--json", "replay", "fx-00").stdout.splitlines()]
    p = admin(FIXTURE, "--json", "replay", "fx-00", "--to-version", "3")
    part = [json.loads(x) for x in p.stdout.splitlines()]
    assert p.returncode == 0 and len(part) == 3 and part[-1]["state"] == full[2]["state"]
    ts = full[1]["event"]["timestamp_us"]
    p = admin(FIXTURE, "--json", "replay", "fx-00", "--until", str(ts))
    assert [json.loads(x)["event"]["version"] for x in p.stdout.splitlines()] == [1, 2]
    p = admin(FIXTURE, "replay", "fx-00", "--to-version", "4")
    assert p.returncode == 0 and '"Preparing" -> "Ready"' in p.stdout, p.stdout
    assert "state after version 4" in p.stdout and "\033[" not in p.stdout  # no color in a pipe
    assert admin(FIXTURE, "replay", "no-such-order").returncode == 1
    # Every order rebuilt from the log alone, against the snapshot (of the
    # 0.2 format: read with its defaults) and a second replay.
    p = admin(FIXTURE, "--json", "replay", "--all", "--check")
    c = json.loads(p.stdout)
    assert p.returncode == 0 and c["state"] == "same" and c["differences"] == 0, c
    assert c["orders"] == 1512 and c["snapshot"]["compared"] == c["snapshot"]["orders"] == 1506, c
    # A log that lost its last segment no longer reaches what the snapshot holds.
    d = copy_fixture(top, "short-log")
    os.remove(os.path.join(d, "wal", SEGS[2]))
    p = admin(d, "replay", "--all", "--check")
    assert p.returncode == 1 and "the log never gets there" in p.stdout, p.stdout
    assert admin(FIXTURE, "replay", "--all").returncode == 2
    assert admin(FIXTURE, "replay", "fx-00", "--to-version", "0").returncode == 2
    assert admin(FIXTURE, "replay", "fx-00", "--to-version", "2", "--until", "1").returncode == 2


def test_upgraded_log(top):
    """Version 0.2's log, then frames written by today's engine (chained,
    hashed): the chain starts at the first new frame and verifies; audit
    counts both kinds."""
    d = os.path.join(top, "upgraded")
    os.makedirs(d)
    shutil.copytree(FIXTURE, os.path.join(d, "d"))
    srv = Server(data=d).start()
    try:
        for i in range(20):
            assert srv.call(create("up-%d" % i, rid="up-%d" % i))["ok"]
        assert srv.stop() == 0
        data = os.path.join(d, "d")
        p = admin(data, "--json", "wal", "verify")
        v = json.loads(p.stdout)
        assert p.returncode == 0 and v["state"] == "good" and v["events"] == 1559, v
        p = admin(data, "--json", "audit", "--all")
        a = json.loads(p.stdout)
        assert p.returncode == 0 and a["hashed"] == 20 and a["without_hash"] == 1539, a
        p = admin(data, "--json", "replay", "--all", "--check")
        assert p.returncode == 0 and json.loads(p.stdout)["state"] == "same", p.stdout
    finally:
        srv.kill_and_cleanup()


def test_usage(top):
    assert subprocess.run([ADMIN, "--help"], capture_output=True).returncode == 0
    assert admin(FIXTURE, "wal").returncode == 2
    assert admin(FIXTURE, "wal", "fix").returncode == 2
    assert admin(FIXTURE, "wal", "info", "--order", "x").returncode == 2
    p = admin(os.path.join(top, "nowhere"), "wal", "verify")
    assert p.returncode == 3 and "nowhere" in p.stderr, (p.returncode, p.stderr)


def test_beside_engine(top):
    """Read-only beside a running engine under load: verify passes every
    time (a frame being written shows as a tail, not damage) and the engine
    never notices."""
    srv = Server(args=["--segment-bytes", "65536"]).start()
    try:
        data = os.path.join(srv.data, "d")
        sock = srv.dealer()
        sent = 0
        for rnd in range(6):
            for i in range(400):
                req = create("b-%d-%d" % (rnd, i), rid="b-%d-%d" % (rnd, i))
                req["data"]["delivery_address"] = os.urandom(60).hex()  # fills segments
                sock.send(msgpack.packb(req))
                sent += 1
            p = admin(data, "--json", "wal", "verify")  # while those are written
            assert p.returncode == 0, (p.stdout, p.stderr)
            assert json.loads(p.stdout)["state"] == "good", p.stdout
            got = 0
            while got < 400:
                assert sock.poll(10000)
                r = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
                assert r["ok"], r
                got += 1
        sock.close()
        p = admin(data, "--json", "wal", "info")
        info = json.loads(p.stdout)
        assert info["events"] == sent and info["segments"] > 1, info
        assert srv.call({"type": "Ping"})["head_position"] == sent
        assert srv.stop() == 0
    finally:
        srv.kill_and_cleanup()


def damaged(top, name, seg_index, change):
    d = copy_fixture(top, name)
    path = os.path.join(d, "wal", SEGS[seg_index]) if seg_index is not None else d
    change(d, path)
    return d


def test_damage(top):
    def flip(d, path):
        off, clen = frames(d, SEGS[0])[100]
        with open(path, "r+b") as f:
            f.seek(off + 32 + clen // 2)
            b = f.read(1)
            f.seek(off + 32 + clen // 2)
            f.write(bytes([b[0] ^ 0x40]))
    d = damaged(top, "flip", 0, flip)
    off = frames(FIXTURE, SEGS[0])[100][0]
    p = admin(d, "wal", "verify")
    assert p.returncode == 1 and SEGS[0] in p.stdout and str(off) in p.stdout, p.stdout
    assert "checksum" in p.stdout, p.stdout
    p = admin(d, "--json", "wal", "verify")
    fault = json.loads(p.stdout)["fault"]
    assert fault == {"segment": SEGS[0], "offset": off, "why": "checksum mismatch"}, fault
    p = admin(d, "wal", "dump", "--from", "1500")
    assert p.returncode == 1 and "damaged" in p.stderr, (p.returncode, p.stderr)

    def cut(d, path):
        os.truncate(path, frames(d, SEGS[1])[50][0] + 10)
    d = damaged(top, "cut", 1, cut)
    p = admin(d, "--json", "wal", "verify")
    v = json.loads(p.stdout)
    assert p.returncode == 1 and v["fault"]["segment"] == SEGS[1], v
    assert v["fault"]["offset"] == frames(FIXTURE, SEGS[1])[50][0], v

    d = damaged(top, "missing", 1, lambda d, path: os.remove(path))
    p = admin(d, "wal", "verify")
    assert p.returncode == 1 and SEGS[2] in p.stdout and "missing" in p.stdout, p.stdout

    # A segment of another log: SEGS[1] given another identity, its frame's
    # checksum made right, as a segment of another engine's log would be.
    def foreign(d, path):
        with open(path, "r+b") as f:
            head = bytearray(f.read(48))
            head[32:48] = bytes(16 - i for i in range(16))
            head[28:32] = b"\0\0\0\0"
            crc = crc32c(bytes(head))
            f.seek(28)
            f.write(crc.to_bytes(4, "little"))
            f.seek(32)
            f.write(bytes(head[32:48]))
    d = damaged(top, "foreign", 1, foreign)
    p = admin(d, "wal", "verify")
    assert p.returncode == 1 and "another log" in p.stdout and SEGS[1] in p.stdout, p.stdout
    # A frame removed from the middle, or two frames swapped, in bytes
    # whose checksums are all good: the positions tell (each frame header
    # names its first position, and they must run on without a gap).
    def remove_frame(d, path):
        off, clen = frames(d, SEGS[0])[200]
        with open(path, "rb") as f:
            buf = f.read()
        cut = buf[:off] + buf[off + 32 + clen:]
        with open(path, "wb") as f:
            f.write(cut + b"\0" * (len(buf) - len(cut)))
    d = damaged(top, "removed", 0, remove_frame)
    off = frames(FIXTURE, SEGS[0])[200][0]
    p = admin(d, "--json", "wal", "verify")
    v = json.loads(p.stdout)["fault"]
    assert p.returncode == 1 and v["offset"] == off and "expected" in v["why"], v

    def swap_frames(d, path):
        (a, alen), (b, blen) = frames(d, SEGS[0])[300:302]
        with open(path, "r+b") as f:
            f.seek(a)
            first = f.read(32 + alen)
            second = f.read(32 + blen)
            f.seek(a)
            f.write(second + first)
    d = damaged(top, "swapped", 0, swap_frames)
    off = frames(FIXTURE, SEGS[0])[300][0]
    p = admin(d, "--json", "wal", "verify")
    v = json.loads(p.stdout)["fault"]
    assert p.returncode == 1 and v["offset"] == off and "expected" in v["why"], v

    def hole(d, path):
        off, _ = frames(d, SEGS[2])[40]
        with open(path, "r+b") as f:
            f.seek(off)
            f.write(b"\0" * 32)
    d = damaged(top, "hole", 2, hole)
    p = admin(d, "wal", "verify")
    assert p.returncode == 1 and "hole" in p.stdout, p.stdout

    def torn(d, path):
        fr = frames(d, SEGS[2])
        off, clen = fr[-1]
        with open(path, "r+b") as f:
            f.seek(off + 32 + clen)
            f.write(b"OWAL" + b"\x07" * 100)  # half a frame: the next write, torn
    d = damaged(top, "torn", 2, torn)
    p = admin(d, "--json", "wal", "verify")
    v = json.loads(p.stdout)
    assert p.returncode == 0 and v["state"] == "good" and v["tail"]["bytes"] == 104, v

    def bad_snapshot(d, path):
        snap = os.path.join(d, "snapshots", "snapshot-00000000000000001539.osnap")
        with open(snap, "r+b") as f:
            f.seek(200)
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 1]))
    d = damaged(top, "snapshot", None, bad_snapshot)
    for verb in ("info", "verify"):
        p = admin(d, "snapshot", verb)
        assert p.returncode == 1 and "INVALID" in p.stdout, (verb, p.returncode, p.stdout)


def rewrite_last_frame(data, change):
    """Decompresses the last frame of the last segment (zstd CLI), lets
    `change` edit its raw body, and writes it back with a right header and
    checksum: a forger who knows the format. The frame checks out; only the
    hash chain can tell."""
    seg = sorted(f for f in os.listdir(os.path.join(data, "wal")) if f.endswith(".wal"))[-1]
    path = os.path.join(data, "wal", seg)
    off, clen = frames(data, seg)[-1]
    with open(path, "rb") as f:
        buf = f.read()
    hdr = bytearray(buf[off:off + 32])
    chain = buf[off + 32:off + 44]  # a skippable zstd frame naming its predecessor's CRC
    raw = subprocess.run(["zstd", "-d", "-c"], input=buf[off + 44:off + 32 + clen],
                         capture_output=True, check=True).stdout
    raw = change(raw)
    body = chain + subprocess.run(["zstd", "-1", "-c"], input=raw, capture_output=True,
                                  check=True).stdout
    hdr[20:24] = len(body).to_bytes(4, "little")
    hdr[24:28] = len(raw).to_bytes(4, "little")
    hdr[28:32] = b"\0\0\0\0"
    hdr[28:32] = crc32c(bytes(hdr) + body).to_bytes(4, "little")
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(bytes(hdr) + body + b"\0" * max(0, clen - len(body)))
    return seg


def test_audit(top):
    """audit recomputes every order's chain from the log: intact after a
    real run; an event changed by someone who fixed the frame's checksum is
    found, by order, version and position."""
    srv = Server().start()
    try:
        for i in range(30):
            assert srv.call(create("a-%d" % i, rid="a-%d" % i))["ok"]
        for step in ("ConfirmOrder", "StartPreparing", "MarkReady"):
            for i in range(0, 30, 3):
                r = srv.call({"type": step, "order_id": "a-%d" % i, "request_id": "%s-%d" % (step, i)})
                assert r["ok"], r
        # A client's words reach the operator's terminal escaped.
        esc = create("esc-1", rid="esc-1")
        esc["meta"]["actor"] = "\x1b[2J\x1b]0;pwned\x07"
        assert srv.call(esc)["ok"]
        r = srv.call(create("forged", rid="forged"))  # the last event of the log
        assert r["ok"], r
        pos = r["position"]
        assert srv.stop() == 0
        data = os.path.join(srv.data, "d")
        p = admin(data, "audit", "--all")
        assert p.returncode == 0 and "every chain intact" in p.stdout, (p.returncode, p.stdout)
        p = admin(data, "--json", "audit", "--all")
        a = json.loads(p.stdout)
        assert a["orders"] == 32 and a["events"] == 62 and a["hashed"] == 62, a
        p = admin(data, "replay", "esc-1")
        assert p.returncode == 0 and "\x1b" not in p.stdout and "\x07" not in p.stdout, p.stdout
        assert "by \\x1b[2J\\x1b]0;pwned\\x07" in p.stdout, p.stdout
        assert admin(data, "audit", "a-3").returncode == 0
        assert admin(data, "audit", "no-such-order").returncode == 1
        assert admin(data, "audit").returncode == 2
        rewrite_last_frame(data, lambda raw: raw.replace(b"12 Baker Street", b"13 Baker Street"))
        assert admin(data, "wal", "verify").returncode == 0  # the frame checks out
        p = admin(data, "--json", "audit", "--all")
        a = json.loads(p.stdout)
        assert p.returncode == 1 and a["broken_orders"] == 1, (p.returncode, a)
        b = a["broken"][0]
        assert b["order_id"] == "forged" and b["version"] == 1 and b["position"] == pos, b
        p = admin(data, "audit", "forged")
        assert p.returncode == 1 and "BROKEN     order forged at version 1" in p.stdout, p.stdout
        assert admin(data, "audit", "a-3").returncode == 0  # the others are intact
        # The hash removed from that event (record of 8 elements, as before
        # 1.1) and the event changed again: the frame is one written since
        # 1.1 (chained), so a record without a hash in it is a forgery.
        def strip(raw):
            n, shift, i = 0, 0, 0
            while True:
                b = raw[i]
                n |= (b & 0x7F) << shift
                i += 1
                shift += 7
                if b < 0x80:
                    break
            rec = raw[i:i + n]
            assert rec[0] == 0x99 and rec[-34] == 0xC4, rec[:4]
            rec = (b"\x98" + rec[1:-34]).replace(b"13 Baker Street", b"14 Baker Street")
            v, out = len(rec), b""
            while v >= 0x80:
                out += bytes([v & 0x7F | 0x80])
                v >>= 7
            return out + bytes([v]) + rec
        rewrite_last_frame(data, strip)
        assert admin(data, "wal", "verify").returncode == 0
        p = admin(data, "audit", "forged")
        assert p.returncode == 1 and "no hash, in a frame written since 1.1" in p.stdout, p.stdout
        # The frame chain: a frame naming another predecessor (its checksum
        # made right) is found by wal verify, at that frame.
        seg = sorted(os.listdir(os.path.join(data, "wal")))[0]
        off, clen = frames(data, seg)[10]
        path = os.path.join(data, "wal", seg)
        with open(path, "r+b") as f:
            f.seek(off)
            frame = bytearray(f.read(32 + clen))
            frame[40:44] = b"\xef\xbe\xad\xde"  # the CRC in the skippable frame
            frame[28:32] = b"\0\0\0\0"
            frame[28:32] = crc32c(bytes(frame)).to_bytes(4, "little")
            f.seek(off)
            f.write(frame)
        p = admin(data, "--json", "wal", "verify")
        v = json.loads(p.stdout)["fault"]
        assert p.returncode == 1 and v["offset"] == off and "does not follow" in v["why"], v
    finally:
        srv.kill_and_cleanup()


def test_index_info(top):
    """index info: the fixture's index (6 orders), nothing created in its
    folder; beside a running engine whose finished orders leave memory."""
    p = admin(FIXTURE, "--json", "index", "info")
    info = json.loads(p.stdout)
    assert p.returncode == 0 and info["exists"] and info["orders"] == 6, (p.stdout, p.stderr)
    assert sorted(os.listdir(os.path.join(FIXTURE, "index"))) == ["data.mdb"]
    srv = Server(args=["--retain-finished", "0"]).start()
    try:
        data = os.path.join(srv.data, "d")
        for i in range(10):
            assert srv.call(create("ix-%d" % i))["ok"]
        for i in range(4):
            assert srv.call({"type": "CancelOrder", "order_id": "ix-%d" % i,
                             "data": {"reason": "test"}})["ok"]
        deadline = time.monotonic() + 30
        while json.loads(admin(data, "--json", "index", "info").stdout)["orders"] != 4:
            assert time.monotonic() < deadline, "the engine's index never held 4 orders"
            time.sleep(0.05)  # bounded poll
        p = admin(data, "index", "info")
        assert p.returncode == 0 and "4 orders that left memory" in p.stdout, p.stdout
    finally:
        srv.kill_and_cleanup()
    empty = os.path.join(top, "empty")
    os.makedirs(empty)
    p = admin(empty, "--json", "index", "info")
    assert p.returncode == 0 and not json.loads(p.stdout)["exists"], p.stdout
    p = admin(os.path.join(top, "nowhere"), "index", "info")
    assert p.returncode == 3 and "nowhere" in p.stderr, (p.returncode, p.stderr)
    # A file that is not an index: refused with why, nothing created beside it.
    bad = os.path.join(top, "bad")
    os.makedirs(os.path.join(bad, "index"))
    with open(os.path.join(bad, "index", "data.mdb"), "wb") as f:
        f.write(os.urandom(10000))
    p = admin(bad, "index", "info")
    assert p.returncode == 3 and "not an LMDB file" in p.stderr, (p.returncode, p.stderr)
    assert os.listdir(os.path.join(bad, "index")) == ["data.mdb"]


def main():
    top = tempfile.mkdtemp(prefix="ordo-admin-")
    failed = 0
    try:
        for name, fn in [("the schema-1 fixture", test_fixture), ("usage", test_usage),
                         ("replay debugger", test_replay),
                         ("0.2's log, then today's frames", test_upgraded_log),
                         ("beside a running engine", test_beside_engine),
                         ("damaged folders", test_damage),
                         ("audit: hash chains", test_audit),
                         ("index info", test_index_info)]:
            try:
                fn(top)
                print("ok   %s" % name)
            except Exception:
                failed += 1
                print("FAIL %s" % name)
                traceback.print_exc()
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
