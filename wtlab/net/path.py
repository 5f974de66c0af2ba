"""A path: two links, ``down`` (server -> client) and ``up`` (client -> server).

``down`` is the direction bulk downloads flow in; ``bdp_bytes`` refers to it.
The directions may differ in everything (rate or trace, delay, loss, buffer).

    >>> from wtlab.net.path import Path
    >>> p = Path.symmetric(rate_bps="10mbit", rtt_s="40ms", loss="1%", buffer_bdp=1.0, seed=7)
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

import random

from wtlab.errors import ConfigError
from wtlab.net.link import Buffer, Link, LinkSpec, as_link_spec
from wtlab.net.units import format_duration, parse_duration


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

    def _link(self, given: object, spec: LinkSpec, name: str) -> Link:
        if isinstance(given, Link):
            return given
        seed = spec.seed if spec.seed is not None else derive_seed(self.seed, name)
        return spec.build(seed=seed, rtt_s=self.rtt_s)

    @classmethod
    def symmetric(cls, rate_bps: float | str | None = None, rtt_s: float | str = 0.04, *,
                  trace: object = None, loss: object = None, buffer_bdp: float | None = 1.0,
                  buffer: object = None, jitter_s: float | str = 0.0, aqm: object = "droptail",
                  reorder_p: float | str = 0.0, duplicate_p: float | str = 0.0,
                  outages: tuple = (), seed: int | None = None) -> Path:
        """Both directions alike: ``rate_bps`` (or ``trace``), one-way delay ``rtt_s / 2``.

        The buffer is ``buffer`` if given (``Buffer``, ``"64KB"``, ``"100p"``...),
        else ``buffer_bdp`` x BDP (``None`` for an unlimited buffer). ``loss``
        (a probability, ``"1%"`` or a loss model) applies to both directions.
        """
        rtt = parse_duration(rtt_s, "rtt_s")
        if buffer is None and buffer_bdp is not None:
            buffer = Buffer(bdp=buffer_bdp)
        spec = LinkSpec(rate_bps=rate_bps, trace=trace, delay_s=rtt / 2.0, jitter_s=jitter_s,
                        loss=loss, outages=tuple(outages), reorder_p=reorder_p,
                        duplicate_p=duplicate_p, buffer=buffer, aqm=aqm)
        return cls(down=spec, up=spec, seed=seed)

    @property
    def bdp_bytes(self) -> float:
        """Bandwidth-delay product of the down direction: capacity x propagation RTT / 8."""
        return self.down.capacity_bps * self.rtt_s / 8.0

    @property
    def bdp_bytes_up(self) -> float:
        return self.up.capacity_bps * self.rtt_s / 8.0

    @property
    def capacity_bps(self) -> float:
        """Capacity of the down direction (the trace's mean for a trace-driven link)."""
        return self.down.capacity_bps

    def new(self, seed: int | None = None) -> Path:
        """A fresh path with the same specs, empty queues, at time 0 (same seed unless given)."""
        return Path(down=self.down_spec, up=self.up_spec, seed=self.seed if seed is None else seed)

    def describe(self) -> dict:
        """JSON-ready description for run metadata."""
        return {"rtt_s": self.rtt_s, "bdp_bytes": self.bdp_bytes,
                "capacity_bps": self.capacity_bps, "seed": self.seed,
                "down": self.down.describe(), "up": self.up.describe()}

    def __repr__(self) -> str:
        return (f"Path(rtt {format_duration(self.rtt_s)}; down: {self.down_spec.summary()}; "
                f"up: {self.up_spec.summary()}; seed={self.seed})")
