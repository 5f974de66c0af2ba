"""The controller interface every driver speaks, and the registry.

A controller is a sans-IO state machine measured in bytes and seconds. Drivers
(aioquic on a live connection, aioquic over the virtual network, the fast flow
model, or a notebook cell) call the ``on_*`` methods below with ``now`` passed in;
the controller never reads a clock. After any call its outputs are readable:

* ``cwnd`` (bytes), ``ssthresh`` (bytes, or None while infinite),
* ``pacing_rate_bps`` (bit/s, or None: the driver paces at cwnd/srtt; ``math.inf``:
  no pacing, the window alone clocks packets out, as TCP without a pacing qdisc),
* ``state`` (a short name, e.g. ``"slow_start"``), ``bytes_in_flight``.

Packets are any objects with ``packet_number``, ``sent_bytes`` and ``sent_time``
attributes, and optionally ``payload_bytes`` (the application payload they carry,
recorded in the trace; wtlab's aioquic adapter sets it on aioquic's
``QuicSentPacket``, which it passes through without copying). Controllers that need more per-packet state (BBR's
delivery-rate sampling) keep it themselves, keyed by packet number.

Driver contract, in the order a driver calls things:

* ``on_packet_sent(now, packet)`` for each ack-eliciting in-flight packet;
* ``on_packets_acked(now, packets, rtt)`` once per ACK frame with the newly
  acknowledged in-flight packets (ascending packet number) and the connection's
  :class:`~wtlab.cc.rtt.RttStats` after this ACK's RTT sample;
* ``on_packets_lost(now, packets, triggers)`` with the packets declared lost by
  that ACK or by a loss timer and, per packet, why (``"packet_threshold"``,
  ``"time_threshold"``; recorded in the rows' ``extra``), then
  ``on_persistent_congestion_detected(now)`` if RFC 9002 section 7.6 says so;
* ``on_packets_discarded(packets)`` for packets removed from flight without a
  congestion signal (discarded packet-number spaces);
* ``on_app_limited(now)`` when the sender had nothing to send although cwnd allowed.

* ``on_pto_expired(now, pto_count)`` when a probe timeout fired (optional for
  drivers; QUIC does not treat a PTO as congestion).
* ``on_ecn_feedback(now, acked_ect, acked_bytes, ce_increase, sent_time, counts)``
  once per ACK frame whose ECN counts the sender validated, after that frame's
  acks and losses (ECN, below); ``on_ecn_validation(now, old, new, reason)`` when
  the sender's ECN validation state changes.

ECN (RFC 9002 section 7.1 and appendix B.7, RFC 3168, RFC 9331): ``ecn_codepoint``
is what the sender marks its packets with (:mod:`wtlab.cc.ecn`: ECT(0) classic,
ECT(1) L4S, not-ECT: no ECN), from the class's ``ECN_CODEPOINT`` or the ``ecn=``
argument (``True``: ECT(0); ``"ect1"``; ``False``: off). The registry also
answers ``"<name>+ecn"`` (e.g. ``"reno+ecn"``): the controller with ECT(0). A CE
increase reaches the hook ``on_ecn(now, acked_ect, acked_bytes, ce_increase,
sent_time)``, called for every validated ACK frame; its default is the classic
response of RFC 9002 B.7: one congestion event per recovery period, exactly as
a loss (``on_congestion_event``), with no retransmission. Controllers that use
every mark (DCTCP, Prague) override it.

Subclasses implement the hooks ``on_ack`` (per acked packet),
``on_congestion_event`` (once per recovery period), and optionally
``on_ack_frame``, ``on_loss``, ``on_recovery_exit``, ``on_persistent_congestion``
and ``on_pto``; a controller that names its own states (BBR) sets
``RECOVERY_STATE = None`` so the base class leaves ``state`` alone. ``record()``
writes extra events of the controller's own with its current state. The base class
keeps bytes in flight, the RFC 9002 recovery period, and records every event to
the recorder the caller supplied (``recorder=None`` costs one attribute test).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol

from wtlab.cc import ecn as ecnmod
from wtlab.cc.rtt import RttStats
from wtlab.errors import ConfigError, UnknownAlgorithm
from wtlab.trace import schema
from wtlab.trace.schema import NAN, NO_BYTES_U32, NO_STREAM

K_PACKET_SENT: int = schema.K_PACKET_SENT  # type: ignore[attr-defined]
K_PACKET_ACKED: int = schema.K_PACKET_ACKED  # type: ignore[attr-defined]
K_PACKET_LOST: int = schema.K_PACKET_LOST  # type: ignore[attr-defined]
K_CWND_CHANGED: int = schema.K_CWND_CHANGED  # type: ignore[attr-defined]
K_STATE_CHANGED: int = schema.K_STATE_CHANGED  # type: ignore[attr-defined]
K_PACING_CHANGED: int = schema.K_PACING_CHANGED  # type: ignore[attr-defined]
K_PERSISTENT_CONGESTION: int = schema.K_PERSISTENT_CONGESTION  # type: ignore[attr-defined]
K_ECN_COUNTS: int = schema.K_ECN_COUNTS  # type: ignore[attr-defined]
K_ECN_VALIDATION: int = schema.K_ECN_VALIDATION  # type: ignore[attr-defined]

#: ``extra`` of packet_lost rows, by trigger (RFC 9002's names)
LOSS_TRIGGER_EXTRA = {t: f'{{"trigger": "{t}"}}' for t in ("packet_threshold", "time_threshold",
                                                             "pto")}

K_INITIAL_WINDOW_PACKETS = 10  # RFC 9002 section 7.2 (10 x max_datagram_size, capped)
K_MINIMUM_WINDOW_PACKETS = 2
K_LOSS_REDUCTION_FACTOR = 0.5


class PacketInfo(Protocol):
    """What a controller reads from a sent packet (aioquic's ``QuicSentPacket`` and
    :class:`wtlab.cc.Packet` both fit).
    """
    packet_number: int
    sent_bytes: int
    sent_time: float


class Controller:
    """Base class of all congestion controllers (built-in and user-written).

    Example, stepping by hand (no network needed)::

        >>> from wtlab.cc import create, RttStats, Packet
        >>> cc = create("reno", max_datagram_size=1200)
        >>> cc.cwnd, cc.state
        (12000, 'slow_start')
        >>> cc.on_packet_sent(0.0, Packet(0, 1200, 0.0))
        >>> rtt = RttStats(); rtt.update(0.1, now=0.1)
        >>> cc.on_packets_acked(0.1, [Packet(0, 1200, 0.0)], rtt)
        >>> cc.cwnd
        13200
        >>> cc.on_packet_sent(0.1, Packet(1, 1200, 0.1))
        >>> cc.on_packets_lost(0.3, [Packet(1, 1200, 0.1)])   # one loss: halve
        >>> cc.cwnd, cc.ssthresh, cc.state
        (6600, 6600, 'recovery')

    Writing your own (e.g. in a notebook cell): subclass, implement ``on_ack``
    and ``on_congestion_event``, register. The same object then runs by hand, in
    the simulators and inside aioquic (``wtlab.cc.aioquic.attach``)::

        >>> from wtlab.cc import Controller, register
        >>> class AIMD(Controller):
        ...     # additive increase: alpha datagrams per RTT; multiplicative decrease: beta
        ...     name = "aimd"
        ...     def __init__(self, alpha=1.0, beta=0.5, **kw):
        ...         super().__init__(**kw)
        ...         self.alpha, self.beta = alpha, beta
        ...         self.state = "congestion_avoidance"
        ...     def on_ack(self, now, packet, rtt):
        ...         mds = self.max_datagram_size
        ...         self.cwnd += int(self.alpha * mds * packet.sent_bytes / self.cwnd)
        ...     def on_congestion_event(self, now, sent_time):
        ...         self.cwnd = max(int(self.cwnd * self.beta), self.min_cwnd)
        ...         self.ssthresh = self.cwnd
        >>> _ = register("aimd", AIMD)
        >>> cc = create("aimd", alpha=2.0, beta=0.8)
        >>> cc.on_packet_sent(0.0, Packet(0, 1200, 0.0))
        >>> cc.on_packets_acked(0.1, [Packet(0, 1200, 0.0)], rtt)
        >>> cc.cwnd   # 12000 + 2 x 1200 x 1200 / 12000
        12240
    """

    name: ClassVar[str] = "base"
    #: State name set when a recovery period begins (None: the controller keeps its own).
    RECOVERY_STATE: ClassVar[str | None] = "recovery"
    #: ECN codepoint the sender marks packets with unless ``ecn=`` says otherwise
    #: (None: no ECN; "ect0": classic ECN; "ect1": L4S, RFC 9331)
    ECN_CODEPOINT: ClassVar[str | None] = None

    def __init__(self, *, max_datagram_size: int = 1200, recorder: Any = None, flow: int = 0,
                 initial_window_packets: int = K_INITIAL_WINDOW_PACKETS,
                 minimum_window_packets: int = K_MINIMUM_WINDOW_PACKETS,
                 ecn: Any = None) -> None:
        if max_datagram_size < 1200 or max_datagram_size > 65527:
            raise ConfigError(
                f"max_datagram_size={max_datagram_size} is outside QUIC's 1200..65527 bytes"
            )
        self.max_datagram_size = int(max_datagram_size)
        self.cwnd: int = initial_window_packets * self.max_datagram_size
        self.ssthresh: int | None = None
        self.bytes_in_flight: int = 0
        self.pacing_rate_bps: float | None = None
        self.state: str = "slow_start"
        self.min_cwnd: int = minimum_window_packets * self.max_datagram_size
        self.recovery_start_time: float | None = None
        self._recovering = False  # inside a recovery period not yet ended by an ack
        # RFC 9002 7.8: set by on_app_limited, cleared once a packet fills the window;
        # Reno and CUBIC do not grow cwnd while it is set.
        self.app_limited = False
        self.rtt: RttStats | None = None
        self.flow = flow
        self.recorder = recorder
        self._last_logged = (self.cwnd, self.ssthresh, self.state, self.pacing_rate_bps)
        self._state_code_cache: dict[str, int] = {}
        # Hot-path cache of the last (recorder, state name) -> state code.
        self._code_rec: Any = None
        self._code_state: str | None = None
        self._code = 0
        self._has_rate = type(self).delivery_rate_bps is not Controller.delivery_rate_bps
        #: codepoint this controller's sender marks packets with (wtlab.cc.ecn; 0: no ECN)
        if ecn is None:
            ecn = self.ECN_CODEPOINT
        elif ecn is True and self.ECN_CODEPOINT is not None:
            ecn = self.ECN_CODEPOINT
        self.ecn_codepoint: int = ecnmod.as_codepoint(ecn, "ecn")
        if self.ecn_codepoint == ecnmod.CE:
            raise ConfigError("ecn='ce': a sender marks ECT(0) or ECT(1), never CE")
        self.ecn_state = "off" if self.ecn_codepoint == ecnmod.NOT_ECT else "testing"
        self.ce_marks = 0  # CE increases reported to this controller (validated)

    # ------------------------------------------------------------------ hooks
    def on_ack(self, now: float, packet: PacketInfo, rtt: RttStats) -> None:
        """Grow the window for one newly acknowledged packet (override)."""

    def on_ack_frame(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        """Called once per ACK frame after the per-packet ``on_ack`` calls (optional)."""

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        """React to loss once per recovery period (override). Default: halve, like Reno."""
        self.cwnd = max(int(self.cwnd * K_LOSS_REDUCTION_FACTOR), self.min_cwnd)
        self.ssthresh = self.cwnd

    def on_recovery_exit(self, now: float) -> None:
        """The first packet sent after recovery began was acked (optional).

        Default: leave the "recovery" state for slow start or congestion avoidance.
        """
        if self.state == "recovery":
            self.state = "slow_start" if self._in_slow_start() else "congestion_avoidance"

    def on_loss(self, now: float, packets: Sequence[PacketInfo]) -> None:
        """Called for every loss notification, in or out of recovery (optional)."""

    def on_persistent_congestion(self, now: float) -> None:
        """RFC 9002 section 7.6.2: collapse to the minimum window (override if needed)."""
        self.cwnd = self.min_cwnd
        self.recovery_start_time = None
        self._recovering = False
        self.state = "slow_start"

    def on_pto(self, now: float, pto_count: int) -> None:
        """A probe timeout fired (optional; QUIC does not treat it as congestion)."""

    def on_ecn(self, now: float, acked_ect: int, acked_bytes: int, ce_increase: int,
               sent_time: float) -> None:
        """ECN feedback of one ACK frame: ``acked_ect`` newly acknowledged ECT-marked
        packets (``acked_bytes`` bytes), of which the peer saw ``ce_increase`` new CE
        marks; ``sent_time`` is when the largest acknowledged packet was sent.

        Default (RFC 9002 appendix B.7, RFC 3168): a CE increase is a congestion event,
        once per recovery period, handled exactly as a loss. Override for per-mark
        feedback (DCTCP, Prague).
        """
        if ce_increase > 0 and not self.in_recovery(sent_time):
            self._begin_recovery(now, sent_time)

    # --------------------------------------------------------- driver entry points
    def in_recovery(self, sent_time: float) -> bool:
        """Whether a packet sent at ``sent_time`` was sent before the current recovery period began
        (RFC 9002 section 7.3.2): acks and losses of such packets do not change the window again.
        """
        return self.recovery_start_time is not None and sent_time <= self.recovery_start_time

    def on_packet_sent(self, now: float, packet: PacketInfo) -> None:
        """The driver sent ``packet`` at ``now``: it is in flight (and recorded). Subclasses that
        override it call ``super()``.
        """
        nbytes = packet.sent_bytes
        bif = self.bytes_in_flight = self.bytes_in_flight + nbytes
        if self.app_limited and bif + self.max_datagram_size > self.cwnd:
            self.app_limited = False  # the window is in use again
        rec = self.recorder
        if rec is None:
            return
        # _record, inlined: this runs for every packet.
        st = self.state
        if st is self._code_state and rec is self._code_rec:
            code = self._code
        else:
            code = self._state_code(rec, st)
        rtt = self.rtt
        if rtt is not None and rtt.has_sample:
            srtt, min_rtt, latest, var = rtt.smoothed_rtt, rtt.min_rtt, rtt.latest_rtt, rtt.rttvar
        else:
            srtt = min_rtt = latest = var = NAN
        ss = self.ssthresh
        pacing = self.pacing_rate_bps
        cwnd = self.cwnd
        payload = getattr(packet, "payload_bytes", None)
        rec.append(now, K_PACKET_SENT, code, self.flow, packet.packet_number, NO_STREAM, nbytes,
                   cwnd if cwnd < NO_BYTES_U32 else NO_BYTES_U32 - 1,
                   bif if 0 <= bif < NO_BYTES_U32 else 0,
                   NO_BYTES_U32 if ss is None else ss if ss < NO_BYTES_U32 else NO_BYTES_U32 - 1,
                   srtt, min_rtt, latest, var, NAN if pacing is None else pacing,
                   self.delivery_rate_bps() if self._has_rate else NAN,
                   NO_BYTES_U32 if payload is None else payload)

    def on_packets_acked(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        """The driver learned at ``now`` that ``packets`` were acknowledged; ``rtt`` holds the RTT
        estimator after the ACK's sample. Calls :meth:`~wtlab.cc.base.Controller.on_ack` for
        each packet sent outside recovery, then records the controller's state.
        """
        self.rtt = rtt
        rec = self.recorder
        start = self.recovery_start_time
        on_ack = self.on_ack
        if rec is None:
            for packet in packets:
                self.bytes_in_flight -= packet.sent_bytes
                if start is None or packet.sent_time > start:
                    if self._recovering:
                        self._recovering = False
                        self.on_recovery_exit(now)
                    on_ack(now, packet, rtt)
                # else RFC 9002 7.3.2: no growth for packets sent before recovery began
            self.on_ack_frame(now, packets, rtt)
            return
        # Recording: the RTT and rate columns are the same for the whole frame.
        append = rec.append
        flow = self.flow
        if rtt.has_sample:
            srtt, min_rtt, latest, var = rtt.smoothed_rtt, rtt.min_rtt, rtt.latest_rtt, rtt.rttvar
        else:
            srtt = min_rtt = latest = var = NAN
        rate = self.delivery_rate_bps() if self._has_rate else NAN
        for packet in packets:
            self.bytes_in_flight -= packet.sent_bytes
            if start is None or packet.sent_time > start:
                if self._recovering:
                    self._recovering = False
                    self.on_recovery_exit(now)
                on_ack(now, packet, rtt)
            st = self.state
            if st is self._code_state and rec is self._code_rec:
                code = self._code
            else:
                code = self._state_code(rec, st)
            ss = self.ssthresh
            pacing = self.pacing_rate_bps
            cwnd = self.cwnd
            bif = self.bytes_in_flight
            payload = getattr(packet, "payload_bytes", None)
            append(now, K_PACKET_ACKED, code, flow, packet.packet_number, NO_STREAM,
                   packet.sent_bytes, cwnd if cwnd < NO_BYTES_U32 else NO_BYTES_U32 - 1,
                   bif if 0 <= bif < NO_BYTES_U32 else 0,
                   NO_BYTES_U32 if ss is None else ss if ss < NO_BYTES_U32 else NO_BYTES_U32 - 1,
                   srtt, min_rtt, latest, var, NAN if pacing is None else pacing, rate,
                   NO_BYTES_U32 if payload is None else payload)
        self.on_ack_frame(now, packets, rtt)
        self._log_changes(now)

    def on_packets_lost(self, now: float, packets: Sequence[PacketInfo],
                        triggers: Sequence[str] | str | None = None) -> None:
        """Packets declared lost (with a congestion signal); ``triggers``: per packet (or
        one for all) ``"packet_threshold"`` / ``"time_threshold"``, recorded in ``extra``.

        The rows are written after the controller's response, so a reduction shows in
        the first ``packet_lost`` row (the trace's row contract).
        """
        if not packets:
            return
        largest_sent = 0.0
        for packet in packets:
            self.bytes_in_flight -= packet.sent_bytes
            if packet.sent_time > largest_sent:
                largest_sent = packet.sent_time
        self.on_loss(now, packets)
        if not self.in_recovery(largest_sent):
            # RFC 9002 7.3.2: one reduction per recovery period.
            self._begin_recovery(now, largest_sent)
        if self.recorder is not None:
            self._record_lost(now, packets, triggers)
            self._log_changes(now)

    def _begin_recovery(self, now: float, sent_time: float) -> None:
        """A congestion event (loss or CE): a new recovery period starts now."""
        self.recovery_start_time = now
        self._recovering = True
        self.on_congestion_event(now, sent_time)
        if self.RECOVERY_STATE is not None:
            self.state = self.RECOVERY_STATE

    def on_ecn_feedback(self, now: float, acked_ect: int, acked_bytes: int, ce_increase: int,
                        sent_time: float, counts: Sequence[int] | None = None, pn: int = -1,
                        epoch: str = "application") -> None:
        """A validated ACK frame's ECN feedback (drivers call this after the frame's acks
        and losses): ``on_ecn`` reacts, then an ``ecn_counts`` row records the counts
        (``counts`` = the frame's ECT(0), ECT(1), CE) with the state after the response."""
        if ce_increase > 0:
            self.ce_marks += ce_increase
        self.on_ecn(now, acked_ect, acked_bytes, ce_increase, sent_time)
        rec = self.recorder
        if rec is not None:
            self._record(now, K_ECN_COUNTS, pn, acked_bytes)
            c = counts if counts is not None else (0, 0, 0)
            rec.set_extra(len(rec) - 1,
                          f'{{"ect0": {c[0]}, "ect1": {c[1]}, "ce": {c[2]}, '
                          f'"ce_increase": {ce_increase}, "acked_ect": {acked_ect}, '
                          f'"epoch": "{epoch}"}}')
            self._log_changes(now)

    def on_ecn_validation(self, now: float, old: str, new: str, reason: str = "") -> None:
        """The sender's ECN validation state changed (RFC 9000 13.4.2); recorded as an
        ``ecn_validation`` row. ``ecn_state`` holds the new state."""
        self.ecn_state = new
        rec = self.recorder
        if rec is not None:
            self._record(now, K_ECN_VALIDATION, -1, 0)
            rec.set_extra(len(rec) - 1, {"old": old, "new": new, "reason": reason})

    def _record_lost(self, now: float, packets: Sequence[PacketInfo],
                     triggers: Sequence[str] | str | None) -> None:
        rec = self.recorder
        set_extra = rec.set_extra
        for i, packet in enumerate(packets):
            self._record(now, K_PACKET_LOST, packet.packet_number, packet.sent_bytes,
                         getattr(packet, "payload_bytes", None))
            trigger = triggers if triggers is None or isinstance(triggers, str) else triggers[i]
            if trigger is not None:
                set_extra(len(rec) - 1, LOSS_TRIGGER_EXTRA.get(trigger)
                          or f'{{"trigger": "{trigger}"}}')

    def on_persistent_congestion_detected(self, now: float, detail: str | None = None) -> None:
        """The driver declared persistent congestion (RFC 9002 section 7.6) at ``now``: calls
        :meth:`~wtlab.cc.base.Controller.on_persistent_congestion` and records it;
        ``detail`` (JSON text, e.g. ``{"span_s": .., "duration_s": ..}``) goes to the row's
        ``extra``."""
        self.on_persistent_congestion(now)
        if self.recorder is not None:
            self._record(now, K_PERSISTENT_CONGESTION, -1, 0)
            if detail is not None:
                self.recorder.set_extra(len(self.recorder) - 1, detail)
            self._log_changes(now)

    def on_pto_expired(self, now: float, pto_count: int) -> None:
        """A driver's PTO fired (``pto_count`` after the increment)."""
        self.on_pto(now, pto_count)
        if self.recorder is not None:
            self._log_changes(now)

    def on_packets_discarded(self, packets: Iterable[PacketInfo]) -> None:
        """Packets leave flight without a congestion signal (a discarded space)."""
        for packet in packets:
            self.bytes_in_flight -= packet.sent_bytes

    def on_packets_probed_lost(self, now: float, packets: Sequence[PacketInfo]) -> None:
        """Packets a PTO declared lost (RFC 9002 6.2.4: their data is resent in the probe;
        no congestion signal). Recorded as ``packet_lost`` rows with trigger ``pto``."""
        self.on_packets_discarded(packets)
        if self.recorder is not None and packets:
            self._record_lost(now, packets, "pto")

    def on_app_limited(self, now: float) -> None:
        """The sender had window to spare but nothing to send (or flow control blocked it).

        Sets ``app_limited`` until a sent packet fills the window again; RFC 9002
        section 7.8: cwnd SHOULD NOT grow meanwhile (Reno and CUBIC honour it).
        """
        self.app_limited = True

    def can_send(self, size: int = 0) -> bool:
        """Whether ``size`` more bytes fit in the window (bytes in flight + size <= cwnd)."""
        return self.bytes_in_flight + size <= self.cwnd

    # ------------------------------------------------------------------ helpers
    def _in_slow_start(self) -> bool:
        return self.ssthresh is None or self.cwnd < self.ssthresh

    def snapshot(self) -> dict[str, Any]:
        """The controller's state as a dict (what a notebook shows after a step)."""
        rtt = self.rtt
        return {
            "cwnd": self.cwnd,
            "ssthresh": self.ssthresh,
            "bytes_in_flight": self.bytes_in_flight,
            "pacing_rate_bps": self.pacing_rate_bps,
            "delivery_rate_bps": self.delivery_rate_bps(),
            "state": self.state,
            "ecn": ecnmod.CODEPOINT_NAMES[self.ecn_codepoint],
            "ecn_state": self.ecn_state,
            "ce_marks": self.ce_marks,
            "srtt_s": rtt.smoothed_rtt if rtt else None,
            "min_rtt_s": rtt.min_rtt if rtt and rtt.has_sample else None,
        }

    def delivery_rate_bps(self) -> float:
        """Latest delivery-rate estimate, bit/s (NaN if the controller keeps none)."""
        return NAN

    def record(self, now: float, kind: str | int, pn: int = -1, nbytes: int = 0,
               extra: Any = None) -> None:
        """Write one event with the controller's current state (no-op without recorder).

        ``kind`` is an event name (``"my_event"``: new kinds are added) or a code.
        """
        rec = self.recorder
        if rec is None:
            return
        self._record(now, kind if isinstance(kind, int) else rec.kind_code(kind), pn, nbytes)
        if extra is not None:
            rec.set_extra(len(rec) - 1, extra)

    def _state_code(self, rec: Any, state: str) -> int:
        """State code of ``state`` in ``rec`` (cached per recorder)."""
        if rec is not self._code_rec:
            self._state_code_cache = {}
        code = self._state_code_cache.get(state)
        if code is None:
            code = self._state_code_cache[state] = rec.state_code(state)
        self._code_rec, self._code_state, self._code = rec, state, code
        return code

    def _record(self, now: float, kind: int, pn: int, nbytes: int,
                payload_bytes: int | None = None) -> None:
        rec = self.recorder
        st = self.state
        if st is self._code_state and rec is self._code_rec:
            code = self._code
        else:
            code = self._state_code(rec, st)
        rtt = self.rtt
        if rtt is not None and rtt.has_sample:
            srtt, min_rtt, latest, var = rtt.smoothed_rtt, rtt.min_rtt, rtt.latest_rtt, rtt.rttvar
        else:
            srtt = min_rtt = latest = var = NAN
        ss = self.ssthresh
        pacing = self.pacing_rate_bps
        cwnd = self.cwnd
        bif = self.bytes_in_flight
        rec.append(now, kind, code, self.flow, pn, NO_STREAM, nbytes,
                   cwnd if cwnd < NO_BYTES_U32 else NO_BYTES_U32 - 1,
                   bif if 0 <= bif < NO_BYTES_U32 else 0,
                   NO_BYTES_U32 if ss is None else ss if ss < NO_BYTES_U32 else NO_BYTES_U32 - 1,
                   srtt, min_rtt, latest, var, NAN if pacing is None else pacing,
                   self.delivery_rate_bps() if self._has_rate else NAN,
                   NO_BYTES_U32 if payload_bytes is None else payload_bytes)

    def _log_changes(self, now: float) -> None:
        """Record cwnd_changed / state_changed / pacing_changed when they changed."""
        cur = (self.cwnd, self.ssthresh, self.state, self.pacing_rate_bps)
        last = self._last_logged
        if cur == last:
            return
        self._last_logged = cur
        if cur[0] != last[0] or cur[1] != last[1]:
            self._record(now, K_CWND_CHANGED, -1, 0)
        if cur[2] != last[2]:
            self._record(now, K_STATE_CHANGED, -1, 0)
        if cur[3] != last[3] and not (
            cur[3] is not None and last[3] is not None and math.isclose(cur[3], last[3])
        ):
            self._record(now, K_PACING_CHANGED, -1, 0)


# --------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[Controller]] = {}
_listeners: list[Callable[[str, type[Controller]], None]] = []

# W3C WebTransport congestionControl hint -> controller: "default" is what QUIC
# stacks ship (CUBIC); "throughput" is BBRv1 (keeps the rate under random loss);
# "low-latency" is BBRv3 (paces 1% under the bandwidth estimate and cruises with
# 15% headroom below its loss-learned in-flight bound, so queues stay short).
#: the W3C WebTransport ``congestionControl`` hints -> registered controller names
HINTS = {"default": "cubic", "throughput": "bbr", "low-latency": "bbr3"}


def register(name: str, cls: type[Controller]) -> type[Controller]:
    """Register ``cls`` under ``name`` (replacing any earlier one). Returns ``cls``."""
    if not isinstance(name, str) or not name:
        raise ConfigError("a controller needs a non-empty string name")
    if not (isinstance(cls, type) and issubclass(cls, Controller)):
        raise ConfigError(f"{cls!r} is not a subclass of wtlab.cc.Controller; subclass it first")
    _REGISTRY[name] = cls
    for listener in list(_listeners):
        listener(name, cls)
    return cls


def on_register(listener: Callable[[str, type[Controller]], None]) -> None:
    """Call ``listener(name, cls)`` for every registration (the aioquic adapter uses it)."""
    _listeners.append(listener)


_ECN_VARIANTS: dict[type[Controller], type[Controller]] = {}
ECN_SUFFIX = "+ecn"


def ecn_variant(cls: type[Controller]) -> type[Controller]:
    """``cls`` marking its packets ECT(0) (classic ECN, RFC 3168 / RFC 9002 7.1): the
    class the registry answers for ``"<name>+ecn"``. Cached, so the same class each time."""
    variant = _ECN_VARIANTS.get(cls)
    if variant is None:
        variant = type(cls.__name__ + "Ecn", (cls,),
                       {"name": getattr(cls, "name", cls.__name__) + ECN_SUFFIX,
                        "ECN_CODEPOINT": cls.ECN_CODEPOINT or "ect0",
                        "__doc__": f"{cls.__name__} with ECN (ECT(0) unless the controller "
                                   "asks for another codepoint)",
                        "__module__": cls.__module__})
        _ECN_VARIANTS[cls] = variant
    return variant


def get(name: str) -> type[Controller]:
    """The controller class registered as ``name`` (or a W3C hint such as "throughput");
    ``"<name>+ecn"`` is that controller using ECN (:func:`ecn_variant`)."""
    key = HINTS.get(name, name)
    if isinstance(key, str) and key.endswith(ECN_SUFFIX) and key not in _REGISTRY:
        return ecn_variant(get(key[: -len(ECN_SUFFIX)]))
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownAlgorithm(
            f"unknown congestion controller {name!r}; registered: {', '.join(sorted(_REGISTRY))}"
            " (register your own with wtlab.cc.register(name, cls))"
        ) from None


def names() -> list[str]:
    """Names of the registered controllers, sorted (built-ins and those added with
    :func:`register`).
    """
    return sorted(_REGISTRY)


def create(name: str | type[Controller] | Controller, **kwargs: Any) -> Controller:
    """A new controller instance from a name, a class, or (returned as is) an instance."""
    if isinstance(name, Controller):
        return name
    cls = name if isinstance(name, type) else get(name)
    return cls(**kwargs)
