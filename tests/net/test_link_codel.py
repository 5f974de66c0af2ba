"""CoDel on a link: decided at transmit time, checked against an event-driven CoDel."""

from __future__ import annotations

import math
import random
from collections import deque

import pytest

from wtlab.net.link import CoDel, Link

RATE = 10e6  # 1250-byte packets take 1 ms


def test_standing_queue_is_drained_to_target():
    """A 30 ms standing queue (sender exactly at capacity): CoDel drops until ~5 ms remain."""
    results = {}
    for aqm in ("droptail", "codel"):
        link = Link(rate_bps=RATE, buffer="200p", aqm=aqm, seed=1)
        for _ in range(30):
            link.transmit(0.0, 1250)
        first_drop, last_wait = None, None
        for i in range(3000):
            now = i * 0.001 + 1e-7
            r = link.transmit(now, 1250)
            if r:
                last_wait = r[0] - now - 0.001  # time spent waiting for the head
            elif first_drop is None:
                first_drop = now
        results[aqm] = (link.stats, first_drop, last_wait)
    st, first_drop, wait = results["droptail"]
    assert st.dropped == 0 and wait == pytest.approx(0.030, abs=1e-6)
    st, first_drop, wait = results["codel"]
    assert st.dropped_queue == 0
    # one drop per packet of excess queue (25 ms of it), no more
    assert 25 <= st.dropped_aqm <= 27
    # the first drop comes one interval after the queue went above target: the packet
    # offered at ~75 ms reaches the head at ~105 ms
    assert 0.070 <= first_drop <= 0.080
    assert wait < 0.005


def test_short_bursts_are_not_dropped():
    """Bursts that queue 50 ms (above target for < one interval) pass untouched."""
    link = Link(rate_bps=RATE, aqm="codel", seed=1)
    for burst in range(10):
        for _ in range(50):
            assert link.transmit(burst * 0.2, 1250) != ()
    assert link.stats.dropped == 0
    # a burst that stays above target for longer than an interval is cut
    long = Link(rate_bps=RATE, aqm="codel", seed=1)
    for _ in range(300):
        long.transmit(0.0, 1250)
    assert long.stats.dropped_aqm > 0


def test_overload_keeps_delay_low_where_droptail_fills_the_buffer():
    medians = {}
    for aqm in ("droptail", "codel"):
        link = Link(rate_bps=RATE, buffer="400p", aqm=aqm, seed=1)
        gap = 0.001 / 1.1
        waits = []
        for i in range(int(6 / gap)):
            now = i * gap
            r = link.transmit(now, 1250)
            if r and now > 4:
                waits.append(r[0] - now)
        waits.sort()
        medians[aqm] = waits[len(waits) // 2]
    assert medians["droptail"] > 0.35  # the 400-packet buffer is full
    assert medians["codel"] < 0.06


def test_codel_on_a_trace_driven_link_matches_the_constant_rate_link():
    """A trace of one 1250-byte opportunity per ms is the 10 Mbit/s link, CoDel included."""
    medians, drops = {}, {}
    for name, kw in (("trace", dict(trace=_const_trace())), ("rate", dict(rate_bps=RATE))):
        link = Link(**kw, buffer="400p", aqm="codel", seed=1)
        gap = 0.001 / 1.1
        waits = []
        for i in range(int(6 / gap)):
            now = i * gap
            r = link.transmit(now, 1250)
            if r and now > 4:
                waits.append(r[0] - now)
        assert link.stats.dropped_queue == 0
        medians[name] = sorted(waits)[len(waits) // 2]
        drops[name] = link.stats.dropped_aqm
    assert medians["trace"] < 0.06 and drops["trace"] > 100
    assert medians["trace"] == pytest.approx(medians["rate"], abs=0.002)
    assert drops["trace"] == pytest.approx(drops["rate"], rel=0.02)


def _const_trace():
    from wtlab.net.traces import MahimahiTrace

    return MahimahiTrace([1], opportunity_bytes=1250)  # 10 Mbit/s, one opportunity per ms


# --- reference: a literal event-driven CoDel (RFC 8289 / Linux codel_dequeue) ------------

def reference_codel(arrivals, sizes, rate_bps, params: CoDel, proxy: bool):
    """Departure time per packet (None if dropped), simulating the queue event by event.

    ``proxy=True`` uses the link's stand-in for the "at most one MTU left" rule (bytes
    ahead of the packet when it arrived); ``proxy=False`` uses the real rule (bytes left
    in the queue behind it at dequeue).
    """
    target, interval, mtu = params.target_s, params.interval_s, params.mtu_bytes
    n = len(arrivals)
    out: list[float | None] = [None] * n
    queue: deque[tuple[int, float]] = deque()  # (index, bytes ahead on arrival)
    st = dict(q_bytes=0, first_above=0.0, dropping=False, drop_next=0.0, count=0, lastcount=0)
    serving = [None]  # (completion time, size) of the packet on the wire

    def dodequeue(now):
        if not queue:
            st["first_above"] = 0.0
            return None, False
        j, ahead = queue.popleft()
        st["q_bytes"] -= sizes[j]
        sojourn = now - arrivals[j]
        backlog = ahead if proxy else st["q_bytes"]
        ok = False
        if sojourn < target or backlog <= mtu:
            st["first_above"] = 0.0
        elif st["first_above"] == 0.0:
            st["first_above"] = now + interval
        elif now >= st["first_above"]:
            ok = True
        return j, ok

    def dequeue(now):
        j, ok = dodequeue(now)
        if j is None:
            st["dropping"] = False
            return None
        if st["dropping"]:
            if not ok:
                st["dropping"] = False
            while st["dropping"] and now >= st["drop_next"]:
                st["count"] += 1
                j, ok = dodequeue(now)  # the previous j is dropped
                if not ok:
                    st["dropping"] = False
                else:
                    st["drop_next"] += interval / math.sqrt(st["count"])
        elif ok:
            j, ok = dodequeue(now)  # the first one is dropped
            st["dropping"] = True
            delta = st["count"] - st["lastcount"]
            if delta > 1 and now - st["drop_next"] < 16 * interval:
                st["count"] = delta
            else:
                st["count"] = 1
            st["lastcount"] = st["count"]
            st["drop_next"] = now + interval / math.sqrt(st["count"])
        return j

    i = 0
    t_free = -math.inf
    completion_pending = False
    while True:
        while i < n and arrivals[i] <= t_free:
            ahead = st["q_bytes"]
            if serving[0] is not None and serving[0][0] > arrivals[i]:
                ahead += serving[0][1]
            queue.append((i, ahead))
            st["q_bytes"] += sizes[i]
            i += 1
        if queue:
            j = dequeue(t_free)
            if j is not None:
                done = t_free + sizes[j] * 8 / rate_bps
                out[j] = done
                serving[0] = (done, sizes[j])
                t_free = done
                completion_pending = True
            else:
                completion_pending = False
            continue
        if completion_pending:  # the link finished and found the queue empty
            dequeue(t_free)
            completion_pending = False
        if i >= n:
            return out
        t_free = max(t_free, arrivals[i])


def _traffic(seed: int, seconds: float):
    """On/off overload: Poisson arrivals at 0.5x-1.6x capacity, random sizes."""
    rng = random.Random(seed)
    t, arrivals, sizes = 0.0, [], []
    while t < seconds:
        load = 1.6 if int(t / 0.7) % 2 == 0 else 0.5
        size = rng.choice((80, 600, 1200, 1250, 1500))
        t += rng.expovariate(load * RATE / (8 * 1000))
        arrivals.append(t)
        sizes.append(size)
    return arrivals, sizes


@pytest.mark.parametrize("seed", [1, 2])
def test_transmit_time_codel_equals_event_driven_codel(seed):
    arrivals, sizes = _traffic(seed, 6.0)
    params = CoDel()
    link = Link(rate_bps=RATE, aqm=params, seed=1)
    got = []
    for a, s in zip(arrivals, sizes, strict=True):
        r = link.transmit(a, s)
        got.append(r[0] if r else None)
    want = reference_codel(arrivals, sizes, RATE, params, proxy=True)
    assert sum(x is None for x in want) > 50  # CoDel really worked here
    mismatches = [k for k, (g, w) in enumerate(zip(got, want, strict=True))
                  if (g is None) != (w is None) or (g is not None and abs(g - w) > 1e-9)]
    assert mismatches == []
    # the proxy for "at most one MTU queued behind" barely changes CoDel's work
    real = reference_codel(arrivals, sizes, RATE, params, proxy=False)
    d_proxy = sum(x is None for x in want)
    d_real = sum(x is None for x in real)
    assert abs(d_proxy - d_real) <= 0.1 * d_real
