"""CUBIC against RFC 9438 (and HyStart++, RFC 9406) on a constant-RTT path."""

from __future__ import annotations

import pytest

from wtlab.cc import Packet, RttStats, create
from wtlab.cc.cubic import K_CUBIC_ALPHA
from wtlab.trace import Recorder

from .sim import PathSim

MDS = 1200


def one_loss_run(*, rtt_s: float, drop_at_cwnd_pkts: int, until_s: float):
    """Slow start on a lossless, queue-free path (10 Gbit/s), one drop, then every packet acked."""
    cc = create("cubic", max_datagram_size=MDS)
    info: dict = {}

    def drop(pn, now):
        if not info and cc.cwnd >= drop_at_cwnd_pkts * MDS:
            info.update(pn=pn, sent=now)
            return True
        return False

    samples: list[tuple[float, int, str, float]] = []

    def on_frame(sim):
        c = sim.cc
        if c.ssthresh is not None and "w_max" not in info:
            info.update(w_max=c.w_max, loss_time=sim.now, cwnd_at_loss=c.cwnd_prior)
        samples.append((sim.now, c.cwnd, c.region, c.w_est))

    sim = PathSim(cc, rate_bps=10e9, rtt_s=rtt_s, drop=drop, on_frame=on_frame)
    sim.run(until_s)
    return cc, info, samples, sim


def test_window_follows_the_cubic_function_within_2_percent():
    rtt_s = 0.1
    cc, info, samples, sim = one_loss_run(rtt_s=rtt_s, drop_at_cwnd_pkts=100, until_s=11.0)
    # Exactly one congestion event: W_max is the window at the loss, cwnd_epoch = beta W_max.
    w_max_seg = info["cwnd_at_loss"] / MDS
    assert cc.w_max == info["cwnd_at_loss"]
    assert cc.cwnd_epoch == int(0.7 * info["cwnd_at_loss"])
    # The CA epoch starts with the first ack of a packet sent after the reduction: ~1 RTT later.
    assert 0 < cc.t_epoch - info["loss_time"] <= 1.5 * rtt_s
    k = ((w_max_seg - cc.cwnd_epoch / MDS) / 0.4) ** (1 / 3)  # RFC 9438 eq. 2
    assert k == pytest.approx(cc.k_s, rel=1e-9)
    checked = 0
    worst = 0.0
    for t, cwnd, region, _w_est in samples:
        tt = t - cc.t_epoch
        if tt < 2 * rtt_s:
            continue
        expected = 0.4 * (tt - k) ** 3 + w_max_seg  # RFC 9438 eq. 1, segments
        worst = max(worst, abs(cwnd / MDS - expected) / expected)
        assert region in ("concave", "convex")  # W_est stays below: not Reno-friendly
        checked += 1
    # 2%: cwnd chases W(t + RTT) one ack at a time, so it lags/leads W(t) by at most
    # W'(t) x RTT (~0.4% here) plus one segment of integer rounding.
    assert checked > 10_000
    assert worst < 0.02, worst
    assert sim.now - cc.t_epoch > 1.5 * k  # the run covered both the concave and convex parts
    regions = {r for _, _, r, _ in samples}
    assert {"concave", "convex"} <= regions


def test_reno_friendly_region_takes_over_at_small_bdp():
    rtt_s = 0.01
    cc, info, samples, _ = one_loss_run(rtt_s=rtt_s, drop_at_cwnd_pkts=20, until_s=1.5)
    ca = [(t, cwnd, region, w_est) for t, cwnd, region, w_est in samples
          if t >= cc.t_epoch + 2 * rtt_s]
    assert ca and all(region == "reno_friendly" for _, _, region, _ in ca)
    assert all(cwnd == int(w_est) for _, cwnd, _, w_est in ca)  # cwnd = W_est (4.3)

    def slope_seg_per_rtt(t0, t1):
        c0 = next(c for t, c, _, _ in ca if t >= t0)
        c1 = next(c for t, c, _, _ in ca if t >= t1)
        return (c1 - c0) / MDS / ((t1 - t0) / rtt_s)

    # Before W_est reaches cwnd_prior it grows alpha_cubic = 0.529 segments per RTT,
    # then 1 per RTT (4.3). 5%: the integer window loses < 1 byte per ack.
    prior = cc.cwnd_prior
    t_prior = next(t for t, c, _, _ in ca if c >= prior)
    t_start = ca[0][0]
    assert t_prior - t_start > 10 * rtt_s
    assert slope_seg_per_rtt(t_start, t_prior - rtt_s) == pytest.approx(K_CUBIC_ALPHA, rel=0.05)
    assert slope_seg_per_rtt(t_prior + rtt_s, ca[-1][0] - rtt_s) == pytest.approx(1.0, rel=0.05)


def step_loss(cc, pn, t):
    p = Packet(pn, MDS, t)
    cc.on_packet_sent(t, p)
    cc.on_packets_lost(t + 0.05, [p])


@pytest.mark.parametrize("fast_convergence", [True, False])
def test_fast_convergence_lowers_w_max_on_a_second_reduction_below_the_first(fast_convergence):
    cc = create("cubic", fast_convergence=fast_convergence)
    cc.cwnd = 100 * MDS
    step_loss(cc, 0, 0.0)
    assert cc.w_max == 100 * MDS and cc.cwnd == 70 * MDS and cc.ssthresh == 70 * MDS
    # Grow a little (still below W_max), then lose a packet sent after recovery began.
    rtt = RttStats()
    rtt.update(0.05, now=0.1)
    for pn in range(1, 40):
        p = Packet(pn, MDS, 0.1)
        cc.on_packet_sent(0.1, p)
        cc.on_packets_acked(0.15, [p], rtt)
    before = cc.cwnd
    assert 70 * MDS < before < 100 * MDS
    step_loss(cc, 100, 0.2)
    if fast_convergence:
        assert cc.w_max == pytest.approx(before * (1 + 0.7) / 2)  # RFC 9438 4.7
        assert cc.w_max < before
    else:
        assert cc.w_max == before
    assert cc.cwnd == int(before * 0.7)


def test_hystart_plus_plus_leaves_slow_start_before_the_buffer_overflows():
    def run(hystart):
        rec = Recorder()
        cc = create("cubic", hystart=hystart, recorder=rec)
        PathSim(cc, rate_bps=10e6, rtt_s=0.04, buffer_bytes=400_000).run(1.5)
        df = rec.to_pandas()
        first_loss = df[df["kind"] == "packet_lost"]["time_s"].min()
        states = df[df["kind"] == "state_changed"]
        return cc, df, first_loss, states

    _, plain_df, plain_loss, _ = run(False)
    cc, df, hs_loss, states = run(True)
    css = states[states["state"] == "conservative_slow_start"]
    assert len(css) >= 1
    # CSS begins before any loss, at a smaller window than plain slow start reached.
    css_time = css["time_s"].iloc[0]
    assert css_time < plain_loss and (hs_loss != hs_loss or css_time < hs_loss)
    plain_peak = plain_df[plain_df["time_s"] <= plain_loss]["cwnd"].max()
    assert css["cwnd"].iloc[0] < plain_peak / 2
    # After 5 CSS rounds (RFC 9406 CSS_ROUNDS), congestion avoidance with ssthresh = cwnd.
    ca = states[states["state"] == "congestion_avoidance"]
    assert len(ca) >= 1 and ca["ssthresh"].iloc[0] == ca["cwnd"].iloc[0]
    assert (df["kind"] == "packet_lost").sum() < (plain_df["kind"] == "packet_lost").sum()
