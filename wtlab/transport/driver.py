"""The asyncio driver: one :class:`Endpoint` per QUIC connection.

All I/O goes through the running loop (``loop.time()``, ``loop.call_at``,
``loop.call_soon`` and the datagram transport the loop created), so the same
code runs on a virtual-time loop unchanged.

Why it is faster than aioquic's ``QuicConnectionProtocol``: that protocol
builds packets after every incoming datagram. Here an incoming datagram only
updates the connection; transmission is deferred by one loop iteration and
deferred again while more datagrams keep arriving (at most ``RX_BATCH``
times), so a burst of ACKs or data is absorbed before one transmit fills the
window. Application writes in the same iteration are coalesced the same way.

**The liveness invariant.** After every entry into the driver (a datagram, an
application call, a timer), whatever the connection holds to send (stream data,
datagrams, ACKs, flow-control credit, probes, a close) leaves either through a
transmit already scheduled on the loop or through the connection's timer, armed
at ``quic.get_timer()``. A transmit is skipped only where one of these holds,
and each keeps the invariant by construction:

1. *Nothing new* (``_tx_tick``): nothing was handed to aioquic (``Connection.
   tx_wanted`` is False: every aioquic call that queues something to send sets
   it, see :class:`Connection`) and no datagram arrived since the last
   ``datagrams_to_send``. That call built all it could; what it left waits for
   cwnd or amplification credit (which only a datagram brings) or for a time
   (pacing, ACK delay, loss detection), and the timer is armed at that time.
2. *Only an ACK is due later* (:meth:`Endpoint._only_an_ack_is_due_later`): no
   local send, the datagrams brought only stream data or datagrams (no other
   event), nothing was acknowledged or declared lost, and aioquic already set
   its ACK timer (``ack_at``, at most ``max_ack_delay`` away). Whatever those
   packets make sendable (the ACK, flow-control credit, a PATH_RESPONSE) leaves
   when that timer fires; the timer is armed before returning.
3. *Paced out* (:meth:`Endpoint._paced_out`): aioquic's own first check in
   ``_write_application`` would refuse to build; this sets ``_pacing_at`` as
   aioquic does, so the timer fires when the pacer allows the next packet.

ECN (:mod:`wtlab.cc.aioquic_ecn`): when the socket can carry the ECN field (the
virtual network's always can; a live socket from :mod:`wtlab.transport.ecn_udp`
when the OS lets it), the endpoint gets ``sendto_ecn`` and the connection an
:class:`~wtlab.cc.aioquic_ecn.EcnSeam`: each datagram's codepoint goes to the
seam with the datagram, each batch of datagrams leaves with the seam's
``tx_codepoint``. A CE mark makes aioquic's ACK overdue at once (``ack_at`` one ulp
before now), which rule 2 reads as an ACK due now and rule 3 as one the pacer must not
hold, so the transmit is not skipped.

Deferrals (``RX_BATCH``, ``READY_DEFER``) are bounded, so a scheduled transmit
always runs within a few loop iterations. ``tests/transport/test_liveness.py``
checks the invariant on random event sequences and live exchanges.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aioquic import tls
from aioquic.quic.connection import END_STATES, QuicConnection
from aioquic.quic.events import (
    ConnectionIdIssued,
    ConnectionIdRetired,
    DatagramFrameReceived,
    StreamDataReceived,
)

from wtlab.errors import ConfigError, UnknownAlgorithm
from wtlab.transport import protocol as P
from wtlab.transport.session import Session, Stream
from wtlab.transport.udp import pacing_granularity_s

logger = logging.getLogger("wtlab.transport")

RX_BATCH = 16  # loop iterations a transmit may be deferred while datagrams keep arriving
READY_DEFER = 2  # iterations a transmit may wait for other runnable callbacks
BURST_GAP_S = 0.0002  # datagrams closer than this are treated as one burst
H3_NO_ERROR = 0x100
# Session close codes the server uses when a limit is exceeded.
CLOSE_STREAM_LIMIT = 0x4C01
CLOSE_BUFFER_LIMIT = 0x4C02


class Connection(QuicConnection):
    """aioquic's ``QuicConnection`` that notes when something is handed to it to send.

    ``tx_wanted`` is set by every public call that queues data or frames, and
    cleared by the driver when it calls ``datagrams_to_send``; the driver's skip
    rules read it (see the module docstring). Code that writes to a stream's
    sender directly (the stream fast path in :mod:`wtlab.transport.session`)
    sets it too.
    """

    tx_wanted = True

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self.tx_wanted = True
        super().send_stream_data(stream_id, data, end_stream)

    def send_datagram_frame(self, data: bytes) -> None:
        self.tx_wanted = True
        super().send_datagram_frame(data)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        self.tx_wanted = True
        super().reset_stream(stream_id, error_code)

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        self.tx_wanted = True
        super().stop_stream(stream_id, error_code)

    def send_ping(self, uid: int) -> None:
        self.tx_wanted = True
        super().send_ping(uid)

    def close(self, *args: Any, **kwargs: Any) -> None:
        self.tx_wanted = True
        super().close(*args, **kwargs)

    def change_connection_id(self) -> None:
        self.tx_wanted = True
        super().change_connection_id()

    def request_key_update(self) -> None:
        self.tx_wanted = True
        super().request_key_update()

    def connect(self, *args: Any, **kwargs: Any) -> None:
        self.tx_wanted = True
        super().connect(*args, **kwargs)


def make_controller(congestion_control: Any, max_datagram_size: int, recorder: Any, flow: int):
    """The wtlab controller for a new connection, or None if the aioquic adapter is missing.

    W3C hints ("default", "throughput", "low-latency") resolve through
    :func:`wtlab.cc.get`; if the hinted controller is not registered yet, Reno
    stands in. Unknown names raise :class:`~wtlab.errors.UnknownAlgorithm`.
    """
    try:
        import wtlab.cc.aioquic  # noqa: F401  (registers controllers with aioquic)
    except ImportError:  # pragma: no cover - only before the cc adapter existed
        return None
    import wtlab.cc as cc

    try:
        return cc.create(congestion_control, max_datagram_size=max_datagram_size,
                         recorder=recorder, flow=flow)
    except UnknownAlgorithm:
        if isinstance(congestion_control, str) and congestion_control in cc.HINTS:
            return cc.create("reno", max_datagram_size=max_datagram_size, recorder=recorder,
                             flow=flow)
        raise


def attach_controller(quic: QuicConnection, controller: Any, recorder: Any, flow: int,
                      full_packets: bool = True) -> None:
    if controller is None:
        return
    from wtlab.cc.aioquic import attach

    attach(quic, controller, recorder=recorder, flow=flow, full_packets=full_packets)


def pace_for(quic: QuicConnection, transport: Any) -> None:
    """Pace ``quic``'s packets at the granularity its transport needs: bursts of up to
    1 ms on a real socket, each packet on time on the virtual network
    (:func:`wtlab.transport.udp.pacing_granularity_s`)."""
    from wtlab.cc.aioquic import set_pacing_granularity

    set_pacing_granularity(quic, pacing_granularity_s(transport))


def attach_ecn(quic: QuicConnection, controller: Any, sendto_ecn: Any, now: float) -> Any:
    """The connection's ECN seam if the socket carries the ECN field (``sendto_ecn``),
    else None; a controller that wanted ECN then records that it is off."""
    existing = getattr(quic, "_wtlab_ecn", None)
    if existing is not None:  # enabled before the first datagram (the server does)
        return existing
    if controller is None or getattr(quic._loss, "_wtlab_shim", None) is None:
        return None
    if sendto_ecn is None:
        if getattr(controller, "ecn_codepoint", 0):
            controller.on_ecn_validation(now, controller.ecn_state, "failed",
                                         "this socket cannot set or read the ECN field")
        return None
    from wtlab.cc.aioquic_ecn import enable_ecn

    return enable_ecn(quic, controller)


class Endpoint:
    """A QUIC connection carrying WebTransport, driven on the running asyncio loop."""

    def __init__(self, quic: QuicConnection, wt: P.WebTransportConnection, *,
                 sendto: Callable[[bytes, Any], None], controller: Any = None,
                 recorder: Any = None, flow: int = 0,
                 sendto_ecn: Callable[[bytes, Any, int], None] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.quic = quic
        self.wt = wt
        self.is_client = wt.is_client
        self._sendto = sendto
        self._sendto_ecn = sendto_ecn
        #: the connection's ECN seam (wtlab.cc.aioquic_ecn), None without ECN
        self.ecn = attach_ecn(quic, controller, sendto_ecn, self.loop.time())
        self.controller = controller
        self.recorder = recorder
        self.flow = flow
        self.sessions: dict[int, Session] = {}
        self.streams: dict[int, Stream] = {}
        self.blocked_writers: set[Stream] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tx_handle: asyncio.Handle | None = None
        self._rx_count = 0
        self._last_rx_time = -1.0
        self._rx_mark = 0
        self._rx_at_tx = -1  # _rx_count at the last transmit
        self._deferrals = 0
        self._bif_at_tx = 0
        self.handshake: asyncio.Future = self.loop.create_future()
        self.settings: asyncio.Future = self.loop.create_future()
        self.closed: asyncio.Future = self.loop.create_future()
        self.session_waiters: dict[int, asyncio.Future] = {}
        self._close_waiters: list[tuple[int, asyncio.Future]] = []
        self.cids: set[bytes] = set()
        self.on_session_request: Callable[[Endpoint, P.SessionRequested], None] | None = None
        self.on_cid_issued: Callable[[Endpoint, bytes], None] | None = None
        self.on_cid_retired: Callable[[Endpoint, bytes], None] | None = None
        self.on_terminated: Callable[[Endpoint], None] | None = None
        self.on_close_transport: Callable[[], None] | None = None
        self.max_streams_per_session: int | None = None
        self.terminated = False
        self.close_error: tuple[int, str] | None = None
        self._dispatch = {
            P.StreamData: self._on_stream_data,
            P.DatagramReceived: self._on_datagram,
            P.StreamResetReceived: self._on_stream_reset,
            P.StopSendingReceived: self._on_stop_sending,
            P.SessionRequested: self._on_session_requested,
            P.SessionEstablished: self._on_session_established,
            P.SessionRejected: self._on_session_rejected,
            P.SessionClosed: self._on_session_closed,
            P.SessionDraining: self._on_session_draining,
            P.CreditAvailable: self._on_credit,
            P.CapsuleReceived: lambda ev: None,
            P.HandshakeDone: self._on_handshake,
            P.SettingsReceived: self._on_settings,
            P.ConnectionClosed: self._on_connection_closed,
        }

    # ------------------------------------------------------------------ input
    def datagram_received(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        now = self.loop.time()
        if ecn and self.ecn is not None:
            self.ecn.receive_datagram(data, addr, now, ecn)
        else:
            self.quic.receive_datagram(data, addr, now=now)
        self.process_events()
        self._rx_count += 1
        if self._tx_handle is None:
            if not self.quic.tx_wanted and self._only_an_ack_is_due_later():
                # data only, its ACK already scheduled: nothing to send before that timer
                # (an application write in response schedules its own transmit)
                self._arm_timer()
                self._last_rx_time = now
                return
            # In a burst (datagrams closer than BURST_GAP_S), look again next iteration:
            # more may be queued behind this one. An isolated datagram (a request) is
            # answered in the next iteration, together with what the application writes.
            burst = now - self._last_rx_time < BURST_GAP_S
            self._rx_mark = -1 if burst else self._rx_count
            self._tx_handle = self.loop.call_soon(self._tx_tick)
        self._last_rx_time = now

    def schedule_transmit(self) -> None:
        """Transmit within a few loop iterations (call after handing aioquic anything)."""
        self.quic.tx_wanted = True
        if self._tx_handle is None and not self.terminated:
            self._rx_mark = self._rx_count
            self._tx_handle = self.loop.call_soon(self._tx_tick)

    def _tx_tick(self) -> None:
        if self._rx_count != self._rx_mark and self._deferrals < RX_BATCH:
            self._rx_mark = self._rx_count
            self._deferrals += 1
            self._tx_handle = self.loop.call_soon(self._tx_tick)
            return
        if self._deferrals < READY_DEFER and getattr(self.loop, "_ready", None):
            # Other callbacks are runnable (typically a task woken by the data we just
            # received): let them write first, so the answer leaves in this transmit.
            self._deferrals += 1
            self._tx_handle = self.loop.call_soon(self._tx_tick)
            return
        self._tx_handle = None
        self._deferrals = 0
        if not self.quic.tx_wanted and (self._rx_count == self._rx_at_tx
                                or self._only_an_ack_is_due_later()):
            # A transmit now would build empty packets: nothing arrived and nothing was
            # written since the last one (a timer sent what was due meanwhile), or only
            # data arrived, nothing was acked or lost, and aioquic has already scheduled
            # its ACK (1 ms after the first unacked packet), whose timer sends it all.
            self._arm_timer()
            return
        self.transmit()

    def _only_an_ack_is_due_later(self) -> bool:
        quic = self.quic
        if (not quic._handshake_confirmed or quic._close_pending
                or quic._loss.bytes_in_flight < self._bif_at_tx):
            return False
        now = self.loop.time()
        scheduled = False
        for space in quic._loss.spaces:
            at = space.ack_at
            if at is not None:
                if at <= now:
                    return False
                scheduled = True
        return scheduled

    def transmit(self) -> None:
        """Send what the connection has queued and re-arm its timer."""
        if self.terminated:
            return
        quic = self.quic
        sendto = self._sendto
        quic.tx_wanted = False
        self._rx_at_tx = self._rx_count
        now = self.loop.time()
        if not self._paced_out(now):
            datagrams = quic.datagrams_to_send(now=now)
            ecn = self.ecn
            codepoint = 0 if ecn is None else ecn.tx_codepoint
            if codepoint:
                sendto_ecn = self._sendto_ecn
                for data, addr in datagrams:
                    sendto_ecn(data, addr, codepoint)
            else:
                for data, addr in datagrams:
                    sendto(data, addr)
        self._bif_at_tx = quic._loss.bytes_in_flight
        self._arm_timer()
        if self.blocked_writers:
            self._wake_writers()

    def _paced_out(self, now: float) -> bool:
        """True if aioquic would build nothing now because the pacer holds it back.

        In an established connection with one path, aioquic's application-data loop
        starts with the pacing check (unless an ACK is overdue) and returns before any
        frame when the pacer says wait: then ``datagrams_to_send`` builds no packet
        and its only effect is ``_pacing_at``, which this sets the same way. It is
        cheap, and an ACK arriving while the pacer is empty (common under pacing)
        no longer costs a builder, a flush and a scan of every stream.
        """
        quic = self.quic
        if (not quic._handshake_confirmed or quic._close_pending
                or quic._state in END_STATES or len(quic._network_paths) != 1
                or quic._remote_preferred_address is not None):
            return False
        ack_at = quic._spaces[tls.Epoch.ONE_RTT].ack_at
        if ack_at is not None and ack_at < now:
            return False
        at = quic._loss._pacer.next_send_time(now=now)
        if at is None:
            return False
        quic._pacing_at = at
        return True

    def _arm_timer(self) -> None:
        quic = self.quic
        timer_at = quic.get_timer()
        if self._timer is not None and self._timer_at != timer_at:
            self._timer.cancel()
            self._timer = None
        if self._timer is None and timer_at is not None:
            self._timer = self.loop.call_at(timer_at, self._on_timer)
        self._timer_at = timer_at

    def _on_timer(self) -> None:
        self._timer = None
        now = max(self._timer_at or 0.0, self.loop.time())
        self._timer_at = None
        self.quic.handle_timer(now=now)
        self.process_events()
        self.transmit()

    def _wake_writers(self) -> None:
        for stream in list(self.blocked_writers):
            # each writer waits for its own mark (HIGH_WATER_BYTES unless it asked for less)
            if (stream._error is not None or stream._stop_code is not None
                    or stream.unsent_bytes() <= stream._wake_at):
                self.blocked_writers.discard(stream)
                stream._wake_writer()

    def process_events(self) -> None:
        quic = self.quic
        handle = self.wt.handle_event
        dispatch = self._dispatch
        ev = quic.next_event()
        while ev is not None:
            t = type(ev)
            if t is ConnectionIdIssued:
                self.cids.add(ev.connection_id)
                if self.on_cid_issued is not None:
                    self.on_cid_issued(self, ev.connection_id)
            elif t is ConnectionIdRetired:
                self.cids.discard(ev.connection_id)
                if self.on_cid_retired is not None:
                    self.on_cid_retired(self, ev.connection_id)
            else:
                if t is not StreamDataReceived and t is not DatagramFrameReceived:
                    quic.tx_wanted = True  # e.g. a reset or a handshake step: answer now
                for wev in handle(ev):
                    tw = type(wev)
                    if tw is not P.StreamData and tw is not P.DatagramReceived:
                        quic.tx_wanted = True
                    dispatch[tw](wev)
            ev = quic.next_event()
        if self._close_waiters:
            self._check_close_waiters()

    def dispatch(self, wev: P.WtEvent) -> None:
        self._dispatch[type(wev)](wev)

    # --------------------------------------------------------------- handlers
    def _on_stream_data(self, ev: P.StreamData) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is None:
            if not ev.new:
                return
            session = self.sessions.get(ev.session_id)
            if session is None:
                return
            sid = ev.stream_id
            uni = bool(sid & 2)
            stream = Stream(session, sid, readable=True, writable=not uni)
            self.streams[sid] = stream
            session._peer_streams_open += 1
            session._on_stream(stream, uni)
            if self.recorder is not None:
                self.record("stream_opened", stream_id=sid)
            limit = self.max_streams_per_session
            if limit is not None and session._peer_streams_open > limit:
                stream._feed(ev.data, ev.end_stream)
                self.limit_exceeded(session, "streams per session", limit)
                return
        stream._feed(ev.data, ev.end_stream)
        if ev.end_stream:
            self.stream_maybe_done(stream)

    def _on_datagram(self, ev: P.DatagramReceived) -> None:
        session = self.sessions.get(ev.session_id)
        if session is not None:
            if self.recorder is not None:
                self.record("datagram_received", nbytes=len(ev.data))
            session._on_datagram(ev.data)

    def _on_stream_reset(self, ev: P.StreamResetReceived) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream._on_reset(ev.code)
            self.stream_maybe_done(stream)

    def _on_stop_sending(self, ev: P.StopSendingReceived) -> None:
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            self.blocked_writers.discard(stream)
            stream._on_stop_sending(ev.code)
            self.stream_maybe_done(stream)

    def _on_session_requested(self, ev: P.SessionRequested) -> None:
        if self.on_session_request is None:
            self.wt.reject(ev.session_id, 404)
            self.schedule_transmit()
            return
        self.on_session_request(self, ev)

    def _on_session_established(self, ev: P.SessionEstablished) -> None:
        fut = self.session_waiters.pop(ev.session_id, None)
        if fut is not None and not fut.done():
            fut.set_result(ev)

    def _on_session_rejected(self, ev: P.SessionRejected) -> None:
        fut = self.session_waiters.pop(ev.session_id, None)
        if fut is not None and not fut.done():
            fut.set_result(ev)

    def _on_session_closed(self, ev: P.SessionClosed) -> None:
        session = self.sessions.get(ev.session_id)
        if session is not None:
            session._on_closed(ev.code, ev.reason)
        self.schedule_transmit()

    def _on_session_draining(self, ev: P.SessionDraining) -> None:
        session = self.sessions.get(ev.session_id)
        if session is not None:
            session._on_drain()

    def _on_credit(self, ev: P.CreditAvailable) -> None:
        session = self.sessions.get(ev.session_id)
        if session is not None:
            session._on_credit()

    def _on_handshake(self, ev: P.HandshakeDone) -> None:
        if not self.handshake.done():
            self.handshake.set_result(ev)

    def _on_settings(self, ev: P.SettingsReceived) -> None:
        if not self.settings.done():
            self.settings.set_result(ev.settings)

    def _on_connection_closed(self, ev: P.ConnectionClosed) -> None:
        self.close_error = (ev.error_code, ev.reason)
        self._terminate()

    # ------------------------------------------------------------- lifecycle
    def _terminate(self) -> None:
        if self.terminated:
            return
        self.terminated = True
        code, reason = self.close_error or (0, "connection closed")
        for session in list(self.sessions.values()):
            session._on_closed(0 if code == H3_NO_ERROR else code, reason or "connection closed")
        for fut in (self.handshake, self.settings):
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection closed (0x{code:x}) {reason}"))
                fut.exception()  # mark retrieved
        for fut in list(self.session_waiters.values()):
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection closed (0x{code:x}) {reason}"))
                fut.exception()
        self.session_waiters.clear()
        for _, fut in self._close_waiters:
            if not fut.done():
                fut.set_result(None)
        self._close_waiters.clear()
        for stream in list(self.blocked_writers):
            stream._wake_writer()
        self.blocked_writers.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._tx_handle is not None:
            self._tx_handle.cancel()
            self._tx_handle = None
        if not self.closed.done():
            self.closed.set_result(self.close_error)
        if self.on_terminated is not None:
            self.on_terminated(self)

    def close(self, error_code: int = H3_NO_ERROR, reason: str = "") -> None:
        """Close the QUIC connection now (CONNECTION_CLOSE), without waiting."""
        if self.terminated:
            return
        self.quic.close(error_code=error_code, reason_phrase=reason)
        self.transmit()
        self.close_error = (error_code, reason)
        self._terminate()
        if self.on_close_transport is not None:
            self.on_close_transport()

    def session_finished(self, session: Session) -> None:
        self.sessions.pop(session.session_id, None)
        for sid in list(session._streams):
            self.streams.pop(sid, None)
            self.blocked_writers.discard(session._streams[sid])

    def forget_stream(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            self.blocked_writers.discard(stream)

    def stream_maybe_done(self, stream: Stream) -> None:
        """Drop our reference once the protocol layer has finished with the stream."""
        sid = stream.stream_id
        if sid not in self.wt.streams and self.streams.pop(sid, None) is not None:
            session = stream.session
            session._streams.pop(sid, None)
            if bool(sid & 1) == self.is_client:  # peer-initiated
                session._peer_streams_open -= 1

    async def session_closed_locally(self, session: Session) -> None:
        """(client) After our CLOSE capsule: let it be delivered, then close the connection."""
        if not self.is_client or self.terminated:
            return
        sid = session.session_id
        fut = self.loop.create_future()
        self._close_waiters.append((sid, fut))
        self._check_close_waiters()
        srtt = getattr(self.quic._loss, "_rtt_smoothed", 0.0) or 0.1
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout=min(1.0, max(0.05, 4 * srtt)))
        except TimeoutError:
            pass
        if not self.sessions:
            self.close(H3_NO_ERROR, "")

    def _check_close_waiters(self) -> None:
        streams = self.quic._streams
        keep = []
        for sid, fut in self._close_waiters:
            qs = streams.get(sid)
            if qs is None or qs.sender.is_finished or fut.done():
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((sid, fut))
        self._close_waiters = keep

    def limit_exceeded(self, session: Session, what: str, limit: int) -> None:
        """A server limit was exceeded: close that session with an error code."""
        if session.closed:
            return
        code = CLOSE_BUFFER_LIMIT if what == "buffered bytes" else CLOSE_STREAM_LIMIT
        reason = f"{what} limit of {limit} exceeded"
        logger.info("closing session %d on %s", session.session_id, reason)
        self.wt.close_session(session.session_id, code, reason)
        session._on_closed(code, reason, local=True)
        self.schedule_transmit()
        server = getattr(self, "server", None)
        if server is not None:
            server.limit_hits += 1

    # ---------------------------------------------------------------- tracing
    def record(self, kind: str, *, nbytes: int = 0, stream_id: int | None = None) -> None:
        rec = self.recorder
        if rec is not None:
            rec.event(self.loop.time(), kind, flow=self.flow, stream_id=stream_id, bytes=nbytes)

    def record_stream_opened(self, stream_id: int) -> None:
        if self.recorder is not None:
            self.record("stream_opened", stream_id=stream_id)

    def connection_stats(self) -> dict[str, Any]:
        loss = self.quic._loss
        srtt = getattr(loss, "_rtt_smoothed", 0.0)
        min_rtt = getattr(loss, "_rtt_min", None)
        out: dict[str, Any] = {
            "srtt_s": srtt if getattr(loss, "_rtt_initialized", True) else None,
            "min_rtt_s": None if min_rtt is None or min_rtt == float("inf") else min_rtt,
            "latest_rtt_s": getattr(loss, "_rtt_latest", None),
            "cwnd": loss.congestion_window,
            "bytes_in_flight": loss.bytes_in_flight,
            "controller": getattr(self.controller, "name", "aioquic-reno"),
        }
        return out


def check_url(url: str) -> tuple[str, int, str, str]:
    """(host, port, path_with_query, authority) of an https WebTransport URL, or InvalidURL."""
    from urllib.parse import urlsplit

    from wtlab.errors import InvalidURL

    if not isinstance(url, str) or not url:
        raise InvalidURL(f"{url!r} is not a URL; give https://host:port/path")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r} is malformed ({exc}); give https://host:port/path") from None
    if parts.scheme.lower() != "https":
        raise InvalidURL(f"{url!r} has scheme {parts.scheme or '(none)'!r}; WebTransport needs "
                         "https://host:port/path")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"{url!r} has no host; give https://host:port/path")
    if port is None:
        port = 443
    if not 0 < port < 65536:
        raise InvalidURL(f"{url!r}: port {port} is outside 1..65535")
    if parts.username or parts.password:
        raise InvalidURL(f"{url!r} carries credentials; WebTransport URLs must not")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host, port, path, authority


def check_error_code(code: int) -> None:
    if not isinstance(code, int) or not 0 <= code <= P.MAX_APP_ERROR:
        raise ConfigError(f"error code {code!r} must be an int in 0..2**32-1")


def check_idle_timeout(idle_timeout_s: object) -> float:
    """The QUIC idle timeout in seconds, checked (a typed error rather than a silent hang)."""
    if isinstance(idle_timeout_s, bool) or not isinstance(idle_timeout_s, (int, float)) or not (
            0 < idle_timeout_s <= 3600):
        raise ConfigError(f"idle_timeout_s={idle_timeout_s!r} must be a number of seconds in "
                          "(0, 3600]")
    return float(idle_timeout_s)


#: QUIC packet sizes (UDP payload) wtlab's client and server accept: QUIC's minimum (1200,
#: aioquic's default) up to what a 1500-byte Ethernet MTU carries under IPv4 + UDP (1472)
MIN_DATAGRAM_SIZE = 1200
MAX_DATAGRAM_SIZE = 1472


def check_max_datagram_size(max_datagram_size: object) -> int:
    """The QUIC packet size in bytes (UDP payload), checked: 1200..1472."""
    if isinstance(max_datagram_size, bool) or not isinstance(max_datagram_size, int) or not (
            MIN_DATAGRAM_SIZE <= max_datagram_size <= MAX_DATAGRAM_SIZE):
        raise ConfigError(
            f"max_datagram_size={max_datagram_size!r} must be an integer number of bytes in "
            f"{MIN_DATAGRAM_SIZE}..{MAX_DATAGRAM_SIZE} (QUIC's minimum up to a 1500-byte MTU "
            "less 28 bytes of IPv4 and UDP headers; 1472 matches TCP's 1448-byte segments)")
    return max_datagram_size
