"""A CE mark followed from the queue to the controller, in both engines and live (issue 18).

Virtual network: wtlab's WebTransport client and server over a marking path; the trace's
``ecn_marked`` rows (the link), ``ecn_counts`` rows (what ACK_ECN frames told the sender)
and the controller agree. Live: a wtlab session through the relay on loopback, with ECN
sockets (Linux); the counts in the ACK_ECN frames equal the marks the relay applied.
"""

from __future__ import annotations

import asyncio
import json

import pytest

import wtlab
from wtlab.lab import Experiment
from wtlab.net import Path, VirtualNetwork
from wtlab.net.aqm import StepMark
from wtlab.net.relay import Relay
from wtlab.trace import Recorder
from wtlab.transport.ecn_udp import ecn_supported
from wtlab.transport.workloads import Bulk


def _last_counts(trace, flow=0):
    rows = trace[(trace.kind == "ecn_counts") & (trace.flow == flow)]
    return json.loads(rows.extra.iloc[-1])


@pytest.mark.parametrize("engine", ["model", "emulate"])
def test_marks_reach_the_controller_in_both_engines(engine):
    exp = Experiment(path=dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=2,
                               aqm=StepMark(threshold_packets=10)),
                     cc="reno+ecn", engine=engine, seed=1)
    s = exp.stepper()
    try:
        row = s.step("ecn_marked")  # the first mark, at the queue
        assert row is not None and row["kind"] == "ecn_marked"
        row = s.step("ecn_counts")  # ... and the ACK_ECN that reports it
        while row is not None and '"ce_increase": 0' in row["extra"]:
            row = s.step("ecn_counts")
        assert row is not None and row["state"] == "recovery"  # classic: halved, no loss
        s.run(6.0)
        res = s.result()
        trace = res.trace()
        m = res.metrics().iloc[0]
    finally:
        s.close()
    marks = int((trace.kind == "ecn_marked").sum())
    assert marks > 10 and m.link_marks == marks
    assert m.ce_marks == _last_counts(trace)["ce"]
    # every mark the link applied was reported (the last ACK may miss the final few)
    assert marks - 5 <= m.ce_marks <= marks
    assert m.packets_lost == 0 and m.ecn_state == "capable"
    assert s.controllers[0].ce_marks == m.ce_marks


@pytest.mark.parametrize("engine", ["model", "emulate"])
def test_a_bleaching_path_turns_ecn_off(engine):
    exp = Experiment(path=dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=1, aqm="codel",
                               ecn="bleach"), cc="reno+ecn", engine=engine, seed=1)
    res = exp.run(3.0)
    trace = res.trace()
    m = res.metrics().iloc[0]
    assert m.ecn_state == "failed" and m.ce_marks == 0
    val = trace[trace.kind == "ecn_validation"].extra.iloc[-1]
    assert "without ECN counts" in val
    # with ECN off, CoDel's signals are drops: the flow still backs off
    assert m.packets_lost > 0 and m.goodput_bps > 5e6


def test_dualpi2_rows_name_the_queue_and_provisional_arrivals_are_kept_in_order():
    path = Path.symmetric(rate_bps="20mbit", rtt_s="20ms", buffer_bdp=4, aqm="dualpi2", seed=1)
    with VirtualNetwork(path) as net:
        net.add_flow("prague", Bulk(duration_s=4, direction="down"))
        net.add_flow("cubic+ecn", Bulk(duration_s=4, direction="down"))
        net.run(until=4.0)
        trace = net.recorder.to_pandas()
        stats = net.path.down.aqm_stats()
    marks = trace[trace.kind == "ecn_marked"]
    queues = {json.loads(e).get("queue") for e in marks.extra}
    assert "L" in queues
    for flow in (0, 1):  # both flows delivered data through the two queues
        assert (trace[(trace.flow == flow)].kind == "packet_acked").sum() > 300
    assert stats["l_packets"] > 100 and stats["c_packets"] > 100
    assert stats["l_sojourn_mean_s"] < stats["c_sojourn_mean_s"]


@pytest.mark.skipif(not ecn_supported(), reason="this system's UDP sockets cannot carry ECN")
async def test_live_ack_ecn_counts_match_the_relay_marks():
    rec = Recorder()
    async with wtlab.serve(port=0, ecn=True, congestion_control="reno+ecn",
                           recorder=rec) as server:
        async with Relay(("127.0.0.1", server.port), rate_bps="10mbit", delay_s="10ms",
                         buffer="2bdp", aqm=StepMark(threshold_packets=8), seed=1) as relay:
            assert relay.stats["ecn"]
            url = f"https://127.0.0.1:{relay.address[1]}/source?bytes=1500000"
            async with wtlab.connect(url, cert_hashes=[server.cert_sha256], timeout=10.0,
                                     ecn=True, congestion_control="reno+ecn") as session:
                stream = await session.accept_uni()
                data = await asyncio.wait_for(stream.read(), 30)
                receiver = session._ep.ecn  # the client's ECN seam: what it counted
                for _ in range(50):  # let the last ACK_ECN frames come back
                    if _last_counts(rec.to_pandas())["ce"] == relay.ecn_counts["down"]["ce"]:
                        break
                    await asyncio.sleep(0.02)
            counts = relay.ecn_counts
    assert len(data) == 1_500_000
    marked = counts["down"]["marked"]
    assert marked > 5 and counts["down"]["ce"] == marked
    # the receiver counted exactly the CE marks the relay applied and delivered ...
    assert receiver.counts.counts[2][2] == marked
    # ... and its ACK_ECN frames told the sender exactly that
    assert _last_counts(rec.to_pandas())["ce"] == marked
    assert receiver.acks_ecn_sent > 0


async def test_live_without_ecn_sockets_falls_back_cleanly():
    """A session that does not ask for ECN sockets runs without ECN; a controller that
    wanted it records ECN as failed, with the reason."""
    rec = Recorder()
    async with wtlab.serve(port=0, congestion_control="dctcp", recorder=rec) as server:
        url = f"https://127.0.0.1:{server.port}/source?bytes=200000"
        async with wtlab.connect(url, cert_hashes=[server.cert_sha256], timeout=10.0) as s:
            stream = await s.accept_uni()
            data = await asyncio.wait_for(stream.read(), 30)
    assert len(data) == 200_000
    trace = rec.to_pandas()
    val = trace[trace.kind == "ecn_validation"].extra.tolist()
    assert val and "cannot set or read the ECN field" in val[0]


@pytest.mark.skipif(not ecn_supported(), reason="this system's UDP sockets cannot carry ECN")
async def test_live_prague_through_a_dualpi2_relay():
    """The relay's DualPI2 keeps L4S packets in their own queue on a live path (the
    arrival times of classic packets are confirmed when due, as in virtual time)."""
    rec = Recorder()
    async with wtlab.serve(port=0, ecn=True, congestion_control="prague", recorder=rec) as server:
        async with Relay(("127.0.0.1", server.port), rate_bps="20mbit", delay_s="5ms",
                         buffer="100p", aqm="dualpi2", seed=1) as relay:
            url = f"https://127.0.0.1:{relay.address[1]}/source?bytes=2000000"
            async with wtlab.connect(url, cert_hashes=[server.cert_sha256], timeout=10.0,
                                     ecn=True, congestion_control="cubic") as session:
                stream = await session.accept_uni()
                data = await asyncio.wait_for(stream.read(), 30)
            stats = relay.path.down.aqm_stats()
            counts = relay.ecn_counts
    assert len(data) == 2_000_000
    assert counts["down"]["ect1"] + counts["down"]["ce"] > 1000  # Prague's data: L4S
    assert stats["l_packets"] > 1000 and stats["c_packets"] < stats["l_packets"]
    trace = rec.to_pandas()
    val = trace[trace.kind == "ecn_validation"].extra.tolist()
    assert any('"new": "capable"' in v for v in val)
