"""Run wtlab controllers inside aioquic, and log aioquic's own recovery events.

``attach(quic, controller, recorder=rec)`` makes one ``QuicConnection`` use a
wtlab :class:`~wtlab.cc.base.Controller` for congestion control and writes its
recovery events to ``rec``. Call it right after creating the connection, before
it sends or receives anything (for a server: in the protocol's ``__init__``).

What it changes, all on this one connection's objects (never on aioquic's
classes, so other connections in the process are untouched):

* ``quic._loss._cc`` becomes a :class:`ControllerShim`, aioquic's
  ``QuicCongestionControl`` interface around the controller. aioquic reports
  acked packets one by one, then the RTT sample, then losses; the shim batches
  the acks of one ACK frame and hands them to the controller as one
  ``on_packets_acked`` call with an :class:`RttStats` filled from aioquic's
  own estimator (``_rtt_latest`` / ``_rtt_smoothed`` / ``_rtt_variance`` /
  ``_rtt_min``), before any loss that ACK reveals.
* ``quic._loss._pacer`` becomes a :class:`ControllerPacer`: when the controller
  has a ``pacing_rate_bps`` (BBR), packets leave at that rate; otherwise it
  paces at cwnd/srtt exactly as aioquic does. With a rate, a packet also needs
  a whole packet time of credit (aioquic's pacer sends whenever *any* credit is
  left, which under ack clocking lets the ack rate, not the pacing rate, set
  the pace: BBR's Drain then took ~1 s instead of a few RTTs). The burst
  allowance is aioquic's (2..16 packets, a quarter of cwnd).
* ``quic._loss.on_ack_received``, ``on_packet_sent``, ``on_loss_detection_timeout``
  and ``_detect_loss`` are wrapped (instance attributes) to record
  ``ack_received`` (``extra``: ranges and ack delay), ``packet_sent`` of packets
  that are not in flight, ``pto_expired`` and the trigger of each loss.
* Each sent packet gets ``payload_bytes`` (STREAM and DATAGRAM frame data it
  carries), read off its delivery handlers; ``quic._write_datagram_frame`` is
  wrapped to add a no-op handler carrying a DATAGRAM frame's length, since
  aioquic keeps none for datagrams.
* ``quic._loss._in_persistent_congestion`` is replaced by wtlab's check of RFC
  9002 section 7.6.2 (same conditions as aioquic's: a contiguous run of lost
  ack-eliciting packets sent after the first RTT sample), with the persistent
  congestion duration taken from the RTT estimate in force when the run's first
  packet was sent when that is shorter than the current one. Why: after an outage
  that a bottleneck queue outlives (a cellular link holding packets), the packets
  queued across it are acknowledged first, with RTT samples as long as the
  outage; with the current estimate the duration (3 x PTO) then grows past the
  span of the packets really lost and a 10 s outage never counts as persistent
  congestion (aioquic's check, and RFC 9002's pseudocode, use the estimate at
  detection time). The RFC's rationale (as many packets as TCP sends with tail
  loss probes and an RTO before collapsing) is about the PTOs the sender had
  while it was sending; the samples that measured the outage itself must not
  stretch it. ``persistent_congestion`` rows carry ``{"span_s", "duration_s"}``
  (the send-time span of the run of lost packets, and the duration it exceeded).
* ``_detect_loss`` also steps a few ulps past a loss timer that a clock hit
  exactly (virtual time does): aioquic otherwise re-arms the timer at the same
  float and a driver that trusts ``get_timer()`` spins forever.
* ``quic.datagrams_to_send`` is wrapped to tell the controller when the sender
  had window to spare but nothing to send (``on_app_limited``) and, with
  ``full_packets=True`` (the default), to offer aioquic's packet builder only
  whole datagrams of window while something is in flight: aioquic otherwise
  fills the window's last bytes with a short packet (see :func:`attach`); and
  ``quic.receive_datagram`` to count what arrives: with the sent/acked/lost counts
  this fills :class:`ConnectionCounters` (``quic._wtlab_counters``), the source of
  ``session.stats()``.
* ``quic._write_stream_frame`` returns 0 at once when the packet being built has no
  room for even the smallest STREAM frame (aioquic offers every stream with data a
  place in every packet, and would find that out the long way): the same packets,
  less work per packet for a connection with many busy streams.

Trace rows written for one connection (``flow`` = the ``flow`` argument):

=================  ========================================================
kind               detail
=================  ========================================================
packet_sent        every packet; ``extra`` is None for an ack-eliciting
                   in-flight packet, else ``{"ack_eliciting": ..,
                   "in_flight": ..}``
ack_received       one per ACK frame that newly acknowledged packets, after
                   it was handled; pn = largest acknowledged; bytes /
                   payload_bytes = what it newly acknowledged; ``extra``:
                   ``{"ranges": [[first, last], ...], "ack_delay_s": ..,
                   "epoch": ..}``
rtt_sample         one per RTT sample (RTT columns hold aioquic's estimator)
packet_acked       one per newly acknowledged in-flight packet
packet_lost        ``extra``: ``{"trigger": "packet_threshold" |
                   "time_threshold" | "pto"}``; PTO rows are not congestion
                   signals (aioquic retransmits the oldest packet on PTO)
pto_expired        ``extra``: ``{"pto_count": n}``
controller rows    ``cwnd_changed``, ``state_changed``, ``pacing_changed``,
                   ``persistent_congestion``: from the controller, after the
                   event that caused them
=================  ========================================================

Importing this module also registers every wtlab controller in aioquic's own
registry as ``"wtlab-<name>"`` (``QuicConfiguration(congestion_control_algorithm=
"wtlab-cubic")``). Such a connection runs the controller through the shim but
without recording and with aioquic's cwnd/srtt pacer; use :func:`attach` for
the full hook.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from aioquic.quic.congestion.base import QuicCongestionControl, register_congestion_control
from aioquic.quic.recovery import (
    K_MICRO_SECOND,
    K_PACKET_THRESHOLD,
    K_SECOND,
    QuicPacketPacer,
    QuicPacketRecovery,
)
from aioquic.quic.stream import QuicStreamSender

from wtlab.cc.base import Controller, create, names, on_register
from wtlab.cc.base import get as get_controller
from wtlab.cc.recovery import persistent_congestion
from wtlab.cc.rtt import RttStats
from wtlab.errors import ConfigError
from wtlab.trace import schema

__all__ = ["AIOQUIC_PREFIX", "ControllerPacer", "ControllerShim", "attach",
           "check_full_packets", "set_pacing_granularity"]

AIOQUIC_PREFIX = "wtlab-"
#: the smallest STREAM frame aioquic builds: type, stream id and length (3 + 1 bytes); with
#: less room left in a packet its ``_write_stream_frame`` writes nothing and returns 0
MIN_STREAM_FRAME_BYTES = 4


def check_full_packets(full_packets: Any) -> bool:
    """``full_packets`` as a bool, or ConfigError."""
    if not isinstance(full_packets, bool):
        raise ConfigError(f"full_packets={full_packets!r} must be True (send only whole "
                          "datagrams while the window is the limit, as TCP and deployed QUIC "
                          "stacks do) or False (aioquic's own: fill the window's last bytes "
                          "with a short packet)")
    return full_packets

_ON_DATA_DELIVERY = QuicStreamSender.on_data_delivery


def _datagram_delivered(delivery: Any, length: int) -> None:
    """A no-op delivery handler that marks a DATAGRAM frame of ``length`` bytes."""


def payload_bytes(packet: Any) -> int:
    """STREAM (not CRYPTO) and DATAGRAM frame data carried by an aioquic sent packet."""
    n = 0
    for handler, args in packet.delivery_handlers:
        if getattr(handler, "__func__", None) is _ON_DATA_DELIVERY:
            if handler.__self__._stream_id is not None:  # CRYPTO streams have no id
                n += args[1] - args[0]
        elif handler is _datagram_delivered:
            n += args[0]
    return n

_EXTRA_SENT = {
    (False, False): '{"ack_eliciting": false, "in_flight": false}',
    (False, True): '{"ack_eliciting": false, "in_flight": true}',
    (True, False): '{"ack_eliciting": true, "in_flight": false}',
}


class ConnectionCounters:
    """Packet and byte counters of one attached connection (read by ``session.stats()``).

    Sent counts are QUIC packets as aioquic builds them (``sent_bytes`` is the packet
    size, what the W3C API calls bytes sent without UDP/IP framing); received counts
    are UDP datagrams (a datagram may hold coalesced packets during the handshake).
    """

    __slots__ = ("packets_sent", "bytes_sent", "packets_acked", "bytes_acknowledged",
                 "packets_lost", "bytes_lost", "packets_received", "bytes_received")

    def __init__(self) -> None:
        self.packets_sent = self.bytes_sent = 0
        self.packets_acked = self.bytes_acknowledged = 0
        self.packets_lost = self.bytes_lost = 0
        self.packets_received = self.bytes_received = 0


class ControllerShim(QuicCongestionControl):
    """aioquic's ``QuicCongestionControl`` around a wtlab controller.

    Acked packets are collected per ACK frame and handed over in one
    ``on_packets_acked`` call: at the RTT sample, before a loss, or at the next
    read of ``congestion_window`` / ``bytes_in_flight``, whichever comes first.
    """

    def __init__(self, controller: Controller, *, recovery: QuicPacketRecovery | None = None,
                 rtt: RttStats | None = None, full_packets: bool = False) -> None:
        # QuicCongestionControl.__init__ only sets congestion_window, which is ours.
        self.controller = controller
        self.full_packets = full_packets
        self.building = False  # inside datagrams_to_send (the builder reads the window)
        self.mds = controller.max_datagram_size
        # the persistent-congestion duration's PTO (with max_ack_delay) as of now; each
        # sent packet keeps the value in force when it left (wtlab_pto_s)
        self.pto_s = math.inf
        self.pc_detail: str | None = None
        self.rtt = rtt if rtt is not None else RttStats()
        self.recovery = recovery
        self.pacer: ControllerPacer | None = None
        self._acked: list[Any] = []
        self._ack_now = 0.0
        self._last_now = 0.0
        self.loss_space: Any = None  # the space _detect_loss is looking at, for loss triggers
        self.in_pto = False  # inside a PTO expiry: expired packets are "lost" by PTO
        self.counters = ConnectionCounters()
        self.frame_bytes = 0  # packet and payload bytes newly acked by the current ACK frame
        self.frame_payload = 0

    # aioquic reads these three; they are the controller's outputs.
    @property
    def congestion_window(self) -> int:  # type: ignore[override]
        if self._acked:
            self.flush()
        cwnd = self.controller.cwnd
        if self.building and self.full_packets:
            # The packet builder gets whole datagrams of window while something is in
            # flight (its ack opens the window again); nothing in flight: all of it.
            bif = self.controller.bytes_in_flight
            room = cwnd - bif
            if bif > 0 and room > 0:
                return cwnd - room % self.mds
        return cwnd

    @property
    def bytes_in_flight(self) -> int:  # type: ignore[override]
        if self._acked:
            self.flush()
        return self.controller.bytes_in_flight

    @property
    def ssthresh(self) -> int | None:  # type: ignore[override]
        return self.controller.ssthresh

    def flush(self) -> None:
        """Hand the acks collected so far to the controller (one ACK frame)."""
        packets = self._acked
        if not packets:
            return
        self._acked = []
        self.controller.on_packets_acked(self._ack_now, packets, self.rtt)
        if self.pacer is not None:
            self.pacer.refresh()

    # ------------------------------------------------------ aioquic's interface
    def on_packet_sent(self, *, packet: Any) -> None:
        if self._acked:
            self.flush()
        packet.payload_bytes = payload_bytes(packet)
        packet.wtlab_pto_s = self.pto_s
        self.controller.on_packet_sent(packet.sent_time, packet)

    def on_packet_acked(self, *, now: float, packet: Any) -> None:
        self._acked.append(packet)
        self._ack_now = now
        c = self.counters
        c.packets_acked += 1
        c.bytes_acknowledged += packet.sent_bytes
        self.frame_bytes += packet.sent_bytes
        self.frame_payload += packet.payload_bytes

    def on_rtt_measurement(self, *, now: float, rtt: float) -> None:
        stats = self.rtt
        recovery = self.recovery
        if recovery is None:
            stats.update(rtt, now=now)
        else:
            # aioquic's estimator already ran; mirror it so both agree.
            stats.latest_rtt = rtt
            if recovery._rtt_min < stats.min_rtt:
                stats.min_rtt = recovery._rtt_min
                stats.min_rtt_time = now
            stats.smoothed_rtt = recovery._rtt_smoothed
            stats.rttvar = recovery._rtt_variance
            stats.adjusted_rtt = recovery._rtt_latest  # aioquic's sample less the ACK delay
            stats.has_sample = True
            stats.sample_count += 1
            self.pto_s = recovery.get_probe_timeout()  # with max_ack_delay, as RFC 9002 7.6.1
        controller = self.controller
        controller.rtt = stats
        if controller.recorder is not None:
            controller._record(now, schema.K_RTT_SAMPLE, -1, 0)
        self.flush()

    def on_packets_lost(self, *, now: float, packets: Iterable[Any]) -> None:
        if self._acked:
            self.flush()
        packets = list(packets)
        self._last_now = now
        c = self.counters
        c.packets_lost += len(packets)
        c.bytes_lost += sum(p.sent_bytes for p in packets)
        controller = self.controller
        if controller.recorder is None:
            controller.on_packets_lost(now, packets)
        else:
            space = self.loss_space
            threshold = (space.largest_acked_packet - K_PACKET_THRESHOLD
                         if space is not None else -1)
            controller.on_packets_lost(now, packets, [
                "packet_threshold" if p.packet_number <= threshold else "time_threshold"
                for p in packets])
        if self.pacer is not None:
            self.pacer.refresh()

    def on_packets_expired(self, *, packets: Iterable[Any]) -> None:
        if self._acked:
            self.flush()
        packets = list(packets)
        controller = self.controller
        if self.in_pto:
            c = self.counters
            c.packets_lost += len(packets)
            c.bytes_lost += sum(p.sent_bytes for p in packets)
            controller.on_packets_probed_lost(self._last_now, packets)
        else:
            controller.on_packets_discarded(packets)

    def on_persistent_congestion(self) -> None:
        detail, self.pc_detail = self.pc_detail, None
        self.controller.on_persistent_congestion_detected(self._last_now, detail)
        if self.pacer is not None:
            self.pacer.refresh()

    def get_log_data(self) -> dict[str, Any]:
        controller = self.controller
        data: dict[str, Any] = {"cwnd": controller.cwnd,
                                "bytes_in_flight": controller.bytes_in_flight}
        if controller.ssthresh is not None:
            data["ssthresh"] = controller.ssthresh
        if controller.pacing_rate_bps is not None and controller.pacing_rate_bps != math.inf:
            data["pacing_rate"] = int(controller.pacing_rate_bps)
        return data


class ControllerPacer(QuicPacketPacer):
    """aioquic's token-bucket pacer, paced at the controller's ``pacing_rate_bps``.

    With ``pacing_rate_bps`` None it is exactly aioquic's cwnd/srtt pacer. With
    a rate, one packet leaves every ``max_datagram_size / rate`` seconds, and
    the burst allowance is aioquic's (2..16 packets, a quarter of cwnd).

    With ``granularity_s`` > 0 (live connections: :func:`set_pacing_granularity`) and
    packets due more often than that, the pacer makes the sender wait at least
    ``granularity_s`` whenever it makes it wait at all, however often it asks, so
    packets leave in bursts of about that much time's worth (the bucket holds at least
    that, plus two packets); the long-run rate is unchanged. Slower flows are paced as
    without it.
    """

    def __init__(self, *, max_datagram_size: int, controller: Controller,
                 recovery: QuicPacketRecovery | None = None) -> None:
        super().__init__(max_datagram_size=max_datagram_size)
        self.controller = controller
        self.recovery = recovery
        #: the shortest wait the pacer imposes [s]; 0 (the default, and the virtual
        #: network's): each packet on time, by the rules below
        self.granularity_s = 0.0
        self._resume_s = -math.inf  # bursts: no send before this time

    def _bursty(self) -> bool:
        """Packets are due more often than ``granularity_s``: pace them in bursts."""
        return self.packet_time is not None and self.packet_time < self.granularity_s

    def _burst_cap_s(self) -> float:
        """What the bucket may hold while bursty: a granularity's worth plus two packets
        (or aioquic's allowance, if larger)."""
        return max(self.bucket_max, self.granularity_s + 2 * self.packet_time)

    # aioquic's pacer lets a packet go whenever *any* credit is left, so under ack
    # clocking (acks more often than one packet time) it sends at the ack rate, not
    # the pacing rate. A rate-based controller needs a whole packet of credit.
    def next_send_time(self, now: float) -> float | None:
        if self.controller.pacing_rate_bps == math.inf:
            return None  # the controller asked for no pacing: the window alone clocks
        if now < self._resume_s - 1e-9 and self._bursty():
            return self._resume_s
        if self.controller.pacing_rate_bps is None or self.packet_time is None:
            return super().next_send_time(now)
        self.update_bucket(now=now)
        missing = self.packet_time - self.bucket_time
        if missing > 1e-9:
            return now + missing
        return None

    def update_after_send(self, now: float) -> None:
        if self.controller.pacing_rate_bps is None or self.packet_time is None:
            super().update_after_send(now)
        else:
            self.update_bucket(now=now)
            self.bucket_time = max(self.bucket_time - self.packet_time, 0.0)
        if self._bursty() and self.next_send_time(now) is not None:
            self._resume_s = now + self.granularity_s  # the burst is over

    def update_bucket(self, now: float) -> None:
        if not self._bursty():
            super().update_bucket(now)
        elif now > self.evaluation_time:
            self.bucket_time = min(self.bucket_time + (now - self.evaluation_time),
                                   self._burst_cap_s())
            self.evaluation_time = now

    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        bucket_s = self.bucket_time
        self._update_rate(congestion_window, smoothed_rtt)
        if self._bursty():
            # aioquic's update clips the bucket to its own allowance: keep the burst's
            self.bucket_time = min(bucket_s, self._burst_cap_s())

    def _update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        controller = self.controller
        rate_bps = controller.pacing_rate_bps
        if rate_bps is None or rate_bps <= 0:
            super().update_rate(congestion_window, smoothed_rtt)
            return
        if rate_bps == math.inf:  # no pacing (see next_send_time)
            self.packet_time = None
            return
        pacing_rate = rate_bps / 8.0  # bytes per second
        mds = self._max_datagram_size
        self.packet_time = max(K_MICRO_SECOND, min(mds / pacing_rate, K_SECOND))
        self.bucket_max = max(2 * mds, min(controller.cwnd // 4, 16 * mds)) / pacing_rate
        if self.bucket_time > self.bucket_max:
            self.bucket_time = self.bucket_max

    def refresh(self) -> None:
        """Recompute the rate from the controller's current outputs."""
        recovery = self.recovery
        if self.controller.pacing_rate_bps is not None:
            self.update_rate(self.controller.cwnd, 0.0)
        elif recovery is not None and recovery._rtt_initialized:
            self.update_rate(self.controller.cwnd, recovery._rtt_smoothed)


def attach(quic: Any, controller: str | type[Controller] | Controller, *, recorder: Any = None,
           flow: int = 0, full_packets: bool = True) -> Controller:
    """Make ``quic`` (an aioquic ``QuicConnection``) use ``controller``; return it.

    ``controller`` is a registered name (``"cubic"``), a class or an instance.
    With ``recorder`` (a :class:`wtlab.trace.Recorder`), every packet sent,
    ACK frame, RTT sample, ack, loss (with its trigger), PTO expiry and every
    change of the controller is written to it as rows of ``flow``. Call before
    the connection sends its first packet; attaching twice raises ConfigError.

    ``full_packets=True`` (default): while the congestion window is the limit, send
    only whole datagrams, waiting for an ack rather than sending a short packet to
    fill the window's last bytes, as TCP (cwnd counted in segments) and deployed QUIC
    stacks do; ``False`` keeps aioquic's own behaviour (CUBIC then sends about a
    quarter of its packets short). A short packet still goes when data runs out, as a
    probe, or when nothing is in flight.
    """
    check_full_packets(full_packets)
    recovery = getattr(quic, "_loss", None)
    if not isinstance(recovery, QuicPacketRecovery):
        raise ConfigError(f"attach() needs an aioquic QuicConnection, got {type(quic).__name__}")
    if getattr(recovery, "_wtlab_attached", False):
        raise ConfigError("this connection already has a wtlab controller attached; "
                          "create a new QuicConnection to use another one")
    if recovery._cc.bytes_in_flight or any(space.sent_packets for space in recovery.spaces):
        raise ConfigError("attach() must run before the connection sends anything: "
                          "call it right after creating the QuicConnection")
    mds = quic._max_datagram_size
    if not isinstance(controller, Controller):
        controller = create(controller, max_datagram_size=mds)
    if recorder is not None:
        controller.recorder = recorder
        controller.flow = flow

    shim = ControllerShim(controller, recovery=recovery, full_packets=full_packets)
    pacer = ControllerPacer(max_datagram_size=mds, controller=controller, recovery=recovery)
    shim.pacer = pacer
    recovery._cc = shim
    recovery._pacer = pacer
    recovery._wtlab_attached = True
    recovery._wtlab_shim = shim

    _wrap_recovery(recovery, shim, controller, recorder)
    _wrap_connection(quic, controller, shim, mds)
    if controller.pacing_rate_bps is not None:
        pacer.refresh()
    return controller


def set_pacing_granularity(quic: Any, granularity_s: float) -> None:
    """Pace ``quic`` in bursts while its packets are due more often than ``granularity_s``
    [s]: once the pacer makes the sender wait, it waits at least that long and then
    sends that long's worth at once (same long-run rate).

    For a live connection. An asyncio loop on Linux sleeps in whole milliseconds, and a
    busy one comes round every few tens of microseconds, so pacing each packet on its
    own costs a loop pass, a timer and a packet-builder set-up per packet: on loopback
    that halved a CPU-bound sender's throughput. Deployed stacks pace in such bursts
    (quic-go's minimum pacing delay is 1 ms; Linux's fq releases TSO-sized bursts).
    The virtual network leaves it at 0, each packet on time: its CPU costs no virtual
    time. Needs :func:`attach` first; a connection without a wtlab controller is left
    alone.
    """
    if not (granularity_s >= 0 and math.isfinite(granularity_s)):
        raise ConfigError(f"granularity_s={granularity_s!r}: need a finite value >= 0")
    pacer = getattr(getattr(quic, "_loss", None), "_pacer", None)
    if isinstance(pacer, ControllerPacer):
        pacer.granularity_s = float(granularity_s)


def _wrap_recovery(recovery: QuicPacketRecovery, shim: ControllerShim, controller: Controller,
                   rec: Any) -> None:
    orig_on_ack_received = recovery.on_ack_received
    orig_detect_loss = recovery._detect_loss
    orig_timeout = recovery.on_loss_detection_timeout
    orig_on_packet_sent = recovery.on_packet_sent

    def on_ack_received(*, ack_rangeset: Any, ack_delay: float, now: float, space: Any) -> None:
        shim._last_now = now
        shim.frame_bytes = shim.frame_payload = 0
        orig_on_ack_received(ack_rangeset=ack_rangeset, ack_delay=ack_delay, now=now,
                             space=space)
        shim.flush()
        if rec is not None and shim.frame_bytes:
            # after the frame was handled (row contract: state after the event)
            largest = ack_rangeset.bounds().stop - 1
            controller._record(now, schema.K_ACK_RECEIVED, largest, shim.frame_bytes,
                               shim.frame_payload)
            ranges = ",".join(f"[{r.start}, {r.stop - 1}]" for r in ack_rangeset)
            epoch = _epoch_name(space, recovery)
            rec.set_extra(len(rec) - 1,
                          f'{{"ranges": [{ranges}], "ack_delay_s": {ack_delay!r}, '
                          f'"epoch": "{epoch}"}}')

    def _detect_loss(*, now: float, space: Any) -> None:
        shim.loss_space = space
        shim._last_now = now
        try:
            orig_detect_loss(now=now, space=space)
            # A clock that lands exactly on the loss timer (virtual time does) can find
            # sent + delay - delay < sent by one ulp: nothing is declared lost, the
            # timer is re-armed at the same instant and the driver spins. Step past
            # the rounding (a few ulps) so the packet is declared lost as intended.
            t = now
            for _ in range(4):
                if space.loss_time is None or space.loss_time > t:
                    break
                t = math.nextafter(max(t, space.loss_time), math.inf)
                orig_detect_loss(now=t, space=space)
        finally:
            shim.loss_space = None

    def on_loss_detection_timeout(*, now: float) -> None:
        shim._last_now = now
        if recovery._get_loss_space() is not None:
            orig_timeout(now=now)
            return
        # A PTO: aioquic retransmits the oldest packet and sends a probe.
        if rec is not None:
            controller._record(now, schema.K_PTO_EXPIRED, -1, 0)
            rec.set_extra(len(rec) - 1, f'{{"pto_count": {recovery._pto_count + 1}}}')
        shim.in_pto = True
        try:
            orig_timeout(now=now)
        finally:
            shim.in_pto = False
        controller.on_pto_expired(now, recovery._pto_count)

    def _in_persistent_congestion(*, packets: list) -> bool:
        # RFC 9002 7.6.2 as aioquic checks it (a contiguous run of lost ack-eliciting
        # packets sent after the first RTT sample), with the duration of 7.6.1 from the
        # RTT estimate when the run began if shorter (see the module docstring).
        if not recovery._rtt_initialized:
            return False
        shim.pc_detail = persistent_congestion(
            packets, first_sample_s=recovery._rtt_first_sample_time,
            now_pto_s=recovery.get_probe_timeout(),
            pto_at_send=lambda p: getattr(p, "wtlab_pto_s", math.inf),
            eligible=lambda p: p.is_ack_eliciting)
        return shim.pc_detail is not None

    recovery.on_ack_received = on_ack_received  # type: ignore[method-assign]
    recovery._detect_loss = _detect_loss  # type: ignore[method-assign]
    recovery._in_persistent_congestion = _in_persistent_congestion  # type: ignore[method-assign]
    recovery.on_loss_detection_timeout = on_loss_detection_timeout  # type: ignore[method-assign]

    counters = shim.counters
    if rec is None:
        def on_packet_sent_counted(*, packet: Any, space: Any) -> None:
            counters.packets_sent += 1
            counters.bytes_sent += packet.sent_bytes
            orig_on_packet_sent(packet=packet, space=space)

        recovery.on_packet_sent = on_packet_sent_counted  # type: ignore[method-assign]
    else:
        def on_packet_sent(*, packet: Any, space: Any) -> None:
            counters.packets_sent += 1
            counters.bytes_sent += packet.sent_bytes
            orig_on_packet_sent(packet=packet, space=space)
            if packet.in_flight:
                # The controller wrote the packet_sent row (base class).
                if not packet.is_ack_eliciting:
                    rec.set_extra(len(rec) - 1, _EXTRA_SENT[(False, True)])
            else:
                controller._record(packet.sent_time, schema.K_PACKET_SENT,
                                   packet.packet_number, packet.sent_bytes,
                                   payload_bytes(packet))
                rec.set_extra(len(rec) - 1, _EXTRA_SENT[(packet.is_ack_eliciting, False)])

        recovery.on_packet_sent = on_packet_sent  # type: ignore[method-assign]


def _epoch_name(space: Any, recovery: QuicPacketRecovery) -> str:
    if space.is_application_data:
        return "application"
    try:
        return ("initial", "handshake")[recovery.spaces.index(space)]
    except (ValueError, IndexError):
        return "unknown"


def _wrap_connection(quic: Any, controller: Controller, shim: ControllerShim, mds: int) -> None:
    orig_datagrams_to_send = quic.datagrams_to_send

    def datagrams_to_send(now: float) -> list:
        shim.building = True
        try:
            datagrams = orig_datagrams_to_send(now)
        finally:
            shim.building = False
        # Window to spare, not held back by the pacer: the application ran dry
        # (or flow control blocked it), which BBR must know for its rate samples.
        if (quic._pacing_at is None
                and controller.cwnd - controller.bytes_in_flight >= mds
                and quic._handshake_complete):
            controller.on_app_limited(now)
        return datagrams

    quic.datagrams_to_send = datagrams_to_send

    orig_write_datagram_frame = quic._write_datagram_frame

    def _write_datagram_frame(builder: Any, data: bytes, frame_type: Any) -> bool:
        done = orig_write_datagram_frame(builder=builder, data=data, frame_type=frame_type)
        # aioquic keeps no delivery handler for DATAGRAM frames: mark the packet's payload
        builder._packet.delivery_handlers.append((_datagram_delivered, (len(data),)))
        return done

    quic._write_datagram_frame = _write_datagram_frame

    orig_write_stream_frame = quic._write_stream_frame

    def _write_stream_frame(builder: Any, space: Any, stream: Any, max_offset: int) -> int:
        # aioquic offers each stream with data a place in every packet; once one frame has
        # filled the packet, the others find no room for a frame header and aioquic
        # returns 0 having written nothing. Answer that without building the frame (with
        # ten busy streams a connection, most calls were these; same packets either way).
        if builder.remaining_flight_space < MIN_STREAM_FRAME_BYTES:
            return 0
        return orig_write_stream_frame(builder, space, stream, max_offset)

    quic._write_stream_frame = _write_stream_frame

    orig_receive_datagram = quic.receive_datagram
    counters = shim.counters

    def receive_datagram(data: bytes, addr: Any, now: float) -> None:
        counters.packets_received += 1
        counters.bytes_received += len(data)
        orig_receive_datagram(data, addr, now)

    quic.receive_datagram = receive_datagram
    quic._wtlab_counters = counters


# ------------------------------------------------ aioquic registry: "wtlab-<name>"
def _register_in_aioquic(name: str, cls: type[Controller] | None = None) -> None:
    def factory(*, max_datagram_size: int) -> QuicCongestionControl:
        klass = cls if cls is not None else get_controller(name)
        return ControllerShim(klass(max_datagram_size=max_datagram_size))

    register_congestion_control(AIOQUIC_PREFIX + name, factory)


for _name in names():
    _register_in_aioquic(_name)
on_register(lambda name, cls: _register_in_aioquic(name, cls))
