"""NewReno against RFC 9002 section 7, stepped by hand one ack / one loss at a time."""

from __future__ import annotations

import doctest

import pytest

import wtlab.cc.base
from wtlab.cc import Packet, RttStats, create
from wtlab.trace import Recorder

MDS = 1200


def rtt_after(sample_s: float = 0.1) -> RttStats:
    rtt = RttStats()
    rtt.update(sample_s, now=sample_s)
    return rtt


def send(cc, pns, t):
    pkts = [Packet(pn, MDS, t) for pn in pns]
    for p in pkts:
        cc.on_packet_sent(t, p)
    return pkts


def test_docstring_examples_run():
    # The stepping-by-hand example users read in Controller's docstring.
    failures, tried = doctest.testmod(wtlab.cc.base, raise_on_error=False, verbose=False)
    assert tried >= 5 and failures == 0


def test_slow_start_grows_by_acked_bytes_one_ack_at_a_time():
    cc = create("reno", max_datagram_size=MDS)
    assert (cc.cwnd, cc.ssthresh, cc.state) == (10 * MDS, None, "slow_start")  # RFC 9002 7.2
    pkts = send(cc, range(10), 0.0)
    assert cc.bytes_in_flight == 10 * MDS
    rtt = rtt_after()
    for i, p in enumerate(pkts, start=1):
        cc.on_packets_acked(0.1, [p], rtt)
        assert cc.cwnd == (10 + i) * MDS  # +1 datagram per datagram acked (7.3.1)
        assert cc.bytes_in_flight == (10 - i) * MDS
    assert cc.state == "slow_start"


def test_loss_halves_once_per_recovery_period_and_ignores_old_packets():
    cc = create("reno", max_datagram_size=MDS)
    pkts = send(cc, range(20), 0.0)
    rtt = rtt_after()
    cc.on_packets_acked(0.1, pkts[:4], rtt)  # cwnd 14 datagrams
    assert cc.cwnd == 14 * MDS
    cc.on_packets_lost(0.2, [pkts[4]])
    # ssthresh = cwnd * kLossReductionFactor; cwnd = max(ssthresh, kMinimumWindow) (7.3.2)
    assert cc.ssthresh == 7 * MDS and cc.cwnd == 7 * MDS and cc.state == "recovery"
    assert cc.recovery_start_time == 0.2
    # A second loss of a packet sent before recovery began: no further reduction.
    cc.on_packets_lost(0.25, [pkts[5]])
    assert cc.cwnd == 7 * MDS
    # Acks of packets sent before recovery began do not grow the window.
    cc.on_packets_acked(0.3, pkts[6:10], rtt)
    assert cc.cwnd == 7 * MDS and cc.state == "recovery"
    # The first ack of a packet sent after recovery began ends recovery: CA.
    new = send(cc, [100], 0.31)
    cc.on_packets_acked(0.41, new, rtt)
    assert cc.state == "congestion_avoidance"
    # A loss of a packet sent after the period began starts a new one.
    newer = send(cc, [101], 0.42)
    cc.on_packets_lost(0.6, newer)
    assert cc.cwnd == int(7 * MDS / 2) and cc.recovery_start_time == 0.6


def test_congestion_avoidance_adds_one_datagram_per_window():
    cc = create("reno", max_datagram_size=MDS)
    cc.ssthresh = cc.cwnd = 10 * MDS
    cc.state = "congestion_avoidance"
    rtt = rtt_after()
    t = 0.0
    pn = 0
    for rtt_round in range(5):
        window = cc.cwnd // MDS
        pkts = send(cc, range(pn, pn + window), t)
        pn += window
        t += 0.1
        for p in pkts:
            cc.on_packets_acked(t, [p], rtt)
        assert cc.cwnd == (11 + rtt_round) * MDS  # 7.3.3: one max_datagram_size per cwnd acked


def test_persistent_congestion_collapses_to_minimum_window():
    rec = Recorder()
    cc = create("reno", max_datagram_size=MDS, recorder=rec)
    pkts = send(cc, range(10), 0.0)
    cc.on_packets_lost(1.0, pkts)
    cc.on_persistent_congestion_detected(1.0)
    assert cc.cwnd == 2 * MDS  # kMinimumWindow (7.2, 7.6.2)
    assert cc.ssthresh == 5 * MDS and cc.state == "slow_start"
    assert cc.bytes_in_flight == 0
    kinds = list(rec.to_pandas()["kind"].astype(str))
    assert kinds.count("packet_lost") == 10 and "persistent_congestion" in kinds
    # Slow start again up to ssthresh, then congestion avoidance.
    rtt = rtt_after()
    more = send(cc, range(10, 13), 1.1)
    cc.on_packets_acked(1.2, more, rtt)
    assert cc.cwnd == 5 * MDS and cc.state == "congestion_avoidance"


def test_recording_is_off_by_default_and_complete_when_on():
    quiet = create("reno")
    assert quiet.recorder is None
    rec = Recorder()
    cc = create("reno", recorder=rec, flow=2)
    pkts = send(cc, range(3), 0.0)
    cc.on_packets_acked(0.1, pkts[:2], rtt_after())
    cc.on_packets_lost(0.2, pkts[2:])
    df = rec.to_pandas()
    assert list(df["kind"].astype(str)) == [
        "packet_sent", "packet_sent", "packet_sent", "packet_acked", "packet_acked",
        "cwnd_changed", "packet_lost", "cwnd_changed", "state_changed"]
    assert (df["flow"] == 2).all()
    acked = df[df["kind"] == "packet_acked"]
    assert acked["cwnd"].tolist() == [11 * 1200, 12 * 1200]  # state after each ack
    assert acked["srtt_s"].iloc[0] == pytest.approx(0.1)
    assert df["state"].astype(str).iloc[-1] == "recovery"
    assert df["ssthresh"].iloc[-1] == 6 * 1200


def test_application_limited_window_does_not_grow():
    # RFC 9002 7.8: an under-used window is not grown; growth resumes once it is full.
    cc = create("reno", max_datagram_size=MDS)
    rtt = rtt_after()
    pkts = send(cc, range(3), 0.0)  # 3 of 10 datagrams: the application ran dry
    cc.on_app_limited(0.0)
    cc.on_packets_acked(0.1, pkts, rtt)
    assert cc.cwnd == 10 * MDS and cc.app_limited
    full = send(cc, range(3, 13), 0.1)  # fills the window again: flag cleared
    assert not cc.app_limited
    cc.on_packets_acked(0.2, full[:1], rtt)
    assert cc.cwnd == 11 * MDS
