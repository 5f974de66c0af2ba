"""BBRv3 (draft-ietf-ccwg-bbr) on the same constant-rate path as the BBRv1 tests."""

from __future__ import annotations

import math
import random

import pytest

from wtlab.cc import create
from wtlab.cc.bbr3 import (
    DRAIN_PACING_GAIN,
    PACING_MARGIN,
    PROBE_BW_DOWN_PACING_GAIN,
    PROBE_BW_UP_PACING_GAIN,
)
from wtlab.trace import Recorder

from .sim import PathSim

RATE_BPS = 10e6
RTT_S = 0.04
BDP = RATE_BPS / 8 * RTT_S


def run(until_s, *, buffer_bytes=2 * int(BDP), drop=None, name="bbr3"):
    rec = Recorder()
    cc = create(name, recorder=rec)
    frames = []

    def on_frame(sim):
        c = sim.cc
        frames.append((sim.now, c.state, c.pacing_gain, c.pacing_rate_bps, c.bw, c.cwnd))

    sim = PathSim(cc, rate_bps=RATE_BPS, rtt_s=RTT_S, buffer_bytes=buffer_bytes, drop=drop,
                  on_frame=on_frame)
    sim.run(until_s)
    df = rec.to_pandas()
    changes = df[df["kind"] == "state_changed"]
    return cc, df, list(zip(changes["time_s"], changes["state"].astype(str), strict=True)), \
        frames, sim


@pytest.fixture(scope="module")
def clean():
    return run(16.0)


def test_states_phases_and_bandwidth(clean):
    cc, _df, states, frames, sim = clean
    names = [s for _, s in states]
    assert frames[0][1] == "startup" and names[0] == "drain"
    assert names[1].startswith("probe_bw_")
    # The ProbeBW phases follow DOWN -> CRUISE -> REFILL -> UP -> DOWN (ProbeRTT aside).
    allowed = {"probe_bw_down": {"probe_bw_cruise", "probe_bw_refill", "probe_rtt"},
               "probe_bw_cruise": {"probe_bw_refill", "probe_rtt"},
               "probe_bw_refill": {"probe_bw_up", "probe_rtt"},
               "probe_bw_up": {"probe_bw_down", "probe_rtt"},
               "probe_rtt": {"probe_bw_cruise", "probe_bw_down"}}
    for a, b in zip(names[1:], names[2:], strict=False):
        assert b in allowed[a], (a, b)
    # REFILL lasts one round trip; probes come every 2-3 s or after ~BDP/MSS rounds.
    refills = [t for t, s in states if s == "probe_bw_refill"]
    ups = [t for t, s in states if s == "probe_bw_up"]
    assert len(refills) >= 4
    for r in refills:
        up = min(u for u in ups if u >= r)
        assert 0 < up - r <= 2 * RTT_S
    # The wait runs from the start of the cycle (entering DOWN, or leaving ProbeRTT):
    # at most the random 2-3 s, or earlier once Reno would have grown by a BDP
    # (BDP/MSS ~ 42 rounds ~ 1.9 s here). One RTT of slack for the ack that notices.
    # (DOWN may turn to CRUISE within the same ack, so also take the state entered
    # after Drain and after ProbeRTT.)
    starts = [t for t, s in states if s == "probe_bw_down"] + \
        [next(t2 for t2, _ in states if t2 > t) for t, s in states
         if s in ("probe_rtt", "drain")]
    for r in refills:
        wait = r - max(t for t in starts if t < r)
        assert 1.5 <= wait <= 3.0 + RTT_S, wait
    # Bandwidth estimate within 5% of the true rate; goodput within 5% (1% pacing margin).
    assert cc.max_bw_bps == pytest.approx(RATE_BPS, rel=0.05)
    assert sim.goodput_bps(2.0, 16.0) == pytest.approx(RATE_BPS, rel=0.05)


def test_pacing_gains_as_specified(clean):
    _, _, _, frames, _ = clean
    gains = {"probe_bw_down": PROBE_BW_DOWN_PACING_GAIN, "probe_bw_cruise": 1.0,
             "probe_bw_refill": 1.0, "probe_bw_up": PROBE_BW_UP_PACING_GAIN,
             "drain": DRAIN_PACING_GAIN, "probe_rtt": 1.0}
    seen = set()
    for _t, state, pg, rate, bw, _cwnd in frames:
        if state in gains:
            seen.add(state)
            assert pg == gains[state]
            # pacing_rate = gain x bw x (1 - 1% margin), draft 5.6.2
            assert rate == pytest.approx(pg * bw * 8 * (1 - PACING_MARGIN), rel=1e-9)
    assert seen == set(gains)


def test_probe_rtt_about_every_5_seconds(clean):
    _, _, states, frames, _ = clean
    enter = [t for t, s in states if s == "probe_rtt"]
    leave = [next(t2 for t2, s2 in states if t2 > t) for t in enter]
    assert len(enter) == 3  # ~5, ~10, ~15 s
    for a, b in zip(leave, enter[1:], strict=False):
        assert 5.0 <= b - a <= 5.0 + 2 * RTT_S
    for a, b in zip(enter, leave, strict=True):
        assert 0.2 <= b - a <= 0.2 + 4 * RTT_S
    # cwnd in ProbeRTT: half a BDP (never below 4 packets).
    in_probe = [cwnd for _t, s, *_r, cwnd in frames if s == "probe_rtt"]
    assert max(in_probe) <= max(0.5 * BDP * 1.05, 4 * 1200)


def test_shallow_buffer_sets_inflight_longterm_and_bounds_loss():
    cc, df, _states, _frames, sim = run(12.0, buffer_bytes=int(BDP // 4))
    assert cc.inflight_longterm != math.inf  # learned from loss while probing
    sent = (df["kind"] == "packet_sent").sum()
    lost = (df["kind"] == "packet_lost").sum()
    assert lost / sent < 0.03  # v3 caps probing loss near LOSS_THRESH (2%)
    assert sim.goodput_bps(2.0, 12.0) > 0.85 * RATE_BPS


def test_recovers_after_a_timeout():
    cc, df, _s, _f, sim = run(8.0, drop=lambda pn, now: 4.0 <= now < 5.0)
    assert sim.persistent_congestion == 1
    pc = df[df["kind"] == "persistent_congestion"]["time_s"].iloc[0]
    assert sim.goodput_bps(pc + 1.0, 8.0) == pytest.approx(RATE_BPS, rel=0.05)


def test_random_loss_keeps_more_than_cubic():
    rng = random.Random(3)
    lossy = {pn for pn in range(100_000) if rng.random() < 0.01}

    def drop(pn, now):
        return pn in lossy

    *_, bbr3 = run(8.0, drop=drop)
    cubic = create("cubic")
    sim = PathSim(cubic, rate_bps=RATE_BPS, rtt_s=RTT_S, buffer_bytes=2 * int(BDP), drop=drop)
    sim.run(8.0)
    # 1% random loss: below LOSS_THRESH per probe, so v3 keeps most of the rate.
    assert bbr3.goodput_bps(2.0, 8.0) > 0.6 * RATE_BPS
    assert bbr3.goodput_bps(2.0, 8.0) > 1.5 * sim.goodput_bps(2.0, 8.0)


def test_fast_recovery_saves_cwnd_without_cutting_it():
    # draft-ietf-ccwg-bbr 5.6.4.4: entering fast recovery only saves cwnd; the response to
    # loss is the model's (bw/inflight_shortterm once per round, inflight_longterm when
    # probing), not BBRv1's packet conservation or per-loss cut. Single losses in ProbeBW:
    # the loss notification itself leaves cwnd alone, and recovery ends with it restored.
    around = []
    cc = create("bbr3")
    original = cc.on_packets_lost

    def on_packets_lost(now, packets, triggers=None):
        before = cc.cwnd
        original(now, packets, triggers)
        around.append((now, before, cc.cwnd, cc.prior_cwnd, cc.state))

    cc.on_packets_lost = on_packets_lost
    sim = PathSim(cc, rate_bps=RATE_BPS, rtt_s=RTT_S, buffer_bytes=2 * int(BDP),
                  drop=lambda pn, now: pn % 2000 == 900 and now > 2.0)
    sim.run(10.0)
    assert len(around) >= 3
    for _now, before, after, prior, state in around:
        assert after == before
        assert prior >= before or state == "probe_rtt"
    assert not cc.packet_conservation
    assert sim.goodput_bps(2.0, 10.0) > 0.9 * RATE_BPS
