"""The asyncio face of a WebTransport session: :class:`Session` and :class:`Stream`.

Both are thin: they keep buffers and waiters and call the sans-IO
:class:`~wtlab.transport.protocol.WebTransportConnection` through their
:class:`~wtlab.transport.driver.Endpoint`, which owns the QUIC connection, its
timer and its transmissions.

What a user may rely on:

* ``stream.write(data)`` queues at once and never blocks; ``await stream.drain()``
  (or ``await stream.write(data)``) waits while more than ``HIGH_WATER_BYTES`` of
  this stream are still unsent, so nothing buffers without bound.
* ``read(n)`` returns up to ``n`` bytes (``n=-1``: everything up to FIN), ``b""``
  at FIN; ``readexactly(n)`` raises ``asyncio.IncompleteReadError`` at an early FIN.
* When the peer resets a stream, its readers get :class:`~wtlab.errors.StreamReset`;
  when the peer sends STOP_SENDING, writers get it.
* When the session is closed (by the peer, locally, or with the connection),
  every waiter and every later call gets :class:`~wtlab.errors.SessionClosed`
  with the close code and reason.
* ``session.send_datagram(data)`` queues at once and never blocks. Awaiting it
  (``await session.send_datagram(data)``) waits while more than
  ``session.datagram_high_water`` datagrams of the connection wait for congestion
  window: back-pressure, nothing dropped. Not awaited, the queue keeps at most
  ``DATAGRAM_SEND_QUEUE`` datagrams and drops the oldest beyond (drop-oldest,
  counted in ``stats()["datagrams_send_dropped"]``).
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any

from wtlab.errors import ConfigError, MessageTooLarge, SessionClosed, StreamReset

if TYPE_CHECKING:
    from wtlab.transport.driver import Endpoint

HIGH_WATER_BYTES = 1 << 20  # unsent bytes per stream before drain() waits
DATAGRAM_QUEUE = 4096  # received datagrams kept per session before the oldest are dropped
DATAGRAM_SEND_QUEUE = 4096  # datagrams waiting for congestion window before the oldest drop
DATAGRAM_HIGH_WATER = 256  # queued datagrams above which an awaited send_datagram waits


def _wake(waiters: list) -> None:
    for fut in waiters:
        if not fut.done():
            fut.set_result(None)
    waiters.clear()


class _DrainAwaitable:
    """What ``write`` returns: ignore it, or await it to drain."""

    __slots__ = ("_stream",)

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def __await__(self):
        return self._stream.drain().__await__()


class _DatagramRoom:
    """What an awaited ``send_datagram`` waits on: room in the connection's datagram queue.

    It waits among the endpoint's blocked writers, which the driver looks at after every
    transmit (the only time the queue shrinks): it reports "unsent" datagrams while the
    queue is above the session's high-water mark, as a stream reports unsent bytes.
    """

    __slots__ = ("_session", "_waiter", "_error", "_stop_code", "_wake_at")

    def __init__(self, session: Session) -> None:
        self._session = session
        self._waiter: asyncio.Future | None = None
        self._error: BaseException | None = None
        self._stop_code = None
        self._wake_at = HIGH_WATER_BYTES

    def unsent_bytes(self) -> int:
        session = self._session
        queued = len(session._ep.quic._datagrams_pending)
        # the driver wakes writers whose unsent bytes fall to HIGH_WATER_BYTES
        return 0 if queued <= session.datagram_high_water else HIGH_WATER_BYTES + queued

    def _wake_writer(self) -> None:
        w = self._waiter
        self._waiter = None
        if w is not None and not w.done():
            w.set_result(None)

    def __await__(self):
        return self._wait().__await__()

    async def _wait(self) -> None:
        session = self._session
        ep = session._ep
        while True:
            session._raise_if_closed()
            if len(ep.quic._datagrams_pending) <= session.datagram_high_water:
                return
            fut = self._waiter
            if fut is None or fut.done():
                fut = self._waiter = ep.loop.create_future()
            ep.blocked_writers.add(self)  # type: ignore[arg-type]
            await asyncio.shield(fut)


class Stream:
    """One WebTransport stream (bidirectional, or one direction of a unidirectional one)."""

    __slots__ = (
        "stream_id", "session", "_ep", "readable", "writable", "_buf", "_eof", "_reset_code",
        "_read_waiter", "_stop_code", "_eof_sent", "_drain_waiter", "_awaitable",
        "_fc_pending", "_fc_eof", "bytes_sent", "bytes_received", "_error", "_sender",
        "_write_closed", "_wake_at",
    )

    def __init__(self, session: Session, stream_id: int, *, readable: bool, writable: bool) -> None:
        self.stream_id = stream_id
        self.session = session
        self._ep = session._ep
        self.readable = readable
        self.writable = writable
        self._buf = bytearray()
        self._eof = False
        self._reset_code: int | None = None
        self._read_waiter: asyncio.Future | None = None
        self._stop_code: int | None = None
        self._eof_sent = False
        self._drain_waiter: asyncio.Future | None = None
        self._awaitable = _DrainAwaitable(self)
        self._fc_pending: bytearray | None = None  # data held back by WT flow control
        self._fc_eof = False
        self.bytes_sent = 0
        self.bytes_received = 0
        self._error: BaseException | None = None  # session-level error (closed)
        self._sender: Any = None  # aioquic QuicStreamSender, cached after the first write
        self._write_closed = not writable  # any reason write() must raise
        self._wake_at = HIGH_WATER_BYTES  # unsent bytes at which a blocked drain() wakes

    def __repr__(self) -> str:
        kind = "bidi" if self.readable and self.writable else "uni"
        return f"<wtlab Stream {self.stream_id} {kind} session={self.session.session_id}>"

    # ----------------------------------------------------------------- writing
    def write(self, data: bytes | bytearray | memoryview) -> _DrainAwaitable:
        """Queue ``data``; returns an awaitable that drains (awaiting it is optional)."""
        if self._write_closed:
            self._raise_write_error()
        n = len(data)
        if n:
            if type(data) is not bytes:
                data = bytes(data)
            self.bytes_sent += n
            session = self.session
            ep = self._ep
            wts = session._wts  # the protocol's session state: WT flow-control counters
            if wts.fc:
                if self._fc_pending is not None or wts.peer_max_data - wts.sent_bytes < n:
                    self._fc_write(data)
                    ep.schedule_transmit()
                    return self._awaitable
                wts.sent_bytes += n
            sender = self._sender
            quic = ep.quic
            if sender is None:
                quic.send_stream_data(self.stream_id, data)
                self._sender = quic._streams[self.stream_id].sender
            else:  # aioquic's own checks passed on the first write; skip them per message
                sender.write(data)
                quic.tx_wanted = True  # the driver's liveness invariant (see driver.py)
            session._bytes_sent += n
            if ep._tx_handle is None:
                ep.schedule_transmit()
        return self._awaitable

    def _raise_write_error(self) -> None:
        if self._error is not None:
            raise self._error
        if not self.writable:
            raise ConfigError("this stream is receive-only (the peer's unidirectional stream)")
        if self._stop_code is not None:
            raise StreamReset(self._stop_code, f"the peer sent STOP_SENDING with code "
                              f"{self._stop_code}; stop writing to this stream")
        raise ConfigError("write() after write_eof() or reset(); open a new stream to send more")

    def _fc_write(self, data: bytes) -> None:
        session = self.session
        wt = self._ep.wt
        if self._fc_pending is not None:
            self._fc_pending += data
            return
        credit = wt.send_credit(session.session_id)
        if credit >= len(data):
            wt.send_stream_data(self.stream_id, data)
            session._bytes_sent += len(data)
            return
        if credit > 0:
            wt.send_stream_data(self.stream_id, data[:credit])
            session._bytes_sent += credit
            data = data[credit:]
        self._fc_pending = bytearray(data)
        session.flow_control_stalls += 1
        session._fc_blocked.append(self)
        session._signal_data_blocked()

    def _fc_flush(self) -> bool:
        """Send held-back data as credit allows; True when nothing is left."""
        pending = self._fc_pending
        if pending is None:
            return True
        if self._error is not None or self._stop_code is not None:
            self._fc_pending = None
            return True
        wt = self._ep.wt
        credit = wt.send_credit(self.session.session_id)
        if credit <= 0:
            return False
        chunk = bytes(pending[:credit])
        del pending[:credit]
        wt.send_stream_data(self.stream_id, chunk)
        self.session._bytes_sent += len(chunk)
        if pending:
            return False
        self._fc_pending = None
        if self._fc_eof:
            self._fc_eof = False
            wt.send_stream_data(self.stream_id, b"", end_stream=True)
            self._ep.stream_maybe_done(self)
        return True

    def unsent_bytes(self) -> int:
        """Bytes written but not yet sent once (including those WT flow control holds)."""
        sender = self._sender
        held = len(self._fc_pending) if self._fc_pending is not None else 0
        if sender is None:
            return held
        return sender._buffer_stop - sender.highest_offset + held

    async def drain(self, high_water_bytes: int = HIGH_WATER_BYTES) -> None:
        """Wait until this stream's unsent bytes fall to ``high_water_bytes`` (default
        ``HIGH_WATER_BYTES``; a larger value counts as the default) or less."""
        high = min(high_water_bytes, HIGH_WATER_BYTES)
        sender = self._sender
        if (sender is not None and self._fc_pending is None and self._error is None
                and sender._buffer_stop - sender.highest_offset <= high):
            return  # the common case, without a suspension
        if self._error is not None:
            raise self._error
        if self.unsent_bytes() <= high:
            return
        ep = self._ep
        self._wake_at = high  # the driver wakes this writer once unsent <= high
        while self.unsent_bytes() > high:
            if self._error is not None:
                raise self._error
            if self._stop_code is not None:
                raise StreamReset(self._stop_code, f"the peer sent STOP_SENDING with code "
                                  f"{self._stop_code} while we were writing")
            fut = self._drain_waiter
            if fut is None or fut.done():  # shared by every task draining this stream
                fut = self._drain_waiter = ep.loop.create_future()
            ep.blocked_writers.add(self)
            await asyncio.shield(fut)

    def write_eof(self) -> None:
        """Send FIN: no more data from this side."""
        if self._error is not None:
            raise self._error
        if not self.writable:
            raise ConfigError("this stream is receive-only; it has no sending side to finish")
        if self._eof_sent:
            return
        self._eof_sent = True
        self._write_closed = True
        if self._fc_pending is not None:
            self._fc_eof = True
        else:
            self._ep.wt.send_stream_data(self.stream_id, b"", end_stream=True)
            self._ep.stream_maybe_done(self)
        self._ep.schedule_transmit()

    def reset(self, code: int = 0) -> None:
        """Abort sending (RESET_STREAM with WebTransport error ``code``)."""
        if self._error is not None or not self.writable:
            return
        self._eof_sent = True
        self._write_closed = True
        self._fc_pending = None
        self._ep.wt.reset_stream(self.stream_id, code)
        self._ep.stream_maybe_done(self)
        self._ep.schedule_transmit()
        self._wake_writer()

    def stop_sending(self, code: int = 0) -> None:
        """Ask the peer to stop sending (STOP_SENDING with ``code``); drops unread data."""
        if self._error is not None or not self.readable:
            return
        self._ep.wt.stop_stream(self.stream_id, code)
        self.session._unbuffer(len(self._buf))
        self._buf.clear()
        self._eof = True
        self._ep.stream_maybe_done(self)
        self._ep.schedule_transmit()
        self._wake_reader()

    # ----------------------------------------------------------------- reading
    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (at least one unless at FIN); ``n=-1`` reads to FIN."""
        if not self.readable:
            raise ConfigError("this stream is send-only (our unidirectional stream)")
        if n < 0:
            while not self._eof:
                await self._wait_readable(force=True)
            self._check_reset()
            data = bytes(self._buf)
            self._buf.clear()
            self.session._unbuffer(len(data))
            return data
        if n == 0:
            return b""
        buf = self._buf
        if not buf:
            if self._eof:
                self._check_reset()
                return b""
            await self._wait_readable()
            if not buf:
                self._check_reset()
                return b""
        if n >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:n])
            del buf[:n]
        self.session._unbuffer(len(data))
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``asyncio.IncompleteReadError`` if FIN comes first."""
        if not self.readable:
            raise ConfigError("this stream is send-only (our unidirectional stream)")
        buf = self._buf
        while len(buf) < n:
            if self._eof:
                self._check_reset()
                partial = bytes(buf)
                buf.clear()
                self.session._unbuffer(len(partial))
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait_readable(force=True)
        if n == len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:n])
            del buf[:n]
        self.session._unbuffer(n)
        return data

    def at_eof(self) -> bool:
        """Whether the peer finished the stream and every byte has been read."""
        return self._eof and not self._buf

    async def _wait_readable(self, force: bool = False) -> None:
        """Wait for more data (``force``: even if some is buffered); callers loop."""
        if self._eof:
            return
        if self._error is not None:
            raise self._error  # more data was needed and none will come
        if self._buf and not force:
            return
        if self._read_waiter is not None:
            raise ConfigError("another task is already reading this stream; read from one task")
        fut = self._read_waiter = self._ep.loop.create_future()
        try:
            await fut
        finally:
            self._read_waiter = None

    def _check_reset(self) -> None:
        if self._reset_code is not None:
            raise StreamReset(self._reset_code)
        if self._error is not None and not self._eof:
            raise self._error

    # ----------------------------------------------------------- driver input
    def _feed(self, data: bytes, end: bool) -> None:
        if data:
            self._buf += data
            n = len(data)
            self.bytes_received += n
            session = self.session
            session._bytes_received += n
            session._on_buffered(n)
        if end:
            self._eof = True
        w = self._read_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _on_reset(self, code: int) -> None:
        self._reset_code = code
        self._eof = True
        self._wake_reader()

    def _on_stop_sending(self, code: int) -> None:
        self._stop_code = code
        self._eof_sent = True
        self._write_closed = True
        self._fc_pending = None
        self._wake_writer()

    def _on_session_error(self, exc: BaseException) -> None:
        self._error = exc
        self._write_closed = True
        self._wake_reader()
        self._wake_writer()

    def _wake_reader(self) -> None:
        w = self._read_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _wake_writer(self) -> None:
        w = self._drain_waiter
        self._drain_waiter = None
        if w is not None and not w.done():
            w.set_result(None)


class Session:
    """A WebTransport session (client or server side).

    Obtain one from :func:`wtlab.connect` or in a server handler. Streams:
    :meth:`open_bidi`, :meth:`open_uni`, :meth:`accept_bidi`, :meth:`accept_uni`;
    datagrams: :meth:`send_datagram`, :meth:`receive_datagram`; :meth:`close`.
    ``session.quic`` is the aioquic ``QuicConnection``; ``session.controller`` the
    wtlab congestion controller driving it (None with aioquic's built-in one).
    """

    def __init__(self, endpoint: Endpoint, session_id: int, *, path: str = "",
                 headers: tuple = (), dialect: str = "", max_buffered_bytes: int | None = None):
        self._ep = endpoint
        self.session_id = session_id
        self.path = path
        self.headers = headers
        self.dialect = dialect
        self._fc = dialect == "latest"
        self._wts = endpoint.wt.sessions[session_id]  # protocol-level state of this session
        self._incoming_bidi: collections.deque[Stream] = collections.deque()
        self._incoming_uni: collections.deque[Stream] = collections.deque()
        # Waiters are lists: several tasks may wait at once; all are woken, each re-checks.
        self._bidi_waiters: list[asyncio.Future] = []
        self._uni_waiters: list[asyncio.Future] = []
        self._datagrams: collections.deque[bytes] = collections.deque()
        self._dgram_waiters: list[asyncio.Future] = []
        self._credit_waiters: list[asyncio.Future] = []
        self._fc_blocked: list[Stream] = []
        self._closed_exc: SessionClosed | None = None
        self._closed_fut: asyncio.Future = endpoint.loop.create_future()
        self._draining = False
        self._buffered = 0
        self.max_buffered_bytes = max_buffered_bytes
        # the connection's and the server's counts of unread bytes follow _buffered while
        # the session is open (see WebTransportConnection.buffered_bytes)
        self._wt_conn = endpoint.wt
        self._counted = True
        self._streams: dict[int, Stream] = {}
        self._peer_streams_open = 0
        self.flow_control_stalls = 0  # writes held back by the peer's WT_MAX_DATA (latest)
        self._bytes_sent = 0
        self._bytes_received = 0
        self._datagrams_sent = 0
        self._datagram_bytes_sent = 0
        self._dgram_cid: Any = None
        self._dgram_limit = 0
        self._datagrams_received = 0
        self._datagrams_dropped = 0
        self._datagrams_send_dropped = 0
        #: queued datagrams (whole connection) above which ``await send_datagram`` waits
        self.datagram_high_water = DATAGRAM_HIGH_WATER
        self._dgram_room = _DatagramRoom(self)
        self._streams_opened = 0
        self._streams_accepted = 0
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.query: dict[str, str] = {}

    def __repr__(self) -> str:
        state = "closed" if self._closed_exc else "open"
        return f"<wtlab Session {self.session_id} {self.path!r} {self.dialect} {state}>"

    # -------------------------------------------------------------- properties
    @property
    def quic(self):
        """The aioquic ``QuicConnection`` carrying this session."""
        return self._ep.quic

    @property
    def controller(self):
        """The session's congestion controller object (a :class:`wtlab.cc.Controller`), or ``None``
        with aioquic's own.
        """
        return self._ep.controller

    @property
    def closed(self) -> bool:
        """Whether the session has closed."""
        return self._closed_exc is not None

    @property
    def max_datagram_size(self) -> int:
        """Largest datagram payload :meth:`send_datagram` accepts (bytes)."""
        return self._ep.wt.max_datagram_payload(self.session_id)

    # ----------------------------------------------------------------- streams
    async def open_bidi(self) -> Stream:
        """Open a bidirectional stream (waits for stream credit in the ``latest`` dialect)."""
        return await self._open(False)

    async def open_uni(self) -> Stream:
        """Open a unidirectional (send-only) stream."""
        return await self._open(True)

    async def _open(self, uni: bool) -> Stream:
        ep = self._ep
        while True:
            self._raise_if_closed()
            if ep.wt.can_open_stream(self.session_id, uni):
                break
            ep.wt.signal_streams_blocked(self.session_id, uni)
            ep.schedule_transmit()
            await self._wait(self._credit_waiters)
        sid = ep.wt.open_stream(self.session_id, uni)
        stream = Stream(self, sid, readable=not uni, writable=True)
        self._streams[sid] = stream
        ep.streams[sid] = stream
        self._streams_opened += 1
        ep.record_stream_opened(sid)
        ep.schedule_transmit()
        return stream

    async def accept_bidi(self) -> Stream:
        """The next bidirectional stream the peer opened."""
        return await self._accept(self._incoming_bidi, self._bidi_waiters)

    async def accept_uni(self) -> Stream:
        """The next unidirectional (receive-only) stream the peer opened."""
        return await self._accept(self._incoming_uni, self._uni_waiters)

    async def _accept(self, queue: collections.deque, waiters: list) -> Stream:
        while not queue:
            self._raise_if_closed()
            if self._draining:
                raise SessionClosed(0, "the peer is draining the session")
            await self._wait(waiters)
        return queue.popleft()

    async def _wait(self, waiters: list) -> None:
        fut = self._ep.loop.create_future()
        waiters.append(fut)
        try:
            await fut
        finally:
            if not fut.done() and fut in waiters:  # cancelled while waiting
                waiters.remove(fut)

    # --------------------------------------------------------------- datagrams
    def send_datagram(self, data: bytes) -> _DatagramRoom:
        """Send one datagram (unreliable); MessageTooLarge if it exceeds max_datagram_size.

        The datagram is queued at once. Two ways to use it:

        * ``await session.send_datagram(data)``: back-pressure. The await returns once
          the connection's queue holds at most ``datagram_high_water`` datagrams (it
          drains as congestion window allows); a sender that always awaits never loses
          a datagram to the queue. Raises SessionClosed if the session closes meanwhile.
        * ``session.send_datagram(data)`` without awaiting: drop-oldest. The queue keeps
          at most ``DATAGRAM_SEND_QUEUE`` datagrams; beyond, the oldest is dropped and
          counted in ``stats()["datagrams_send_dropped"]`` (as browsers expire outgoing
          datagrams rather than queue them without bound).
        """
        if self._closed_exc is not None:
            raise self._closed_exc
        ep = self._ep
        peer_cid = ep.quic._peer_cid
        if peer_cid is not self._dgram_cid:  # recomputed only when the peer's CID changes
            self._dgram_limit = ep.wt.max_datagram_payload(self.session_id)
            self._dgram_cid = peer_cid
        limit = self._dgram_limit
        if len(data) > limit:
            raise MessageTooLarge(f"datagram of {len(data)} bytes exceeds max_datagram_size="
                                  f"{limit}; split it or send it on a stream")
        pending = ep.quic._datagrams_pending
        if len(pending) >= DATAGRAM_SEND_QUEUE:
            # Unreliable by contract: rather than queue without bound, drop the oldest
            # (as browsers expire outgoing datagrams). Counted in stats().
            pending.popleft()
            self._datagrams_send_dropped += 1
        ep.quic.send_datagram_frame(self._wts.datagram_prefix + data)
        self._datagrams_sent += 1
        self._datagram_bytes_sent += len(data)
        if ep.recorder is not None:
            ep.record("datagram_sent", nbytes=len(data))
        if ep._tx_handle is None:
            ep.schedule_transmit()
        return self._dgram_room

    async def receive_datagram(self) -> bytes:
        """The next datagram the peer sent (oldest first)."""
        q = self._datagrams
        while not q:
            self._raise_if_closed()
            if self._draining:
                raise SessionClosed(0, "the peer is draining the session")
            await self._wait(self._dgram_waiters)
        data = q.popleft()
        self._unbuffer(len(data))
        return data

    # ----------------------------------------------------------------- closing
    async def close(self, code: int = 0, reason: str = "") -> None:
        """Close the session (CLOSE_WEBTRANSPORT_SESSION capsule with ``code``/``reason``)."""
        if self._closed_exc is None:
            self._ep.wt.close_session(self.session_id, code, reason)
            self._ep.schedule_transmit()
            self._on_closed(code, reason, local=True)
        await self._ep.session_closed_locally(self)

    def request_drain(self) -> None:
        """Ask the peer to wind the session down (DRAIN_WEBTRANSPORT_SESSION capsule).

        On the peer, pending ``accept_*`` and ``receive_datagram`` calls end with
        ``SessionClosed(0, ...)``; open streams keep working until the session closes.
        """
        self._raise_if_closed()
        self._ep.wt.drain_session(self.session_id)
        self._ep.schedule_transmit()

    @property
    def draining(self) -> bool:
        """True once the peer asked to wind the session down."""
        return self._draining

    async def wait_closed(self) -> tuple[int, str]:
        """Wait until the session is closed; returns (code, reason)."""
        await asyncio.shield(self._closed_fut)
        return self.close_code or 0, self.close_reason

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def channel(self, **kw: Any):
        """A message channel over this session (see :func:`wtlab.reliability.open_channel`)."""
        from wtlab.reliability import open_channel

        return open_channel(self, **kw)

    def stats(self) -> dict[str, Any]:
        """Counters of this session and the RTT/cwnd state of its QUIC connection."""
        ep = self._ep
        out: dict[str, Any] = {
            "session_id": self.session_id,
            "dialect": self.dialect,
            "streams_opened": self._streams_opened,
            "streams_accepted": self._streams_accepted,
            "stream_bytes_sent": self._bytes_sent,
            "stream_bytes_received": self._bytes_received,
            "datagrams_sent": self._datagrams_sent,
            "datagrams_received": self._datagrams_received,
            "datagrams_dropped": self._datagrams_dropped,
            "datagrams_send_dropped": self._datagrams_send_dropped,
            # datagrams handed over but not yet sent (the connection's queue, all sessions)
            "datagrams_queued": len(ep.quic._datagrams_pending),
            "buffered_bytes": self._buffered,
            "flow_control_stalls": self.flow_control_stalls,
            "closed": self.closed,
        }
        out.update(ep.connection_stats())
        return out

    def get_stats(self) -> dict[str, Any]:
        """The connection's statistics shaped like the W3C ``WebTransport.getStats()``
        (snake_case, seconds; see :mod:`wtlab.transport.stats`)."""
        from wtlab.transport.stats import connection_stats

        payload = self._bytes_sent + self._datagram_bytes_sent
        return connection_stats(self._ep.quic, payload_bytes_sent=payload,
                                datagrams_dropped_incoming=self._datagrams_dropped)

    # ------------------------------------------------------------ driver input
    def _raise_if_closed(self) -> None:
        if self._closed_exc is not None:
            raise self._closed_exc

    def _unbuffer(self, n: int) -> None:
        """``n`` received bytes were read (or dropped)."""
        self._buffered -= n
        if self._counted:
            wt = self._wt_conn
            wt.app_buffered_bytes -= n
            wt.ledger.total -= n

    def _on_buffered(self, n: int) -> None:
        self._buffered += n
        if self._counted:
            wt = self._wt_conn
            wt.app_buffered_bytes += n
            wt.ledger.total += n
        limit = self.max_buffered_bytes
        if limit is not None and self._buffered > limit:
            self._ep.limit_exceeded(self, "buffered bytes", limit)

    def _on_stream(self, stream: Stream, uni: bool) -> None:
        self._streams[stream.stream_id] = stream
        self._streams_accepted += 1
        if uni:
            self._incoming_uni.append(stream)
            _wake(self._uni_waiters)
        else:
            self._incoming_bidi.append(stream)
            _wake(self._bidi_waiters)

    def _on_datagram(self, data: bytes) -> None:
        q = self._datagrams
        if len(q) >= DATAGRAM_QUEUE:
            old = q.popleft()
            self._unbuffer(len(old))
            self._datagrams_dropped += 1
        q.append(data)
        self._datagrams_received += 1
        self._on_buffered(len(data))
        if self._dgram_waiters:
            _wake(self._dgram_waiters)

    def _on_credit(self) -> None:
        blocked = self._fc_blocked
        while blocked:
            if not blocked[0]._fc_flush():
                break
            blocked.pop(0)
        if blocked:
            self._signal_data_blocked()
        _wake(self._credit_waiters)
        self._ep.schedule_transmit()

    def _signal_data_blocked(self) -> None:
        self._ep.wt.signal_data_blocked(self.session_id)

    def _on_drain(self) -> None:
        self._draining = True
        for waiters in (self._bidi_waiters, self._uni_waiters, self._dgram_waiters):
            _wake(waiters)

    def _on_closed(self, code: int, reason: str, local: bool = False) -> None:
        if self._closed_exc is not None:
            return
        self.close_code = code
        self.close_reason = reason
        if self._counted:  # what is still unread no longer counts against the connection
            self._counted = False
            wt = self._wt_conn
            wt.app_buffered_bytes -= self._buffered
            wt.ledger.total -= self._buffered
        exc = self._closed_exc = SessionClosed(code, reason)
        for stream in list(self._streams.values()):
            stream._on_session_error(exc)
            self._ep.forget_stream(stream.stream_id)
        for waiters in (self._bidi_waiters, self._uni_waiters, self._dgram_waiters,
                        self._credit_waiters):
            _wake(waiters)
        room = self._dgram_room
        room._error = exc
        self._ep.blocked_writers.discard(room)  # type: ignore[arg-type]
        room._wake_writer()
        if not self._closed_fut.done():
            self._closed_fut.set_result((code, reason))
        self._ep.session_finished(self)
