"""A path: two links, ``down`` (server -> client) and ``up`` (client -> server).

``down`` is the direction bulk downloads flow in; ``bdp_bytes`` refers to it.
The directions may differ in everything (rate or trace, delay, loss, buffer).

    >>> from wtlab.net.path import Path
    >>> p = Path.symmetric(rate_bps="10mbit", rtt_s="40ms", loss="1%", buffer_bdp=1.0, seed=7)
    >>> p.down_spec.loss is not None, p.up_spec.loss   # loss on the data direction only
    (True, None)
    >>> p.rtt_s, p.bdp_bytes
    (0.04, 50000.0)
    >>> p.down.transmit(0.0, 1200)          # arrival time at the client
    (0.02096,)

A Path owns stateful :class:`~wtlab.net.link.Link` objects; ``path.new()``
gives a fresh copy (same specs and seed) for another run. Seeds: ``Path(seed=s)``
derives each direction's seed from ``s`` (unless a LinkSpec fixes its own), so
one integer makes a run repeatable; ``seed=None`` draws one and keeps it in
``path.seed``.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Mapping
from typing import Any

from wtlab.errors import ConfigError
from wtlab.net.link import Buffer, Link, LinkSpec, as_link_spec
from wtlab.net.units import format_duration, parse_duration

# Numbers above these are almost surely a unit slip (80 meant as ms, 10 meant as Mbit/s).
MAX_BARE_RTT_S = 10.0
MIN_BARE_RATE_BPS = 1000.0


def derive_seed(seed: int, name: str) -> int:
    """A stable 63-bit seed for part ``name`` of a run seeded with ``seed``."""
    return random.Random(f"wtlab:{seed}:{name}").randrange(1 << 63)


class Path:
    """Two directions of a path; see the module docstring."""

    def __init__(self, down: LinkSpec | Link | dict, up: LinkSpec | Link | dict | None = None,
                 *, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"seed: {seed!r} must be an integer or None")
        self.seed: int = random.SystemRandom().randrange(1 << 63) if seed is None else seed
        if up is None:
            up = down.spec if isinstance(down, Link) else down
        self.down_spec = as_link_spec(down, "down")
        self.up_spec = as_link_spec(up, "up")
        self.rtt_s: float = self.down_spec.delay_s + self.up_spec.delay_s
        self.down: Link = self._link(down, self.down_spec, "down")
        self.up: Link = self._link(up, self.up_spec, "up")
        # what new() rebuilds, and the down direction's service over time (change())
        self._initial = (self.down_spec, self.up_spec)
        self._segments: list[tuple[float, LinkSpec]] = [(0.0, self.down_spec)]

    def _link(self, given: object, spec: LinkSpec, name: str) -> Link:
        if isinstance(given, Link):
            return given
        seed = spec.seed if spec.seed is not None else derive_seed(self.seed, name)
        return spec.build(seed=seed, rtt_s=self.rtt_s)

    @classmethod
    def symmetric(cls, rate_bps: float | str | None = None, rtt_s: float | str = 0.04, *,
                  trace: object = None, loss: object = None, ack_loss: object = None,
                  buffer_bdp: float | None = 1.0, buffer: object = None,
                  jitter_s: float | str = 0.0, aqm: object = "droptail",
                  reorder_p: float | str = 0.0, duplicate_p: float | str = 0.0,
                  outages: tuple = (), ecn: bool | str = True, mark: float | str = 0.0,
                  seed: int | None = None) -> Path:
        """Both directions alike: ``rate_bps`` (or ``trace``), one-way delay ``rtt_s / 2``.

        The buffer is ``buffer`` if given (``Buffer``, ``"64KB"``, ``"100p"``...),
        else ``buffer_bdp`` x BDP (``None`` for an unlimited buffer).

        ``loss`` (a probability, ``"1%"`` or a loss model; bare numbers of 0.1 or more
        must be written in percent) applies to the **data direction**, ``down``, where
        every wtlab workload's bulk data flows (the server sends): as in Mathis' law and
        ns-3's usual bottleneck error model. ``ack_loss`` applies to ``up``, the
        direction of the ACKs. Numeric ``rtt_s`` above 10 and ``rate_bps`` below 1000
        are refused as unit slips (write ``"80s"`` / ``"500bit"`` if you mean them).

        ``aqm``: ``"droptail"``, ``"codel"``, ``"red"``, ``"pie"``, ``"step"`` (DCTCP's
        threshold marking) or ``"dualpi2"`` (RFC 9332's L4S dual queue), or an instance
        (:mod:`wtlab.net.aqm`). ``ecn``: True (an AQM marks ECN-capable packets CE
        instead of dropping them, RFC 3168), False (it drops them) or ``"bleach"`` (the
        path erases the ECN field). ``mark``: a probability of random CE marks of
        ECN-capable packets on the data direction, as ``loss`` drops.
        """
        if isinstance(rtt_s, int | float) and not isinstance(rtt_s, bool) and (
                rtt_s > MAX_BARE_RTT_S):
            raise ConfigError(
                f"rtt_s={rtt_s!r} is {rtt_s:g} seconds: RTTs are given in seconds. Did you mean "
                f"{rtt_s:g} ms (rtt_s={rtt_s / 1000:g} or '{rtt_s:g}ms')? Write '{rtt_s:g}s' for "
                "a round trip that long")
        if isinstance(rate_bps, int | float) and not isinstance(rate_bps, bool) and (
                0 < rate_bps < MIN_BARE_RATE_BPS):
            raise ConfigError(
                f"rate_bps={rate_bps!r} is {rate_bps:g} bit/s: rates are given in bit/s. Did you "
                f"mean {rate_bps:g} Mbit/s (rate_bps={rate_bps:g}e6 or '{rate_bps:g}mbit')? "
                f"Write '{rate_bps:g}bit' for a link that slow")
        rtt = parse_duration(rtt_s, "rtt_s")
        if buffer is None and buffer_bdp is not None:
            buffer = Buffer(bdp=buffer_bdp)
        common = dict(rate_bps=rate_bps, trace=trace, delay_s=rtt / 2.0, jitter_s=jitter_s,
                      outages=tuple(outages), reorder_p=reorder_p, duplicate_p=duplicate_p,
                      buffer=buffer, aqm=aqm, ecn=ecn)
        down = LinkSpec(loss=loss, mark=mark, **common)
        up = LinkSpec(loss=ack_loss, **common)
        return cls(down=down, up=up, seed=seed)

    @classmethod
    def from_spec(cls, spec: Path | Mapping[str, Any] | None, *, seed: int | None = None,
                  default: Mapping[str, Any] | None = None) -> Path:
        """A fresh Path from a Path (``spec.new(seed)``), a dict of :meth:`symmetric`
        arguments or None (``default``); unknown keys raise ConfigError listing the
        valid ones."""
        if isinstance(spec, Path):
            return spec.new(seed=seed)
        if spec is None:
            spec = dict(default or {})
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"path={spec!r}: give a wtlab.net.Path, a dict of Path.symmetric arguments "
                f"({', '.join(PATH_KEYS)}) or None")
        unknown = [k for k in spec if k not in PATH_KEYS]
        if unknown:
            raise ConfigError(
                f"path: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; valid keys: {', '.join(PATH_KEYS)} "
                "(see Path.symmetric)")
        kwargs = dict(spec)
        if seed is not None:
            kwargs["seed"] = seed
        return cls.symmetric(**kwargs)

    @property
    def bdp_bytes(self) -> float:
        """Bandwidth-delay product of the down direction: capacity x propagation RTT / 8."""
        return self.down.capacity_bps * self.rtt_s / 8.0

    @property
    def bdp_bytes_up(self) -> float:
        """Bandwidth-delay product of the up direction: capacity x propagation RTT / 8."""
        return self.up.capacity_bps * self.rtt_s / 8.0

    @property
    def capacity_bps(self) -> float:
        """Capacity of the down direction (the trace's mean for a trace-driven link)."""
        return self.down.capacity_bps

    def capacity_bps_between(self, from_s: float, to_s: float) -> float:
        """Capacity of the down direction over ``[from_s, to_s]``: the constant rate, or a
        trace's mean rate over that window, time-weighted across the path's changes
        (:meth:`change`); the figure utilisation divides by."""
        if not to_s > from_s:
            return self.capacity_bps
        total_bits = 0.0
        bounds = [t for t, _ in self._segments[1:]] + [math.inf]
        for (start, spec), end in zip(self._segments, bounds, strict=True):
            lo, hi = max(from_s, start), min(to_s, end)
            if hi <= lo:
                continue
            if spec.trace is not None:
                total_bits += spec.trace.capacity_bytes(lo, hi) * 8
            else:
                total_bits += spec.rate_bps * (hi - lo)
        return total_bits / (to_s - from_s)

    def capacity_steps(self) -> list[tuple[float, float]]:
        """``[(from_s, capacity_bps), ...]``: the down direction's capacity as it changed
        (a trace counts at its mean rate); for capacity lines in figures."""
        return [(t, spec.capacity_bps) for t, spec in self._segments]

    def change(self, now: float, *, rate_bps: Any = None, rtt_s: Any = None, loss: Any = ...,
               ack_loss: Any = ..., buffer_bdp: float | None = None, buffer: Any = ...,
               trace: Any = None, outage_s: Any = None) -> dict[str, Any]:
        """Change the path at ``now`` (one step of a :mod:`wtlab.net.schedule`); returns the
        path after it (rate, RTT, loss, buffer), JSON-ready.

        As :meth:`symmetric` builds a path: ``rate_bps`` / ``trace`` / ``buffer`` /
        ``outage_s`` apply to both directions, ``rtt_s`` sets ``rtt_s / 2`` each way,
        ``loss`` the data direction (``down``; 0 or None: none) and ``ack_loss`` the ACK
        direction. ``buffer_bdp`` sizes the buffer at the path's new BDP. What happens to
        packets already queued: :meth:`wtlab.net.link.Link.reconfigure`.
        """
        if rtt_s is not None:
            rtt = parse_duration(rtt_s, "rtt_s")
            if not rtt > 0:
                raise ConfigError(f"rtt_s={rtt_s!r} must be > 0 seconds")
            self.rtt_s = rtt
        if buffer_bdp is not None:
            if buffer is not ...:
                raise ConfigError("change: give buffer_bdp= or buffer=, not both")
            buffer = Buffer(bdp=buffer_bdp)
        for name, link_loss in (("down", loss), ("up", ack_loss)):
            link: Link = getattr(self, name)
            link.reconfigure(now, rate_bps=rate_bps, trace=trace,
                             delay_s=None if rtt_s is None else self.rtt_s / 2.0,
                             loss=link_loss, buffer=buffer,
                             rtt_s=self.rtt_s, outage_s=outage_s)
        self.down_spec, self.up_spec = self.down.spec, self.up.spec
        if rate_bps is not None or trace is not None:
            self._segments.append((float(now), self.down_spec))
        return self.state()

    def state(self) -> dict[str, Any]:
        """The path as it is now: capacity, RTT, data-direction loss, buffer (JSON-ready)."""
        down = self.down
        loss = self.down_spec.loss
        return {"capacity_bps": down.capacity_bps, "rtt_s": self.rtt_s,
                "loss": getattr(loss, "mean_loss", None) if loss is not None else 0.0,
                "buffer_bytes": None if down.buffer_bytes_limit == math.inf
                else down.buffer_bytes_limit,
                "buffer_packets": down.buffer_packets}

    def new(self, seed: int | None = None) -> Path:
        """A fresh path with the specs it was built with (before any :meth:`change`), empty
        queues, at time 0 (same seed unless given)."""
        down, up = self._initial
        return Path(down=down, up=up, seed=self.seed if seed is None else seed)

    def describe(self) -> dict:
        """JSON-ready description for run metadata."""
        return {"rtt_s": self.rtt_s, "bdp_bytes": self.bdp_bytes,
                "capacity_bps": self.capacity_bps, "seed": self.seed,
                "down": self.down.describe(), "up": self.up.describe()}

    def __repr__(self) -> str:
        return (f"Path(rtt {format_duration(self.rtt_s)}; down: {self.down_spec.summary()}; "
                f"up: {self.up_spec.summary()}; seed={self.seed})")


#: the keys a path dict may hold (the arguments of Path.symmetric)
PATH_KEYS: tuple[str, ...] = tuple(inspect.signature(Path.symmetric).parameters)
