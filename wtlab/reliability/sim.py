"""Step two engines against each other over simulated links, in virtual time.

This is the engine's own small discrete-event driver, for tests, notebooks and teaching
("step one loss, watch the retransmission"). Links are anything with
``transmit(now, size_bytes) -> tuple[arrival_time, ...]`` (empty: dropped; two entries: a
duplicate), which is the contract of :class:`wtlab.net.link.Link` too, so the full path
models plug in unchanged. :class:`LossyLink` is a minimal seeded one: fixed delay,
Bernoulli loss, reordering as extra delay, duplication, outages.

Example::

    >>> from wtlab.reliability.engine import Engine
    >>> from wtlab.reliability.sim import EnginePair, LossyLink
    >>> a, b = Engine("reliable"), Engine("reliable")
    >>> pair = EnginePair(a, b, LossyLink(delay_s=0.01, loss=0.2, seed=1))
    >>> for i in range(100):
    ...     pair.send_at(i * 0.001, b"message %d" % i)
    >>> pair.run()
    >>> [d.data for _, d in pair.delivered] == [b"message %d" % i for i in range(100)]
    True
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from typing import Any, Protocol

from wtlab.errors import ConfigError
from wtlab.reliability.engine import (
    Engine,
    Event,
    MessageAcked,
    MessageDelivered,
    MessageExpired,
)


class LinkModel(Protocol):
    """What :class:`EnginePair` needs of a link: ``transmit(now, size_bytes) -> arrival times``
    (``()`` if dropped).
    """
    def transmit(self, now: float, size_bytes: int) -> tuple[float, ...]:
        """Arrival times of a datagram of ``size_bytes`` offered at ``now`` (``()``: lost)."""


class LossyLink:
    """Fixed delay, Bernoulli loss, reordering (extra delay), duplication, outages; seeded.

    Draw order per packet: loss, then reordering, then duplication (one ``random.Random``).
    A reordered packet is delayed by ``reorder_extra_s`` more, so later packets overtake it.
    Packets sent during an outage ``(start_s, end_s)`` are dropped.
    """

    def __init__(self, *, delay_s: float = 0.01, loss: float = 0.0, reorder_p: float = 0.0,
                 reorder_extra_s: float | None = None, duplicate_p: float = 0.0,
                 outages: Sequence[tuple[float, float]] = (), seed: int = 0) -> None:
        for name, p in (("loss", loss), ("reorder_p", reorder_p), ("duplicate_p", duplicate_p)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {p!r}")
        if delay_s < 0:
            raise ConfigError(f"delay_s must be >= 0, got {delay_s!r}")
        self.delay_s = delay_s
        self.loss = loss
        self.reorder_p = reorder_p
        self.reorder_extra_s = delay_s if reorder_extra_s is None else reorder_extra_s
        self.duplicate_p = duplicate_p
        self.outages = list(outages)
        self._rng = random.Random(seed)
        self.offered = 0
        self.dropped = 0

    def transmit(self, now: float, size_bytes: int) -> tuple[float, ...]:
        """Arrival times of a datagram of ``size_bytes`` offered at ``now`` (``()`` if lost or in an
        outage).
        """
        self.offered += 1
        rng = self._rng
        for start, end in self.outages:
            if start <= now < end:
                self.dropped += 1
                return ()
        if rng.random() < self.loss:
            self.dropped += 1
            return ()
        arrival = now + self.delay_s
        if rng.random() < self.reorder_p:
            arrival += self.reorder_extra_s
        if rng.random() < self.duplicate_p:
            return (arrival, arrival + self.delay_s / 2)
        return (arrival,)


class PatternLink:
    """A link whose n-th packet follows the n-th entry of explicit patterns (for property
    tests): ``drop[n]``, ``extra_delay_s[n]``, ``duplicate[n]``; past the patterns' end,
    packets pass after ``delay_s``."""

    def __init__(self, *, delay_s: float, drop: Sequence[bool] = (),
                 extra_delay_s: Sequence[float] = (), duplicate: Sequence[bool] = ()) -> None:
        self.delay_s = delay_s
        self.drop = list(drop)
        self.extra = list(extra_delay_s)
        self.duplicate = list(duplicate)
        self.n = 0

    def transmit(self, now: float, size_bytes: int) -> tuple[float, ...]:
        """Arrival times of the next datagram, as the pattern says (``()`` if dropped, two if
        duplicated).
        """
        n = self.n
        self.n += 1
        if n < len(self.drop) and self.drop[n]:
            return ()
        arrival = now + self.delay_s + (self.extra[n] if n < len(self.extra) else 0.0)
        if n < len(self.duplicate) and self.duplicate[n]:
            return (arrival, arrival + self.delay_s)
        return (arrival,)


class EnginePair:
    """Two engines, ``a`` (index 0) and ``b`` (index 1), joined by links ``ab`` and ``ba``.

    ``send_at(t, data, side=0)`` schedules a message; ``step()`` processes the next instant
    (arrivals, sends, timers) and returns the events it produced as ``(time, side, event)``;
    ``run(until=None)`` steps until nothing is left to do (or ``until``). Results:
    ``delivered`` (``(time, MessageDelivered)`` at ``b`` for messages from ``a``),
    ``log`` (every event of both sides), ``now``.
    """

    def __init__(self, a: Engine, b: Engine, ab: LinkModel, ba: LinkModel | None = None,
                 *, start_s: float = 0.0) -> None:
        self.engines = (a, b)
        if ba is None:
            ba = ab if not isinstance(ab, LossyLink) else LossyLink(
                delay_s=ab.delay_s, loss=ab.loss, reorder_p=ab.reorder_p,
                reorder_extra_s=ab.reorder_extra_s, duplicate_p=ab.duplicate_p,
                outages=ab.outages, seed=ab._rng.randrange(1 << 30))
        self.links = (ab, ba)
        self.now = start_s
        self._queue: list[tuple[float, int, int, Any]] = []  # (time, seq, kind/side, payload)
        self._seq = 0
        self.log: list[tuple[float, int, Event]] = []
        self.delivered: list[tuple[float, MessageDelivered]] = []
        self.sent_ids: list[tuple[float, int]] = []
        self.steps = 0

    # kinds in the queue: 0/1 = datagram arriving at side 0/1; 2/3 = send on side 0/1
    def send_at(self, t: float, data: bytes, side: int = 0) -> None:
        """Have side ``side`` send ``data`` as a message at time ``t``."""
        self._push(t, 2 + side, data)

    def _push(self, t: float, kind: int, payload: Any) -> None:
        heapq.heappush(self._queue, (t, self._seq, kind, payload))
        self._seq += 1

    def next_time(self) -> float | None:
        """The time of the next thing to happen (a delivery, a send or an engine timer), or ``None``
        if nothing is left.
        """
        times = [self._queue[0][0]] if self._queue else []
        for e in self.engines:
            t = e.next_timer()
            if t is not None:
                times.append(t)
        return min(times) if times else None

    def step(self) -> list[tuple[float, int, Event]]:
        """Advance to :meth:`next_time` and handle everything due then; returns the events it
        produced as ``(time, side, event)``.
        """
        t = self.next_time()
        if t is None:
            return []
        self.now = max(self.now, t)
        now = self.now
        self.steps += 1
        q = self._queue
        while q and q[0][0] <= now:
            _, _, kind, payload = heapq.heappop(q)
            if kind < 2:
                self.engines[kind].receive_datagram(payload, now)
            else:
                side = kind - 2
                mid = self.engines[side].send(payload, now)
                if side == 0:
                    self.sent_ids.append((now, mid))
        for e in self.engines:
            timer = e.next_timer()
            if timer is not None and timer <= now:
                e.on_timer(now)
        for side, e in enumerate(self.engines):
            for dgram in e.datagrams_to_send(now):
                for arrival in self.links[side].transmit(now, len(dgram)):
                    self._push(arrival, 1 - side, dgram)
        out = []
        for side, e in enumerate(self.engines):
            while (ev := e.next_event()) is not None:
                out.append((now, side, ev))
                if side == 1 and isinstance(ev, MessageDelivered):
                    self.delivered.append((now, ev))
        self.log.extend(out)
        return out

    def run(self, until: float | None = None, max_steps: int = 1_000_000) -> None:
        """Step until idle or past ``until``; ``max_steps`` bounds a runaway run."""
        for _ in range(max_steps):
            t = self.next_time()
            if t is None or (until is not None and t > until):
                if until is not None:
                    self.now = max(self.now, until)
                return
            self.step()
        raise ConfigError(f"simulation did not settle within {max_steps} steps; "
                          "raise max_steps or give until=")

    # views
    def acked_ids(self) -> set[int]:
        """Ids of the messages side 0's engine saw acknowledged."""
        return {ev.message_id for _, s, ev in self.log if s == 0 and isinstance(ev, MessageAcked)}

    def expired_ids(self, side: int = 0) -> set[int]:
        """Ids of the messages ``side``'s engine let expire."""
        return {ev.message_id for _, s, ev in self.log
                if s == side and isinstance(ev, MessageExpired)}
