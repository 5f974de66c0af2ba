"""wtlab's Reno and CUBIC against aioquic's own, on identical ack/loss sequences.

aioquic is a reference, not the truth. Where they differ, and why (aioquic 1.7.2):

Reno (``aioquic.quic.congestion.reno``)
  * Agree: slow start (+acked bytes), the first reduction (ssthresh = cwnd / 2),
    congestion avoidance (+1 datagram per cwnd acked), one reduction per recovery
    period, no growth for packets sent before recovery began.
  * aioquic keeps its congestion-avoidance byte stash across a reduction; RFC 9002
    does not carry acked bytes over, so wtlab resets it. aioquic therefore grows one
    datagram early after a loss, and its windows run ~1 datagram above ours.
  * aioquic starts with ``recovery_start_time = 0.0`` and tests ``sent_time <=``,
    so acks of packets sent at exactly t = 0 never grow its window (a virtual clock
    that starts at 0 sees a smaller initial slow start). wtlab uses None.
  * aioquic's Reno leaves slow start when its RTT monitor sees RTT rising
    (a HyStart-like heuristic, not in RFC 9002); wtlab's Reno does not.
  * On a loss at a tiny window aioquic floors cwnd first and copies it to ssthresh;
    RFC 9002 floors only cwnd (ssthresh may be below the minimum window).

CUBIC (``aioquic.quic.congestion.cubic``)
  * Agree: slow start, W_max at a reduction (with fast convergence), K and the
    cubic function's constants (C = 0.4, beta = 0.7).
  * aioquic sets ssthresh = 0.7 x bytes in flight (after the lost packets left the
    flight); wtlab uses 0.7 x cwnd, which RFC 9438 4.6 allows and RFC 9002 does.
  * aioquic's Reno-friendly estimate W_est grows 1 segment per RTT from the start;
    RFC 9438 4.3 grows it by alpha_cubic = 0.53 until it reaches cwnd_prior. aioquic
    is thus about twice as aggressive as the RFC in the Reno-friendly region.
  * aioquic grows cwnd in congestion avoidance during recovery (its on_packet_acked
    has no recovery test); RFC 9002 7.3.2 and wtlab do not.
  * aioquic's target uses the latest RTT sample, wtlab the smoothed RTT (RFC 9438
    4.2). aioquic truncates each per-ack increment to whole bytes, so near the
    plateau it stalls until target - cwnd > cwnd / MSS bytes (<= 0.1% of cwnd).
  * aioquic resets to the initial window after 2 s without acks (not in RFC 9438).
"""

from __future__ import annotations

import aioquic.quic.recovery  # noqa: F401  (registers aioquic's reno and cubic)
import pytest
from aioquic.quic.congestion.base import create_congestion_control

from wtlab.cc import Packet, RttStats, create

from .sim import PathSim

MDS = 1200


class Twin:
    """Drives wtlab's controller (which the path follows) and mirrors every event into
    aioquic's controller of the same name; logs both windows after each event."""

    def __init__(self, name: str) -> None:
        self.ours = create(name, max_datagram_size=MDS)
        self.theirs = create_congestion_control(name, max_datagram_size=MDS)
        self.log: list[tuple] = []

    # the controller interface PathSim calls
    def __getattr__(self, attr):
        return getattr(self.ours, attr)

    def _log(self, now, event):
        o, t = self.ours, self.theirs
        self.log.append((now, event, o.cwnd, t.congestion_window, o.ssthresh, t.ssthresh,
                         getattr(o, "region", None)))

    def on_packet_sent(self, now, packet):
        self.ours.on_packet_sent(now, packet)
        self.theirs.on_packet_sent(packet=packet)

    def on_packets_acked(self, now, packets, rtt):
        self.ours.on_packets_acked(now, packets, rtt)
        for p in packets:
            self.theirs.on_packet_acked(now=now, packet=p)
        self.theirs.on_rtt_measurement(now=now, rtt=rtt.latest_rtt)
        self._log(now, "ack")

    def on_packets_lost(self, now, packets):
        self.ours.on_packets_lost(now, packets)
        self.theirs.on_packets_lost(now=now, packets=packets)
        self._log(now, "loss")

    def on_persistent_congestion_detected(self, now):
        self.ours.on_persistent_congestion_detected(now)
        self.theirs.on_persistent_congestion()
        self._log(now, "persistent_congestion")


def run_twin(name, drops, until_s, start_s=1.0, rtt_s=0.05):
    twin = Twin(name)
    # 1 Gbit/s: no queue, so aioquic's RTT monitor never leaves slow start early.
    sim = PathSim(twin, rate_bps=1e9, rtt_s=rtt_s, drop=lambda pn, now: pn in drops,
                  start_s=start_s)
    sim.run(until_s)
    return twin


def first_loss_index(log):
    return next(i for i, row in enumerate(log) if row[1] == "loss")


@pytest.mark.parametrize("name", ["reno", "cubic"])
def test_slow_start_is_identical(name):
    twin = run_twin(name, {600}, 1.6)
    i = first_loss_index(twin.log)
    assert i > 500
    assert all(row[2] == row[3] for row in twin.log[:i])


def test_reno_agrees_on_reduction_and_growth_rate():
    twin = run_twin("reno", {600, 3000}, 4.0)
    log = twin.log
    i = first_loss_index(log)
    _, _, ours, theirs, ss_ours, ss_theirs, _ = log[i]
    assert ours == theirs and ss_ours == ss_theirs == ours  # cwnd / 2 on both
    # Congestion avoidance after the first recovery: same +1 datagram per window acked.
    later = [r for r in log[i:] if r[1] == "ack" and r[2] > ss_ours + 2 * MDS]
    j = next(k for k, r in enumerate(log) if r is later[0])
    second = next(k for k in range(j, len(log)) if log[k][1] == "loss")
    seg = log[j:second]
    assert seg[-1][2] - seg[0][2] == pytest.approx(seg[-1][3] - seg[0][3], abs=MDS)
    # ... but aioquic's stash survives the reduction: it runs up to a datagram ahead.
    assert 0 <= max(r[3] - r[2] for r in seg) <= MDS


def test_aioquic_reno_ignores_acks_of_packets_sent_at_time_zero():
    ours = create("reno")
    theirs = create_congestion_control("reno", max_datagram_size=MDS)
    p = Packet(0, MDS, 0.0)
    ours.on_packet_sent(0.0, p)
    theirs.on_packet_sent(packet=p)
    rtt = RttStats()
    rtt.update(0.05, now=0.05)
    ours.on_packets_acked(0.05, [p], rtt)
    theirs.on_packet_acked(now=0.05, packet=p)
    assert ours.cwnd == 11 * MDS and theirs.congestion_window == 10 * MDS


def test_cubic_agrees_on_w_max_differs_on_ssthresh_and_reno_friendly_slope():
    # 10 ms RTT and a small window: W_est outgrows W_cubic (Reno-friendly region).
    twin = run_twin("cubic", {40}, 3.0, rtt_s=0.01)
    log = twin.log
    i = first_loss_index(log)
    _, _, ours, theirs, ss_ours, ss_theirs, _ = log[i]
    cwnd_at_loss = log[i - 1][2]
    assert twin.ours.w_max == twin.theirs._W_max == cwnd_at_loss
    assert ss_ours == int(0.7 * cwnd_at_loss)  # 0.7 x cwnd
    assert ss_theirs < ss_ours  # 0.7 x (flight after removing the lost packet)
    # After recovery, W_est dominates at this BDP (Reno-friendly region). Slopes in
    # segments per RTT over the same 2 s of acks: RFC 0.53 (wtlab), aioquic 1.0.
    # The path follows wtlab's window, so compare growth per window of acked data
    # (segments per cwnd acked, each against its own cwnd): that is alpha.
    t0 = log[i][0] + 0.05
    seg = [r for r in log if t0 <= r[0] <= t0 + 0.3 and r[1] == "ack"]
    n_acked = len(seg)  # one packet per ACK frame on this path
    ours_mean = sum(r[2] for r in seg) / n_acked
    theirs_mean = sum(r[3] for r in seg) / n_acked
    ours_slope = (seg[-1][2] - seg[0][2]) / MDS / (n_acked * MDS / ours_mean)
    theirs_slope = (seg[-1][3] - seg[0][3]) / MDS / (n_acked * MDS / theirs_mean)
    assert {r[6] for r in seg} == {"reno_friendly"}
    assert ours_slope == pytest.approx(3 * 0.3 / 1.7, rel=0.1)
    assert theirs_slope == pytest.approx(1.0, rel=0.15)
