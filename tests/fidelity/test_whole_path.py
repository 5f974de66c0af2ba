"""Whole-path fidelity in virtual time: wtlab's controllers inside aioquic, inside wtlab's
WebTransport client and server, over simulated links (issue 5, item 6).

Every run is a bulk download (server -> client, so loss and the bottleneck act on
``path.down``); ACKs travel on a loss-free ``path.up``. Paths are seeded, so every number
below is deterministic; the ratios measured when these tests were written are in the
comments (``python -m benchmarks.emulation --fidelity`` prints them again).

Figures come from the sender's trace (wtlab.trace.metrics, through ``res.metrics``) over a
window that skips the start-up (slow start is not what the formulas describe).
"""

from __future__ import annotations

import math

import pytest

from wtlab.net.emulate import emulate
from wtlab.net.link import LinkSpec
from wtlab.net.loss import Periodic
from wtlab.net.path import Path
from wtlab.trace.metrics import jain_index

MSS = 1200  # max_datagram_size (aioquic's default): what cwnd counts in


def path(rate_bps, rtt_s, *, loss=None, buffer_bdp=1.0, seed=1):
    down = LinkSpec(rate_bps=rate_bps, delay_s=rtt_s / 2, loss=loss, buffer=f"{buffer_bdp}bdp")
    up = LinkSpec(rate_bps=rate_bps, delay_s=rtt_s / 2, buffer=f"{buffer_bdp}bdp")
    return Path(down=down, up=up, seed=seed)


# Mathis et al.: goodput ~ (MSS/RTT) * 1.22 / sqrt(p). The +-25% band is the issue's; ns-3's
# NewReno lands at 0.93 / 0.84 / 0.79 of it on this path, because with random (not periodic)
# loss several losses can hit one window. 60 virtual seconds is 40-90 loss epochs of a
# 10-17 packet window; at 30 s the ratio still scattered 0.76-1.19 across seeds 1-4.
# p counts packets; with full_packets (the default since issue 19) a window-limited sender
# sends whole packets (mean 1177-1192 B here, short ones only at retransmission tails); with
# aioquic's own filling of the window's last bytes the mean was 1050-1130 B. The formula's
# segment is checked both as the full packet's payload and as the mean packet actually sent.
# Measured (seed 1, 60 s, 1 ms per-host timer granularity): per MSS 0.829 / 0.794 / 0.799,
# per packet sent 0.834 / 0.803 / 0.815 (before full packets: 0.838 / 0.834 / 0.813 and
# 0.890 / 0.908 / 0.929).
@pytest.mark.parametrize("p", [0.005, 0.01, 0.02])
def test_reno_goodput_follows_mathis(p):
    res = emulate(path(10e6, 0.1, loss=p), cc="reno", until_s=60.0)
    m = res.metrics(from_s=2.0).iloc[0]
    per_second = 8 / 0.1 * 1.22 / math.sqrt(p)  # Mathis, bit/s per byte of segment
    # goodput (payload) against Mathis with the payload of a full packet as the segment
    ratio_mss = m.goodput_bps / (m.payload_per_packet_bytes * per_second)
    # whole packets against Mathis with the mean packet actually sent
    ratio_packet = m.goodput_packet_bps / (m.mean_packet_bytes * per_second)
    print(f"reno p={p}: goodput {m.goodput_bps / 1e6:.3f} Mbit/s, Mathis "
          f"{m.payload_per_packet_bytes * per_second / 1e6:.3f}, ratio {ratio_mss:.3f} "
          f"(per packet sent {ratio_packet:.3f}, mean packet {m.mean_packet_bytes:.0f} B)")
    assert 0.75 <= ratio_mss <= 1.25
    assert 0.75 <= ratio_packet <= 1.25
    # the link delivered the loss rate we asked for (the formula's p), within sampling error
    assert m.loss_rate == pytest.approx(p, rel=0.5)


# RFC 9438 section 5.1: CUBIC's average window ~ 1.054 * RTT^0.75 / p^0.75 packets under the
# deterministic loss model it is derived for (one loss every 1/p packets: Periodic), where
# CUBIC (not its Reno-friendly region) governs: at RTT 200 ms and p = 0.1% that is 56
# packets against 38.6 for the Reno-friendly estimate, and the path (10 Mbit/s, BDP 208
# packets) does not cap it. The first loss comes 1000 packets into slow start (cwnd ~570
# packets), and each epoch then takes off only 30%: the window reaches its steady
# sawtooth (W_max ~48 x 1200 B) by ~20 s, so the mean is taken over [20, 40] s, ~5 epochs
# of a cycle that repeats exactly. The window counted in packets sent is the formula's
# unit, as p counts those packets (with full packets, the default, both counts agree).
# Measured: per packet sent 0.887, per 1200-byte MSS 0.885 (before full packets, when
# aioquic filled each window with a short packet of mean ~1010 B: 0.941 and 0.804). (Under Bernoulli loss with the
# same p the ratio depends on the seed, 0.95-1.67 over seeds 1-4 in 60 s runs: the long
# loss-free gaps of random loss let the cubic grow far, which is not the formula's model.)
def test_cubic_average_window_follows_rfc9438():
    rtt_s, p = 0.2, 0.001
    res = emulate(path(10e6, rtt_s, loss=Periodic(p)), cc="cubic", until_s=40.0)
    m = res.metrics(from_s=20.0).iloc[0]
    ref = 1.054 * rtt_s ** 0.75 / p ** 0.75
    assert ref > 1.22 / math.sqrt(p)  # the formula applies here
    window_packets = m.mean_cwnd_bytes / m.mean_packet_bytes
    window_mss = m.mean_cwnd_bytes / MSS
    ratio = window_packets / ref
    print(f"cubic: mean window {window_packets:.1f} packets sent "
          f"({window_mss:.1f} x {MSS} B), RFC 9438 {ref:.1f}, ratio {ratio:.3f} "
          f"(per MSS {window_mss / ref:.3f})")
    assert 0.75 <= ratio <= 1.25
    assert 0.75 <= window_mss / ref <= 1.25
    # steady state: the losses in the window are the periodic ones, no buffer overflow
    assert m.loss_rate == pytest.approx(p, rel=0.2)


# BBR on a constant 20 Mbit/s, 40 ms path with a 2-BDP buffer (so the buffer does not bound
# the queue for it): it should fill the link while keeping the queue under one RTT
# (BBRv1 targets cwnd = 2 BDP, so at most ~1 BDP queues). 10 s covers start-up, drain and
# ~7 ProbeBW gain cycles. Measured: utilisation 1.000, mean queueing delay 4.1 ms (0.10 RTT;
# 6.4 ms before issue 19 made "bbr" Linux's BBRv1, whose 1% pacing margin keeps less queue).
def test_bbr_fills_the_link_with_a_short_queue():
    res = emulate(path(20e6, 0.04, buffer_bdp=2.0), cc="bbr", until_s=10.0)
    m = res.metrics(from_s=2.0).iloc[0]
    print(f"bbr: utilisation {m.utilisation:.3f}, queueing delay "
          f"{m.queueing_delay_mean_s * 1000:.1f} ms")
    assert m.utilisation >= 0.90
    assert m.queueing_delay_mean_s <= 0.04


# At 2% random loss BBR (rate-based, loss-agnostic in ProbeBW) keeps most of the capacity,
# while CUBIC's window collapses (Reno-friendly ~ 8.6 packets against a BDP of 83).
# Measured: BBR 0.976 of capacity, CUBIC 0.085 (before issue 19: 0.981 and 0.074).
def test_bbr_keeps_the_rate_under_loss_where_cubic_collapses():
    bbr = emulate(path(20e6, 0.04, loss=0.02, buffer_bdp=2.0), cc="bbr", until_s=10.0)
    cubic = emulate(path(20e6, 0.04, loss=0.02, buffer_bdp=2.0), cc="cubic", until_s=10.0)
    u_bbr = bbr.metrics(from_s=2.0).iloc[0].utilisation
    u_cubic = cubic.metrics(from_s=2.0).iloc[0].utilisation
    print(f"2% loss: bbr {u_bbr:.3f} of capacity, cubic {u_cubic:.3f}")
    assert u_bbr >= 0.70
    assert u_cubic < 0.30


# Two CUBIC flows (the second starts 1 s later, so it must win its share from an
# established flow) on a 2-BDP buffer. The window is the second half of 20 s: ~10 s of
# sharing after convergence. Jain >= 0.9 as the issue asks. Measured: Jain 0.999 (9.22 vs
# 9.75 Mbit/s), utilisation 1.000 (before issue 19's full packets: 0.994, 8.95 vs 10.5).
def test_two_cubic_flows_share_fairly():
    res = emulate(path(20e6, 0.04, buffer_bdp=2.0), cc=["cubic", "cubic"], until_s=20.0,
                  start_s=[0.0, 1.0])
    m = res.metrics(from_s=10.0)
    jain = jain_index(m.goodput_bps)
    print(f"two cubic: goodputs {list((m.goodput_bps / 1e6).round(2))} Mbit/s, Jain {jain:.3f}")
    assert jain >= 0.9
    assert res.summary(from_s=10.0)["utilisation"] >= 0.9


# No congestion collapse: 8 flows of four controllers on a small (0.25 BDP) buffer still
# carry >= 85% of the capacity in aggregate. Measured: 0.997 (not fair: the two BBRv1 flows
# take 9.2 and 7.8 Mbit/s on so shallow a buffer, the loss-based ones and BBRv3 0.15-0.6;
# before issue 19: 0.998, BBRv1 ~8.8 each).
def test_mixed_flows_on_a_small_buffer_do_not_collapse():
    res = emulate(path(20e6, 0.04, buffer_bdp=0.25), cc=["reno", "cubic", "bbr", "bbr3"] * 2,
                  until_s=8.0)
    m = res.metrics(from_s=2.0)
    total = res.summary(from_s=2.0)["utilisation"]
    print(f"8 mixed flows: aggregate {total:.3f} of capacity; per flow "
          f"{list((m.goodput_bps / 1e6).round(2))} Mbit/s")
    assert len(m) == 8 and (m.goodput_bps > 0).all()
    assert total >= 0.85
