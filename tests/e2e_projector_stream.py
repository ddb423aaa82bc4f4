#!/usr/bin/python3
"""ordo-projector reading a partition's stream in NATS JetStream (--nats,
docs/cluster.md) instead of the engine, against a real 3-node JetStream
cluster (tests/nats_cluster.py) and real engines with --fsync replicated.
The truth is the engine's log (ReadAll), as in e2e_projector.py, whose
helpers this test uses; a projector following the engine directly is the
second reference.
  1. Orders in every life while the stream projector is killed (kill -9)
     and restarted twice: its read models equal the log's and the
     engine-following projector's; its durable consumer is in JetStream
     with nothing left pending; a restart resumes it (the same consumer).
  2. The engine's owner killed (kill -9) under load: the standby takes
     over, commands go on there, and the stream projector, which never
     talked to either engine, reaches the new owner's head with read
     models equal to its log's.
Waits are bounded polls.
Usage: e2e_projector_stream.py ordo-server ordo-projector"""
import os
import re
import signal
import subprocess
import sys

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
_argv, sys.argv = sys.argv, sys.argv[:3]
import e2e_projector as ep  # noqa: E402  (reads sys.argv: the server, the projector)
sys.argv = _argv
from e2e_util import run_tests, wait_for  # noqa: E402
from nats_cluster import JetStream, NatsCluster  # noqa: E402

DURABLE = "proj-test"


def engine_args(nc):
    return ["--fsync", "replicated", "--nats", nc.urls, "--shards", "2", "--lease-ms", "2000"]


def stream_projector(run, srv, nc, **kw):
    """A projector whose events come from stream ORDO_P0; `srv` only names
    endpoints it must not need (the engine's are passed but unused)."""
    return run.projector(srv, args=["--nats", nc.urls, "--partition", "0/1",
                                    "--nats-durable", DURABLE], **kw)


def consumer_info(nc):
    js = JetStream(nc.client_port(0))
    try:
        return js.request("$JS.API.CONSUMER.INFO.ORDO_P0.%s" % DURABLE, None)
    finally:
        js.close()


def gateway_clients(proj, head):
    """The gateway answers as an engine's front end does: a REQ client (an
    empty delimiter in its envelope) gets its reply; a message whose
    envelope is over 8 frames gets none (the Ping sent after it on the same
    socket is answered first)."""
    with open(os.path.join(proj.base, "projector.log"), "rb") as f:
        found = re.findall(r"serving it on (tcp://\S+) \(events", f.read().decode(errors="replace"))
    assert found, proj.log_tail()
    endpoint = found[-1]  # its latest start's
    ctx = zmq.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    try:
        req.send(msgpack.packb({"type": "Ping", "request_id": "by-req"}))
        assert req.poll(20000), "a REQ client got no reply from the gateway"
        r = msgpack.unpackb(req.recv(), raw=False)
        assert r["ok"] and r["request_id"] == "by-req" and r["head_position"] >= head, r
        dealer.send_multipart([b""] * 9 + [msgpack.packb({"type": "Ping",
                                                           "request_id": "too-long"})])
        dealer.send(msgpack.packb({"type": "Ping", "request_id": "after"}))
        assert dealer.poll(20000), "no reply to a Ping"
        r = msgpack.unpackb(dealer.recv_multipart()[-1], raw=False)
        assert r["request_id"] == "after", r
    finally:
        req.close()
        dealer.close()


def test_stream_projector(run, nc):
    srv = run.server(engine_args(nc))
    direct = run.projector(srv)
    proj = stream_projector(run, srv, nc, save_every=37)
    assert "reading stream ORDO_P0 through durable consumer %s" % DURABLE in proj.log_tail()

    def kill_start():
        proj.stop(signal.SIGKILL)
        proj.start()

    plans = ep.make_plans("s1", 300, seed=11)
    n = ep.n_commands(plans)
    ep.drive(srv, plans, {n // 4: kill_start, 2 * n // 3: kill_start})
    truth = ep.settle(srv, proj)
    ep.wait_caught_up(direct, truth.head)
    ep.check_models(proj, truth, other=direct, label="stream projector")
    gateway_clients(proj, truth.head)
    info = wait_for("the durable consumer has nothing pending",
                    lambda: (lambda i: i if i.get("num_pending") == 0 and
                             i.get("num_ack_pending") == 0 else None)(consumer_info(nc)), 30)
    assert info["config"]["durable_name"] == DURABLE, info
    assert info["delivered"]["stream_seq"] >= 1, info
    # More orders while it is stopped: a restart resumes the same consumer.
    assert proj.stop() == 0, "SIGTERM must exit 0"
    plans = dict(ep.make_plans("s2", 100, seed=12), **ep.advance_plans(truth, "a", seed=13))
    ep.drive(srv, plans)
    proj.start()
    truth = ep.settle(srv, proj)
    ep.wait_caught_up(direct, truth.head)
    ep.check_models(proj, truth, other=direct, label="stream projector after a restart")
    after = consumer_info(nc)
    assert after["delivered"]["stream_seq"] > info["delivered"]["stream_seq"], (info, after)
    # The durable consumer deleted under it: it goes on (ReadAll reads the
    # stream's end itself) and makes the consumer again.
    js = JetStream(nc.client_port(1))
    gone = js.request("$JS.API.CONSUMER.DELETE.ORDO_P0.%s" % DURABLE, None)
    js.close()
    assert gone.get("success"), gone
    plans = dict(ep.make_plans("s3", 100, seed=14), **ep.advance_plans(truth, "c", seed=15))
    ep.drive(srv, plans)
    truth = ep.settle(srv, proj)
    ep.wait_caught_up(direct, truth.head)
    ep.check_models(proj, truth, other=direct, label="stream projector after its consumer went")
    wait_for("the consumer made again", lambda: "durable_name" in consumer_info(nc).get(
        "config", {}), 30)
    print("  %d events through JetStream, 2 kills, a restart and its consumer deleted: read "
          "models equal the log's and an engine-following projector's" % truth.head)


def test_stream_projector_through_failover(run, nc):
    owner = run.server(engine_args(nc))
    # The standby binds nothing until it takes over: started by hand.
    standby = ep.Server(engine_args(nc))
    run.servers.append(standby)
    standby.log = open(os.path.join(standby.data, "server.log"), "ab")
    standby.proc = subprocess.Popen(
        [ep.SERVER, "--data-dir", os.path.join(standby.data, "d"), "--bind", standby.bind,
         "--pub", standby.pub] + standby.args, stdout=standby.log, stderr=standby.log)
    wait_for("the standby follows the stream", lambda: "following stream" in
             standby.log_tail(), 30)  # (e2e_projector's Server, not e2e_server's)
    proj = stream_projector(run, owner, nc)
    plans = ep.make_plans("f1", 200, seed=21)
    ep.drive(owner, plans, {ep.n_commands(plans) // 2: lambda: "stop"})
    owner.stop(signal.SIGKILL)
    wait_for("the standby took over", lambda: _answers(standby), 30)
    standby.sock = standby.dealer()
    truth = ep.Truth(ep.read_log(standby))
    took_over_at = truth.head
    plans = dict(ep.make_plans("f2", 100, seed=22), **ep.advance_plans(truth, "b", seed=23))
    ep.drive(standby, plans)
    truth = ep.settle(standby, proj)
    ep.check_models(proj, truth, label="stream projector after a failover")
    print("  the owner killed under load; the standby took over at position %d; the stream "
          "projector followed the new owner to %d" % (took_over_at, truth.head))


def _answers(srv):
    """Whether the engine answers a Ping now (a socket of its own)."""
    s = srv.dealer()
    try:
        s.send(ep.msgpack.packb({"type": "Ping"}))
        return s.poll(300)
    finally:
        s.close()


def _with_cluster(fn):
    def run_one():
        run = ep.Run()
        try:
            with NatsCluster(3) as nc:
                try:
                    fn(run, nc)
                except BaseException:
                    run.print_logs()
                    raise
                finally:
                    run.close()
        finally:
            run.close()
    return run_one


if __name__ == "__main__":
    sys.exit(run_tests([
        ("a projector on the stream: kill -9 twice, a restart, the same models",
         _with_cluster(test_stream_projector)),
        ("a projector on the stream follows a failover of the engine",
         _with_cluster(test_stream_projector_through_failover)),
    ]))
