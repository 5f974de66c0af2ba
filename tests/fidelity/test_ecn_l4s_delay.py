"""Fidelity of ECN, L4S and delay-based control (issue 18): DCTCP on a step-marking queue,
Reno with CE marks instead of drops, Prague and CUBIC through DualPI2, Vegas, Copa, LEDBAT.

Runs use the fast model (``wtlab.model``: the same controller objects, RFC 9002 recovery,
aioquic's 1 ms ACK timer and pacer) so the shortest durations that decide each question fit
the suite; ``test_*_emulated`` repeats the L4S case over the real aioquic stack. Paths are
seeded, so every number is deterministic; the figures measured when these tests were
written are in the comments (``python -m benchmarks.ecn`` prints them again, longer).

Queue figures are sampled from the bottleneck link itself (``Link.queue_delay_s``: how
long its content takes to leave) every millisecond, in packets of 1228 wire bytes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from wtlab import cc as C
from wtlab.lab import analytic
from wtlab.model import run
from wtlab.model.api import build
from wtlab.net.aqm import StepMark

WIRE = 1228  # bytes a full packet takes on the link (1200 + IPv4/UDP)


def sampled_queue(built, until_s, *, from_s, dt=0.001):
    """The link's queue in packets every ``dt`` from ``from_s`` (times, packets)."""
    return built.sample_queue(until_s, from_s=from_s, dt_s=dt, packet_bytes=WIRE)


def _sawtooth(trace, state, from_s):
    """(peak, trough) of cwnd, in packets of 1200 bytes, at each entry into ``state``."""
    w = trace[(trace.time_s > from_s) & trace.cwnd.notna()][["kind", "cwnd", "state"]]
    w = w.reset_index(drop=True)
    out = []
    for i in w.index[(w.kind == "state_changed") & (w.state == state)]:
        after = w.cwnd[i]
        k = i - 1
        while k > 0 and w.cwnd[k] == after:
            k -= 1
        out.append((w.cwnd[k] / 1200, after / 1200))
    return np.array(out)


# DCTCP, one flow, a step-marking queue (mark arrivals finding more than K queued).
# Alizadeh et al. section 3.3 predict, with W* = C x RTT + K packets: alpha from eq. 7, a
# window sawtooth of amplitude D = (W* + 1) alpha / 2 (~ sqrt(W*/2)) and a queue between
# Q_min = K + 1 - D and Q_max = K + 1.
# What wtlab's QUIC model gives (20 Mbit/s, 40 ms, K = 20; 30 s): the queue stays in that
# band (mean 18.3 packets, band 13.7-21), the per-cycle reduction is the paper's
# (W alpha / 2 within 10 % of the measured drop), but alpha and the amplitude come out
# smaller than the analysis: D = 3.0 packets for a predicted 7.3 (ratio 0.41; 0.25-0.53 at
# 10-100 Mbit/s, paced or not: python -m benchmarks.ecn). The analysis assumes the queue,
# once above K, stays above for a whole RTT of marks; here the first mark comes from the
# 2-3 packet burst a window increment releases (aioquic's 1 ms ACK timer often acks two
# packets at once), while the standing queue is still at K, so each cycle sees a few
# marks rather than a round trip of them. The test therefore checks the
# band, the reduction rule, and that the sawtooth stays within the analysis' amplitude
# (+25 %); the two-sided 25 % match the issue asks for does not hold (see the report).
def test_dctcp_keeps_the_queue_near_k_within_the_predicted_amplitude():
    rate, rtt, k = 20e6, 0.04, 20
    dctcp = C.create("dctcp", max_datagram_size=1200)
    built = build(dict(rate_bps=rate, rtt_s=rtt, buffer="1000p",
                       aqm=StepMark(threshold_packets=k)), cc=dctcp, seed=1)
    _, q = sampled_queue(built, 30.0, from_s=8.0)
    trace = built.recorder.to_pandas()
    min_rtt = trace[trace.kind == "rtt_sample"].latest_rtt_s.min()
    pred = analytic.dctcp_sawtooth(rate * min_rtt / (8 * WIRE), k)
    w_star, alpha, d_pred = pred["w_star_packets"], pred["alpha"], pred["d_packets"]
    saw = _sawtooth(trace, "cwr", 8.0)
    drops = saw[:, 0] - saw[:, 1]
    d = drops.mean()
    print(f"dctcp: W*={w_star:.1f} alpha pred {alpha:.3f} got {dctcp.alpha:.3f}; amplitude "
          f"pred {d_pred:.2f} got {d:.2f} (ratio {d / d_pred:.2f}, {len(drops)} cycles); "
          f"queue mean {q.mean():.1f} band [{k + 1 - d_pred:.1f}, {k + 1}]")
    assert len(drops) > 50
    assert k + 1 - d_pred <= q.mean() <= k + 1
    assert d <= 1.25 * d_pred
    # each reduction is the paper's (and RFC 8257's) cwnd x alpha / 2, alpha as the
    # controller held it (its EWMA moves by at most g = 1/16 of a mark fraction per RTT)
    expected = saw[:, 0] * np.array(_alphas_at_reductions(trace)) / 2
    assert d == pytest.approx(expected.mean(), rel=0.25)


# The gap above is the ACK policy's. Alizadeh et al.'s analysis assumes per-packet
# feedback: with the model's ack_policy="every" (an ACK for each packet, at once) the
# same path comes close to the analysis: the window's oscillation 0.77 of the prediction
# here (0.74-0.77 over benchmarks.ecn's four paths), while aioquic's policy (one ACK 1 ms
# after the first unacked packet: 2 packets per ACK at 20 Mbit/s, 10 at 100) gives
# 0.25-0.53 and RFC 9000's every-2nd-packet 0.53-0.56: the bursts each ACK releases are
# marked while the standing queue is still at K, so marks stop before a round trip of
# them has been seen.
# The remaining quarter is the analysis' one approximation: alpha constant. The fraction
# of packets marked is eq. 7's alpha (1.03 of it here, 0.97-1.03 on the four paths), but
# RFC 8257's alpha is an EWMA (g = 1/16) that decays through the cycle's 5-8 mark-free
# RTTs and cuts at its trough (analytic.dctcp_alpha_at_cut: 0.113 predicted, 0.108 seen,
# against eq. 7's 0.141). With that alpha in D the analysis and the model agree within
# 6 % on all four paths (0.94-0.96). Tolerances: 10 % on the mark fraction and on the
# corrected amplitude, the 25 % on the analysis as published.
def test_dctcp_with_an_ack_per_packet_matches_the_analysis():
    rate, rtt, k = 20e6, 0.04, 20
    dctcp = C.create("dctcp", max_datagram_size=1200)
    built = build(dict(rate_bps=rate, rtt_s=rtt, buffer="1000p",
                       aqm=StepMark(threshold_packets=k)), cc=dctcp, seed=1, ack_policy="every")
    _, q = sampled_queue(built, 30.0, from_s=8.0)
    trace = built.recorder.to_pandas()
    min_rtt = trace[trace.kind == "rtt_sample"].latest_rtt_s.min()
    pred = analytic.dctcp_sawtooth(rate * min_rtt / (8 * WIRE), k)
    saw = _sawtooth(trace, "cwr", 8.0)
    d = (saw[:, 0] - saw[:, 1]).mean()
    print(f"dctcp, ACK per packet: alpha pred {pred['alpha']:.3f} got {dctcp.alpha:.3f}; "
          f"amplitude pred {pred['d_packets']:.2f} got {d:.2f} "
          f"(ratio {d / pred['d_packets']:.2f}, {len(saw)} cycles)")
    after = trace[trace.time_s > 8.0]
    marked = (after.kind == "ecn_marked").sum() / (after.kind == "packet_sent").sum()
    cuts = after[(after.kind == "state_changed") & (after.state == "cwr")].time_s
    cycle_rtts = np.diff(cuts.to_numpy()).mean() / after[after.kind == "rtt_sample"].latest_rtt_s.mean()
    alpha_cut = analytic.dctcp_alpha_at_cut(cycle_rtts)
    d_ewma = pred["d_packets"] * alpha_cut / pred["alpha"]
    print(f"  marked fraction {marked:.3f}; cycle {cycle_rtts:.1f} RTTs; alpha at the cut "
          f"{np.mean(_alphas_at_reductions(trace)):.3f} (EWMA trough {alpha_cut:.3f}); "
          f"amplitude / analysis with that alpha {d / d_ewma:.2f}")
    assert len(saw) > 30
    assert marked == pytest.approx(pred["alpha"], rel=0.10)
    assert d == pytest.approx(pred["d_packets"], rel=0.25)
    assert d == pytest.approx(d_ewma, rel=0.10)
    assert k + 1 - pred["d_packets"] <= q.mean() <= k + 1


def _alphas_at_reductions(trace):
    """alpha at each reduction, recovered from the reduction itself (cwnd_after/before)."""
    saw = _sawtooth(trace, "cwr", 8.0)
    return list(2 * (1 - saw[:, 1] / saw[:, 0]))


# Mathis et al.: Reno's goodput ~ (MSS / RTT) x sqrt(3/2) / sqrt(p). With random CE marks
# (the ``mark`` of the path: every ECN-capable packet marked with probability p) a classic
# ECN sender halves once per RTT as after a loss (RFC 9002 B.7), so the same law holds at
# the mark rate, with nothing retransmitted. p is the mark rate the sender measured
# (ce_marks / ECT packets acknowledged). 60 s is 60-150 congestion epochs at these rates;
# the 25 % band is the issue's. Measured (seed 1): marks 0.94 / 0.93 / 0.90 of Mathis, drops
# 0.91 / 0.90 / 0.86 (several losses can hit one window, as with ns-3's NewReno; seeds 2-3
# in benchmarks.ecn: 0.88-0.96).
@pytest.mark.parametrize("p", [0.005, 0.01, 0.02])
def test_reno_with_marks_follows_mathis_like_with_drops(p):
    def mathis(m, rate):
        return m.payload_per_packet_bytes * 8 / m.rtt_mean_s * math.sqrt(1.5) / math.sqrt(rate)

    path = dict(rate_bps=50e6, rtt_s=0.04, buffer_bdp=2)
    marked = run(dict(path, mark=p), cc="reno+ecn", duration_s=60, seed=1).metrics(10, 60).iloc[0]
    lost = run(dict(path, loss=p), cc="reno", duration_s=60, seed=1).metrics(10, 60).iloc[0]
    r_mark = marked.goodput_bps / mathis(marked, marked.mark_rate)
    r_loss = lost.goodput_bps / mathis(lost, lost.loss_rate)
    print(f"p={p}: marks {marked.goodput_bps / 1e6:.2f} Mbit/s at {marked.mark_rate:.4f} "
          f"(Mathis ratio {r_mark:.3f}), drops {lost.goodput_bps / 1e6:.2f} Mbit/s at "
          f"{lost.loss_rate:.4f} (ratio {r_loss:.3f})")
    assert 0.75 <= r_mark <= 1.25 and 0.75 <= r_loss <= 1.25
    assert marked.packets_lost == 0 and marked.ce_marks > 50  # no retransmissions at all
    assert marked.mark_rate == pytest.approx(p, rel=0.2)
    assert marked.goodput_bps == pytest.approx(lost.goodput_bps, rel=0.25)


# DualPI2 (RFC 9332) with one Prague (L queue) and one CUBIC flow (C queue), 20 Mbit/s.
# The coupling p_CL = 2 p' against p_C = p'^2 aims at equal windows within 1.22x (section
# 2.1: Reno's 1.22/sqrt(p_C) against a scalable 2/p_L); rates differ further because the C
# queue adds its 15 ms target to CUBIC's RTT, and Prague reduces at most once per round
# under random marks (about two rounds in three here), so its window is ~3/p_L rather than
# 2/p_L. The band: rates within a factor of two either way ("roughly equal", RFC 9332's
# words). Measured (20 ms, 30 s, window 10-30 s): Prague 6.9, CUBIC 12.0 Mbit/s (ratio
# 0.57); the L queue's mean sojourn 0.37 ms (a 1228-byte packet takes 0.49 ms at 20 Mbit/s).
# The balance is sensitive: it falls with RTT (0.72 at 10 ms, 0.45 at 40, 0.34 at 80) and
# was 1.43 before senders sent only whole packets while window-limited (issue 19's
# full_packets: Prague's packets then meet the 1 ms step in small bursts, mark rate 0.12
# instead of 0.08). Emulated (aioquic, 8 s, window 3-8 s): ratio 0.46, L sojourn 0.48 ms.
def test_prague_and_cubic_share_a_dualpi2_bottleneck():
    r = run(dict(rate_bps=20e6, rtt_s=0.02, buffer_bdp=4, aqm="dualpi2"),
            cc=["prague", "cubic"], duration_s=30, seed=1)
    m = r.metrics(10, 30)
    prague, cubic = m.goodput_bps.iloc[0], m.goodput_bps.iloc[1]
    stats = r.path.down.aqm_stats()
    print(f"dualpi2: prague {prague / 1e6:.2f}, cubic {cubic / 1e6:.2f} Mbit/s "
          f"(ratio {prague / cubic:.2f}); L sojourn {stats['l_sojourn_mean_s'] * 1e3:.2f} ms, "
          f"C {stats['c_sojourn_mean_s'] * 1e3:.1f} ms; p' {stats['p_prime']:.3f}")
    assert 0.5 <= prague / cubic <= 2.0
    assert stats["l_sojourn_mean_s"] < 0.001
    assert (prague + cubic) > 0.85 * 20e6 * 1160 / 1228  # the link stays busy
    assert m.mark_rate.iloc[0] > 0 and m.packets_lost.iloc[0] == 0  # Prague: marks, no loss


def test_prague_l4s_queue_under_a_millisecond_emulated():
    """The same L4S property over the real aioquic stack (virtual time, 8 s)."""
    from wtlab.lab import Experiment

    exp = Experiment(path=dict(rate_bps=20e6, rtt_s=0.02, buffer_bdp=4, aqm="dualpi2"),
                     flows=["prague", "cubic"], engine="emulate", seed=1)
    s = exp.stepper()
    try:
        s.run(8.0)
        res = s.result()
        m = res.metrics(3, 8)
        stats = res.path.down.aqm_stats()
    finally:
        s.close()
    print(f"emulated dualpi2: {m[['cc', 'goodput_bps', 'mark_rate']].to_dict('records')}, "
          f"L sojourn {stats['l_sojourn_mean_s'] * 1e3:.2f} ms")
    assert stats["l_sojourn_mean_s"] < 0.001
    assert m.ce_marks.iloc[0] > 0 and m.ecn_state.iloc[0] == "capable"
    assert 0.33 <= m.goodput_bps.iloc[0] / m.goodput_bps.iloc[1] <= 3.0


def _standing(times, q, half_rtt):
    """Copa's standing queue: the minimum over each half RTT, averaged (packets)."""
    bins = ((times - times[0]) // half_rtt).astype(int)
    mins = [q[bins == b].min() for b in np.unique(bins)]
    return float(np.mean(mins))


# Vegas holds between alpha = 2 and beta = 4 of its packets in the queue. Its estimate
# (cwnd x (rtt - base)/rtt) uses the smallest RTT sample of each RTT, so what it regulates
# is the queue's minimum over each RTT; the window moves one packet per RTT, so that minimum
# wanders inside [2, 4] with a packet of phase noise: the band allows half a packet (half
# the step) outside each end. Measured (10 Mbit/s, 40 ms, 20 s, window 5-20): per-RTT
# minimum 2.27 packets on average (the mean queue, with the bursts between minima, 3.21).
def test_vegas_keeps_alpha_to_beta_packets_queued():
    built = build(dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=2), cc="vegas", seed=1)
    times, q = sampled_queue(built, 20.0, from_s=5.0)
    per_rtt_min = _standing(times, q, 0.04)
    print(f"vegas: per-RTT minimum queue {per_rtt_min:.2f} packets, mean {q.mean():.2f}")
    assert 2 - 0.5 <= per_rtt_min <= 4 + 0.5


# Copa's default mode targets 1/(delta x d_q) packets per second, which leaves 1/delta
# packets per flow standing in the queue (NSDI 2018 section 2.1): the standing queue is the
# queue's minimum over half an RTT, averaged. Tolerance: 25 % or one packet, whichever is
# larger: senders send whole packets while the window limits them (TCP, and wtlab's
# ``full_packets``), so Copa's window acts in whole packets, which at 1/delta = 2 is +-25 %
# by itself (with aioquic's short filler packets, ``full_packets=False``, one flow at delta
# 0.5 stands at 2.03). Measured (10 Mbit/s, 40 ms, 20 s, window 5-20): delta 0.5: one flow
# 1.36, two flows 1.70 per flow; delta 0.2: 5.38. Competitive mode is off for two flows:
# two Copa flows in wtlab's model do not drain the queue every five RTTs, and its detector
# would switch them to competitive mode (see wtlab.cc.copa).
@pytest.mark.parametrize("delta, flows", [(0.5, 1), (0.5, 2), (0.2, 1)])
def test_copa_standing_queue_is_one_over_delta_per_flow(delta, flows):
    ccs = [C.create("copa", max_datagram_size=1200, delta=delta, competitive=flows == 1)
           for _ in range(flows)]
    built = build(dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=2), cc=ccs, seed=1)
    times, q = sampled_queue(built, 20.0, from_s=5.0)
    per_flow = _standing(times, q, 0.02) / flows
    print(f"copa delta={delta} x{flows}: standing queue {per_flow:.2f} packets per flow "
          f"(1/delta = {1 / delta:g}), mean {q.mean():.2f}")
    assert abs(per_flow - 1 / delta) <= max(0.25 / delta, 1.0)
    assert all(c.mode == "default" for c in ccs)


# Copa's competitive mode (NSDI 2018 section 2.3): next to a buffer-filling flow the queue
# never empties, Copa notices within five RTTs and runs AIMD on 1/delta (+1 per RTT,
# halved on a loss) to claim a TCP-like share; without the mode it keeps its small delay
# target and CUBIC takes nearly everything. The paper's aim is a share comparable to the
# competing TCP flow's: the band is 0.3-0.6 of the two flows' goodput (0.5 is fair),
# against under 0.15 with the mode off. Measured (10 Mbit/s, 40 ms, 2 BDP, 20 s, window
# 5-20 s): mode on, 0.41 of the goodput and 0.91 of the window in competitive mode (its
# ``state``); off, 0.06 and never.
def test_copa_holds_its_own_against_cubic_only_in_competitive_mode():
    share, competitive_time = {}, {}
    for competitive in (True, False):
        copa = C.create("copa", max_datagram_size=1200, competitive=competitive)
        r = run(dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=2), cc=[copa, "cubic"],
                duration_s=20, seed=1)
        m = r.metrics(5, 20)
        share[competitive] = m.goodput_bps.iloc[0] / m.goodput_bps.sum()
        trace = r.trace()
        changes = trace[(trace.flow == 0) & (trace.kind == "state_changed")]
        competitive_time[competitive] = _time_in_state(changes, "competitive", 5.0, 20.0) / 15.0
    print(f"copa next to cubic: share {share[True]:.2f} with the competitive mode "
          f"({competitive_time[True]:.0%} of the time in it), {share[False]:.2f} without")
    assert 0.3 <= share[True] <= 0.6
    assert share[False] < 0.15
    assert competitive_time[True] > 0.5
    assert competitive_time[False] == 0.0


def _time_in_state(changes, state, from_s, to_s):
    """Seconds of [from_s, to_s] a controller spent in ``state``, from its state_changed rows."""
    times = np.append(changes.time_s.to_numpy(), to_s)
    states = changes.state.astype(str).to_numpy()
    spent = 0.0
    for i, name in enumerate(states):
        lo, hi = max(times[i], from_s), min(times[i + 1], to_s)
        if name == state and hi > lo:
            spent += hi - lo
    return spent


# LEDBAT (RFC 6817): alone it steers the queueing delay it adds to TARGET = 100 ms; with
# a CUBIC flow filling the buffer the delay exceeds the target and LEDBAT backs off to its
# minimum window. Measured (10 Mbit/s, 40 ms, 5 BDP buffer): alone, queueing delay 101 ms
# (window 10-20 s); with CUBIC from t = 5 s, LEDBAT gets 0.9 % of the link (window 15-30 s).
def test_ledbat_settles_at_its_target_and_yields_to_cubic():
    path = dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=5)
    built = build(path, cc="ledbat", seed=1)
    _, q = sampled_queue(built, 20.0, from_s=10.0, dt=0.005)
    delay = q.mean() * 8 * WIRE / 10e6
    shared = run(path, cc=["ledbat", "cubic"], duration_s=30, seed=1, start_times_s=[0, 5])
    m = shared.metrics(15, 30)
    share = m.goodput_bps.iloc[0] / 10e6
    print(f"ledbat: alone {delay * 1e3:.1f} ms of queueing delay; with cubic "
          f"{share:.1%} of the link (cubic {m.goodput_bps.iloc[1] / 1e6:.2f} Mbit/s)")
    assert delay == pytest.approx(0.100, rel=0.25)
    assert share < 0.10
