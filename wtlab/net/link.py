"""One direction of a path: a FIFO bottleneck queue, a serializer, a wire.

``Link.transmit(now, size_bytes)`` returns at once the absolute times at which
the packet (and its duplicate, if duplicated) arrives at the far end, or ``()``
if it is dropped. No events or timers are needed because the queue is FIFO and
its service schedule is known in advance (a constant rate, or a trace's
delivery opportunities): a packet's departure depends only on the packets
offered before it. Calls must come in nondecreasing ``now``; several flows may
share one link (one FIFO queue).

What happens to a packet offered at ``now``, in this order:

1. **Outage**: if ``now`` falls in an outage ``[start, end)`` it is dropped. At
   an outage's start the link loses everything it holds (queued or being
   serialized); service resumes, with an empty queue, at the end.
2. **Buffer** (drop-tail): the buffer holds every packet not yet fully
   serialized, including the one on the wire. A packet that would make it
   exceed ``buffer`` (bytes or packets) is dropped. So a buffer of B bytes
   bounds the queueing delay by B x 8 / rate.
3. **Service**: constant rate: serialization starts when the previous packet
   is done and takes ``size_bytes x 8 / rate_bps``. Trace: Mahimahi's rule:
   the queue is a byte stream; each delivery opportunity carries up to
   ``opportunity_bytes`` bytes of it (several small packets share one, a
   large one spans several), a packet departs at the opportunity carrying its
   last byte, and bytes of an opportunity that finds the queue empty are lost.
   An opportunity at exactly ``now`` is not usable by a packet offered at
   ``now`` (Mahimahi serves due opportunities before enqueuing). One
   difference from Mahimahi: its buffer limit does not count a packet that an
   opportunity has started but not finished (only packets larger than the
   bytes left in an opportunity are ever in that state); here it counts.
4. **AQM** (``aqm="codel"``): CoDel (RFC 8289, Linux's variant of the drop
   state) decides at the moment the packet reaches the head of the queue (the
   start of its serialization, or its first opportunity), packets taken in
   FIFO order, so its decision is known at ``transmit`` time. A CoDel-dropped
   packet takes no capacity; the next packet starts at once. One
   approximation: CoDel spares a packet when at most one MTU remains queued
   *behind* it at dequeue; packets offered later are not known yet, so the
   bytes queued *ahead* of the packet when it arrived stand in for that (equal
   under a standing queue, where the rule matters).
   Marking AQMs (``aqm="step" | "red" | "pie" | "dualpi2"``, :mod:`wtlab.net.aqm`)
   decide at arrival from the queue the packet finds; ``"dualpi2"`` replaces the
   FIFO by RFC 9332's two coupled queues (see :class:`wtlab.net.aqm.DualPI2`).
   **ECN**: ``transmit(now, size_bytes, ecn)`` takes the packet's ECN codepoint
   (:mod:`wtlab.cc.ecn`; 0: not-ECT) and leaves the codepoint it carries on in
   ``link.last_ecn`` (read it right after a non-empty return, as ``last_drop_cause``
   after an empty one). With ``ecn=True`` (the default, RFC 3168) an AQM's signal
   marks an ECN-capable packet CE instead of dropping it (CoDel too); ``ecn=False``
   drops it; ``ecn="bleach"`` clears the field of every packet (a middlebox that
   erases ECN: QUIC's ECN validation then fails). ``mark`` marks ECN-capable
   packets CE at random with that probability, as ``loss`` drops (a congested
   hop elsewhere; not-ECT packets are untouched and draw nothing).
5. **Wire**: random ``loss`` (the lost packet used its capacity, as a
   corrupted frame does), then the propagation ``delay_s`` plus ``jitter_s``
   (uniform in [-jitter_s, +jitter_s] around ``delay_s`` as with netem, never
   below zero). Jitter never reorders: arrival times stay nondecreasing, a
   packet that would overtake the previous one arrives just with it.
   Reordering is explicit: with probability ``reorder_p`` a packet gets
   ``reorder_delay_s`` extra delay and later packets may overtake it.
   Duplication: with probability ``duplicate_p`` the packet arrives twice (the
   copy is made after the bottleneck: it costs no capacity and arrives with
   the original).

Randomness: one ``random.Random(seed)`` per link; ``seed=None`` draws one from
the OS and keeps it in ``link.seed`` so the run can be repeated. Draws happen
only for packets that reach the wire, in this order: loss model (see
:mod:`wtlab.net.loss`), jitter (if ``jitter_s > 0``), reorder (if
``reorder_p > 0``), duplicate (if ``duplicate_p > 0``); the sequence of arrivals
is therefore a pure function of the spec, the seed and the sequence of
``transmit`` calls.
"""

from __future__ import annotations

import math
import random
import sys
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace

from wtlab.cc.ecn import CE, NOT_ECT, is_l4s
from wtlab.errors import ConfigError
from wtlab.net.aqm import DROP, DualPI2, DualQueue, as_marking_aqm
from wtlab.net.loss import Bernoulli, GilbertElliott, as_loss_model, describe_loss
from wtlab.net.traces import MahimahiTrace, as_trace
from wtlab.net.units import (
    format_duration,
    format_rate,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
)

INF = math.inf
# A packet offered within TIE_S after (or before) an opportunity's instant counts as offered
# at it. Opportunities fall on a millisecond grid and the times packets reach the link are
# sums of floats (send time, delays, 1 ms timers): "at exactly now" otherwise depends on
# the last bit of a float, and two engines computing the same instant two ways disagree.
TIE_S = 1e-9
DEFAULT_MTU_BYTES = 1500


@dataclass(frozen=True)
class Buffer:
    """Buffer size: exactly one of ``bytes``, ``packets`` or ``bdp`` (x the path's BDP).

    A ``bdp`` buffer is resolved by the :class:`Path` (BDP = bottleneck rate x
    the path's propagation RTT) or, for a lone link, with ``rtt_s`` given to the
    link (default: twice its one-way delay). A BDP-sized buffer is never
    smaller than one MTU (1500 bytes), or no packet could pass.
    ``Buffer.parse("64KB" | "100p" | "100packets" | "1bdp" | "0.5xBDP")``.
    """

    bytes: int | None = None
    packets: int | None = None
    bdp: float | None = None

    def __post_init__(self) -> None:
        given = [n for n in ("bytes", "packets", "bdp") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ConfigError("Buffer: give exactly one of bytes=, packets= or bdp= "
                              f"(got {', '.join(given) or 'none'})")
        if self.bytes is not None:
            object.__setattr__(self, "bytes", parse_size(self.bytes, "Buffer.bytes"))
        if self.packets is not None:
            if isinstance(self.packets, bool) or not isinstance(self.packets, int) \
                    or self.packets < 1:
                raise ConfigError(f"Buffer.packets: {self.packets!r} must be an integer >= 1")
        if self.bdp is not None:
            if isinstance(self.bdp, bool) or not isinstance(self.bdp, int | float) \
                    or not (self.bdp > 0 and math.isfinite(self.bdp)):
                raise ConfigError(f"Buffer.bdp: {self.bdp!r} must be a positive number "
                                  "(multiples of the bandwidth-delay product)")
            object.__setattr__(self, "bdp", float(self.bdp))

    @classmethod
    def parse(cls, text: str, name: str = "buffer") -> Buffer:
        """A buffer from text: ``'64KB'``, ``'100p'`` (packets), ``'1bdp'`` or ``'2x'`` (times the
        BDP); :class:`~wtlab.errors.ConfigError` otherwise.
        """
        if not isinstance(text, str):
            raise ConfigError(f"{name}: {text!r} is not a buffer size")
        s = text.strip().lower().replace(" ", "")
        for suffix in ("xbdp", "bdp", "x"):
            if s.endswith(suffix) and s[: -len(suffix)]:
                try:
                    return cls(bdp=float(s[: -len(suffix)]))
                except ValueError:
                    break
        for suffix in ("packets", "packet", "pkts", "pkt", "p"):
            if s.endswith(suffix) and s[: -len(suffix)].isdigit():
                return cls(packets=int(s[: -len(suffix)]))
        try:
            return cls(bytes=parse_size(text, name))
        except ConfigError:
            raise ConfigError(f"{name}: cannot read {text!r} as a buffer size; write e.g. "
                              "'64KB', '100p' (packets) or '1bdp' (x bandwidth-delay product)"
                              ) from None

    def limits(self, rate_bps: float, rtt_s: float) -> tuple[float, int]:
        """(byte limit, packet limit); the unused one is unlimited."""
        if self.bytes is not None:
            return float(self.bytes), sys.maxsize
        if self.packets is not None:
            return INF, self.packets
        return max(float(DEFAULT_MTU_BYTES), math.floor(self.bdp * rate_bps * rtt_s / 8.0)), \
            sys.maxsize

    def describe(self) -> str:
        """The buffer as a short string that :meth:`parse` reads back (``'64000B'``, ``'100p'``,
        ``'1bdp'``).
        """
        if self.bytes is not None:
            return f"{self.bytes}B"
        if self.packets is not None:
            return f"{self.packets}p"
        return f"{self.bdp:g}bdp"


def as_buffer(value: object, name: str = "buffer") -> Buffer | None:
    """A :class:`Buffer` from a Buffer, a size string (``'64KB'``, ``'100p'``, ``'1bdp'``), bytes as
    an int, or ``None`` (unlimited); :class:`~wtlab.errors.ConfigError` naming ``name`` otherwise.
    """
    if value is None or isinstance(value, Buffer):
        return value
    if isinstance(value, str):
        return Buffer.parse(value, name)
    if isinstance(value, int) and not isinstance(value, bool):
        return Buffer(bytes=value)
    raise ConfigError(f"{name}: {value!r} is not a buffer; pass Buffer(bytes=|packets=|bdp=), "
                      "a size string such as '64KB', '100p' or '1bdp', or None (unlimited)")


@dataclass(frozen=True)
class CoDel:
    """CoDel parameters (RFC 8289 defaults: target 5 ms, interval 100 ms)."""

    target_s: float = 0.005
    interval_s: float = 0.100
    mtu_bytes: int = DEFAULT_MTU_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_s", parse_duration(self.target_s, "CoDel.target_s"))
        object.__setattr__(self, "interval_s",
                           parse_duration(self.interval_s, "CoDel.interval_s"))
        if self.interval_s <= 0:
            raise ConfigError("CoDel.interval_s must be > 0")

    def describe(self) -> str:
        """The queue discipline as a short string."""
        return f"codel(target={format_duration(self.target_s)}," \
               f"interval={format_duration(self.interval_s)})"


def as_aqm(value: object, name: str = "aqm") -> object | None:
    """A queue discipline from ``None``/``'droptail'`` (None), ``'codel'``, a :class:`CoDel`,
    or a marking AQM (``'red'``, ``'pie'``, ``'step'``, ``'dualpi2'``, see
    :mod:`wtlab.net.aqm`); :class:`~wtlab.errors.ConfigError` naming ``name`` otherwise.
    """
    if value is None or value == "droptail" or value == "drop-tail":
        return None
    if isinstance(value, CoDel):
        return value
    if value == "codel":
        return CoDel()
    marking = as_marking_aqm(value)
    if marking is not None:
        return marking
    raise ConfigError(f"{name}: {value!r} is not a queue discipline; use 'droptail', 'codel', "
                      "'red', 'pie', 'step', 'dualpi2' or an instance (CoDel(...), "
                      "wtlab.net.aqm.Red(...), Pie(...), StepMark(...), DualPI2(...))")


def as_ecn_mode(value: object, name: str = "ecn") -> bool | str:
    """The link's ECN behaviour: True (AQMs mark ECN-capable packets, RFC 3168), False
    (AQMs drop them) or "bleach" (the link clears every packet's ECN field)."""
    if value is True or value is False or value == "bleach":
        return value
    raise ConfigError(f"{name}: {value!r}; use True (AQMs mark ECN-capable packets CE), "
                      "False (AQMs drop them) or 'bleach' (the link erases the ECN field)")


def _as_outages(value: object, name: str = "outages") -> tuple[tuple[float, float], ...]:
    if not value:
        return ()
    try:
        pairs = [(parse_duration(a, name), parse_duration(b, name)) for a, b in value]
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{name}: {value!r} must be a list of (start_s, end_s) pairs") from None
    pairs.sort()
    merged: list[tuple[float, float]] = []
    for a, b in pairs:
        if b <= a:
            raise ConfigError(f"{name}: outage ({a}, {b}) ends before it starts; "
                              "give (start_s, end_s) with end_s > start_s")
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return tuple(merged)


@dataclass(frozen=True)
class LinkSpec:
    """Everything that defines a link, without its state. ``build()`` makes a fresh Link.

    Exactly one of ``rate_bps`` (constant rate) or ``trace`` (a MahimahiTrace or
    a path to one) is required. Fields accept the forms of
    :mod:`wtlab.net.units` (``rate_bps="10mbit"``, ``delay_s="25ms"``,
    ``loss="1%"``, ``buffer="1bdp"``) and are stored normalised.
    """

    rate_bps: float | None = None
    trace: MahimahiTrace | None = None
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: object | None = None
    outages: tuple[tuple[float, float], ...] = ()
    reorder_p: float = 0.0
    reorder_delay_s: float = 0.005
    duplicate_p: float = 0.0
    buffer: Buffer | None = None
    aqm: object | None = None
    ecn: bool | str = True
    mark: float = 0.0
    seed: int | None = field(default=None, compare=True)

    def __post_init__(self) -> None:
        s = object.__setattr__
        if (self.rate_bps is None) == (self.trace is None):
            raise ConfigError("Link: give exactly one of rate_bps= (constant rate) or trace= "
                              "(a Mahimahi trace)")
        if self.rate_bps is not None:
            s(self, "rate_bps", parse_rate(self.rate_bps, "rate_bps"))
        else:
            s(self, "trace", as_trace(self.trace, "trace"))
        s(self, "delay_s", parse_duration(self.delay_s, "delay_s"))
        s(self, "jitter_s", parse_duration(self.jitter_s, "jitter_s"))
        s(self, "loss", as_loss_model(self.loss, "loss"))
        s(self, "outages", _as_outages(self.outages))
        s(self, "reorder_p", parse_fraction(self.reorder_p, "reorder_p"))
        s(self, "reorder_delay_s", parse_duration(self.reorder_delay_s, "reorder_delay_s"))
        s(self, "duplicate_p", parse_fraction(self.duplicate_p, "duplicate_p"))
        s(self, "buffer", as_buffer(self.buffer))
        s(self, "aqm", as_aqm(self.aqm))
        s(self, "ecn", as_ecn_mode(self.ecn))
        s(self, "mark", parse_fraction(self.mark, "mark"))
        if isinstance(self.aqm, DualPI2) and self.trace is not None:
            raise ConfigError("aqm='dualpi2' needs a constant-rate link (rate_bps=); "
                              "trace-driven service is not modelled for two queues")
        if isinstance(self.aqm, DualPI2) and self.outages:
            raise ConfigError("aqm='dualpi2' with outages is not modelled; drop one of them")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigError(f"seed: {self.seed!r} must be an integer or None")

    @property
    def capacity_bps(self) -> float:
        """Constant rate, or the trace's mean capacity."""
        return self.rate_bps if self.rate_bps is not None else self.trace.capacity_bps

    def build(self, *, seed: int | None = None, rtt_s: float | None = None) -> Link:
        """A fresh Link (``seed`` overrides the spec's)."""
        return Link._from_spec(self if seed is None else replace(self, seed=seed), rtt_s)

    def describe(self) -> dict:
        """The spec as plain data; JSON-ready."""
        d: dict = {}
        if self.rate_bps is not None:
            d["rate_bps"] = self.rate_bps
        else:
            d.update(self.trace.describe())
        d.update(delay_s=self.delay_s, jitter_s=self.jitter_s, loss=describe_loss(self.loss),
                 outages=[list(o) for o in self.outages], reorder_p=self.reorder_p,
                 reorder_delay_s=self.reorder_delay_s, duplicate_p=self.duplicate_p,
                 buffer=self.buffer.describe() if self.buffer else None,
                 aqm=self.aqm.describe() if self.aqm else "droptail", seed=self.seed)
        if self.ecn is not True:
            d["ecn"] = self.ecn
        if self.mark:
            d["mark"] = self.mark
        return d

    def summary(self) -> str:
        """A one-line human summary (``'10mbit, delay 20ms, loss 1%, buffer 1bdp'``)."""
        parts = [format_rate(self.rate_bps) if self.rate_bps is not None else
                 f"trace {self.trace.name} ({format_rate(self.trace.capacity_bps)})",
                 f"delay {format_duration(self.delay_s)}"]
        if self.jitter_s:
            parts.append(f"jitter {format_duration(self.jitter_s)}")
        if self.loss is not None:
            parts.append(f"loss {getattr(self.loss, 'mean_loss', 0) * 100:g}%")
        if self.buffer:
            parts.append(f"buffer {self.buffer.describe()}")
        if self.aqm:
            parts.append(self.aqm.describe().split("(")[0])
        if self.mark:
            parts.append(f"mark {self.mark * 100:g}%")
        if self.ecn is not True:
            parts.append("ecn " + ("bleached" if self.ecn == "bleach" else "off"))
        return ", ".join(parts)


_SPEC_FIELDS = tuple(f.name for f in fields(LinkSpec))


@dataclass(frozen=True)
class LinkStats:
    """Counters of one link since it was built (packets, and bytes where named)."""

    offered: int
    offered_bytes: int
    delivered: int
    delivered_bytes: int
    dropped_queue: int
    dropped_aqm: int
    dropped_loss: int
    dropped_outage: int
    duplicated: int
    reordered: int
    marked: int = 0  # packets this link marked CE (AQM or random marking)

    @property
    def dropped(self) -> int:
        """Packets dropped for any cause (queue, AQM, loss model, outage)."""
        return self.dropped_queue + self.dropped_aqm + self.dropped_loss + self.dropped_outage

    def as_dict(self) -> dict:
        """The counters as a dict, with the total ``dropped``."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["dropped"] = self.dropped
        return d


class Link:
    """A stateful link; see the module docstring for the model.

    ``Link(rate_bps=10e6, delay_s=0.02, loss=0.01, buffer="1bdp", seed=1)``, or
    ``Link(trace="traces/TMobile-LTE-short.down", delay_s=0.02)``.

    ``transmit(now, size_bytes) -> tuple[float, ...]`` is the hot path; ``stats``,
    ``queue_bytes(now)`` and ``queue_delay_s(now)`` are for plots and tests.
    ``rtt_s`` only resolves a BDP-sized buffer (default ``2 x delay_s``).
    """

    def __init__(self, rate_bps: float | str | None = None, *, trace: object = None,
                 delay_s: float | str = 0.0, jitter_s: float | str = 0.0, loss: object = None,
                 outages: Iterable[tuple[float, float]] = (), reorder_p: float | str = 0.0,
                 reorder_delay_s: float | str = 0.005, duplicate_p: float | str = 0.0,
                 buffer: object = None, aqm: object = "droptail", ecn: bool | str = True,
                 mark: float | str = 0.0, seed: int | None = None,
                 rtt_s: float | None = None) -> None:
        spec = LinkSpec(rate_bps=rate_bps, trace=trace, delay_s=delay_s, jitter_s=jitter_s,
                        loss=loss, outages=tuple(outages), reorder_p=reorder_p,
                        reorder_delay_s=reorder_delay_s, duplicate_p=duplicate_p, buffer=buffer,
                        aqm=aqm, ecn=ecn, mark=mark, seed=seed)
        self._setup(spec, rtt_s)

    @classmethod
    def _from_spec(cls, spec: LinkSpec, rtt_s: float | None) -> Link:
        link = cls.__new__(cls)
        link._setup(spec, rtt_s)
        return link

    def _setup(self, spec: LinkSpec, rtt_s: float | None) -> None:
        if spec.seed is None:
            spec = replace(spec, seed=random.SystemRandom().randrange(1 << 63))
        self.spec = spec
        self.seed: int = spec.seed
        self.rtt_s = 2.0 * spec.delay_s if rtt_s is None else parse_duration(rtt_s, "rtt_s")
        self.capacity_bps = spec.capacity_bps
        self.delay_s = spec.delay_s
        if spec.buffer is None:
            self.buffer_bytes_limit, self.buffer_packets_limit = INF, sys.maxsize
        else:
            self.buffer_bytes_limit, self.buffer_packets_limit = spec.buffer.limits(
                self.capacity_bps, self.rtt_s)
        self._rng = random.Random(spec.seed)
        self._rand = self._rng.random
        # queue: departure times (nondecreasing) and sizes of packets in the buffer
        self._dep: deque[float] = deque()
        self._sizes: deque[int] = deque()
        self._q_bytes = 0
        # constant-rate service
        self._busy_until = -INF
        self._s_per_byte = 8.0 / spec.rate_bps if spec.rate_bps is not None else 0.0
        # trace service: cursor = opportunity k, bytes already used in it, its time
        self._trace = spec.trace
        if spec.trace is not None:
            self._stamps = spec.trace.timestamps_ms
            self._n_opp = len(self._stamps)
            self._period_ms = spec.trace.period_ms
            self._opp_bytes = spec.trace.opportunity_bytes
        # cursor: opportunity `_i` of the period starting at `_base_ms`, bytes used in it,
        # and its time in seconds (-inf: idle, the next packet looks for the next one)
        self._i = 0
        self._base_ms = 0
        self._used = 0
        self._k_time = -INF
        # outages
        self._outages = spec.outages
        self._oi = 0
        self._out_start, self._out_end = spec.outages[0] if spec.outages else (INF, INF)
        # wire
        self._delay = spec.delay_s
        self._jitter = spec.jitter_s
        self._reorder_p = spec.reorder_p
        self._reorder_delay = spec.reorder_delay_s
        self._dup_p = spec.duplicate_p
        self._floor = -INF  # latest in-order arrival: jitter never reorders
        self._keep_order = False  # a delay decrease: arrivals must not overtake (reconfigure)
        # ECN: marking instead of dropping, bleaching, random marks (see module docstring)
        self._ecn_mark = spec.ecn is True
        self._bleach = spec.ecn == "bleach"
        self._mark_p = spec.mark
        self._set_loss(spec.loss)
        #: codepoint the last delivered packet carries on (read after transmit(..., ecn))
        self.last_ecn = NOT_ECT
        #: DualPI2: the queue ("L"/"C") of the last packet; ticket of a provisional arrival
        self.last_queue: str | None = None
        self.last_ticket: int | None = None
        self._marked = 0
        # enqueue-time marking AQMs (step, RED, PIE) and DualPI2 (wtlab.net.aqm)
        aqm = spec.aqm
        self._enq_aqm = None
        self._dualq: DualQueue | None = None
        #: True when arrivals may be provisional (DualPI2): see confirm()
        self.deferred = False
        if isinstance(aqm, DualPI2):
            self._dualq = DualQueue(aqm, spec.rate_bps, self._rand)
            self.deferred = True
            aqm = None
        elif aqm is not None and not isinstance(aqm, CoDel):
            self._enq_aqm = aqm.make(self.capacity_bps, self._rand)
            aqm = None
        # CoDel state
        self._codel = aqm
        if aqm is not None:
            self._cd_target = aqm.target_s
            self._cd_interval = aqm.interval_s
            self._cd_mtu = aqm.mtu_bytes
        self._cd_first_above = 0.0
        self._cd_dropping = False
        self._cd_drop_next = 0.0
        self._cd_count = 0
        self._cd_lastcount = 0
        self._cd_chain = False  # the previous packet was dropped in the drop-state loop
        self._cd_entered = False  # the previous packet was the first drop of a drop state
        # counters (the hot path only counts offers; drops are rare)
        self._offered = 0
        self._offered_bytes = 0
        self._drop_queue = 0
        self._drop_aqm = 0
        self._drop_loss = 0
        self._drop_outage = 0
        self._drop_bytes = 0
        self._duplicated = 0
        self._reordered = 0
        self._last_now = -INF
        self._qlog: tuple[array, array] | None = None  # see record_queue()
        self._qlog_last_dep = -INF
        #: why the last dropped packet was dropped: "queue", "aqm", "loss" or "outage"
        #: (read it right after transmit() returned (); it is not cleared on success)
        self.last_drop_cause: str | None = None
        self.transmit = self._transmit_rate if spec.rate_bps is not None else self._transmit_trace
        if self._dualq is not None:
            self.transmit = self._transmit_dualq

    # ---------------------------------------------------------------- public API
    def transmit(self, now: float, size_bytes: int,
                 ecn: int = NOT_ECT) -> tuple[float, ...]:  # replaced per instance
        """Offer one packet at ``now``; return its arrival time(s), ``()`` if dropped.

        ``ecn``: the packet's ECN codepoint; when non-zero, ``last_ecn`` holds the
        codepoint it arrives with (CE if a queue marked it)."""
        raise NotImplementedError  # pragma: no cover

    def confirm(self, ticket: int, t: float) -> float:
        """The arrival time, as known at ``t``, of a packet whose arrival ``transmit``
        gave provisionally (``deferred`` links: DualPI2, where L packets arriving later
        may overtake a C packet). An engine that reaches a provisional arrival time
        calls this; if the answer is later than ``t`` it re-schedules the packet there
        (and asks again then), else delivers it. Other links return ``t``."""
        if self._dualq is None:
            return t
        return self._dualq.confirm(ticket, t)

    def aqm_stats(self) -> dict:
        """The AQM's own figures (DualPI2: p', p_C, p_CL, per-queue sojourn and marks)."""
        return self._dualq.stats() if self._dualq is not None else {}

    @property
    def stats(self) -> LinkStats:
        """Counters so far: offered, delivered and dropped packets and bytes, by cause."""
        dropped = self._drop_queue + self._drop_aqm + self._drop_loss + self._drop_outage
        return LinkStats(
            offered=self._offered, offered_bytes=self._offered_bytes,
            delivered=self._offered - dropped,
            delivered_bytes=self._offered_bytes - self._drop_bytes,
            dropped_queue=self._drop_queue, dropped_aqm=self._drop_aqm,
            dropped_loss=self._drop_loss, dropped_outage=self._drop_outage,
            duplicated=self._duplicated, reordered=self._reordered, marked=self._marked)

    def record_queue(self) -> None:
        """From now on, log the queue's occupancy at every accepted packet (its time and
        the bytes in the buffer with it), plus the moment the queue last emptied before a
        packet that found it empty; read it with :meth:`queue_log`. Off by default (it
        costs 16 bytes and a call per packet)."""
        if self._qlog is None:
            self._qlog = (array("d"), array("d"))

    def queue_log(self) -> tuple[array, array]:
        """(times in s, bytes in the buffer) logged since :meth:`record_queue` (empty
        arrays if it was never called). Between two entries the queue drains at the
        link's service rate; the entries are its peaks and the instants it ran empty."""
        return self._qlog if self._qlog is not None else (array("d"), array("d"))

    def _log_queue(self, now: float, before: int, size_bytes: int, departure: float) -> None:
        times, occupancy = self._qlog
        if before == 0 and self._qlog_last_dep > -INF and (not times
                                                          or self._qlog_last_dep > times[-1]):
            times.append(min(self._qlog_last_dep, now))
            occupancy.append(0.0)
        times.append(now)
        occupancy.append(float(before + size_bytes))
        self._qlog_last_dep = departure

    def queue_bytes(self, now: float) -> int:
        """Bytes in the buffer at ``now`` (queued or being serialized)."""
        if self._dualq is not None:
            return self._dualq.occupancy(now)[0]
        self._advance(now)
        return self._q_bytes

    def queue_packets(self, now: float) -> int:
        """Packets in the queue at ``now`` (not yet departed)."""
        if self._dualq is not None:
            return self._dualq.occupancy(now)[1]
        self._advance(now)
        return len(self._dep)

    def queue_delay_s(self, now: float) -> float:
        """How long the buffer's content at ``now`` takes to leave (0 if empty)."""
        if self._dualq is not None:
            return self._dualq.drain_time(now)
        self._advance(now)
        return self._dep[-1] - now if self._dep else 0.0

    @property
    def buffer_bytes(self) -> float:
        """Byte limit of the buffer (inf if none, or if limited in packets)."""
        return self.buffer_bytes_limit

    @property
    def buffer_packets(self) -> int | None:
        """The buffer's limit in packets, or ``None`` if it has none."""
        return None if self.buffer_packets_limit == sys.maxsize else self.buffer_packets_limit

    def fresh(self, seed: int | None = None) -> Link:
        """A new link with the same spec (and seed, unless given), empty and at time 0."""
        return self.spec.build(seed=self.seed if seed is None else seed, rtt_s=self.rtt_s)

    def describe(self) -> dict:
        """The link as plain data: its spec, its buffer in bytes and packets, its capacity;
        JSON-ready.
        """
        d = self.spec.describe()
        d["buffer_bytes"] = None if self.buffer_bytes_limit == INF else self.buffer_bytes_limit
        d["buffer_packets"] = self.buffer_packets
        d["capacity_bps"] = self.capacity_bps
        return d

    def __repr__(self) -> str:
        return f"Link({self.spec.summary()}, seed={self.seed})"

    def reconfigure(self, now: float, *, rate_bps: object = None, trace: object = None,
                    delay_s: object = None, loss: object = ..., buffer: object = ...,
                    rtt_s: float | None = None, outage_s: object = None) -> None:
        """Change the link at ``now`` (a path schedule's step); later packets see the change.

        ``rate_bps`` switches to (or changes) constant-rate service, ``trace`` to a
        Mahimahi trace (its opportunities keep the trace's own clock: timestamps modulo
        its period, counted from t = 0); ``delay_s`` sets the propagation delay (a
        decrease never lets a packet overtake one sent before it); ``loss`` replaces the
        loss model (None or 0: no loss); ``buffer`` replaces the buffer (None: unlimited;
        a ``bdp`` buffer is resolved at the new rate and ``rtt_s``); ``outage_s`` starts an
        outage of that length at ``now``. Left out (``...`` / None): unchanged. Without a
        new ``buffer`` the buffer keeps its size in bytes (a router's memory does not
        change with its rate).

        The link decides at send time (see the module docstring), so packets already
        accepted keep the departure and arrival times they were given: the change
        applies from the first packet offered at or after ``now``; a new rate therefore
        shows once the queue that was there has drained.
        """
        if self._dualq is not None:
            raise ConfigError("a DualPI2 link cannot change mid-run (its two queues are not "
                              "rescheduled); use a drop-tail, CoDel or marking queue for a "
                              "path schedule")
        self._advance(now)
        self._last_now = now
        spec = self.spec
        dep = self._dep
        if rate_bps is not None and trace is not None:
            raise ConfigError("reconfigure: give rate_bps= or trace=, not both")
        # the time the link is free: the last accepted packet's departure
        free = dep[-1] if dep else max(self._busy_until, self._k_time)
        if rate_bps is not None:
            rate = parse_rate(rate_bps, "rate_bps")
            if not rate > 0:
                raise ConfigError(f"rate_bps={rate_bps!r} must be > 0 (use outage_s= for a "
                                  "link that carries nothing for a while)")
            if self._trace is not None:  # trace -> constant rate: serve after the queue
                self._busy_until = free
                self._trace = None
            self._s_per_byte = 8.0 / rate
            self.capacity_bps = rate
            spec = replace(spec, rate_bps=rate, trace=None)
            self.transmit = self._transmit_rate
        if trace is not None:
            tr = as_trace(trace, "trace")
            self._trace = tr
            self._stamps = tr.timestamps_ms
            self._n_opp = len(self._stamps)
            self._period_ms = tr.period_ms
            self._opp_bytes = tr.opportunity_bytes
            self._used = 0
            if free > now:  # FIFO: the next packet waits for the first opportunity after it
                self._base_ms, self._i, self._k_time = self._first_opp_after(free)
            else:
                self._k_time = -INF
            self.capacity_bps = tr.capacity_bps
            spec = replace(spec, rate_bps=None, trace=tr)
            self.transmit = self._transmit_trace
        if delay_s is not None:
            delay = parse_duration(delay_s, "delay_s")
            if delay < self._delay:  # later packets must not arrive before earlier ones
                last = free + self._delay + self._jitter
                if last > self._floor:
                    self._floor = last
                self._keep_order = True
            self._delay = self.delay_s = delay
            spec = replace(spec, delay_s=delay)
        if rtt_s is not None:
            self.rtt_s = parse_duration(rtt_s, "rtt_s")
        if loss is not ...:
            model = as_loss_model(loss, "loss")
            spec = replace(spec, loss=model)
            self._set_loss(model)
        if buffer is not ...:
            spec = replace(spec, buffer=as_buffer(buffer))
            if spec.buffer is None:
                self.buffer_bytes_limit, self.buffer_packets_limit = INF, sys.maxsize
            else:
                self.buffer_bytes_limit, self.buffer_packets_limit = spec.buffer.limits(
                    self.capacity_bps, self.rtt_s)
        if outage_s is not None:
            length = parse_duration(outage_s, "outage_s")
            if not length > 0:
                raise ConfigError(f"outage_s={outage_s!r} must be > 0 seconds")
            self._add_outage(now, now + length)
            spec = replace(spec, outages=tuple(self._outages))
        self.spec = spec
        self._plain_wire = (self._loss_kind == 0 and self._jitter == 0.0
                            and self._reorder_p == 0.0 and self._dup_p == 0.0
                            and not self._keep_order and not self._mark_p)

    def _set_loss(self, loss: object | None) -> None:
        self._loss_kind = 0
        self._loss_countdown = 0
        if isinstance(loss, Bernoulli):
            self._loss_kind = 1
            self._log1mp = math.log1p(-loss.p) if loss.p < 1.0 else -INF
            self._loss_countdown = self._gap()
        elif isinstance(loss, GilbertElliott):
            self._loss_kind = 2
            self._ge = loss
            self._ge_bad = False
        elif loss is not None:
            self._loss_kind = 3
            self._lose = loss.make(self._rng)
        self._plain_wire = (self._loss_kind == 0 and self._jitter == 0.0
                            and self._reorder_p == 0.0 and self._dup_p == 0.0
                            and not self._keep_order and not self._mark_p)

    def _add_outage(self, start: float, end: float) -> None:
        """Insert the outage [start, end) among those still to come (merging overlaps)."""
        ahead = [(self._out_start, self._out_end)] if self._out_start != INF else []
        ahead += list(self._outages[self._oi + 1:])
        merged = list(_as_outages([*ahead, (start, end)]))
        self._outages = tuple(self._outages[:self._oi]) + tuple(merged)
        self._out_start, self._out_end = merged[0]

    # ---------------------------------------------------------------- internals
    def _advance(self, now: float) -> None:
        if now < self._last_now:
            raise ConfigError(f"now={now} is before the link's last time {self._last_now}; "
                              "a link only moves forward in time")
        if now >= self._out_start:
            self._outage_at(now)
        dep, sizes = self._dep, self._sizes
        qb = self._q_bytes
        while dep and dep[0] <= now:
            dep.popleft()
            qb -= sizes.popleft()
        self._q_bytes = qb

    def _gap(self) -> int:
        """Packets that pass before the next Bernoulli loss (geometric)."""
        if self._log1mp == -INF:
            return 0
        u = self._rand()
        return int(math.log1p(-u) / self._log1mp) if u > 0.0 else 0

    def _outage_at(self, now: float) -> bool:
        """Called when now >= the current outage's start; True if now is inside it.

        At an outage's start the link loses everything it holds, so afterwards the
        server is idle and the queue empty (packets already in the buffer were
        recorded with departure = the outage start).
        """
        while True:
            start, end = self._out_start, self._out_end
            if self._busy_until > start:
                self._busy_until = start
            self._k_time = -INF
            self._cd_dropping = False
            self._cd_first_above = 0.0
            if now < end:
                return True
            self._oi += 1
            if self._oi < len(self._outages):
                self._out_start, self._out_end = self._outages[self._oi]
            else:
                self._out_start = self._out_end = INF
            if now < self._out_start:
                return False

    def _drop(self, size_bytes: int) -> tuple:
        self._drop_bytes += size_bytes
        return ()

    def _codel_drop(self, head: float, sojourn: float, ahead_bytes: int, idle: bool,
                    ect: bool = False) -> int:
        """CoDel's verdict for the packet reaching the head at ``head`` (FIFO order):
        0 send, 1 drop, 2 mark CE (``ect``: the packet is ECN-capable and the link marks;
        RFC 8289 section 5.3: a mark takes the drop's place, the packet is sent and the
        next one is judged on its own)."""
        if idle:  # the link found the queue empty since the last packet: CoDel resets
            self._cd_first_above = 0.0
            self._cd_dropping = False
            self._cd_chain = self._cd_entered = False
        # dodequeue(): is this packet above target for a whole interval?
        ok_to_drop = False
        if sojourn < self._cd_target or ahead_bytes <= self._cd_mtu:
            self._cd_first_above = 0.0
        elif self._cd_first_above == 0.0:
            self._cd_first_above = head + self._cd_interval
        elif head >= self._cd_first_above:
            ok_to_drop = True
        if self._cd_entered:  # dequeued right after the first drop: always sent
            self._cd_entered = False
            return 0
        if self._cd_chain:  # dequeued right after a drop in the drop state
            self._cd_chain = False
            if not ok_to_drop:
                self._cd_dropping = False
                return 0
            self._cd_drop_next += self._cd_interval / math.sqrt(self._cd_count)
            if head >= self._cd_drop_next:
                self._cd_count += 1
                if ect:
                    self._cd_drop_next += self._cd_interval / math.sqrt(self._cd_count)
                    return 2
                self._cd_chain = True
                return 1
            return 0
        if self._cd_dropping:
            if not ok_to_drop:
                self._cd_dropping = False
                return 0
            if head >= self._cd_drop_next:
                self._cd_count += 1
                if ect:
                    self._cd_drop_next += self._cd_interval / math.sqrt(self._cd_count)
                    return 2
                self._cd_chain = True
                return 1
            return 0
        if ok_to_drop:
            self._cd_dropping = True
            delta = self._cd_count - self._cd_lastcount
            if delta > 1 and head - self._cd_drop_next < 16 * self._cd_interval:
                self._cd_count = delta
            else:
                self._cd_count = 1
            self._cd_lastcount = self._cd_count
            self._cd_drop_next = head + self._cd_interval / math.sqrt(self._cd_count)
            if ect:
                return 2
            self._cd_entered = True
            return 1
        return 0

    def _wire(self, done: float, size_bytes: int) -> tuple[float, ...]:
        """Loss, delay, jitter, reordering, duplication for a packet leaving at ``done``."""
        kind = self._loss_kind
        if kind == 1:
            if self._loss_countdown:
                self._loss_countdown -= 1
            else:
                self._loss_countdown = self._gap()
                self._drop_loss += 1
                self._drop_bytes += size_bytes
                self.last_drop_cause = "loss"
                return ()
        elif kind == 2:
            ge = self._ge
            rand = self._rand
            p_loss = ge.loss_bad if self._ge_bad else ge.loss_good
            lost = p_loss >= 1.0 or (p_loss > 0.0 and rand() < p_loss)
            if self._ge_bad:
                if rand() < ge.p_bad_to_good:
                    self._ge_bad = False
            elif rand() < ge.p_good_to_bad:
                self._ge_bad = True
            if lost:
                self._drop_loss += 1
                self._drop_bytes += size_bytes
                self.last_drop_cause = "loss"
                return ()
        elif kind == 3:
            if self._lose(done, size_bytes):
                self._drop_loss += 1
                self._drop_bytes += size_bytes
                self.last_drop_cause = "loss"
                return ()
        if self._mark_p and self.last_ecn & 3 and self.last_ecn != CE \
                and self._rand() < self._mark_p:
            self.last_ecn = CE  # ECN-capable packets only draw (see the module docstring)
            self._marked += 1
        arrival = done + self._delay
        if self._jitter:
            arrival += (2.0 * self._rand() - 1.0) * self._jitter
            if arrival < done:
                arrival = done
        if arrival < self._floor:
            arrival = self._floor
        if self._reorder_p and self._rand() < self._reorder_p:
            arrival += self._reorder_delay
            self._reordered += 1
        else:
            self._floor = arrival
        if self._dup_p and self._rand() < self._dup_p:
            self._duplicated += 1
            return (arrival, arrival)
        return (arrival,)

    def _transmit_rate(self, now: float, size_bytes: int, ecn: int = NOT_ECT
                       ) -> tuple[float, ...]:
        self._offered += 1
        self._offered_bytes += size_bytes
        if self._bleach:
            ecn = NOT_ECT
        self.last_ecn = ecn
        if now >= self._out_start and self._outage_at(now):
            self._drop_outage += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "outage"
            return ()
        dep = self._dep
        sizes = self._sizes
        qb = self._q_bytes
        while dep and dep[0] <= now:
            dep.popleft()
            qb -= sizes.popleft()
        if qb + size_bytes > self.buffer_bytes_limit or len(dep) >= self.buffer_packets_limit:
            self._q_bytes = qb
            self._drop_queue += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "queue"
            return ()
        busy = self._busy_until
        start = now if now > busy else busy
        if self._enq_aqm is not None:
            verdict = self._enq_aqm(now, size_bytes, qb, len(dep), busy)
            if verdict and not self._signal(verdict, ecn, size_bytes):
                self._q_bytes = qb
                return ()
        if self._codel is not None and start < self._out_start:  # else lost in the outage
            verdict = self._codel_drop(start, start - now, qb, now > busy,
                                       ecn != NOT_ECT and self._ecn_mark)
            if verdict == 2:
                self._mark()
                verdict = 0
        else:
            verdict = 0
        if verdict:
            # dropped at the head: it waited in the buffer until `start`, took no capacity
            self._busy_until = start
            dep.append(start)
            sizes.append(size_bytes)
            self._q_bytes = qb + size_bytes
            self._drop_aqm += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "aqm"
            return ()
        done = start + size_bytes * self._s_per_byte
        self._busy_until = done
        self._last_now = now
        if done >= self._out_start:  # still in the buffer when an outage begins: lost then
            dep.append(self._out_start)
            sizes.append(size_bytes)
            self._q_bytes = qb + size_bytes
            self._drop_outage += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "outage"
            return ()
        dep.append(done)
        sizes.append(size_bytes)
        self._q_bytes = qb + size_bytes
        if self._qlog is not None:
            self._log_queue(now, qb, size_bytes, done)
        if self._plain_wire:
            return (done + self._delay,)
        return self._wire(done, size_bytes)

    def _mark(self) -> None:
        """Set CE on the packet being offered (ECN-capable; counted unless already CE)."""
        if self.last_ecn != CE:
            self.last_ecn = CE
            self._marked += 1

    def _signal(self, verdict: int, ecn: int, size_bytes: int) -> bool:
        """An enqueue-time AQM signalled the packet: mark it (True: it goes on) or drop it."""
        if verdict != DROP and ecn != NOT_ECT and self._ecn_mark:
            self._mark()
            return True
        self._drop_aqm += 1
        self._drop_bytes += size_bytes
        self.last_drop_cause = "aqm"
        return False

    def _transmit_dualq(self, now: float, size_bytes: int, ecn: int = NOT_ECT
                        ) -> tuple[float, ...]:
        """DualPI2 (wtlab.net.aqm.DualPI2): L and C queues, coupled marking; a C packet's
        arrival is provisional (``last_ticket``) until no L packet can overtake it."""
        self._offered += 1
        self._offered_bytes += size_bytes
        if self._bleach:
            ecn = NOT_ECT
        self.last_ecn = ecn
        self.last_ticket = None
        if now < self._last_now:
            raise ConfigError(f"now={now} is before the link's last time {self._last_now}; "
                              "a link only moves forward in time")
        self._last_now = now
        dq = self._dualq
        dq.advance(now)
        qbytes, qpkts = dq.occupancy(now)
        is_l = is_l4s(ecn)
        self.last_queue = "L" if is_l else "C"
        if qbytes + size_bytes > self.buffer_bytes_limit or qpkts >= self.buffer_packets_limit:
            self._drop_queue += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "queue"
            return ()
        if is_l:
            pkt = dq.enqueue(now, size_bytes, True)
            if ecn != CE and dq.l_mark(pkt.start - now):
                self._mark()
                dq.l_marks += 1
        else:
            if dq.classic_signal():
                if ecn != NOT_ECT and self._ecn_mark:
                    self._mark()
                    dq.c_marks += 1
                else:
                    dq.c_drops += 1
                    self._drop_aqm += 1
                    self._drop_bytes += size_bytes
                    self.last_drop_cause = "aqm"
                    return ()
            pkt = dq.enqueue(now, size_bytes, False)
        done = pkt.start + pkt.dur
        arrivals = (done + self._delay,) if self._plain_wire else self._wire(done, size_bytes)
        if arrivals and not is_l and pkt.start > now:
            self.last_ticket = dq.provisional(pkt, tuple(a - done for a in arrivals))
        return arrivals

    def _first_opp_after(self, now: float) -> tuple[int, int, float]:
        """(period base in ms, index, time in s) of the first opportunity strictly after now."""
        stamps = self._stamps
        period = self._period_ms
        now_ms = now * 1000.0
        base = math.floor(now_ms / period) * period
        i = bisect_right(stamps, now_ms - base)
        if i == self._n_opp:
            base += period
            i = 0
        t = (base + stamps[i]) * 0.001
        while t <= now:  # float rounding at a boundary
            i += 1
            if i == self._n_opp:
                base += period
                i = 0
            t = (base + stamps[i]) * 0.001
        return base, i, t

    def _transmit_trace(self, now: float, size_bytes: int, ecn: int = NOT_ECT
                        ) -> tuple[float, ...]:
        self._offered += 1
        self._offered_bytes += size_bytes
        if self._bleach:
            ecn = NOT_ECT
        self.last_ecn = ecn
        if now >= self._out_start and self._outage_at(now):
            self._drop_outage += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "outage"
            return ()
        dep = self._dep
        sizes = self._sizes
        qb = self._q_bytes
        at = now + TIE_S  # ties with an opportunity resolve one way (see TIE_S)
        while dep and dep[0] <= at:
            dep.popleft()
            qb -= sizes.popleft()
        if qb + size_bytes > self.buffer_bytes_limit or len(dep) >= self.buffer_packets_limit:
            self._q_bytes = qb
            self._drop_queue += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "queue"
            return ()
        ob = self._opp_bytes
        used = self._used
        kt = self._k_time
        if self._enq_aqm is not None:
            verdict = self._enq_aqm(now, size_bytes, qb, len(dep), kt)
            if verdict and not self._signal(verdict, ecn, size_bytes):
                self._q_bytes = qb
                return ()
        idle = kt <= at
        if idle:  # queue empty at `now`: unused bytes of past opportunities are gone
            base, i, kt = self._first_opp_after(at)
            used = 0
        else:
            base = self._base_ms
            i = self._i
            if used >= ob:  # the cursor's opportunity is full: the next one
                i += 1
                if i == self._n_opp:
                    base += self._period_ms
                    i = 0
                used = 0
                kt = (base + self._stamps[i]) * 0.001
        if self._codel is not None and kt < self._out_start:  # else lost in the outage
            verdict = self._codel_drop(kt, kt - now, qb, idle, ecn != NOT_ECT and self._ecn_mark)
            if verdict == 2:
                self._mark()
                verdict = 0
        else:
            verdict = 0
        if verdict:
            self._base_ms, self._i, self._used, self._k_time = base, i, used, kt
            dep.append(kt)
            sizes.append(size_bytes)
            self._q_bytes = qb + size_bytes
            self._drop_aqm += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "aqm"
            return ()
        room = ob - used
        if size_bytes <= room:
            used += size_bytes
        else:
            need = size_bytes - room
            extra = -(-need // ob)
            used = need - (extra - 1) * ob
            i += extra
            if i >= self._n_opp:
                cycles, i = divmod(i, self._n_opp)
                base += cycles * self._period_ms
            kt = (base + self._stamps[i]) * 0.001
        self._base_ms = base
        self._i = i
        self._used = used
        self._k_time = kt
        self._last_now = now
        if kt >= self._out_start:  # still in the buffer when an outage begins: lost then
            dep.append(self._out_start)
            sizes.append(size_bytes)
            self._q_bytes = qb + size_bytes
            self._drop_outage += 1
            self._drop_bytes += size_bytes
            self.last_drop_cause = "outage"
            return ()
        dep.append(kt)
        sizes.append(size_bytes)
        self._q_bytes = qb + size_bytes
        if self._qlog is not None:
            self._log_queue(now, qb, size_bytes, kt)
        if self._plain_wire:
            return (kt + self._delay,)
        return self._wire(kt, size_bytes)


def as_link_spec(value: object, name: str = "link") -> LinkSpec:
    """A :class:`LinkSpec` from a LinkSpec, a :class:`Link` (its spec) or a dict of LinkSpec fields;
    :class:`~wtlab.errors.ConfigError` naming ``name`` and the unknown keys otherwise.
    """
    if isinstance(value, LinkSpec):
        return value
    if isinstance(value, Link):
        return value.spec
    if isinstance(value, dict):
        unknown = set(value) - set(_SPEC_FIELDS)
        if unknown:
            raise ConfigError(f"{name}: unknown link parameter(s) {sorted(unknown)}; "
                              f"known: {', '.join(_SPEC_FIELDS)}")
        return LinkSpec(**value)
    raise ConfigError(f"{name}: {value!r} is not a link; pass a LinkSpec, a Link or a dict of "
                      "link parameters")
