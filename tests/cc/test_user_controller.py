"""A controller written in a notebook cell works everywhere a built-in does."""

from __future__ import annotations

import pytest
from aioquic.quic.congestion.base import create_congestion_control

import wtlab.cc.aioquic as wa
from wtlab.cc import HINTS, Controller, Packet, RttStats, create, get, names, register
from wtlab.errors import ConfigError, UnknownAlgorithm
from wtlab.trace import Recorder

from .pair import Pair, make_pair
from .sim import PathSim


class AIMD(Controller):
    """Additive increase ``alpha`` datagrams per RTT, multiplicative decrease ``beta``."""

    name = "aimd-test"

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, **kw):
        super().__init__(**kw)
        self.alpha, self.beta = alpha, beta
        self.state = "congestion_avoidance"

    def on_ack(self, now, packet, rtt):
        self.cwnd += int(self.alpha * self.max_datagram_size * packet.sent_bytes / self.cwnd)

    def on_congestion_event(self, now, sent_time):
        self.cwnd = max(int(self.cwnd * self.beta), self.min_cwnd)
        self.ssthresh = self.cwnd


register("aimd-test", AIMD)


def test_registry_and_hints():
    assert {"reno", "cubic", "bbr", "bbr3", "aimd-test"} <= set(names())
    assert get("aimd-test") is AIMD
    # W3C WebTransport congestionControl hints map to documented choices.
    assert get("default") is get(HINTS["default"]) and get("throughput").name == "bbr"
    assert get("low-latency").name == "bbr3"
    with pytest.raises(UnknownAlgorithm, match="register your own"):
        get("nope")
    with pytest.raises(ConfigError, match="subclass"):
        register("bad", dict)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_datagram_size"):
        create("reno", max_datagram_size=100)


def test_user_aimd_by_hand_alpha_and_beta():
    cc = create("aimd-test", alpha=2.0, beta=0.8)
    rtt = RttStats()
    rtt.update(0.1, now=0.1)
    pkts = [Packet(i, 1200, 0.0) for i in range(10)]
    for p in pkts:
        cc.on_packet_sent(0.0, p)
    cc.on_packets_acked(0.1, pkts, rtt)
    # One window acked: about alpha datagrams more (each ack divides by the grown cwnd).
    assert 0.9 * 2 * 1200 <= cc.cwnd - 12000 <= 2 * 1200
    before = cc.cwnd
    late = Packet(20, 1200, 0.2)
    cc.on_packet_sent(0.2, late)
    cc.on_packets_lost(0.3, [late])
    assert cc.cwnd == int(before * 0.8) and cc.state == "recovery"


def test_user_aimd_in_the_path_simulator_reaches_the_link_rate():
    rec = Recorder()
    cc = create(AIMD, alpha=4.0, beta=0.7, recorder=rec)
    sim = PathSim(cc, rate_bps=5e6, rtt_s=0.02, buffer_bytes=30_000)
    sim.run(6.0)
    assert sim.goodput_bps(2.0, 6.0) > 0.9 * 5e6
    df = rec.to_pandas()
    assert (df["kind"] == "packet_lost").any() and (df["kind"] == "cwnd_changed").any()


def test_user_aimd_inside_aioquic_by_attach_and_by_registry_name():
    client, server = make_pair()
    rec = Recorder()
    cc = wa.attach(client, AIMD(alpha=3.0), recorder=rec)
    Pair(client, server, delay_s=0.01).run(200_000)
    assert cc.cwnd > 12000 and (rec.to_pandas()["kind"] == "packet_acked").sum() > 100
    # Registered after wtlab.cc.aioquic was imported: aioquic learns it too.
    register("aimd-late", AIMD)
    shim = create_congestion_control("wtlab-aimd-late", max_datagram_size=1200)
    assert isinstance(shim.controller, AIMD)
