"""BBRv1 against draft-cardwell-iccrg-bbr-congestion-control-00 on a constant-rate path
(``variant="draft00"``), and what Linux's tcp_bbr.c adds (``"bbr"``, the default)."""

from __future__ import annotations

import math
import random

import pytest

from wtlab.cc import create
from wtlab.cc.bbr import (
    BBR_DRAIN_GAIN,
    BBR_HIGH_GAIN,
    EXTRA_ACKED_MAX_S,
    LINUX_PACING_MARGIN,
    PACING_GAIN_CYCLE,
    WindowedMax,
)
from wtlab.errors import ConfigError
from wtlab.trace import Recorder

from .sim import PathSim

RATE_BPS = 10e6
RTT_S = 0.04
BDP_BYTES = RATE_BPS / 8 * RTT_S  # 50 kB


def run_bbr(until_s, *, drop=None, buffer_bytes=2 * int(BDP_BYTES), seed=0, variant="draft00",
            ack_aggregate_s=0.0):
    rec = Recorder()
    cc = create("bbr", recorder=rec, seed=seed, variant=variant)
    frames: list[tuple] = []

    def on_frame(sim):
        c = sim.cc
        frames.append((sim.now, c.state, c.pacing_gain, c.cwnd_gain, c.pacing_rate_bps,
                       c.btlbw_bps, c.cycle_index, c.cwnd, c.packet_conservation,
                       c.extra_acked))

    sim = PathSim(cc, rate_bps=RATE_BPS, rtt_s=RTT_S, buffer_bytes=buffer_bytes, drop=drop,
                  on_frame=on_frame, ack_aggregate_s=ack_aggregate_s)
    sim.run(until_s)
    return cc, rec.to_pandas(), frames, sim


@pytest.fixture(scope="module")
def long_run():
    return run_bbr(31.0)


def test_states_in_order_and_bandwidth_estimate(long_run):
    cc, df, frames, sim = long_run
    changes = df[df["kind"] == "state_changed"]
    order = list(changes["state"].astype(str))
    assert order[:3] == ["drain", "probe_bw", "probe_rtt"]
    assert frames[0][1] == "startup"
    # Startup ends within a few RTTs once the pipe is full (3 rounds without 25% growth).
    assert changes["time_s"].iloc[0] < 40 * RTT_S
    # Bandwidth estimate within 5% of the true rate (the path has no other traffic).
    est = [bw for t, state, *_rest in frames if t > 2.0 for bw in [_rest[3]]]
    assert min(est) == pytest.approx(RATE_BPS, rel=0.05)
    assert max(est) == pytest.approx(RATE_BPS, rel=0.05)
    assert cc.rtprop_s == pytest.approx(RTT_S + 1200 * 8 / RATE_BPS, rel=1e-6)
    # And it uses the link: goodput over 10 s of steady state within 5% of the rate.
    assert sim.goodput_bps(2.0, 30.0) == pytest.approx(RATE_BPS, rel=0.05)


def test_probe_rtt_about_every_10_seconds(long_run):
    _, df, frames, _ = long_run
    changes = df[df["kind"] == "state_changed"]
    enter = changes[changes["state"] == "probe_rtt"]["time_s"].tolist()
    leave = [changes[(changes["time_s"] > t)]["time_s"].iloc[0] for t in enter]
    assert len(enter) == 3  # at ~10, ~20, ~30 s of a 31 s run
    # rtprop is refreshed at the end of each ProbeRTT, so the next one is due 10 s
    # later (plus at most one RTT for the ack that notices the expiry).
    for a, b in zip(leave, enter[1:], strict=False):
        assert 10.0 <= b - a <= 10.0 + 2 * RTT_S
    # ProbeRTT lasts max(200 ms, one round) after in-flight drains to 4 packets.
    for a, b in zip(enter, leave, strict=True):
        assert 0.2 <= b - a <= 0.2 + 4 * RTT_S
    cwnd_in_probe = [f[7] for f in frames if f[1] == "probe_rtt"]
    assert max(cwnd_in_probe) == 4 * 1200


def test_pacing_gains_as_specified(long_run):
    _, _, frames, _ = long_run
    by_state: dict[str, set] = {}
    for _t, state, pg, cg, rate, bw, _idx, _cwnd, *_ in frames:
        by_state.setdefault(state, set()).add((round(pg, 6), round(cg, 6)))
        if state in ("drain", "probe_bw", "probe_rtt") and bw > 0:
            assert rate == pytest.approx(pg * bw, rel=1e-9)  # pacing_rate = gain x BtlBw
    assert by_state["startup"] == {(round(BBR_HIGH_GAIN, 6), round(BBR_HIGH_GAIN, 6))}
    assert by_state["drain"] == {(round(BBR_DRAIN_GAIN, 6), round(BBR_HIGH_GAIN, 6))}
    assert by_state["probe_rtt"] == {(1.0, 1.0)}
    assert {pg for pg, _ in by_state["probe_bw"]} == {1.25, 0.75, 1.0}
    assert {cg for _, cg in by_state["probe_bw"]} == {2.0}
    # The cycle advances one phase at a time, in the order 1.25, 0.75, 1 x 6.
    # (Re-entering ProbeBW after ProbeRTT picks a random phase other than 0.75.)
    steps = 0
    for prev, cur in zip(frames, frames[1:], strict=False):
        if cur[1] != "probe_bw":
            continue
        assert cur[2] == PACING_GAIN_CYCLE[cur[6]]
        if prev[1] != "probe_bw":
            assert cur[6] != 1
        elif cur[6] != prev[6]:
            steps += 1
            assert cur[6] == (prev[6] + 1) % 8
    assert steps > 100
    # Each phase lasts at least rtprop (draft 4.3.4.3).
    starts = [t for (t, state, _pg, _cg, _r, _b, idx, _c, *_), prev
              in zip(frames[1:], frames, strict=False)
              if state == "probe_bw" and prev[1] == "probe_bw" and idx != prev[6]]
    assert min(b - a for a, b in zip(starts, starts[1:], strict=False)) >= RTT_S


def test_recovers_the_true_rate_after_a_timeout():
    # A 1 s blackout: every packet sent in it is lost, PTOs fire, the loss of a span
    # longer than 3 PTOs is persistent congestion (QUIC's RTO).
    cc, df, frames, sim = run_bbr(9.0, drop=lambda pn, now: 4.0 <= now < 5.0)
    assert sim.persistent_congestion == 1 and sim.pto_fired >= 2
    kinds = set(df["kind"].astype(str))
    assert "persistent_congestion" in kinds
    pc_time = df[df["kind"] == "persistent_congestion"]["time_s"].iloc[0]
    assert df[(df["kind"] == "cwnd_changed") & (df["time_s"] >= pc_time)]["cwnd"].min() == 2400
    # Back at the path's rate within about a second, and the model kept.
    assert sim.goodput_bps(pc_time + 1.0, 9.0) == pytest.approx(RATE_BPS, rel=0.05)
    assert cc.btlbw_bps == pytest.approx(RATE_BPS, rel=0.05)
    assert cc.state == "probe_bw"


def test_keeps_most_of_the_rate_under_random_loss_where_reno_collapses():
    rng = random.Random(7)
    lossy = {pn for pn in range(200_000) if rng.random() < 0.02}

    def drop(pn, now):
        return pn in lossy

    _, _, _, bbr_sim = run_bbr(8.0, drop=drop)
    reno = create("reno")
    reno_sim = PathSim(reno, rate_bps=RATE_BPS, rtt_s=RTT_S, buffer_bytes=2 * int(BDP_BYTES),
                       drop=drop)
    reno_sim.run(8.0)
    bbr_rate = bbr_sim.goodput_bps(2.0, 8.0)
    reno_rate = reno_sim.goodput_bps(2.0, 8.0)
    # 2% random loss: BBR ignores non-congestive loss beyond recovery's brief trim.
    assert bbr_rate > 0.85 * RATE_BPS
    assert reno_rate < 0.5 * RATE_BPS  # Mathis: 1.22/sqrt(0.02) x MSS/RTT ~ 2.1 Mbit/s


def test_app_limited_samples_do_not_lower_the_estimate():
    cc, _, _, _ = run_bbr(3.0)
    bw = cc.btlbw_filter.get()
    # The application pauses: a low-rate sample marked app-limited must be ignored.
    cc.on_app_limited(3.0)
    assert cc.app_limited_until > 0
    cc._update_btlbw(3.0, bw / 10, True)
    assert cc.btlbw_filter.get() == bw
    cc._update_btlbw(3.0, bw / 10, False)  # an unmarked one enters the filter (max kept)
    assert cc.btlbw_filter.get() == bw


def test_windowed_max_filter_expires_old_maxima():
    f = WindowedMax(10)
    f.update(0, 100.0)
    for r in range(1, 10):
        assert f.update(r, 50.0) == 100.0  # within 10 rounds the max holds
    assert f.update(11, 50.0) == 50.0  # 11 rounds later it has aged out
    assert f.update(12, 80.0) == 80.0
    assert not math.isnan(f.get())


# ------------------------------------------------------------ Linux's tcp_bbr.c (default)
def test_linux_variant_is_the_default_and_draft00_is_kept():
    assert create("bbr").variant == "linux"
    assert create("bbr-draft00").variant == "draft00"
    assert create("bbr", variant="draft00").variant == "draft00"
    with pytest.raises(ConfigError, match="variant"):
        create("bbr", variant="linux-5.4")


def test_linux_paces_one_percent_below_gain_times_estimate():
    _, _, frames, sim = run_bbr(6.0, variant="linux")
    steady = [f for f in frames if f[1] in ("probe_bw", "drain") and f[5] > 0]
    assert len(steady) > 1000
    for _t, _state, pg, _cg, rate, bw, *_ in steady:
        assert rate == pytest.approx(pg * bw * (1 - LINUX_PACING_MARGIN), rel=1e-9)
    assert sim.goodput_bps(2.0, 6.0) == pytest.approx(RATE_BPS, rel=0.05)


def _conservation_spells(frames):
    spells, start = [], None
    for f in frames:
        if f[8] and start is None:
            start = f[0]
        elif not f[8] and start is not None:
            spells.append(f[0] - start)
            start = None
    return spells


def test_linux_conserves_packets_for_a_whole_round_after_a_loss():
    # One loss every ~1.5 s in ProbeBW: Linux restarts the round on entering recovery, so
    # conservation lasts one full round trip (>= the path's RTT); draft-00 (as wtlab reads
    # it) ends it with the round already in progress, after less than a round on average.
    def drop(pn, now):
        return pn % 1500 == 700 and now > 2.0

    linux = _conservation_spells(run_bbr(10.0, drop=drop, variant="linux")[2])
    draft = _conservation_spells(run_bbr(10.0, drop=drop, variant="draft00")[2])
    assert len(linux) >= 4 and len(draft) >= 4
    assert min(linux) >= RTT_S
    assert sum(draft) / len(draft) < sum(linux) / len(linux)


def test_linux_adds_the_ack_aggregation_allowance_to_cwnd():
    # ACKs released together every 20 ms (a Wi-Fi/cellular link or GRO): each release
    # acknowledges ~20 ms of data at once, ~25 kB beyond what btlbw predicts between
    # releases. Linux's extra_acked measures that and adds it to the target cwnd (capped at
    # btlbw x 100 ms); draft-00 has no such term, so its cwnd stays at 2 BDP + quanta.
    agg = 0.02
    cc, _, frames, sim = run_bbr(8.0, variant="linux", ack_aggregate_s=agg)
    draft, _, dframes, dsim = run_bbr(8.0, variant="draft00", ack_aggregate_s=agg)
    burst = RATE_BPS / 8 * agg
    assert 0.8 * burst <= cc.extra_acked <= 1.6 * burst
    assert draft.extra_acked == 0
    steady = [f for f in frames if f[0] > 3.0 and f[1] == "probe_bw"]
    bdp = cc.btlbw_filter.get() * cc.rtprop_s
    allowance = min(cc.extra_acked, cc.btlbw_filter.get() * EXTRA_ACKED_MAX_S)
    assert cc.aggregation_allowance_bytes() == pytest.approx(allowance)
    top = max(f[7] for f in steady)
    assert top >= 2 * bdp + 0.8 * allowance  # the cwnd reaches the allowance above 2 BDP
    dtop = max(f[7] for f in dframes if f[0] > 3.0 and f[1] == "probe_bw")
    assert dtop <= 2 * draft.btlbw_filter.get() * draft.rtprop_s + 3 * 2 * 1200 + 1
    # both keep the link busy here (the buffer is 2 BDP); the allowance is what lets
    # Linux's BBR keep sending through the silences between releases
    assert sim.goodput_bps(3.0, 8.0) >= dsim.goodput_bps(3.0, 8.0) * 0.98


def test_each_linux_addition_switches_on_its_own():
    cc = create("bbr", ack_aggregation=False)
    assert cc.variant == "linux" and not cc.ack_aggregation and cc.pacing_margin == 0.01
    cc = create("bbr-draft00", ack_aggregation=True, pacing_margin=0.0)
    assert cc.ack_aggregation and not cc.recovery_round_restart
    with pytest.raises(ConfigError, match="pacing_margin"):
        create("bbr", pacing_margin=1)
    with pytest.raises(ConfigError, match="ack_aggregation"):
        create("bbr", ack_aggregation="on")
