"""Queue disciplines that mark: step marking, RED, PIE and the DualPI2 coupled dual queue.

These are the link's AQMs besides CoDel (which lives in :mod:`wtlab.net.link`).
Each decides, for a packet entering the bottleneck, whether to signal congestion;
the link turns a signal into a CE mark when the packet is ECN-capable (ECT(0) or
ECT(1)) and the link marks (``LinkSpec.ecn``, default True: RFC 3168), else into a
drop. All decide at the packet's arrival (``Link.transmit`` time), from the queue
the packet finds, so the link's schedule stays known in advance.

===================================  ==========================================================
``aqm=``                             what it does (defaults)
===================================  ==========================================================
``"step"`` / :class:`StepMark`       every packet that arrives to more than K queued is
                                     signalled (DCTCP's switch, Alizadeh et al. SIGCOMM 2010,
                                     section 3.1; K = 20 packets, or ``threshold_s``)
``"red"`` / :class:`Red`             RED (Floyd and Jacobson 1993, RFC 2309; gentle mode):
                                     average queue (EWMA, w_q 0.002, decayed over idle time),
                                     min_th 5 ms, max_th 15 ms of queue at the link rate,
                                     max_p 0.1, probability spread by the count since the
                                     last signal
``"pie"`` / :class:`Pie`             PIE (RFC 8033): probability from a PI controller on the
                                     queueing delay every 15 ms (target 15 ms, alpha 0.125,
                                     beta 1.25, auto-scaled), 150 ms burst allowance; ECN
                                     marks only while the probability is at most 10 %
``"dualpi2"`` / :class:`DualPI2`     the DualQ Coupled AQM of RFC 9332 (appendix A,
                                     DualPI2): see :class:`DualPI2`
===================================  ==========================================================

How queueing delay is measured: the time the queue's content takes to leave at the
link's rate, seen by an arriving packet (the drain time; RFC 8033's queue length over
departure rate, with the true rate). CoDel and DualPI2's L queue use the packet's own
sojourn, which is known at arrival because the link is FIFO (per queue).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from wtlab.errors import ConfigError
from wtlab.net.units import format_duration, parse_duration

INF = math.inf
DEFAULT_MTU_BYTES = 1500

PASS = 0  # no congestion signal
SIGNAL = 1  # mark CE if the packet is ECN-capable and the link marks, else drop
DROP = 2  # drop even an ECN-capable packet (PIE above its ECN threshold)


def _fraction(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a number") from None
    if not (0.0 <= v <= 1.0):
        raise ConfigError(f"{name}: {v!r} must be in [0, 1]")
    return v


def _positive(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a number") from None
    if not (v > 0 and math.isfinite(v)):
        raise ConfigError(f"{name}: {v!r} must be a positive number")
    return v


# ----------------------------------------------------------------------------- step
@dataclass(frozen=True)
class StepMark:
    """Signal every packet that arrives to a queue above a threshold (DCTCP's marking).

    Give ``threshold_packets`` (K, packets already queued, the one being served
    included) or ``threshold_s`` (queueing delay the arriving packet would see).
    Alizadeh et al. (SIGCOMM 2010, section 3.1): "mark arriving packets if the queue
    occupancy is greater than K".
    """

    threshold_packets: int | None = None
    threshold_s: float | None = None

    def __post_init__(self) -> None:
        if self.threshold_packets is None and self.threshold_s is None:
            object.__setattr__(self, "threshold_packets", 20)
        if (self.threshold_packets is None) == (self.threshold_s is None):
            raise ConfigError("StepMark: give one of threshold_packets= or threshold_s=")
        if self.threshold_packets is not None:
            k = self.threshold_packets
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise ConfigError(f"StepMark.threshold_packets: {k!r} must be an integer >= 0")
        else:
            object.__setattr__(self, "threshold_s",
                               parse_duration(self.threshold_s, "StepMark.threshold_s"))

    def describe(self) -> str:
        """A short label with K, e.g. ``step(K=20p)`` or ``step(K=5ms)``."""
        if self.threshold_packets is not None:
            return f"step(K={self.threshold_packets}p)"
        return f"step(K={format_duration(self.threshold_s)})"

    def make(self, rate_bps: float, rand: Any) -> Any:
        """A new decision function: ``decide(now, size, qb, qn, backlog_end)`` returns PASS
        or SIGNAL for an arriving packet (``rate_bps`` and ``rand`` are unused: the rule
        is deterministic and needs no state)."""
        k_pkts = self.threshold_packets
        k_s = self.threshold_s
        if k_pkts is not None:
            def decide(now: float, size: int, qb: int, qn: int, backlog_end: float) -> int:
                return SIGNAL if qn > k_pkts else PASS
        else:
            def decide(now: float, size: int, qb: int, qn: int, backlog_end: float) -> int:
                return SIGNAL if backlog_end - now > k_s else PASS
        return decide


# ------------------------------------------------------------------------------ RED
@dataclass(frozen=True)
class Red:
    """RED with the gentle option (Floyd and Jacobson 1993; RFC 2309; Floyd's 2000 note).

    Thresholds are queue lengths in bytes given as the time that queue takes to leave
    at the link's rate (``min_th_s`` 5 ms, ``max_th_s`` 15 ms = 3 x min_th, Floyd's
    advice). ``w_q`` weights the average queue (EWMA per arrival; over an idle period
    the average decays as if ``(idle / packet time)`` empty-queue arrivals happened).
    Between min_th and max_th the signal probability rises linearly to ``max_p``,
    spread by the count since the last signal (``p_a = p_b / (1 - count p_b)``); with
    ``gentle``, from max_th to 2 max_th it rises to 1; above, every packet is signalled.
    """

    min_th_s: float = 0.005
    max_th_s: float = 0.015
    max_p: float = 0.1
    w_q: float = 0.002
    gentle: bool = True
    mtu_bytes: int = DEFAULT_MTU_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_th_s", parse_duration(self.min_th_s, "Red.min_th_s"))
        object.__setattr__(self, "max_th_s", parse_duration(self.max_th_s, "Red.max_th_s"))
        if not self.max_th_s > self.min_th_s:
            raise ConfigError("Red: max_th_s must be larger than min_th_s")
        object.__setattr__(self, "max_p", _fraction(self.max_p, "Red.max_p"))
        object.__setattr__(self, "w_q", _fraction(self.w_q, "Red.w_q"))

    def describe(self) -> str:
        """A short label with the thresholds and max_p, e.g.
        ``red(min=5ms,max=15ms,max_p=0.1)``."""
        return (f"red(min={format_duration(self.min_th_s)},max={format_duration(self.max_th_s)},"
                f"max_p={self.max_p:g})")

    def make(self, rate_bps: float, rand: Any) -> Any:
        """A new decision function, with its own average queue, for a link of ``rate_bps``
        (bit/s): ``decide(now, size, qb, qn, backlog_end)`` returns PASS or SIGNAL for an
        arriving packet; ``rand()`` draws uniformly in [0, 1)."""
        return _RedState(self, rate_bps, rand).decide


class _RedState:
    def __init__(self, p: Red, rate_bps: float, rand: Any) -> None:
        bytes_per_s = rate_bps / 8.0
        self.min_th = p.min_th_s * bytes_per_s
        self.max_th = p.max_th_s * bytes_per_s
        self.max_p = p.max_p
        self.w = p.w_q
        self.gentle = p.gentle
        self.pkt_time = p.mtu_bytes / bytes_per_s
        self.rand = rand
        self.avg = 0.0
        self.count = -1

    def decide(self, now: float, size: int, qb: int, qn: int, backlog_end: float) -> int:
        w = self.w
        if backlog_end <= now:  # idle since backlog_end: decay as if m small packets came
            m = (now - backlog_end) / self.pkt_time if backlog_end > -INF else INF
            self.avg = 0.0 if m == INF else self.avg * (1.0 - w) ** m
        else:
            self.avg = (1.0 - w) * self.avg + w * qb
        avg = self.avg
        lo, hi = self.min_th, self.max_th
        if avg < lo:
            self.count = -1
            return PASS
        if avg < hi:
            pb = self.max_p * (avg - lo) / (hi - lo)
        elif self.gentle and avg < 2.0 * hi:
            pb = self.max_p + (1.0 - self.max_p) * (avg - hi) / hi
        else:
            self.count = 0
            return SIGNAL
        self.count += 1
        denom = 1.0 - self.count * pb
        pa = 1.0 if denom <= pb else pb / denom
        if pa >= 1.0 or self.rand() < pa:
            self.count = 0
            return SIGNAL
        return PASS


# ------------------------------------------------------------------------------ PIE
@dataclass(frozen=True)
class Pie:
    """PIE, RFC 8033: a PI controller of the drop/mark probability on queueing delay.

    Every ``t_update_s`` (15 ms): ``p += alpha (qdelay - target) + beta (qdelay -
    qdelay_old)``, with alpha and beta scaled down while p is small (section 4.2's
    table), the increase capped at 2 % once p >= 10 %, and a 2 % decay per update
    while the queue stays empty. A packet is signalled with probability p, except
    during the burst allowance (150 ms after an idle queue), when the previous delay
    was under target/2 and p < 20 %, or with two packets or fewer queued (the
    safeguards of section 4.1). ECN (section 5.1): ECN-capable packets are marked only
    while p <= ``mark_ecn_th`` (10 %); above, they are dropped too.
    """

    target_s: float = 0.015
    t_update_s: float = 0.015
    alpha: float = 0.125
    beta: float = 1.25
    max_burst_s: float = 0.150
    mark_ecn_th: float = 0.1
    mtu_bytes: int = DEFAULT_MTU_BYTES

    def __post_init__(self) -> None:
        for name in ("target_s", "t_update_s", "max_burst_s"):
            object.__setattr__(self, name, parse_duration(getattr(self, name), f"Pie.{name}"))
        if self.t_update_s <= 0:
            raise ConfigError("Pie.t_update_s must be > 0")
        object.__setattr__(self, "alpha", _positive(self.alpha, "Pie.alpha"))
        object.__setattr__(self, "beta", _positive(self.beta, "Pie.beta"))
        object.__setattr__(self, "mark_ecn_th", _fraction(self.mark_ecn_th, "Pie.mark_ecn_th"))

    def describe(self) -> str:
        """A short label with the target delay, e.g. ``pie(target=15ms)``."""
        return f"pie(target={format_duration(self.target_s)})"

    def make(self, rate_bps: float, rand: Any) -> Any:
        """A new decision function, with its own controller state, for a link of any rate
        (``rate_bps`` unused): ``decide(now, size, qb, qn, backlog_end)`` returns PASS,
        SIGNAL or DROP for an arriving packet; ``rand()`` draws uniformly in [0, 1)."""
        return _PieState(self, rand).decide


_PIE_SCALE = ((1e-6, 2048.0), (1e-5, 512.0), (1e-4, 128.0), (1e-3, 32.0), (1e-2, 8.0),
              (1e-1, 2.0))


class _PieState:
    def __init__(self, p: Pie, rand: Any) -> None:
        self.p = p
        self.rand = rand
        self.drop_prob = 0.0
        self.qdelay_old = 0.0
        self.burst = p.max_burst_s
        self.next_update = p.t_update_s

    def _update(self, qdelay: float) -> None:
        p = self.p
        dp = p.alpha * (qdelay - p.target_s) + p.beta * (qdelay - self.qdelay_old)
        prob = self.drop_prob
        for limit, div in _PIE_SCALE:
            if prob < limit:
                dp /= div
                break
        if prob >= 0.1 and dp > 0.02:
            dp = 0.02
        prob += dp
        if qdelay == 0.0 and self.qdelay_old == 0.0:
            prob *= 0.98
        self.drop_prob = 0.0 if prob < 0.0 else 1.0 if prob > 1.0 else prob
        if self.burst > 0.0:
            self.burst = max(0.0, self.burst - p.t_update_s)
        half = p.target_s / 2.0
        if self.drop_prob == 0.0 and qdelay < half and self.qdelay_old < half:
            self.burst = p.max_burst_s
        self.qdelay_old = qdelay

    def decide(self, now: float, size: int, qb: int, qn: int, backlog_end: float) -> int:
        p = self.p
        t_up = p.t_update_s
        while self.next_update <= now:
            t = self.next_update
            if (backlog_end <= t and self.drop_prob == 0.0 and self.qdelay_old == 0.0
                    and self.burst == p.max_burst_s):
                # idle and settled: nothing changes until the next arrival
                self.next_update = t + t_up * math.ceil((now - t) / t_up + 1e-12)
                break
            self._update(backlog_end - t if backlog_end > t else 0.0)
            self.next_update = t + t_up
        if self.burst > 0.0:
            return PASS
        prob = self.drop_prob
        if (self.qdelay_old < p.target_s / 2.0 and prob < 0.2) or qb <= 2 * p.mtu_bytes:
            return PASS
        if self.rand() < prob:
            return SIGNAL if prob <= p.mark_ecn_th else DROP
        return PASS


# -------------------------------------------------------------------------- DualPI2
@dataclass(frozen=True)
class DualPI2:
    """The DualQ Coupled AQM of RFC 9332 with PI2 (its appendix A), as a link.

    Two queues share the link: **L** for packets whose ECN field says L4S (ECT(1) or
    CE, RFC 9331 section 5.1) and **C** for the rest (not-ECT, ECT(0)).

    * **Base AQM (PI2)**: every ``t_update_s`` (16 ms) ``p' += alpha (q - target) +
      beta (q - q_prev)`` (alpha 0.16 Hz, beta 3.2 Hz, target 15 ms), where q is the
      larger of the two queues' head sojourn times (Linux's sch_dualpi2 takes the
      larger; RFC 9332's first pass the C queue's), ``p'`` kept in [0, 1].
    * **Classic queue**: signalled with probability ``p_C = p'^2`` (the squared
      probability classic controllers need, drawn as ``p' > max(rand, rand)``):
      ECT(0) packets marked, not-ECT dropped. Decided at enqueue (Linux's
      ``drop_enqueue`` option).
    * **L queue**: marked with probability ``max(p_L', k p')`` where ``k`` = 2 is the
      coupling factor (``p_CL = k p'``) and ``p_L'`` the native L AQM on the packet's
      own sojourn: a step at ``step_s`` (1 ms, Linux's default), or with ``ramp_s`` >
      0 a ramp from ``step_s`` to ``step_s + ramp_s`` (RFC 9332 A.1: 800 us + 400 us).
    * **Scheduler**: time-shifted FIFO, non-preemptive: the head of C goes before the
      head of L once it has waited ``tshift_s`` (30 ms, twice the target) longer, so L
      has priority without starving C (RFC 9332 section 4.2.2 requires the priority to
      be bounded). Service is at the link's constant rate; one buffer for both queues.

    With k = 2 the coupling aims at equal rates for a classic (Reno-like) flow in C and
    a scalable (Prague, DCTCP-like) flow in L at the same RTT: window ~ 1.22/sqrt(p_C) =
    1.22/p' and ~ 2/p_L = 2/(k p') = 1/p' (RFC 9332 section 2.1), so classic/scalable
    ~ 1.2. Not modelled: the overload mode (p_C beyond 1/k^2), ramp-less L marking
    below one packet of queue, trace-driven service and outages.

    A packet in C can be overtaken by L packets that arrive after it, so the link
    returns its arrival time *provisionally* (``Link.deferred``); engines ask
    ``Link.confirm(ticket, t)`` when that time comes and re-schedule if it moved.
    """

    target_s: float = 0.015
    t_update_s: float = 0.016
    alpha: float = 0.16
    beta: float = 3.2
    k: float = 2.0
    step_s: float = 0.001
    ramp_s: float = 0.0
    tshift_s: float = 0.030

    def __post_init__(self) -> None:
        for name in ("target_s", "t_update_s", "step_s", "ramp_s", "tshift_s"):
            object.__setattr__(self, name, parse_duration(getattr(self, name),
                                                          f"DualPI2.{name}"))
        if self.t_update_s <= 0:
            raise ConfigError("DualPI2.t_update_s must be > 0")
        for name in ("alpha", "beta", "k"):
            object.__setattr__(self, name, _positive(getattr(self, name), f"DualPI2.{name}"))

    def describe(self) -> str:
        """A short label with target, k and the L step, e.g.
        ``dualpi2(target=15ms,k=2,step=1ms)``."""
        return (f"dualpi2(target={format_duration(self.target_s)},k={self.k:g},"
                f"step={format_duration(self.step_s)})")


class _Pkt:
    """A packet in the dual queue (service order in ``DualQueue.waiting``)."""

    __slots__ = ("start", "dur", "enq", "is_l", "size", "ticket", "offsets", "pending")

    def __init__(self, start: float, dur: float, enq: float, is_l: bool, size: int) -> None:
        self.start = start
        self.dur = dur
        self.enq = enq
        self.is_l = is_l
        self.size = size
        self.ticket = 0
        self.offsets: tuple[float, ...] = ()
        self.pending = 0


class DualQueue:
    """The state of a DualPI2 link (built by :class:`wtlab.net.link.Link`).

    ``waiting`` holds the packets not yet in service, in the order they will be served
    (L packets never move once queued; C packets move back when an L packet overtakes
    them). A packet's start of service is final once the clock passes it.
    """

    def __init__(self, p: DualPI2, rate_bps: float, rand: Any) -> None:
        self.p = p
        self.s_per_byte = 8.0 / rate_bps
        self.rand = rand
        self.waiting: deque[_Pkt] = deque()
        self.busy_until = -INF  # end of the last packet that started service
        self.cur_size = 0  # size of that packet (in the buffer until busy_until)
        self.q_bytes = 0  # bytes waiting (not in service)
        self.p_prime = 0.0
        self.q_prev = 0.0
        self.next_update = p.t_update_s
        self.tickets: dict[int, _Pkt] = {}
        self._next_ticket = 0
        self.now = -INF
        # statistics (sojourn = start of service - arrival)
        self.l_packets = self.c_packets = 0
        self.l_sojourn_sum = self.c_sojourn_sum = 0.0
        self.l_sojourn_max = self.c_sojourn_max = 0.0
        self.l_marks = self.c_marks = self.c_drops = 0

    # ------------------------------------------------------------------ clock
    def advance(self, now: float) -> None:
        """Move to ``now``: packets whose service started by then are final; the PI2
        controller runs its updates due by then."""
        if now < self.now:
            return
        t_up = self.p.t_update_s
        while self.next_update <= now:
            t = self.next_update
            self._commit(t)
            if not self.waiting and self.p_prime == 0.0 and self.q_prev == 0.0:
                self.next_update = t + t_up * math.ceil((now - t) / t_up + 1e-12)
                break
            self._pi_update(t)
            self.next_update = t + t_up
        self._commit(now)
        self.now = now

    def _commit(self, t: float) -> None:
        waiting = self.waiting
        while waiting and waiting[0].start <= t:
            pkt = waiting.popleft()
            self.q_bytes -= pkt.size
            self.busy_until = pkt.start + pkt.dur
            self.cur_size = pkt.size
            sojourn = pkt.start - pkt.enq
            if pkt.is_l:
                self.l_packets += 1
                self.l_sojourn_sum += sojourn
                if sojourn > self.l_sojourn_max:
                    self.l_sojourn_max = sojourn
            else:
                self.c_packets += 1
                self.c_sojourn_sum += sojourn
                if sojourn > self.c_sojourn_max:
                    self.c_sojourn_max = sojourn

    def _head_sojourns(self, t: float) -> tuple[float, float]:
        ql = qc = 0.0
        seen_l = seen_c = False
        for pkt in self.waiting:
            if pkt.is_l:
                if not seen_l:
                    ql = t - pkt.enq
                    seen_l = True
            elif not seen_c:
                qc = t - pkt.enq
                seen_c = True
            if seen_l and seen_c:
                break
        return ql, qc

    def _pi_update(self, t: float) -> None:
        p = self.p
        ql, qc = self._head_sojourns(t)
        q = ql if ql > qc else qc
        pp = self.p_prime + p.alpha * (q - p.target_s) + p.beta * (q - self.q_prev)
        self.p_prime = 0.0 if pp < 0.0 else 1.0 if pp > 1.0 else pp
        self.q_prev = q

    # ------------------------------------------------------------------ queries
    def occupancy(self, now: float) -> tuple[int, int]:
        """(bytes, packets) in the buffer at ``now``: waiting plus the one in service."""
        self.advance(now)
        busy = self.busy_until > now
        return (self.q_bytes + (self.cur_size if busy else 0),
                len(self.waiting) + (1 if busy else 0))

    def drain_time(self, now: float) -> float:
        """Seconds from ``now`` until the buffer is empty, as scheduled so far (0 when
        idle); advances the queue to ``now`` first."""
        self.advance(now)
        if self.waiting:
            last = self.waiting[-1]
            return last.start + last.dur - now
        return self.busy_until - now if self.busy_until > now else 0.0

    @property
    def p_c(self) -> float:
        """The classic queue's signal probability ``p'^2``, in [0, 1]."""
        return self.p_prime * self.p_prime

    @property
    def p_cl(self) -> float:
        """The coupled L marking probability ``k p'``, capped at 1."""
        v = self.p.k * self.p_prime
        return 1.0 if v > 1.0 else v

    def stats(self) -> dict[str, float]:
        """Figures so far: ``p_prime``, ``p_c``, ``p_cl``; per queue (``l_``/``c_``) the
        packets served, mean and max sojourn (seconds; mean NaN before the first) and
        marks; ``c_drops``."""
        return {
            "p_prime": self.p_prime, "p_c": self.p_c, "p_cl": self.p_cl,
            "l_packets": self.l_packets, "c_packets": self.c_packets,
            "l_sojourn_mean_s": self.l_sojourn_sum / self.l_packets if self.l_packets
            else math.nan,
            "c_sojourn_mean_s": self.c_sojourn_sum / self.c_packets if self.c_packets
            else math.nan,
            "l_sojourn_max_s": self.l_sojourn_max, "c_sojourn_max_s": self.c_sojourn_max,
            "l_marks": self.l_marks, "c_marks": self.c_marks, "c_drops": self.c_drops,
        }

    # ------------------------------------------------------------------ enqueue
    def classic_signal(self) -> bool:
        """The C queue's verdict for an arriving packet: p' > max(rand, rand)."""
        pp = self.p_prime
        if pp <= 0.0:
            return False
        rand = self.rand
        return pp > rand() and pp > rand()

    def l_mark(self, sojourn: float) -> bool:
        """Whether to mark an L packet whose own sojourn will be ``sojourn`` seconds:
        with probability ``max(native step/ramp, p_CL)``."""
        p = self.p
        if p.ramp_s > 0.0:
            native = (sojourn - p.step_s) / p.ramp_s
        else:
            native = 1.0 if sojourn > p.step_s else 0.0
        pl = self.p_cl
        if native > pl:
            pl = native
        if pl >= 1.0:
            return True
        return pl > 0.0 and self.rand() < pl

    def enqueue(self, now: float, size: int, is_l: bool) -> _Pkt:
        """Queue one packet (after ``advance(now)`` and the buffer check); returns it with
        its (provisional for C) start of service."""
        dur = size * self.s_per_byte
        waiting = self.waiting
        busy = self.busy_until
        if is_l:
            # behind every L packet and every C packet that has waited tshift longer
            idx = len(waiting)
            limit = now - self.p.tshift_s
            while idx and not waiting[idx - 1].is_l and waiting[idx - 1].enq > limit:
                idx -= 1
            if idx:
                prev = waiting[idx - 1]
                start = prev.start + prev.dur
            else:
                start = now if now > busy else busy
            pkt = _Pkt(start, dur, now, True, size)
            if idx == len(waiting):
                waiting.append(pkt)
            else:
                waiting.insert(idx, pkt)
                for i in range(idx + 1, len(waiting)):
                    waiting[i].start += dur  # overtaken C packets wait one L packet longer
        else:
            if waiting:
                last = waiting[-1]
                start = last.start + last.dur
            else:
                start = now if now > busy else busy
            pkt = _Pkt(start, dur, now, False, size)
            waiting.append(pkt)
        self.q_bytes += size
        return pkt

    def provisional(self, pkt: _Pkt, offsets: tuple[float, ...]) -> int:
        """Keep ``pkt`` (a C packet whose service has not started) for ``confirm``."""
        self._next_ticket += 1
        pkt.ticket = self._next_ticket
        pkt.offsets = offsets
        pkt.pending = len(offsets)
        self.tickets[pkt.ticket] = pkt
        return pkt.ticket

    def confirm(self, ticket: int, t: float) -> float:
        """The arrival time, as known at ``t``, of the packet behind ``ticket``."""
        pkt = self.tickets.get(ticket)
        if pkt is None:
            return t
        self.advance(t)
        arrival = pkt.start + pkt.dur + pkt.offsets[0]
        if arrival <= t:
            pkt.pending -= 1
            if pkt.pending <= 0:
                del self.tickets[ticket]
        return arrival


AQM_NAMES = {"step": StepMark, "red": Red, "pie": Pie, "dualpi2": DualPI2}


def as_marking_aqm(value: object) -> Any:
    """A :class:`StepMark`, :class:`Red`, :class:`Pie` or :class:`DualPI2` from a name or
    an instance; None if ``value`` is neither (the link then tries its own)."""
    if isinstance(value, (StepMark, Red, Pie, DualPI2)):
        return value
    if isinstance(value, str):
        cls = AQM_NAMES.get(value.strip().lower())
        if cls is not None:
            return cls()
    return None


__all__ = ["AQM_NAMES", "DROP", "PASS", "SIGNAL", "DualPI2", "DualQueue", "Pie", "Red",
           "StepMark", "as_marking_aqm"]
