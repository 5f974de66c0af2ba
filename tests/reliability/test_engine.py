"""The sans-IO retransmission engine, driven by hand and through simulated links."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wtlab
from wtlab.reliability.engine import (
    Engine,
    MessageAcked,
    MessageDelivered,
    MessageExpired,
)
from wtlab.reliability.sim import EnginePair, LossyLink, PatternLink
from wtlab.reliability.wire import decode_varint, encode_varint
from wtlab.trace import Recorder


def payload(i: int, size: int = 40) -> bytes:
    head = b"msg-%06d-" % i
    return head + bytes((i + k) % 251 for k in range(max(0, size - len(head))))


def run_pair(mode: str, n: int, link: LossyLink, *, spacing_s: float = 0.0005, size=None,
             **kw) -> EnginePair:
    a = Engine(mode, **kw)
    b = Engine(mode, **kw)
    pair = EnginePair(a, b, link)
    for i in range(n):
        pair.send_at(i * spacing_s, payload(i, size(i) if size else 40))
    pair.run()
    return pair


def test_varint_roundtrip():
    for v in (0, 1, 63, 64, 16383, 16384, 2**30 - 1, 2**30, 2**62 - 1):
        enc = encode_varint(v)
        assert decode_varint(enc, 0) == (v, len(enc))
    with pytest.raises(wtlab.ProtocolError):
        decode_varint(encode_varint(2**20)[:2], 0)


def test_step_by_hand_one_loss_one_retransmission():
    rec = Recorder()
    a = Engine("reliable", recorder=rec)
    b = Engine("reliable", recorder=rec, flow=1)
    for i in range(5):
        a.send(b"m%d" % i, 0.0)
    packets = a.datagrams_to_send(0.0)
    assert len(packets) == 5
    for i, p in enumerate(packets):
        if i != 1:  # packet 1 is lost
            b.receive_datagram(p, 0.05)
    delivered = [e.data for e in b.events() if isinstance(e, MessageDelivered)]
    assert delivered == [b"m0"]  # m2..m4 wait behind the gap (in-order buffer)
    (ack,) = b.datagrams_to_send(0.05)
    a.receive_datagram(ack, 0.1)
    acked = sorted(e.message_id for e in a.events() if isinstance(e, MessageAcked))
    assert acked == [0, 2, 3, 4]
    # three later packets acknowledged -> packet threshold: m1 is retransmitted at once
    (retx,) = a.datagrams_to_send(0.1)
    b.receive_datagram(retx, 0.15)
    assert [e.data for e in b.events()] == [b"m1", b"m2", b"m3", b"m4"]
    # one in-order packet: its ACK is delayed by max_ack_delay (QUIC's rule), then sent
    assert b.datagrams_to_send(0.15) == []
    t_ack = b.next_timer()
    assert t_ack == pytest.approx(0.15 + b.max_ack_delay_s)
    b.on_timer(t_ack)
    a.receive_datagram(b.datagrams_to_send(t_ack)[0], 0.2)
    assert [e.message_id for e in a.events()] == [1]
    assert a.next_timer() is None and a.unfinished == 0
    df = rec.to_pandas()
    kinds = df[df.flow == 0]["kind"].astype(str).tolist()
    assert kinds.count("message_sent") == 5 and kinds.count("message_acked") == 5
    r = df[df.kind == "message_retransmitted"].iloc[0]
    assert r["pn"] == 1 and json.loads(r["extra"])["trigger"] == "packet_threshold"
    d = df[df.kind == "message_delivered"]
    assert (d["flow"] == 1).all() and d["pn"].tolist() == [0, 1, 2, 3, 4]
    acked_rows = df[df.kind == "message_acked"]
    assert acked_rows["srtt_s"].notna().all()
    assert all(json.loads(x)["latency_s"] > 0 for x in acked_rows["extra"])


def test_probe_timeout_retransmits_with_backoff_when_acks_stop():
    a = Engine("reliable", initial_rtt_s=0.1)
    a.send(b"x", 0.0)
    assert len(a.datagrams_to_send(0.0)) == 1
    t1 = a.next_timer()
    # RFC 9002 PTO from the initial RTT: srtt + 4 rttvar + max_ack_delay
    assert t1 == pytest.approx(0.1 + 4 * 0.05 + a.max_ack_delay_s)
    a.on_timer(t1)
    assert len(a.datagrams_to_send(t1)) == 1  # the probe resends the data
    t2 = a.next_timer()
    assert t2 - t1 == pytest.approx(2 * (t1 - 0.0))  # doubled
    assert a.stats["retransmissions"] == 1


@pytest.mark.parametrize("mode", ["reliable", "unordered"])
def test_reliable_modes_deliver_everything_exactly_once_under_10pct_loss(mode):
    link = LossyLink(delay_s=0.02, loss=0.10, reorder_p=0.10, duplicate_p=0.05, seed=7)
    pair = run_pair(mode, 1500, link, fragment=True, size=lambda i: 1 + (i * 37) % 3000)
    got = [(d.message_id, d.data) for _, d in pair.delivered]
    ids = [m for m, _ in got]
    assert sorted(ids) == list(range(1500)) and len(set(ids)) == len(ids)
    assert all(data == payload(m, 1 + (m * 37) % 3000) for m, data in got)
    if mode == "reliable":
        assert ids == list(range(1500))
    else:
        assert ids != list(range(1500))  # reordering shows through: nothing waits
    assert pair.acked_ids() == set(range(1500))
    assert pair.engines[0].stats["retransmissions"] > 100


@pytest.mark.parametrize("ordered", [False, True])
def test_partial_lifetime_never_late_and_every_expiry_reported(ordered):
    lifetime = 0.08
    link = LossyLink(delay_s=0.02, loss=0.10, reorder_p=0.10, duplicate_p=0.05, seed=11)
    pair = run_pair("partial", 2000, link, lifetime_s=lifetime, ordered=ordered)
    sent_at = dict((mid, t) for t, mid in pair.sent_ids)
    delivered = {d.message_id: t for t, d in pair.delivered}
    assert len(delivered) == len(pair.delivered)  # no duplicates
    late = [m for m, t in delivered.items() if t - sent_at[m] > lifetime + 1e-9]
    assert late == []
    acked = pair.acked_ids()
    expired_sender = pair.expired_ids(0)
    expired_receiver = pair.expired_ids(1)
    # every message is accounted for: delivered, or reported expired by one of the ends
    assert set(delivered) | expired_sender | expired_receiver == set(sent_at)
    assert set(delivered).isdisjoint(expired_receiver)
    if not ordered:
        # acknowledged means delivered: the sender knows exactly what arrived in time
        assert acked == set(delivered)
        assert expired_sender - acked == set(sent_at) - set(delivered)
    else:
        ids = [d.message_id for _, d in pair.delivered]
        assert ids == sorted(ids)
    assert 0 < len(set(sent_at) - set(delivered)) < 0.1 * len(sent_at)


def test_partial_max_retransmissions_gives_up_after_n():
    link = LossyLink(delay_s=0.01, loss=0.3, seed=5)
    pair = run_pair("partial", 1000, link, max_retransmissions=1)
    a = pair.engines[0]
    retx = a.stats["retransmissions"]
    assert retx <= 1000  # at most one per message
    expired = [e for _, s, e in pair.log if s == 0 and isinstance(e, MessageExpired)]
    assert expired and {e.reason for e in expired} == {"retransmissions"}
    # a message is lost only if both copies were: ~0.3^2 of them (plus lost acks)
    lost = 1000 - len(pair.delivered)
    assert 0.03 * 1000 < lost < 0.2 * 1000
    assert pair.acked_ids() == {d.message_id for _, d in pair.delivered}


def test_zero_retransmissions_is_acknowledged_unreliable():
    pair = run_pair("partial", 500, LossyLink(delay_s=0.01, loss=0.2, seed=2),
                    max_retransmissions=0)
    assert pair.engines[0].stats["retransmissions"] == 0
    assert 0.7 * 500 < len(pair.delivered) < 0.9 * 500


def test_unreliable_delivers_about_one_minus_p_and_no_duplicates():
    p = 0.2
    pair = run_pair("unreliable", 4000, LossyLink(delay_s=0.01, loss=p, duplicate_p=0.1,
                                                  seed=3))
    ids = [d.message_id for _, d in pair.delivered]
    assert len(ids) == len(set(ids))
    assert abs(len(ids) / 4000 - (1 - p)) < 0.03  # 4000 Bernoulli trials: sd ~0.0063
    assert pair.engines[0].stats["acks_received"] == 0  # no acks in this mode
    assert pair.engines[1].stats["duplicates"] > 0


def test_unreliable_ordered_is_sequenced():
    pair = run_pair("unreliable", 2000, LossyLink(delay_s=0.01, reorder_p=0.2, seed=4),
                    ordered=True)
    ids = [d.message_id for _, d in pair.delivered]
    assert ids == sorted(ids) and len(ids) < 2000
    assert pair.engines[1].stats["stale_dropped"] == 2000 - len(ids)


def test_too_large_without_fragmentation_is_refused():
    e = Engine("unreliable", max_datagram_size=1200)
    with pytest.raises(wtlab.MessageTooLarge, match="fragment=True"):
        e.send(b"x" * 1200, 0.0)
    e2 = Engine("unreliable", max_datagram_size=1200, fragment=True)
    e2.send(b"x" * 5000, 0.0)
    assert len(e2.datagrams_to_send(0.0)) == 5
    assert all(len(d) <= 1200 for d in e2.datagrams_to_send(0.0) or [b""])


def test_unreliable_fragments_reassemble_or_vanish_whole():
    pair = run_pair("unreliable", 300, LossyLink(delay_s=0.01, loss=0.05, reorder_p=0.2,
                                                 seed=8),
                    fragment=True, size=lambda i: 3000)
    assert all(d.data == payload(d.message_id, 3000) for _, d in pair.delivered)
    assert 0.7 * 300 < len(pair.delivered) < 0.95 * 300  # needs all 3 fragments: ~0.95^3


def test_outage_then_recovery_delivers_everything():
    link = LossyLink(delay_s=0.02, outages=[(0.1, 3.1)], seed=1)
    pair = run_pair("reliable", 400, link, spacing_s=0.001)
    assert [d.message_id for _, d in pair.delivered] == list(range(400))
    assert pair.engines[0].stats["pto_count"] >= 3
    assert max(t for t, _ in pair.delivered) > 3.1


def test_config_errors_are_typed():
    for kw in (dict(mode="bogus"), dict(mode="partial"), dict(mode="reliable", ordered=False),
               dict(mode="unordered", ordered=True), dict(mode="reliable", lifetime_s=0.1),
               dict(mode="partial", lifetime_s=-1.0)):
        with pytest.raises(wtlab.ConfigError):
            Engine(**kw)


def test_malformed_input_raises_protocol_error():
    e = Engine("reliable")
    for bad in (b"", b"\x0f", b"\x01\x05"):
        with pytest.raises(wtlab.ProtocolError):
            e.receive_datagram(bad, 0.0)
    with pytest.raises(wtlab.ProtocolError, match="never sent"):
        e.receive_datagram(b"\x01\x05\x00\x00\x00", 0.0)


# ---------------------------------------------------------------------- properties
patterns = st.integers(min_value=1, max_value=120).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.booleans(), min_size=0, max_size=3 * n),
        st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.005, 0.03, 0.2]), max_size=3 * n),
        st.lists(st.booleans(), max_size=3 * n),
        st.lists(st.booleans(), max_size=3 * n),
    )
)

prop_settings = settings(max_examples=60, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])


def _pattern_pair(mode, n, drop, extra, dup, back_drop, *, max_size=2500, **kw):
    a, b = Engine(mode, **kw), Engine(mode, **kw)
    ab = PatternLink(delay_s=0.01, drop=drop, extra_delay_s=extra, duplicate=dup)
    ba = PatternLink(delay_s=0.01, drop=back_drop, extra_delay_s=extra[::-1], duplicate=dup)
    pair = EnginePair(a, b, ab, ba)
    for i in range(n):
        pair.send_at(i * 0.001, payload(i, 1 + i % max_size))
    pair.run()
    return pair


@prop_settings
@given(patterns, st.sampled_from(["reliable", "unordered"]), st.booleans())
def test_property_reliable_nothing_lost_nothing_duplicated(pat, mode, fragment):
    n, drop, extra, dup, back_drop = pat
    max_size = 2500 if fragment else 1000
    pair = _pattern_pair(mode, n, drop, extra, dup, back_drop, max_size=max_size,
                         fragment=fragment)
    ids = [d.message_id for _, d in pair.delivered]
    assert sorted(ids) == list(range(n))
    if mode == "reliable":
        assert ids == list(range(n))
    for _, d in pair.delivered:
        assert d.data == payload(d.message_id, 1 + d.message_id % max_size)
    assert pair.acked_ids() == set(range(n))


@prop_settings
@given(patterns, st.booleans(), st.sampled_from([None, 0, 2]))
def test_property_partial_no_duplicates_lifetimes_respected(pat, ordered, max_retx):
    n, drop, extra, dup, back_drop = pat
    lifetime = 0.06
    pair = _pattern_pair("partial", n, drop, extra, dup, back_drop, lifetime_s=lifetime,
                         ordered=ordered, max_retransmissions=max_retx, fragment=True)
    sent_at = dict((mid, t) for t, mid in pair.sent_ids)
    ids = [d.message_id for _, d in pair.delivered]
    assert len(ids) == len(set(ids))
    if ordered:
        assert ids == sorted(ids)
    for t, d in pair.delivered:
        assert t - sent_at[d.message_id] <= lifetime + 1e-9
        assert d.data == payload(d.message_id, 1 + d.message_id % 2500)
    accounted = set(ids) | pair.expired_ids(0) | pair.expired_ids(1)
    assert accounted == set(range(n))


@prop_settings
@given(patterns, st.booleans())
def test_property_unreliable_no_duplicates(pat, ordered):
    n, drop, extra, dup, back_drop = pat
    pair = _pattern_pair("unreliable", n, drop, extra, dup, back_drop, ordered=ordered,
                         fragment=True)
    ids = [d.message_id for _, d in pair.delivered]
    assert len(ids) == len(set(ids))
    if ordered:
        assert ids == sorted(ids)
    # with no drops at all, everything arrives (sequenced mode may drop overtaken ones)
    if not any(drop) and not ordered:
        assert sorted(ids) == list(range(n))
