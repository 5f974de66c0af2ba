"""Loss models for a link: Bernoulli and Gilbert-Elliott (random), Periodic (the
response functions' assumption) and DropIndices.

A loss model here is an immutable description (safe to share between links and
runs); the per-link state (the Gilbert-Elliott channel state, the random
generator) lives in the :class:`~wtlab.net.link.Link` that uses it, so two links
built from one model with one seed lose the same packets.

Loss is applied *on the wire*, after the bottleneck queue: a lost packet used
its share of the link's capacity (as with a corrupted frame, or ns-3's receive
error model), then never arrives.

Anything else with a ``make(rng) -> lose(now, size_bytes) -> bool`` method is
accepted as a custom model (``rng`` is the link's ``random.Random``): see
:class:`DropIndices` for a small example used in teaching ("drop packet 50").
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wtlab.errors import ConfigError
from wtlab.net.units import parse_fraction, parse_loss


@dataclass(frozen=True)
class Bernoulli:
    """Each packet is lost independently with probability ``p``.

    Draw order: the link draws one uniform when it is built and one per *lost*
    packet, each giving the gap to the next loss (geometric), instead of one per
    packet; the loss pattern is the same i.i.d. Bernoulli process, cheaper to
    produce.
    """

    p: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", parse_fraction(self.p, "Bernoulli.p"))

    @property
    def mean_loss(self) -> float:
        """The long-run loss probability, ``p``."""
        return self.p

    def describe(self) -> dict:
        """The loss model as plain data."""
        return {"model": "bernoulli", "p": self.p}


@dataclass(frozen=True)
class GilbertElliott:
    """Two-state Markov loss (Gilbert-Elliott), stepped once per packet.

    The channel is *good* or *bad*; a packet is lost with probability
    ``loss_good`` or ``loss_bad`` according to the state it finds, then the state
    moves good->bad with probability ``p_good_to_bad`` and bad->good with
    ``p_bad_to_good``. With the defaults (``loss_good=0``, ``loss_bad=1``: the
    simple Gilbert model) losses come in bursts of mean length
    ``1 / p_bad_to_good`` packets. The channel starts in the good state.

    Draw order per packet on the wire: one uniform for the loss unless the
    state's loss probability is 0 or 1, then one uniform for the transition.

    ``GilbertElliott.from_burst(mean_loss=0.01, mean_burst_packets=3)`` picks
    the transition probabilities of the simple model for you.
    """

    p_good_to_bad: float
    p_bad_to_good: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        for field in ("p_good_to_bad", "p_bad_to_good", "loss_good", "loss_bad"):
            object.__setattr__(self, field,
                               parse_fraction(getattr(self, field), f"GilbertElliott.{field}"))
        if self.p_good_to_bad + self.p_bad_to_good == 0:
            raise ConfigError("GilbertElliott: p_good_to_bad and p_bad_to_good are both 0, so "
                              "the channel never changes state; use Bernoulli(loss_good) instead")

    @classmethod
    def from_burst(cls, mean_loss: float, mean_burst_packets: float) -> GilbertElliott:
        """Simple Gilbert model with this stationary loss rate and mean burst length."""
        mean_loss = parse_fraction(mean_loss, "mean_loss")
        if not (isinstance(mean_burst_packets, int | float) and mean_burst_packets >= 1):
            raise ConfigError(f"mean_burst_packets: {mean_burst_packets!r} must be a number >= 1 "
                              "(a burst holds at least one packet)")
        if not (0.0 < mean_loss < 1.0):
            raise ConfigError(f"mean_loss: {mean_loss!r} must be strictly between 0 and 1 "
                              "for a bursty model")
        r = 1.0 / mean_burst_packets
        p = mean_loss * r / (1.0 - mean_loss)
        if p > 1.0:
            raise ConfigError(f"mean_loss={mean_loss} with bursts of {mean_burst_packets} packets "
                              "needs a transition probability above 1; use longer bursts")
        return cls(p_good_to_bad=p, p_bad_to_good=r)

    @property
    def mean_loss(self) -> float:
        """Stationary loss probability."""
        p, r = self.p_good_to_bad, self.p_bad_to_good
        return (r * self.loss_good + p * self.loss_bad) / (p + r)

    @property
    def mean_burst_packets(self) -> float:
        """Mean number of packets per stay in the bad state (= per burst, simple model)."""
        return math.inf if self.p_bad_to_good == 0 else 1.0 / self.p_bad_to_good

    def describe(self) -> dict:
        """The loss model as plain data, with its long-run mean loss."""
        return {"model": "gilbert_elliott", "p_good_to_bad": self.p_good_to_bad,
                "p_bad_to_good": self.p_bad_to_good, "loss_good": self.loss_good,
                "loss_bad": self.loss_bad, "mean_loss": self.mean_loss}


@dataclass(frozen=True)
class DropIndices:
    """Lose exactly the packets with these 0-based indices on the wire (deterministic).

    Index ``i`` is the i-th packet that left the queue on this link. Handy for
    teaching: ``DropIndices([50])`` loses one packet and nothing else.
    """

    indices: frozenset[int]

    def __init__(self, indices: Iterable[int]) -> None:
        values = frozenset(int(i) for i in indices)
        if any(i < 0 for i in values):
            raise ConfigError("DropIndices: packet indices must be >= 0")
        object.__setattr__(self, "indices", values)

    def make(self, rng: random.Random) -> Callable[[float, int], bool]:
        """A loss decision function for one link: drops the packets whose 0-based offer index is in
        ``indices``.
        """
        indices = self.indices
        counter = iter(range(1 << 62))

        def lose(now: float, size_bytes: int) -> bool:
            return next(counter) in indices

        return lose

    @property
    def mean_loss(self) -> float:
        """0: the losses are given by index, not by rate."""
        return 0.0

    def describe(self) -> dict:
        """The loss model as plain data."""
        return {"model": "drop_indices", "indices": sorted(self.indices)}


@dataclass(frozen=True)
class Periodic:
    """Lose one packet in every ``round(1 / p)``, evenly spaced (deterministic).

    The loss pattern the classic response functions are derived under: Mathis et al.'s
    ``1.22 / sqrt(p)`` for Reno and RFC 9438's ``1.054 * RTT^0.75 / p^0.75`` for CUBIC
    both assume one loss every ``1/p`` packets. Random (Bernoulli) loss with the same
    ``p`` gives Reno less and CUBIC more than the formulas (its long loss-free gaps let
    the cubic grow far). ``phase`` (0-based) is the index of the first packet lost within
    each period (default: the last one).
    """

    p: float
    phase: int | None = None

    def __post_init__(self) -> None:
        if not (0 < self.p <= 1):
            raise ConfigError(f"Periodic loss p={self.p!r} must be in (0, 1]")
        if self.phase is not None and not (0 <= self.phase < self.every):
            raise ConfigError(f"Periodic phase={self.phase!r} must be in 0..{self.every - 1}")

    @property
    def every(self) -> int:
        """Packets per period (one of them is lost)."""
        return max(1, round(1 / self.p))

    def make(self, rng: random.Random) -> Callable[[float, int], bool]:
        """A loss decision function for one link: drops every ``every``-th packet offered (at
        ``phase``).
        """
        every = self.every
        phase = every - 1 if self.phase is None else self.phase
        count = [0]

        def lose(now: float, size_bytes: int) -> bool:
            i = count[0]
            count[0] = i + 1
            return i % every == phase

        return lose

    @property
    def mean_loss(self) -> float:
        """``1 / every``."""
        return 1 / self.every

    def describe(self) -> dict:
        """The loss model as plain data, with its mean loss."""
        return {"model": "periodic", "p": self.p, "every": self.every, "phase": self.phase,
                "mean_loss": self.mean_loss}


LossModel = Bernoulli | GilbertElliott | DropIndices | Periodic


def as_loss_model(value: object, name: str = "loss") -> object | None:
    """None/0 -> None; a number or ``"1%"`` -> Bernoulli (see :func:`parse_loss`: bare
    numbers of 0.1 or more need the percent form); models pass through."""
    if value is None:
        return None
    if isinstance(value, Bernoulli | GilbertElliott):
        return None if value.mean_loss == 0 and isinstance(value, Bernoulli) else value
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        p = parse_loss(value, name)
        return Bernoulli(p) if p > 0 else None
    if callable(getattr(value, "make", None)):
        return value
    raise ConfigError(f"{name}: {value!r} is not a loss model; pass a probability such as 0.01 "
                      "or '1%', Bernoulli(p), GilbertElliott(...), or an object with "
                      "make(rng) -> lose(now, size_bytes)")


def describe_loss(model: object | None) -> dict | None:
    """A loss model as plain data (its ``describe()``, or its type name), ``None`` for no loss."""
    if model is None:
        return None
    describe = getattr(model, "describe", None)
    return describe() if callable(describe) else {"model": type(model).__name__}
