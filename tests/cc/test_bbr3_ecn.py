"""ECN in BBRv3 (wtlab.cc.bbr3, after draft-ietf-ccwg-bbr and the Linux BBRv3 reference)."""

from __future__ import annotations

from wtlab import cc as C
from wtlab.model import run
from wtlab.net.aqm import StepMark

# 50 Mbit/s, 4 ms: a data-centre-like path where the reference trusts ECN (min RTT <= 5 ms)
PATH = dict(rate_bps=50e6, buffer="60p", aqm=StepMark(threshold_packets=10))
PKT_S = 1228 * 8 / 50e6


def test_bbr3_with_ecn_takes_marks_as_its_signal():
    bbr = C.create("bbr3+ecn", max_datagram_size=1200)
    r = run(dict(PATH, rtt_s=0.004), cc=bbr, duration_s=6, seed=1)
    m = r.metrics(2, 6).iloc[0]
    assert bbr.ecn_eligible and m.ecn_state == "capable"
    assert m.ce_marks > 100 and m.packets_lost == 0  # marks, never a drop
    assert bbr.ecn_alpha < 0.5  # the EWMA of the per-round CE fraction came down from 1
    assert bbr.ecn_reactions > 0 and bbr.inflight_shortterm < float("inf")
    # the queue stays near the marking threshold (10 packets), far from the 60-packet buffer
    assert m.queueing_delay_mean_s < 2 * 10 * PKT_S
    # CE is not a loss-like recovery for BBR: its state names stay BBR's
    assert "recovery" not in set(r.trace().state.astype(str))


def test_bbr3_ignores_marks_beyond_the_ecn_rtt_limit():
    bbr = C.create("bbr3+ecn", max_datagram_size=1200)
    run(dict(PATH, rtt_s=0.04), cc=bbr, duration_s=4, seed=1)
    assert not bbr.ecn_eligible and bbr.ce_marks > 0 and bbr.ecn_reactions == 0
    everywhere = C.create("bbr3+ecn", max_datagram_size=1200, ecn_max_rtt_s=None)
    run(dict(PATH, rtt_s=0.04), cc=everywhere, duration_s=4, seed=1)
    assert everywhere.ecn_eligible and everywhere.ecn_reactions > 0


def test_bbr3_without_ecn_is_unchanged():
    assert C.create("bbr3").ecn_codepoint == 0 and not C.create("bbr3").ecn_eligible
