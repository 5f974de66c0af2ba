"""ECN's sans-IO pieces (wtlab.cc.ecn) and the controller interface's ECN hooks, by hand."""

from __future__ import annotations

import pytest

from wtlab.cc import Packet, RttStats, create, ecn_variant, get
from wtlab.cc.ecn import CE, ECT0, ECT1, NOT_ECT, EcnCounts, EcnValidator, as_codepoint
from wtlab.errors import ConfigError
from wtlab.trace import Recorder


def test_codepoints_parse_and_refuse():
    assert as_codepoint("ect0") == ECT0 == 0b10
    assert as_codepoint("ECT(1)") == ECT1 == 0b01
    assert as_codepoint(True) == ECT0 and as_codepoint(None) == NOT_ECT
    assert as_codepoint("l4s") == ECT1 and as_codepoint(3) == CE
    with pytest.raises(ConfigError, match="ECN codepoint"):
        as_codepoint("ect2")
    with pytest.raises(ConfigError, match="never CE"):
        EcnValidator(CE)


def test_receiver_counts_per_space_and_reports_only_non_zero():
    c = EcnCounts()
    assert c.report(2) is None  # a plain ACK until something ECN-marked arrives
    for cp in (ECT0, ECT0, CE, NOT_ECT, ECT1):
        c.on_packet(2, cp)
    c.on_packet(0, ECT0)
    assert c.report(2) == (2, 1, 1)
    assert c.report(0) == (1, 0, 0)
    assert c.report(1) is None


def _validator_after_testing(packets=10):
    v = EcnValidator(ECT0)
    for _ in range(packets):
        v.on_packet_sent(2, v.tx_codepoint)
    assert v.end_of_batch() == ("testing", "unknown")
    assert v.tx_codepoint == NOT_ECT  # marking pauses until an ACK validates
    return v


def test_validation_succeeds_and_reports_ce_increases():
    v = _validator_after_testing()
    res = v.on_ack(2, (4, 0, 1), True, 5, 0)
    assert res.validated and res.state_change == ("unknown", "capable")
    assert res.ce_increase == 1 and v.tx_codepoint == ECT0
    res = v.on_ack(2, (7, 0, 3), True, 5, 0)  # +3 ECT(0), +2 CE for 5 packets
    assert res.validated and res.ce_increase == 2 and v.state == "capable"


def test_bleached_path_fails_validation():
    """RFC 9000 13.4.2.1: ECT packets acknowledged without ECN counts -> ECN off."""
    v = _validator_after_testing()
    res = v.on_ack(2, None, True, 3, 0)
    assert res.state_change == ("unknown", "failed") and v.tx_codepoint == NOT_ECT
    assert "without ECN counts" in v.reason
    # nothing afterwards brings it back or counts as a signal
    assert v.on_ack(2, (9, 0, 9), True, 3, 0).ce_increase == 0


@pytest.mark.parametrize("counts, acked, why", [
    ((0, 3, 0), (3, 0), "more ECT(1)"),  # ECT(1) counts from a sender of ECT(0) only
    ((20, 0, 0), (3, 0), "more ECT(0)"),  # more than were ever sent
    ((1, 0, 0), (3, 0), "fewer ECT/CE"),  # CE remarked to not-ECT on the way
    ((3, 0, 12), (3, 0), "more CE"),
])
def test_impossible_counts_fail_validation(counts, acked, why):
    v = _validator_after_testing()
    res = v.on_ack(2, counts, True, *acked)
    assert v.state == "failed" and why in res.reason, res.reason


def test_decreasing_counts_fail_and_reordered_acks_are_ignored():
    v = _validator_after_testing()
    assert v.on_ack(2, (5, 0, 0), True, 5, 0).validated
    # an older ACK that does not raise the largest acknowledged: never validated
    res = v.on_ack(2, (3, 0, 0), False, 0, 0)
    assert not res.validated and v.state == "capable"
    res = v.on_ack(2, (3, 0, 0), True, 0, 0)
    assert v.state == "failed" and "decreased" in res.reason


def test_losing_every_testing_packet_fails():
    v = _validator_after_testing(10)
    assert v.on_packets_lost(4) is None
    assert v.on_packets_lost(6) == ("unknown", "failed")


def test_ecn_variant_and_class_codepoints():
    cls = get("reno+ecn")
    assert cls is ecn_variant(get("reno")) and cls.name == "reno+ecn"
    assert create("reno+ecn").ecn_codepoint == ECT0
    assert create("reno").ecn_codepoint == NOT_ECT
    assert create("reno", ecn=True).ecn_codepoint == ECT0
    assert create("prague").ecn_codepoint == ECT1
    assert create("prague", ecn=False).ecn_codepoint == NOT_ECT
    assert create("dctcp").ecn_codepoint == ECT0
    with pytest.raises(ConfigError):
        create("reno", ecn="ce")


def _acked_reno(**kw):
    cc = create("reno+ecn", recorder=Recorder(), **kw)
    rtt = RttStats()
    rtt.update(0.1, now=0.1)
    for pn in range(10):
        cc.on_packet_sent(0.0, Packet(pn, 1200, 0.0))
    cc.on_packets_acked(0.1, [Packet(pn, 1200, 0.0) for pn in range(10)], rtt)
    return cc, rtt


def test_classic_response_once_per_recovery_period_without_losses():
    """RFC 9002 B.7: a CE increase is a congestion event, once per recovery period."""
    cc, rtt = _acked_reno()
    w = cc.cwnd
    for pn in range(10, 20):
        cc.on_packet_sent(0.1, Packet(pn, 1200, 0.1))
    cc.on_ecn_feedback(0.2, 3, 3600, 1, 0.1, (2, 0, 1))
    assert cc.cwnd == w // 2 and cc.state == "recovery" and cc.ce_marks == 1
    # more marks on packets sent before the period began: no second halving
    cc.on_ecn_feedback(0.21, 3, 3600, 2, 0.1, (3, 0, 3))
    assert cc.cwnd == w // 2
    # a mark on a packet sent after the period began: a new reduction
    cc.on_packet_sent(0.3, Packet(20, 1200, 0.3))
    cc.on_ecn_feedback(0.4, 1, 1200, 1, 0.3, (3, 0, 4))
    assert cc.cwnd == max(w // 4, cc.min_cwnd)
    df = cc.recorder.to_pandas()
    rows = df[df.kind == "ecn_counts"]
    assert len(rows) == 3 and '"ce_increase": 1' in rows.extra.iloc[0]
    assert rows.cwnd.iloc[0] == w // 2  # the row shows the state after the response


def test_ecn_feedback_without_marks_changes_nothing():
    cc, rtt = _acked_reno()
    w = cc.cwnd
    cc.on_ecn_feedback(0.2, 5, 6000, 0, 0.1, (5, 0, 0))
    assert cc.cwnd == w and cc.state == "slow_start"


def test_validation_rows_and_snapshot():
    cc, _ = _acked_reno()
    cc.on_ecn_validation(0.3, "testing", "failed", "bleached")
    assert cc.snapshot()["ecn_state"] == "failed"
    df = cc.recorder.to_pandas()
    assert "bleached" in df[df.kind == "ecn_validation"].extra.iloc[0]
