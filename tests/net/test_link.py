"""Constant-rate links: exact timing, drop-tail, loss models, wire effects, determinism."""

from __future__ import annotations

import math

import pytest

from wtlab import ConfigError
from wtlab.net.link import Buffer, Link
from wtlab.net.loss import Bernoulli, DropIndices, GilbertElliott, Periodic

RATE = 10e6
SER_1250 = 1250 * 8 / RATE  # 1 ms


def test_single_packet_rate_and_delay_exact():
    link = Link(rate_bps=RATE, delay_s=0.025, seed=1)
    (arrival,) = link.transmit(1.0, 1250)
    assert arrival == pytest.approx(1.0 + 0.001 + 0.025, abs=1e-12)


def test_back_to_back_packets_are_serialized_in_fifo_order():
    link = Link(rate_bps=RATE, delay_s=0.010, seed=1)
    arrivals = [link.transmit(0.0, 1250)[0] for _ in range(20)]
    for i, a in enumerate(arrivals):
        assert a == pytest.approx((i + 1) * SER_1250 + 0.010, abs=1e-12)
    # an idle gap: the next packet starts at its own offer time, not after the last one
    (late,) = link.transmit(1.0, 625)
    assert late == pytest.approx(1.0 + 0.0005 + 0.010, abs=1e-12)


def test_mixed_sizes_share_the_rate_exactly():
    link = Link(rate_bps=RATE, delay_s=0.0, seed=1)
    sizes = [100, 1500, 40, 1200, 9000]
    done = 0.0
    for size in sizes:
        done += size * 8 / RATE
        assert link.transmit(0.0, size)[0] == pytest.approx(done, abs=1e-12)


def test_droptail_byte_buffer_occupancy():
    link = Link(rate_bps=RATE, delay_s=0.0, buffer=Buffer(bytes=10 * 1250), seed=1)
    results = [link.transmit(0.0, 1250) for _ in range(15)]
    assert [bool(r) for r in results] == [True] * 10 + [False] * 5
    assert link.queue_bytes(0.0) == 12500
    assert link.queue_packets(0.0) == 10
    assert link.queue_delay_s(0.0) == pytest.approx(0.010)
    # after 3.5 packet times, 3 packets have left, 7 are still in the buffer
    assert link.queue_bytes(0.0035) == 7 * 1250
    # room for exactly 3 more
    more = [link.transmit(0.0035, 1250) for _ in range(4)]
    assert [bool(r) for r in more] == [True, True, True, False]
    st = link.stats
    assert (st.offered, st.delivered, st.dropped_queue) == (19, 13, 6)
    assert st.delivered_bytes == 13 * 1250 and st.dropped == 6


def test_droptail_packet_buffer():
    link = Link(rate_bps=RATE, buffer="4p", seed=1)
    ok = [bool(link.transmit(0.0, 100)) for _ in range(6)]
    assert ok == [True] * 4 + [False] * 2
    assert link.buffer_packets == 4 and link.buffer_bytes == math.inf


def test_bdp_buffer_resolves_with_rtt_and_never_below_one_mtu():
    link = Link(rate_bps=RATE, delay_s=0.02, buffer="1bdp", seed=1)  # rtt = 2 x delay
    assert link.buffer_bytes == 50_000
    link2 = Link(rate_bps=RATE, delay_s=0.02, buffer=Buffer(bdp=0.5), rtt_s=0.1, seed=1)
    assert link2.buffer_bytes == 62_500
    tiny = Link(rate_bps=1e5, delay_s=0.001, buffer="0.1bdp", seed=1)
    assert tiny.buffer_bytes == 1500


def test_saturating_sender_gets_capacity_and_bounded_queue():
    """Offered at 1.5x capacity: delivered rate = capacity, queue delay <= buffer/rate."""
    buffer_bytes = 30_000
    link = Link(rate_bps=RATE, delay_s=0.02, buffer=Buffer(bytes=buffer_bytes), seed=3)
    gap = 1200 * 8 / (1.5 * RATE)
    delivered_bytes = 0
    worst_delay = 0.0
    now = 0.0
    for _ in range(30_000):
        r = link.transmit(now, 1200)
        if r:
            worst_delay = max(worst_delay, r[0] - now - 0.02)
            if r[0] <= 2.02:
                delivered_bytes += 1200
        assert link.queue_bytes(now) <= buffer_bytes
        now += gap
    assert now > 2.0
    assert delivered_bytes * 8 / 2.0 == pytest.approx(RATE, rel=1e-3)
    assert worst_delay <= buffer_bytes * 8 / RATE + 1e-9
    assert worst_delay >= (buffer_bytes - 1200) * 8 / RATE  # the queue did fill


def test_bernoulli_loss_rate_within_tolerance():
    n, p = 200_000, 0.01
    link = Link(rate_bps=1e12, loss=Bernoulli(p), seed=11)
    lost = sum(1 for i in range(n) if not link.transmit(i * 1e-6, 100))
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(lost - n * p) < 4 * sigma  # 4 sigma: a false alarm about once in 16,000 runs
    assert link.stats.dropped_loss == lost


def test_bernoulli_losses_are_independent():
    """Gaps between losses are geometric: P(next packet also lost) ~ p."""
    n, p = 200_000, 0.05
    link = Link(rate_bps=1e12, loss=p, seed=5)
    lost = [not link.transmit(i * 1e-6, 100) for i in range(n)]
    pairs = sum(1 for a, b in zip(lost, lost[1:], strict=False) if a and b)
    cond = pairs / sum(lost[:-1])
    assert cond == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / sum(lost)))


def _bursts(lost: list[bool]) -> list[int]:
    bursts, run = [], 0
    for x in lost:
        if x:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    return bursts


def test_gilbert_elliott_burst_lengths_and_rate():
    model = GilbertElliott.from_burst(mean_loss=0.02, mean_burst_packets=4)
    assert model.mean_loss == pytest.approx(0.02) and model.mean_burst_packets == pytest.approx(4)
    link = Link(rate_bps=1e12, loss=model, seed=2)
    n = 400_000
    lost = [not link.transmit(i * 1e-6, 100) for i in range(n)]
    bursts = _bursts(lost)
    # ~2000 bursts: the mean of geometric(1/4) lengths has sd ~ sqrt(12/2000) ~ 0.08
    assert sum(bursts) / len(bursts) == pytest.approx(4.0, abs=0.35)
    # geometric: a quarter of the bursts are single losses
    assert sum(1 for b in bursts if b == 1) / len(bursts) == pytest.approx(0.25, abs=0.04)
    assert sum(lost) / n == pytest.approx(0.02, rel=0.15)
    # versus Bernoulli at the same rate, whose bursts average 1/(1-p) ~ 1.02
    blink = Link(rate_bps=1e12, loss=0.02, seed=2)
    bb = _bursts([not blink.transmit(i * 1e-6, 100) for i in range(n)])
    assert sum(bb) / len(bb) < 1.1


def test_gilbert_elliott_partial_loss_states():
    model = GilbertElliott(p_good_to_bad=0.01, p_bad_to_good=0.1, loss_good=0.001, loss_bad=0.5)
    link = Link(rate_bps=1e12, loss=model, seed=9)
    n = 300_000
    lost = sum(1 for i in range(n) if not link.transmit(i * 1e-6, 100))
    assert lost / n == pytest.approx(model.mean_loss, rel=0.12)


def test_periodic_loss_drops_one_packet_in_every_1_over_p():
    link = Link(rate_bps=1e12, loss=Periodic(0.01), seed=1)
    lost = [i for i in range(1000) if not link.transmit(i * 1e-6, 1200)]
    assert lost == list(range(99, 1000, 100))  # the last of each 100, whatever the seed
    early = Link(rate_bps=1e12, loss=Periodic(0.25, phase=0), seed=7)
    assert [bool(early.transmit(i * 1e-6, 100)) for i in range(8)] == [False, True, True,
                                                                        True] * 2
    assert Periodic(0.003).every == 333 and Periodic(0.003).mean_loss == pytest.approx(1 / 333)
    for bad in (dict(p=0), dict(p=1.5), dict(p=0.1, phase=10)):
        with pytest.raises(ConfigError):
            Periodic(**bad)


def test_wire_loss_uses_capacity():
    """A lost packet was serialized: the packet behind it waits for it."""
    link = Link(rate_bps=RATE, delay_s=0.0, loss=DropIndices([0]), seed=1)
    assert link.transmit(0.0, 1250) == ()
    assert link.transmit(0.0, 1250)[0] == pytest.approx(2 * SER_1250)
    assert link.stats.dropped_loss == 1


def test_drop_indices_is_exact():
    link = Link(rate_bps=1e12, loss=DropIndices([3, 5]), seed=1)
    lost = [i for i in range(10) if not link.transmit(i * 1e-3, 100)]
    assert lost == [3, 5]


def test_outage_drops_everything_in_the_interval_and_flushes_the_queue():
    link = Link(rate_bps=RATE, delay_s=0.01, outages=[(0.1, 0.2)], seed=1)
    # 5 packets offered at 0.0965: three finish by 0.0995, the other two are lost at 0.1
    got = [link.transmit(0.0965, 1250) for _ in range(5)]
    assert [bool(g) for g in got] == [True, True, True, False, False]
    assert link.queue_bytes(0.0995) == 2 * 1250
    assert link.queue_bytes(0.1) == 0
    # during the outage: everything dropped
    assert all(link.transmit(t, 1250) == () for t in (0.1, 0.15, 0.1999))
    # after it: an empty, idle link
    assert link.transmit(0.2, 1250)[0] == pytest.approx(0.2 + SER_1250 + 0.01)
    st = link.stats
    assert st.dropped_outage == 5 and st.delivered == 4


def test_several_outages_and_merging():
    link = Link(rate_bps=RATE, outages=[(0.5, 0.6), (0.1, 0.2), (0.15, 0.25)], seed=1)
    assert link.spec.outages == ((0.1, 0.25), (0.5, 0.6))
    fates = {t: bool(link.transmit(t, 100)) for t in (0.05, 0.12, 0.24, 0.3, 0.55, 0.7)}
    assert fates == {0.05: True, 0.12: False, 0.24: False, 0.3: True, 0.55: False, 0.7: True}


def test_jitter_keeps_order_and_bounds():
    delay, jitter = 0.02, 0.005
    link = Link(rate_bps=RATE, delay_s=delay, jitter_s=jitter, seed=4)
    # packets 20 ms apart: jitter never needs the no-overtaking floor
    offsets = [link.transmit(i * 0.02, 125)[0] - i * 0.02 - 1e-4 for i in range(5000)]
    assert min(offsets) >= delay - jitter - 1e-12 and max(offsets) <= delay + jitter + 1e-12
    assert sum(offsets) / len(offsets) == pytest.approx(delay, abs=3e-4)
    assert max(offsets) - min(offsets) > 1.8 * jitter  # really spread
    # back-to-back packets: arrivals never decrease (jitter does not reorder)
    link2 = Link(rate_bps=RATE, delay_s=delay, jitter_s=jitter, seed=4)
    arrivals = [link2.transmit(i * 1e-4, 125)[0] for i in range(20_000)]
    assert all(b >= a for a, b in zip(arrivals, arrivals[1:], strict=False))


def test_reordering_only_when_asked():
    link = Link(rate_bps=RATE, delay_s=0.01, reorder_p=0.05, reorder_delay_s=0.003, seed=6)
    arrivals = [link.transmit(i * 2e-4, 125)[0] for i in range(20_000)]
    late = sum(1 for a, b in zip(arrivals, arrivals[1:], strict=False) if b < a)
    assert link.stats.reordered == pytest.approx(1000, abs=4 * math.sqrt(1000))
    assert late >= 0.9 * link.stats.reordered  # a 3 ms hold is overtaken by later packets
    plain = Link(rate_bps=RATE, delay_s=0.01, jitter_s=0.003, seed=6)
    arr2 = [plain.transmit(i * 2e-4, 125)[0] for i in range(20_000)]
    assert all(b >= a for a, b in zip(arr2, arr2[1:], strict=False))


def test_duplication():
    link = Link(rate_bps=RATE, delay_s=0.01, duplicate_p=0.1, seed=8)
    results = [link.transmit(i * 1e-3, 125) for i in range(10_000)]
    dups = [r for r in results if len(r) == 2]
    assert len(dups) == pytest.approx(1000, abs=4 * math.sqrt(900))
    assert all(a == b for a, b in dups)
    assert link.stats.duplicated == len(dups)


def _run(link: Link, n: int = 20_000) -> list[tuple[float, ...]]:
    return [link.transmit(i * 9e-4, 1200 + (i % 7) * 10) for i in range(n)]


ALL_EFFECTS = dict(rate_bps=RATE, delay_s=0.02, jitter_s=0.002, loss=0.01, reorder_p=0.01,
                   duplicate_p=0.01, buffer="0.5bdp", aqm="codel", outages=[(5.0, 5.5)])


def test_same_seed_same_arrivals_different_seed_differs():
    a = _run(Link(**ALL_EFFECTS, seed=42))
    b = _run(Link(**ALL_EFFECTS, seed=42))
    c = _run(Link(**ALL_EFFECTS, seed=43))
    assert a == b
    assert a != c
    ge = dict(ALL_EFFECTS, loss=GilbertElliott.from_burst(0.02, 3))
    assert _run(Link(**ge, seed=1)) == _run(Link(**ge, seed=1))


def test_fresh_link_replays_and_unseeded_link_records_its_seed():
    link = Link(**ALL_EFFECTS)
    assert isinstance(link.seed, int)
    first = _run(link, 5000)
    assert _run(link.fresh(), 5000) == first
    assert link.fresh().stats.offered == 0


def test_time_must_not_go_backwards_for_queue_queries():
    link = Link(rate_bps=RATE, seed=1)
    link.transmit(1.0, 100)
    with pytest.raises(ConfigError, match="only moves forward"):
        link.queue_bytes(0.5)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(), "exactly one of rate_bps"),
    (dict(rate_bps=1e6, trace="x"), "exactly one of rate_bps"),
    (dict(rate_bps="fast"), "rate_bps"),
    (dict(rate_bps=1e6, delay_s=-1), "delay_s"),
    (dict(rate_bps=1e6, loss="150%"), "loss"),
    (dict(rate_bps=1e6, buffer="lots"), "buffer"),
    (dict(rate_bps=1e6, aqm="fq_codel"), "aqm"),
    (dict(rate_bps=1e6, outages=[(2, 1)]), "outages"),
    (dict(rate_bps=1e6, reorder_p=2), "reorder_p"),
    (dict(rate_bps=1e6, seed="x"), "seed"),
    (dict(trace="/nonexistent/file.trace"), "cannot be read"),
])
def test_bad_parameters_raise_config_error_naming_them(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        Link(**kwargs)


def test_buffer_parse_forms():
    assert Buffer.parse("64KB") == Buffer(bytes=64_000)
    assert Buffer.parse("100p") == Buffer(packets=100)
    assert Buffer.parse("100 packets") == Buffer(packets=100)
    assert Buffer.parse("1bdp") == Buffer(bdp=1.0)
    assert Buffer.parse("0.25xBDP") == Buffer(bdp=0.25)
    with pytest.raises(ConfigError):
        Buffer(bytes=1, packets=2)


def test_last_drop_cause_names_each_cause():
    link = Link(rate_bps=RATE, buffer="1p", loss=DropIndices([1]), outages=[(1.0, 2.0)], seed=1)
    assert link.transmit(0.0, 100) != ()
    assert link.transmit(0.0, 100) == () and link.last_drop_cause == "queue"
    assert link.transmit(0.5, 100) == () and link.last_drop_cause == "loss"
    assert link.transmit(1.5, 100) == () and link.last_drop_cause == "outage"
    codel = Link(rate_bps=RATE, aqm="codel", seed=1)
    causes = {codel.last_drop_cause for _ in range(400) if codel.transmit(0.0, 1250) == ()}
    assert causes == {"aqm"}


@pytest.mark.parametrize("seed", range(20))
def test_invariants_on_random_traffic(seed):
    """Whatever the traffic: counts add up, the buffer limit holds, the rate is never beaten."""
    import random

    rng = random.Random(seed)
    rate = rng.choice((1e6, 10e6, 100e6))
    delay = rng.choice((0.0, 0.01, 0.1))
    buffer = rng.choice((None, "20KB", "7p", "0.5bdp"))
    aqm = rng.choice(("droptail", "codel"))
    link = Link(rate_bps=rate, delay_s=delay, buffer=buffer, aqm=aqm, loss=rng.choice((0, 0.02)),
                seed=seed)
    now, delivered, last = 0.0, [], -1.0
    for _ in range(3000):
        now += rng.expovariate(rate / (8 * 900)) * rng.choice((0.3, 1.0, 3.0))
        size = rng.choice((60, 600, 1200, 1500))
        r = link.transmit(now, size)
        assert link.queue_bytes(now) <= link.buffer_bytes
        assert link.queue_packets(now) <= (link.buffer_packets or 10**9)
        if r:
            (a,) = r
            assert a >= now + delay + size * 8 / rate - 1e-12
            assert a >= last  # FIFO without jitter or reordering
            last = a
            delivered.append((a - delay, size))
    st = link.stats
    assert st.offered == 3000 == st.delivered + st.dropped
    # no interval of departures carries more than rate allows (lost packets used capacity
    # too, so this is a lower bound on the time the delivered ones needed)
    for (t0, _), (t1, s1) in zip(delivered, delivered[1:], strict=False):
        assert t1 - t0 >= s1 * 8 / rate - 1e-12
