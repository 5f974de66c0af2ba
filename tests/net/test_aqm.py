"""Queues that mark: step, RED, PIE, CoDel with ECN, DualPI2 (wtlab.net.aqm), link by link."""

from __future__ import annotations

import math

import pytest

from wtlab.cc.ecn import CE, ECT0, ECT1, NOT_ECT
from wtlab.errors import ConfigError
from wtlab.net.aqm import DualPI2, Pie, Red, StepMark
from wtlab.net.link import Link, LinkSpec
from wtlab.net.path import Path

MB = 1e6


def _burst(link, n, size=1200, ecn=ECT0, t=0.0, gap=0.0):
    out = []
    for i in range(n):
        arr = link.transmit(t + i * gap, size, ecn)
        out.append((arr, link.last_ecn if arr else None))
    return out


def test_step_marks_every_arrival_above_k_and_drops_what_cannot_be_marked():
    link = Link(rate_bps=10 * MB, aqm=StepMark(threshold_packets=5), seed=1)
    res = _burst(link, 10)
    assert [cp for _, cp in res] == [ECT0] * 6 + [CE] * 4  # 6th arrival finds 5 queued
    assert link.stats.marked == 4 and link.stats.dropped == 0
    plain = Link(rate_bps=10 * MB, aqm=StepMark(threshold_packets=5), seed=1)
    res = _burst(plain, 10, ecn=NOT_ECT)
    assert sum(1 for arr, _ in res if not arr) == 4 and plain.last_drop_cause == "aqm"


def test_ecn_off_and_bleaching():
    off = Link(rate_bps=10 * MB, aqm=StepMark(threshold_packets=2), ecn=False, seed=1)
    res = _burst(off, 5)
    assert sum(1 for arr, _ in res if not arr) == 2 and off.stats.marked == 0
    bleach = Link(rate_bps=10 * MB, ecn="bleach", seed=1)
    assert bleach.transmit(0.0, 1200, ECT1) and bleach.last_ecn == NOT_ECT
    with pytest.raises(ConfigError, match="ecn"):
        LinkSpec(rate_bps=1e6, ecn="maybe")


def test_random_marks_only_touch_ecn_capable_packets():
    link = Link(rate_bps=100 * MB, mark="10%", seed=3)
    ect = _burst(link, 5000, gap=1e-3)
    frac = sum(cp == CE for _, cp in ect) / 5000
    assert 0.085 < frac < 0.115  # 10 % +- 5 sigma of a binomial(5000, 0.1)
    plain = Link(rate_bps=100 * MB, mark="10%", seed=3)
    before = plain._rng.getstate()
    _burst(plain, 100, ecn=NOT_ECT, gap=1e-3)
    assert plain.stats.marked == 0 and plain._rng.getstate() == before  # drew nothing


def test_red_marks_between_thresholds_and_everything_well_above():
    # 10 Mbit/s: min_th 5 ms = 6250 B, max_th 15 ms = 18750 B; w_q = 1: avg = queue
    link = Link(rate_bps=10 * MB, aqm=Red(w_q=1.0), seed=2)
    res = _burst(link, 60)
    cps = [cp for _, cp in res]
    assert CE not in cps[:6]  # below min_th no signal
    assert CE in cps[6:16]  # between thresholds some (max_p 10 %, spread by count)
    assert all(cp == CE for cp in cps[32:])  # beyond 2 max_th (gentle): every packet
    assert link.stats.dropped == 0


def test_pie_raises_its_probability_under_a_standing_queue_and_decays_when_idle():
    link = Link(rate_bps=10 * MB, aqm=Pie(), seed=4)
    t = 0.0
    # offer 12 Mbit/s for 2 s: a growing queue far above the 15 ms target
    while t < 2.0:
        link.transmit(t, 1200, ECT0)
        t += 1200 * 8 / 12e6
    state = link._enq_aqm.__self__
    assert state.drop_prob > 0.05 and link.stats.marked > 0
    p_busy = state.drop_prob
    link.transmit(10.0, 1200, ECT0)  # after 8 s idle: the probability decayed
    assert state.drop_prob < p_busy / 10


def test_pie_drops_ecn_capable_packets_above_its_mark_threshold():
    link = Link(rate_bps=10 * MB, aqm=Pie(mark_ecn_th=0.0), seed=4)
    t = 0.0
    while t < 2.0:
        link.transmit(t, 1200, ECT0)
        t += 1200 * 8 / 12e6
    assert link.stats.dropped_aqm > 0 and link.stats.marked == 0


def test_codel_marks_instead_of_dropping():
    def run(ecn):
        link = Link(rate_bps=10 * MB, aqm="codel", seed=5)
        t = 0.0
        while t < 3.0:  # 11 Mbit/s into 10: a standing queue CoDel must fight
            link.transmit(t, 1200, ecn)
            t += 1200 * 8 / 11e6
        return link.stats

    marked, dropped = run(ECT0), run(NOT_ECT)
    assert dropped.dropped_aqm > 5 and dropped.marked == 0
    assert marked.marked > 5 and marked.dropped_aqm == 0


def test_dualpi2_l_packets_overtake_classic_ones_and_arrivals_are_confirmed():
    link = Link(rate_bps=10 * MB, delay_s=0.01, aqm="dualpi2", buffer="100p", seed=1)
    assert link.deferred
    ser = 1228 * 8 / 10e6
    c1 = link.transmit(0.0, 1228, ECT0)[0]
    assert link.last_ticket is None  # it went straight into service: final
    c2 = link.transmit(0.0, 1228, ECT0)[0]
    ticket = link.last_ticket
    assert ticket is not None and math.isclose(c2, 0.01 + 2 * ser)
    l1 = link.transmit(0.0, 1228, ECT1)[0]
    assert link.last_queue == "L" and math.isclose(l1, 0.01 + 2 * ser)  # ahead of c2
    # c2 moved back by one L packet; the engine learns it when c2's time comes
    assert math.isclose(link.confirm(ticket, c2), 0.01 + 3 * ser)
    assert c1 < l1
    stats = link.aqm_stats()
    assert stats["l_packets"] >= 1 and stats["l_sojourn_mean_s"] < ser + 1e-9


def test_dualpi2_couples_the_two_probabilities():
    link = Link(rate_bps=10 * MB, aqm=DualPI2(), buffer="400p", seed=6)
    dq = link._dualq
    t = 0.0
    while dq.p_prime < 0.1:  # classic traffic at 11 Mbit/s: the C queue grows past 15 ms
        link.transmit(t, 1200, ECT0)
        t += 1200 * 8 / 11e6
        assert t < 5.0
    assert dq.p_prime < 0.5
    for _ in range(1000):  # more packets at this probability: some classic marks
        link.transmit(t, 1200, ECT0)
        t += 1200 * 8 / 10e6
    assert math.isclose(dq.p_c, dq.p_prime ** 2) and math.isclose(dq.p_cl, 2 * dq.p_prime)
    assert dq.c_marks > 0 and dq.l_marks == 0


def test_dualpi2_limits():
    with pytest.raises(ConfigError, match="constant-rate"):
        LinkSpec(trace=_trace(), aqm="dualpi2")
    with pytest.raises(ConfigError, match="outages"):
        LinkSpec(rate_bps=1e6, aqm="dualpi2", outages=[(1, 2)])


def _trace():
    from wtlab.net.traces import MahimahiTrace

    return MahimahiTrace.constant(1e6)


def test_path_keys_and_describe():
    p = Path.symmetric(rate_bps="10mbit", rtt_s="20ms", aqm="red", mark="1%", ecn="bleach",
                       seed=1)
    assert p.down_spec.mark == 0.01 and p.up_spec.mark == 0.0  # marks on the data direction
    d = p.describe()
    assert d["down"]["aqm"].startswith("red(") and d["down"]["ecn"] == "bleach"
    assert "red" in repr(p)
    with pytest.raises(ConfigError, match="queue discipline"):
        Path.symmetric(rate_bps="10mbit", aqm="fq_codel")
