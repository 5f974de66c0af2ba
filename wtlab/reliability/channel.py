"""Message channels over a WebTransport session: the asyncio face of the reliability modes.

::

    async with wtlab.connect(url, cert_hashes=[h]) as session:
        ch = session.channel(mode="partial", lifetime=0.2)
        await ch.send(b"frame 1")
        async for msg in ch:          # messages the peer sent on this channel
            ...
        ch.report()                   # one row per message: delivered / expired / failed

    # server side, in a route handler
    async def handler(session):
        ch = session.channel(mode="partial", lifetime=0.2)
        async for msg in ch:
            await ch.send(msg)

Both ends open the channel with the same ``mode``, ``transport`` and ``channel_id``; every
channel is bidirectional (each end sends and receives). How each mode travels:

==============  ===========  ==============================================================
mode            transport    on the wire
==============  ===========  ==============================================================
reliable        stream       one unidirectional stream per direction, length-framed messages
unordered       stream       one unidirectional stream per message
partial         stream       one stream per message, reset once its ``lifetime`` passes
reliable,       datagram     :class:`~wtlab.reliability.engine.Engine`: acknowledgements,
unordered,                   RFC 9002 loss recovery, lifetimes, at most
partial                      ``max_retransmissions`` retransmissions, in-order buffer
unreliable      datagram     one datagram per message (``fragment=True`` splits larger ones,
                             otherwise they raise :class:`wtlab.MessageTooLarge`)
==============  ===========  ==============================================================

The receiving end acknowledges delivered messages on a small control stream (stream
transports) or in ACK frames (datagram transport), so the sender knows per message what
happened. ``report()`` is a DataFrame, one row per message this end sent
(``direction="sent"``) or received (``"received"``):

* ``status``: ``delivered`` (the peer's channel handed it to its application), ``expired``
  (its lifetime passed first; reported by whichever end saw it), ``failed`` (its stream was
  reset, or the session ended before delivery was confirmed), ``sent`` (unreliable: no
  feedback), ``pending``;
* ``sent_s``/``done_s`` (this end's loop clock), ``latency_s`` (sent: ``send()`` to the
  peer's acknowledgement; received: the estimated one-way latency, see
  :mod:`wtlab.reliability.owd`), ``size_bytes``, ``stream_id``, ``reason``.

When a session dies (idle timeout, close), every waiter gets :class:`wtlab.SessionClosed`;
the receiving end's report lists exactly the messages it delivered, and the sending end's
lists those it knows were delivered (``delivered``) and the rest as ``failed``.

A session with channels routes *all* incoming unidirectional streams and datagrams to its
channels; do not call ``accept_uni()`` or ``receive_datagram()`` on it yourself (bidirectional
streams stay yours).
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import (
    ConfigError,
    MessageTooLarge,
    ProtocolError,
    SessionClosed,
    StreamReset,
    WtlabError,
)
from wtlab.reliability.engine import (
    Engine,
    MessageAcked,
    MessageDelivered,
    MessageDropped,
    MessageExpired,
)
from wtlab.reliability.owd import OneWayDelay, deadline_margin_s
from wtlab.reliability.wire import encode_varint, try_decode_varint
from wtlab.trace.schema import (
    K_MESSAGE_ACKED,
    K_MESSAGE_DELIVERED,
    K_MESSAGE_DROPPED,
    K_MESSAGE_EXPIRED,
    K_MESSAGE_SENT,
    NAN,
    NO_BYTES_U32,
    NO_STREAM,
)

MAGIC = 0x77  # first byte of every channel stream ('w')
KIND_ORDERED = 0  # reliable ordered: length-framed messages on one stream
KIND_MESSAGE = 1  # one message per stream
KIND_CONTROL = 2  # acknowledgements and channel end, from the receiving end
# control records
C_ACK_UPTO = 1  # every ordered message below this id was delivered
C_ACK_IDS = 2  # these message ids were delivered (ranges)
C_EXPIRED_IDS = 3  # these expired here before delivery (ranges)
C_FAILED_IDS = 4  # these were lost with their reset stream (ranges)
C_END = 5  # the sender is done: it sent this many messages

ACK_DELAY_S = 0.005  # plain acknowledgements wait this long to be batched
RESET_EXPIRED = 0x4C  # stream reset code: message lifetime passed
RESET_FAILED = 0x4D  # stream abandoned by the channel

ST_PENDING, ST_DELIVERED, ST_EXPIRED, ST_FAILED, ST_SENT = range(5)
STATUS_NAMES = ("pending", "delivered", "expired", "failed", "sent")
_WRITE_CHUNK = 1 << 16
_PENDING_LIMIT = 1024  # datagrams / streams kept for a channel the app has not opened yet

_muxes: weakref.WeakKeyDictionary[Any, _Mux] = weakref.WeakKeyDictionary()


def open_channel(session: Any, *, mode: str = "reliable", lifetime: float | None = 0.2,
                 max_retransmissions: int | None = None, ordered: bool = False,
                 fragment: bool = False, transport: str | None = None, channel_id: int = 0,
                 recorder: Any = None, flow: int | None = None,
                 max_in_flight: int = 256) -> Channel:
    """Open message channel ``channel_id`` on ``session`` (see the module docstring).

    ``lifetime`` (seconds) and ``max_retransmissions`` apply to ``mode="partial"``;
    ``ordered`` to partial (datagram transport) and unreliable; ``transport`` defaults to
    ``"stream"`` except for ``"unreliable"`` (``"datagram"``). Trace rows go to
    ``recorder`` (default: the session's recorder) with ``flow`` (default: the session's).
    Call it from a coroutine (the channel runs on the session's loop).
    """
    return Channel(session, mode=mode, lifetime=lifetime,
                   max_retransmissions=max_retransmissions, ordered=ordered, fragment=fragment,
                   transport=transport, channel_id=channel_id, recorder=recorder, flow=flow,
                   max_in_flight=max_in_flight)


def channel_handler(fn: Any = None, **channel_kw: Any):
    """A server route handler that opens a channel on each session and runs
    ``await fn(channel)`` (default: echo every message back on the channel, then close it).

    ::

        server = await wtlab.serve(port=0, routes={
            "/chat": channel_handler(mode="reliable"),
            "/video": channel_handler(my_sink, mode="partial", lifetime=0.1),
        })

    The handler returns (and the server closes the session) when the client closes it.
    """

    async def handler(session: Any) -> None:
        ch = session.channel(**channel_kw)
        try:
            if fn is None:
                async for msg in ch:
                    await ch.send(msg)
                await ch.close()
            else:
                await fn(ch)
            await session.wait_closed()
        except SessionClosed:
            pass

    return handler


def _rtt_hint(session: Any) -> float:
    """The path's min RTT as this end's QUIC connection measures it (aioquic 1.7.2)."""
    try:
        loss = session.quic._loss
        if loss._rtt_initialized and loss._rtt_min != float("inf"):
            return float(loss._rtt_min)
        return float(loss._rtt_smoothed) or 0.1
    except AttributeError:
        return 0.1


def _ranges(ids: list[int]) -> bytes:
    ids = sorted(set(ids))
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    out = [encode_varint(len(runs))]
    for start, n in runs:
        out.append(encode_varint(start))
        out.append(encode_varint(n))
    return b"".join(out)


class _Mux:
    """Per session: routes incoming channel streams and datagrams to channels by id."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.loop = asyncio.get_running_loop()
        self.channels: dict[int, Channel] = {}
        self.pending_streams: dict[int, list[tuple[int, Any]]] = collections.defaultdict(list)
        self.pending_dgrams: dict[int, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=_PENDING_LIMIT))
        self.closed: BaseException | None = None
        self.dropped = 0
        self._tasks = {self.loop.create_task(self._accept_loop()),
                       self.loop.create_task(self._datagram_loop())}

    @classmethod
    def of(cls, session: Any) -> _Mux:
        mux = _muxes.get(session)
        if mux is None:
            mux = _muxes[session] = cls(session)
        return mux

    def register(self, ch: Channel) -> None:
        if ch.channel_id in self.channels:
            raise ConfigError(f"channel {ch.channel_id} is already open on this session; "
                              "pass another channel_id=")
        self.channels[ch.channel_id] = ch
        for kind, stream in self.pending_streams.pop(ch.channel_id, []):
            ch._on_stream(kind, stream)
        for data in self.pending_dgrams.pop(ch.channel_id, ()):
            ch._on_datagram(data)
        if self.closed is not None:
            ch._on_session_closed(self.closed)

    def unregister(self, ch: Channel) -> None:
        if self.channels.get(ch.channel_id) is ch:
            del self.channels[ch.channel_id]

    async def _accept_loop(self) -> None:
        session = self.session
        while True:
            try:
                stream = await session.accept_uni()
            except WtlabError as exc:
                self._closed(exc)
                return
            self.loop.create_task(self._route_stream(stream))

    async def _route_stream(self, stream: Any) -> None:
        try:
            head = await stream.readexactly(3)
            if head[0] != MAGIC or head[1] > KIND_CONTROL:
                self.dropped += 1
                stream.stop_sending(RESET_FAILED)
                return
            cid = head[2] & 0x3F
            n = 1 << (head[2] >> 6)
            if n > 1:
                for b in await stream.readexactly(n - 1):
                    cid = (cid << 8) | b
        except (WtlabError, asyncio.IncompleteReadError):
            return
        ch = self.channels.get(cid)
        if ch is None:
            pending = self.pending_streams[cid]
            if len(pending) >= _PENDING_LIMIT:
                self.dropped += 1
                stream.stop_sending(RESET_FAILED)
                return
            pending.append((head[1], stream))
            return
        ch._on_stream(head[1], stream)

    async def _datagram_loop(self) -> None:
        session = self.session
        channels = self.channels
        while True:
            try:
                data = await session.receive_datagram()
            except WtlabError as exc:
                self._closed(exc)
                return
            if not data:
                continue
            first = data[0]
            if first < 0x40:
                cid, pos = first, 1
            else:
                got = try_decode_varint(data, 0)
                if got is None:
                    self.dropped += 1
                    continue
                cid, pos = got
            ch = channels.get(cid)
            if ch is None:
                self.pending_dgrams[cid].append(data[pos:])
            else:
                ch._on_datagram(data[pos:])

    def _closed(self, exc: BaseException) -> None:
        if self.closed is not None:
            return
        if not isinstance(exc, SessionClosed):
            exc = SessionClosed(getattr(exc, "code", 0), str(exc))
        self.closed = exc
        for ch in list(self.channels.values()):
            ch._on_session_closed(exc)


class Channel:
    """A message channel (see the module docstring); make one with ``session.channel()``."""

    def __init__(self, session: Any, *, mode: str, lifetime: float | None,
                 max_retransmissions: int | None, ordered: bool, fragment: bool,
                 transport: str | None, channel_id: int, recorder: Any, flow: int | None,
                 max_in_flight: int) -> None:
        modes = ("reliable", "unordered", "partial", "unreliable")
        if mode not in modes:
            raise ConfigError(f"unknown channel mode {mode!r}; use one of {', '.join(modes)}")
        if transport is None:
            transport = "datagram" if mode == "unreliable" else "stream"
        if transport not in ("stream", "datagram"):
            raise ConfigError(f"transport must be 'stream' or 'datagram', not {transport!r}")
        if mode == "unreliable" and transport == "stream":
            raise ConfigError("mode='unreliable' travels in datagrams; use transport='datagram' "
                              "or mode='partial' for streams that give up")
        if mode == "unordered" and ordered:
            raise ConfigError("mode='unordered' cannot be ordered; use mode='reliable'")
        if mode == "partial" and transport == "stream" and ordered:
            raise ConfigError("ordered partial delivery needs transport='datagram' (one stream "
                              "per message cannot keep order across resets)")
        if mode == "partial":
            if lifetime is None and max_retransmissions is None:
                raise ConfigError("mode='partial' needs lifetime= or max_retransmissions=")
            if transport == "stream" and lifetime is None:
                raise ConfigError("partial over streams gives up by lifetime; pass lifetime= "
                                  "or use transport='datagram' for max_retransmissions")
            if lifetime is not None and not 0 < lifetime < 1000:
                raise ConfigError(f"lifetime must be in (0, 1000) seconds, got {lifetime!r}")
        if not 0 <= channel_id < (1 << 30):
            raise ConfigError(f"channel_id must be in [0, 2**30), got {channel_id!r}")
        self.session = session
        self.mode = mode
        self.transport = transport
        self.ordered = mode == "reliable" or (ordered and mode != "unordered")
        self.lifetime = lifetime if mode == "partial" else None
        self.max_retransmissions = max_retransmissions if mode == "partial" else None
        self.fragment = fragment
        self.channel_id = channel_id
        ep = getattr(session, "_ep", None)
        self.recorder = recorder if recorder is not None else getattr(ep, "recorder", None)
        self.flow = flow if flow is not None else getattr(ep, "flow", 0)
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigError("open channels from async code running on the session's loop "
                              "(e.g. inside 'async with wtlab.connect(...)')") from None
        self._prefix = encode_varint(channel_id)
        self._closed_exc: BaseException | None = None
        self._closing = False
        # sender bookkeeping (index = message id)
        self._s_size: list[int] = []
        self._s_time: list[float] = []
        self._s_status: list[int] = []
        self._s_done: list[float] = []
        self._s_stream: list[int] = []
        self._s_reason: dict[int, str] = {}
        self._unresolved = 0
        self._resolved_waiter: asyncio.Future | None = None
        # receiver bookkeeping
        self._r_id: list[int] = []
        self._r_size: list[int] = []
        self._r_status: list[int] = []
        self._r_time: list[float] = []
        self._r_latency: list[float] = []
        self._r_stream: list[int] = []
        self._r_reason: dict[int, str] = {}
        self._inbox: collections.deque[bytes] = collections.deque()
        self._inbox_waiter: asyncio.Future | None = None
        self._peer_total: int | None = None
        self._end_at = float("inf")
        self._end_grace = 0.05
        self._owd = OneWayDelay()
        # control stream (ours, to the peer)
        self._ctrl_stream: Any = None
        self._ctrl_buf = bytearray()
        self._ctrl_ack_start = 0
        self._ctrl_ack_upto = 0
        self._ctrl_ack_sent = 0
        self._ctrl_end: int | None = None
        self._ack_floors: dict[int, int] = {}  # ordered stream's first id -> acked up to
        self._ctrl_ids: dict[int, list[int]] = {C_ACK_IDS: [], C_EXPIRED_IDS: [],
                                               C_FAILED_IDS: []}
        self._ctrl_scheduled = False
        self._ctrl_task: asyncio.Task | None = None
        self._ctrl_timer: asyncio.TimerHandle | None = None
        self._ctrl_wake: asyncio.Event = asyncio.Event()
        # stream transport, sending side
        self._out_stream: Any = None
        self._out_opening: asyncio.Future | None = None
        self._out_base = 0.0
        self._out_first_mid = 0
        self._wbuf = bytearray()
        self._flush_scheduled = False
        self._msg_streams: dict[int, tuple[Any, asyncio.TimerHandle | None]] = {}
        self._rx_tasks: set[asyncio.Task] = set()
        self._rx_ordered_streams: list[Any] = []
        # datagram transport
        self.engine: Engine | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._space_waiter: asyncio.Future | None = None
        self._quiet_waiter: asyncio.Future | None = None
        self._dgram_flush_scheduled = False
        if transport == "datagram":
            max_dgram = session.max_datagram_size - len(self._prefix)
            self.engine = Engine(
                mode, ordered=self.ordered if mode in ("partial", "unreliable") else None,
                lifetime_s=self.lifetime, max_retransmissions=self.max_retransmissions,
                fragment=fragment, max_datagram_size=max_dgram, max_in_flight=max_in_flight,
                initial_rtt_s=_rtt_hint(session), recorder=self.recorder, flow=self.flow)
        self._mux = _Mux.of(session)
        self._mux.register(self)

    def __repr__(self) -> str:
        return (f"<wtlab Channel {self.channel_id} mode={self.mode} transport={self.transport}"
                f" sent={len(self._s_size)} received={len(self._r_id)}>")

    # ================================================================ public API
    async def send(self, message: bytes | bytearray | memoryview, *,
                   lifetime: float | None = None) -> int:
        """Send one message; returns its id. Waits only for backpressure (or a stream).

        ``lifetime`` overrides the channel's for this message (partial mode).
        Raises :class:`wtlab.MessageTooLarge` (unreliable, no fragmentation),
        :class:`wtlab.SessionClosed` once the session is gone.
        """
        if self._closed_exc is not None:
            raise self._closed_exc
        if self._closing:
            raise ConfigError("send() after close(); open a new channel to send more")
        if lifetime is not None and self.mode != "partial":
            raise ConfigError("a per-message lifetime applies to mode='partial' only")
        data = bytes(message)  # no copy for bytes
        if self.mode == "reliable" and self._out_stream is not None and self.engine is None:
            # fast path: no coroutine below us unless a full chunk must be written
            mid = self._queue_ordered(data)
            if len(self._wbuf) >= _WRITE_CHUNK:
                await self._flush_ordered()
            return mid
        if self.engine is not None:
            return await self._send_datagram_mode(data, lifetime)
        if self.mode == "reliable":
            return await self._send_ordered(data)
        return await self._send_message_stream(data, lifetime or self.lifetime)

    async def receive(self) -> bytes:
        """The next message from the peer. Raises ``EOFError`` once the peer has closed the
        channel and everything it sent has arrived or is given up (``async for`` then simply
        ends), and :class:`wtlab.SessionClosed` if the session ends first."""
        inbox = self._inbox
        while not inbox:
            if self._peer_total is not None and (
                    len(self._r_id) >= self._peer_total or self._loop.time() >= self._end_at
            ) and (self.engine is None or self.engine.held_messages == 0):
                raise EOFError("the peer closed this channel")
            if self._closed_exc is not None:
                raise self._closed_exc
            fut = self._inbox_waiter = self._loop.create_future()
            try:
                await fut
            finally:
                self._inbox_waiter = None
        return inbox.popleft()

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> bytes:
        if self._inbox:
            return self._inbox.popleft()
        try:
            return await self.receive()
        except EOFError:
            raise StopAsyncIteration from None

    def cancel(self, message_id: int) -> bool:
        """Give up on a message this end sent: reset its stream (one stream per message) or
        stop retransmitting it (datagram transport). Returns False if it was already resolved.
        The reliable ordered mode shares one stream among messages and cannot cancel one."""
        if not 0 <= message_id < len(self._s_status):
            raise ConfigError(f"no message {message_id} was sent on this channel")
        if self._s_status[message_id] != ST_PENDING:
            return False
        if self.engine is not None:
            self.engine.abandon(message_id, self._loop.time())
            self._pump_engine()
            return self._s_status[message_id] != ST_PENDING
        if self.mode == "reliable":
            raise ConfigError("mode='reliable' sends every message on one stream; use "
                              "mode='unordered' or 'partial' to cancel single messages")
        entry = self._msg_streams.pop(message_id, None)
        if entry is not None:
            stream, handle = entry
            if handle is not None:
                handle.cancel()
            stream.reset(RESET_FAILED)
        self._resolve(message_id, ST_FAILED, self._loop.time(), "cancelled")
        return True

    async def flush(self) -> None:
        """Hand everything sent so far to the session (normally automatic)."""
        if self.engine is not None:
            self._pump_engine()
        else:
            await self._flush_ordered()

    async def wait_resolved(self, timeout: float | None = None) -> bool:
        """Wait until every message sent so far is delivered, expired or failed (unreliable:
        at once). Returns False on timeout."""
        await self.flush()
        deadline = None if timeout is None else self._loop.time() + timeout
        while self._unresolved > 0 and self._closed_exc is None:
            fut = self._resolved_waiter = self._loop.create_future()
            try:
                if deadline is None:
                    await fut
                else:
                    await asyncio.wait_for(fut, max(0.0, deadline - self._loop.time()))
            except TimeoutError:
                return False
            finally:
                self._resolved_waiter = None
        return self._unresolved == 0

    async def close(self, timeout: float | None = 10.0) -> None:
        """Finish sending: wait (up to ``timeout``) until every message is resolved, then
        tell the peer, whose iteration ends once it has everything. Does not close the
        session."""
        if self._closing or self._closed_exc is not None:
            return
        if self.mode != "unreliable":
            await self.wait_resolved(timeout)
        else:
            await self.flush()
            await self._wait_datagrams_sent(timeout)
        engine = self.engine
        if engine is not None and self._closed_exc is None:
            # Our expiry notices must reach the peer before our END does (its report exact).
            deadline = self._loop.time() + (timeout if timeout is not None else 10.0)
            while engine.notices_outstanding and self._closed_exc is None:
                if self._loop.time() >= deadline:
                    break
                fut = self._quiet_waiter = self._loop.create_future()
                try:
                    await asyncio.wait_for(fut, max(0.0, deadline - self._loop.time()))
                except TimeoutError:
                    break
                finally:
                    self._quiet_waiter = None
        self._closing = True
        if self._out_stream is not None:
            try:
                self._out_stream.write_eof()
            except WtlabError:
                pass
        self._ctrl_end = len(self._s_size)
        self._schedule_ctrl()
        if self._ctrl_task is not None:
            await asyncio.sleep(0)  # let the control writer run

    async def _wait_datagrams_sent(self, timeout: float | None) -> None:
        """Wait until the QUIC connection has put every queued datagram on the wire (its
        congestion window may hold them back), so an END does not cut them off."""
        pending = getattr(self.session.quic, "_datagrams_pending", None)
        if pending is None:
            return
        deadline = self._loop.time() + (10.0 if timeout is None else timeout)
        while pending and self._closed_exc is None and self._loop.time() < deadline:
            await asyncio.sleep(0.005)  # no event for this queue: poll, bounded

    def report(self) -> pd.DataFrame:
        """One row per message sent or received on this channel (see the module docstring)."""
        n_s = len(self._s_size)
        n_r = len(self._r_id)
        s_status = np.array(self._s_status, dtype=np.int8)
        r_status = np.array(self._r_status, dtype=np.int8)
        s_time = np.array(self._s_time, dtype=np.float64)
        s_done = np.array(self._s_done, dtype=np.float64)
        s_lat = np.where(s_status == ST_DELIVERED, s_done - s_time, np.nan)
        names = list(STATUS_NAMES)
        status = np.concatenate([s_status, r_status]).astype(np.int16)
        frame = pd.DataFrame({
            "direction": pd.Categorical.from_codes(
                np.r_[np.zeros(n_s, np.int8), np.ones(n_r, np.int8)],
                categories=["sent", "received"]),
            "message_id": np.r_[np.arange(n_s, dtype=np.int64),
                                np.array(self._r_id, dtype=np.int64)],
            "status": pd.Categorical.from_codes(status, categories=names),
            "size_bytes": np.r_[np.array(self._s_size, dtype=np.int64),
                                np.array(self._r_size, dtype=np.int64)],
            "sent_s": np.r_[s_time, np.full(n_r, np.nan)],
            "done_s": np.r_[s_done, np.array(self._r_time, dtype=np.float64)],
            "latency_s": np.r_[s_lat, np.array(self._r_latency, dtype=np.float64)],
            "stream_id": pd.array(np.r_[np.array(self._s_stream, dtype=np.int64),
                                        np.array(self._r_stream, dtype=np.int64)],
                                  dtype="Int64"),
            "reason": [self._s_reason.get(i) for i in range(n_s)]
            + [self._r_reason.get(i) for i in range(n_r)],
        })
        frame.loc[frame["stream_id"] < 0, "stream_id"] = pd.NA
        return frame

    def summary(self) -> dict[str, Any]:
        """Counts per status and direction, plus median latency (for quick looks)."""
        df = self.report()
        out: dict[str, Any] = {}
        for direction in ("sent", "received"):
            sub = df[df["direction"] == direction]
            out[direction] = {k: int(v) for k, v in sub["status"].value_counts().items() if v}
            lat = sub["latency_s"].dropna()
            out[direction + "_median_latency_s"] = float(lat.median()) if len(lat) else None
        return out

    # ======================================================= sender bookkeeping
    def _new_message(self, size: int, now: float, stream_id: int) -> int:
        mid = len(self._s_size)
        self._s_size.append(size)
        self._s_time.append(now)
        self._s_status.append(ST_SENT if self.mode == "unreliable" else ST_PENDING)
        self._s_done.append(NAN)
        self._s_stream.append(stream_id)
        if self.mode != "unreliable":
            self._unresolved += 1
        rec = self.recorder
        if rec is not None and self.engine is None:  # the engine records its own
            rec.append(now, K_MESSAGE_SENT, 0, self.flow, mid,
                       NO_STREAM if stream_id < 0 else stream_id, size, NO_BYTES_U32,
                       NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN, NAN, NAN, NAN)
        return mid

    def _resolve(self, mid: int, status: int, now: float, reason: str | None = None,
                 retract: bool = False) -> None:
        """Record the fate of sent message ``mid``: a delivery confirmation wins over an
        earlier verdict, and only the peer's own retraction (``retract``) overrides it."""
        if mid >= len(self._s_status):
            raise ProtocolError(f"peer reported message {mid} on channel {self.channel_id}, "
                                "which was never sent")
        old = self._s_status[mid]
        if old == status or (old == ST_DELIVERED and not retract):
            return
        if old == ST_PENDING:
            self._unresolved -= 1
        elif status != ST_DELIVERED and not retract:
            return  # first verdict stands, unless it is a late confirmation
        self._s_status[mid] = status
        self._s_done[mid] = now
        if reason is not None:
            self._s_reason[mid] = reason
        elif old != ST_PENDING:
            self._s_reason[mid] = "confirmed after " + STATUS_NAMES[old]
        rec = self.recorder
        if rec is not None and self.engine is None:
            sid = self._s_stream[mid]
            kind = (K_MESSAGE_ACKED if status == ST_DELIVERED else K_MESSAGE_EXPIRED
                    if status == ST_EXPIRED else K_MESSAGE_DROPPED)
            rec.append(now, kind, 0, self.flow, mid, NO_STREAM if sid < 0 else sid,
                       self._s_size[mid], NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, NAN, NAN,
                       NAN, NAN, NAN, NAN)
            if status == ST_DELIVERED:
                rec.set_extra(len(rec) - 1, {"latency_s": now - self._s_time[mid]})
            elif reason is not None:
                rec.set_extra(len(rec) - 1, {"side": "sender", "reason": reason})
        w = self._resolved_waiter
        if self._unresolved == 0 and w is not None and not w.done():
            w.set_result(None)

    def _fail_pending(self, mids: Any, now: float, reason: str) -> None:
        for mid in mids:
            if self._s_status[mid] == ST_PENDING:
                self._resolve(mid, ST_FAILED, now, reason)

    # ====================================================== receiver bookkeeping
    def _received(self, mid: int, data: bytes | None, size: int, status: int, now: float,
                  latency: float, stream_id: int, reason: str | None = None) -> None:
        self._r_id.append(mid)
        self._r_size.append(size)
        self._r_status.append(status)
        self._r_time.append(now)
        self._r_latency.append(latency)
        self._r_stream.append(stream_id)
        if reason is not None:
            self._r_reason[len(self._r_id) - 1] = reason
        if status == ST_DELIVERED:
            self._inbox.append(data)  # type: ignore[arg-type]
            w = self._inbox_waiter
            if w is not None and not w.done():
                w.set_result(None)
        rec = self.recorder
        if rec is not None and self.engine is None:
            kind = K_MESSAGE_DELIVERED if status == ST_DELIVERED else (
                K_MESSAGE_EXPIRED if status == ST_EXPIRED else K_MESSAGE_DROPPED)
            rec.append(now, kind, 0, self.flow, mid, NO_STREAM if stream_id < 0 else stream_id,
                       size, NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN, NAN,
                       NAN, NAN)
            if status != ST_DELIVERED:
                rec.set_extra(len(rec) - 1, {"side": "receiver", "reason": reason})

    def _end_check(self) -> None:
        if self._loop.time() < self._end_at:  # datagrams kept coming: look again later
            self._loop.call_at(self._end_at, self._end_check)
        self._wake_inbox()

    def _wake_inbox(self) -> None:
        w = self._inbox_waiter
        if w is not None and not w.done():
            w.set_result(None)

    # ================================================= reliable ordered (stream)
    async def _ensure_out_stream(self) -> Any:
        while self._out_stream is None:
            if self._out_opening is not None:
                await asyncio.shield(self._out_opening)
                continue
            fut = self._out_opening = self._loop.create_future()
            try:
                stream = await self.session.open_uni()
                self._out_base = self._loop.time()
                self._out_first_mid = len(self._s_size)
                stream.write(bytes((MAGIC, KIND_ORDERED)) + self._prefix
                             + encode_varint(int(self._out_base * 1e6))
                             + encode_varint(self._out_first_mid))
                self._out_stream = stream
            finally:
                self._out_opening = None
                fut.set_result(None)
        return self._out_stream

    async def _send_ordered(self, data: bytes) -> int:
        if self._out_stream is None:
            await self._ensure_out_stream()
        mid = self._queue_ordered(data)
        if len(self._wbuf) >= _WRITE_CHUNK:
            await self._flush_ordered()
        return mid

    def _queue_ordered(self, data: bytes) -> int:
        stream = self._out_stream
        now = self._loop.time()
        size = len(data)
        # _new_message, inlined: this runs once per message
        mid = len(self._s_size)
        self._s_size.append(size)
        self._s_time.append(now)
        self._s_status.append(ST_PENDING)
        self._s_done.append(NAN)
        sid = stream.stream_id
        self._s_stream.append(sid)
        self._unresolved += 1
        rec = self.recorder
        if rec is not None:
            rec.append(now, K_MESSAGE_SENT, 0, self.flow, mid, sid, size, NO_BYTES_U32,
                       NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN, NAN, NAN, NAN)
        wbuf = self._wbuf
        wbuf += (size.to_bytes(1, "big") if size < 0x40 else
                 (size | 0x4000).to_bytes(2, "big") if size < 0x4000 else encode_varint(size))
        delta_us = int((now - self._out_base) * 1e6)
        # always 4 bytes while under 1073 s since the stream opened (fixed size: fast path)
        wbuf += (delta_us | 0x80000000).to_bytes(4, "big") if delta_us < 0x40000000 \
            else encode_varint(delta_us)
        wbuf += data
        if not self._flush_scheduled:
            # The first message after a quiet spell goes to the stream at once (latency);
            # the rest of a burst is batched until the loop turns (throughput).
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_soon)
            try:
                stream.write(bytes(wbuf))
            except WtlabError:
                return mid  # the batched flush meets the same error and handles it
            wbuf.clear()
        return mid

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        if self._wbuf and self._closed_exc is None:
            self._loop.create_task(self._flush_ordered())

    async def _flush_ordered(self) -> None:
        stream = self._out_stream
        if not self._wbuf or stream is None:
            return
        data = bytes(self._wbuf)
        self._wbuf.clear()
        try:
            stream.write(data)
            await stream.drain()
        except StreamReset as exc:
            # The peer stopped this stream: its unconfirmed messages fail, the channel goes on
            # with a fresh stream.
            if self._out_stream is stream:
                self._out_stream = None
            first = self._out_first_mid
            self._fail_pending(range(self._ack_floors.get(first, first), len(self._s_size)),
                               self._loop.time(),
                               f"stream {stream.stream_id} reset by the peer (code {exc.code})")
        except SessionClosed as exc:
            self._on_session_closed(exc)
            raise

    def _on_ordered_stream(self, stream: Any) -> None:
        self._rx_ordered_streams.append(stream)
        task = self._loop.create_task(self._read_ordered(stream))
        self._rx_tasks.add(task)
        task.add_done_callback(self._rx_tasks.discard)

    async def _read_ordered(self, stream: Any) -> None:
        loop = self._loop
        sid = stream.stream_id
        try:
            base_us = await _read_varint(stream)
            mid = await _read_varint(stream)
            if self._ctrl_ack_upto > self._ctrl_ack_sent:  # acks of a previous stream first
                self._ctrl_buf += (encode_varint(C_ACK_UPTO) + encode_varint(self._ctrl_ack_start)
                                   + encode_varint(self._ctrl_ack_upto))
            self._ctrl_ack_start = self._ctrl_ack_sent = self._ctrl_ack_upto = mid
            buf = bytearray()
            owd = self._owd
            # the per-message hot path: locals only, varints of 1 and 4 bytes inlined
            r_id, r_size, r_status = self._r_id, self._r_size, self._r_status
            r_time, r_lat, r_stream, inbox = (self._r_time, self._r_latency, self._r_stream,
                                              self._inbox)
            rec = self.recorder
            flow = self.flow
            while True:
                chunk = await stream.read(_WRITE_CHUNK * 4)
                if not chunk:
                    return
                if buf:
                    buf += chunk
                    view = buf
                else:
                    view = chunk
                now = loop.time()
                half_rtt = _rtt_hint(self.session) / 2
                base_s = base_us / 1e6
                min_off = owd.min_offset_s
                pos = 0
                end = len(view)
                first_mid = mid
                while pos < end:
                    b = view[pos]
                    if b < 0x40:
                        size, p = b, pos + 1
                    elif b < 0x80 and pos + 1 < end:
                        size, p = ((b & 0x3F) << 8) | view[pos + 1], pos + 2
                    else:
                        got = try_decode_varint(view, pos)
                        if got is None:
                            break
                        size, p = got
                    if p + 4 <= end and view[p] >> 6 == 2:
                        delta_us = int.from_bytes(view[p:p + 4], "big") & 0x3FFFFFFF
                        p += 4
                    else:
                        got = try_decode_varint(view, p)
                        if got is None:
                            break
                        delta_us, p = got
                    if p + size > end:
                        break
                    data = bytes(view[p:p + size])
                    pos = p + size
                    offset = now - (base_s + delta_us / 1e6)
                    if offset < min_off:
                        min_off = offset
                    r_id.append(mid)
                    r_size.append(size)
                    r_status.append(ST_DELIVERED)
                    r_time.append(now)
                    r_lat.append(half_rtt + offset - min_off)
                    r_stream.append(sid)
                    inbox.append(data)
                    if rec is not None:
                        rec.append(now, K_MESSAGE_DELIVERED, 0, flow, mid, sid, size,
                                   NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN,
                                   NAN, NAN, NAN)
                    mid += 1
                owd.min_offset_s = min_off
                owd.samples += mid - first_mid
                if pos < end:
                    buf = bytearray(view[pos:]) if view is chunk else buf
                    if view is buf and pos:
                        del buf[:pos]
                else:
                    buf = bytearray()
                if mid != first_mid:
                    self._ctrl_ack_upto = mid
                    self._wake_inbox()
                    self._schedule_ctrl(delayed=True)
        except StreamReset:
            return  # messages already delivered stay delivered; the sender fails the rest
        except SessionClosed:
            return
        except asyncio.IncompleteReadError:
            return

    # =========================================== stream per message (unordered, partial)
    async def _send_message_stream(self, data: bytes, lifetime: float | None) -> int:
        stream = await self.session.open_uni()
        now = self._loop.time()
        mid = self._new_message(len(data), now, stream.stream_id)
        hdr = (bytes((MAGIC, KIND_MESSAGE)) + self._prefix + encode_varint(mid)
               + encode_varint(int(now * 1e6))
               + encode_varint(int(lifetime * 1e6) if lifetime else 0))
        try:
            stream.write(hdr + data)
            stream.write_eof()
        except StreamReset as exc:
            self._resolve(mid, ST_FAILED, now, f"stream reset by the peer (code {exc.code})")
            return mid
        handle = None
        if lifetime:
            handle = self._loop.call_at(now + lifetime, self._expire_message_stream, mid)
        self._msg_streams[mid] = (stream, handle)
        await stream.drain()
        return mid

    def _expire_message_stream(self, mid: int) -> None:
        entry = self._msg_streams.pop(mid, None)
        if entry is None or self._s_status[mid] != ST_PENDING:
            return
        stream, _ = entry
        stream.reset(RESET_EXPIRED)
        self._resolve(mid, ST_EXPIRED, self._loop.time(), "lifetime")

    def _forget_message_stream(self, mid: int) -> None:
        entry = self._msg_streams.pop(mid, None)
        if entry is not None and entry[1] is not None:
            entry[1].cancel()

    def _on_message_stream(self, stream: Any) -> None:
        task = self._loop.create_task(self._read_message(stream))
        self._rx_tasks.add(task)
        task.add_done_callback(self._rx_tasks.discard)

    async def _read_message(self, stream: Any) -> None:
        loop = self._loop
        sid = stream.stream_id
        mid = None
        try:
            mid = await _read_varint(stream)
            tx_us = await _read_varint(stream)
            life_us = await _read_varint(stream)
            now = loop.time()
            hint = _rtt_hint(self.session)
            tx = tx_us / 1e6
            if life_us:
                # age at the header's arrival = its one-way delay (stamped at send time)
                deadline = (now + life_us / 1e6 - self._owd.observe(tx, now, hint)
                            - deadline_margin_s(life_us / 1e6))
                expired = False

                def expire() -> None:
                    nonlocal expired
                    expired = True
                    stream.stop_sending(RESET_EXPIRED)

                handle = loop.call_at(deadline, expire)
                try:
                    data = await stream.read(-1)
                finally:
                    handle.cancel()
                now = loop.time()
                if expired or now > deadline:
                    self._received(mid, None, len(data), ST_EXPIRED, now, NAN, sid, "lifetime")
                    self._ctrl_ids[C_EXPIRED_IDS].append(mid)
                    self._schedule_ctrl()
                    return
            else:
                data = await stream.read(-1)
                now = loop.time()
            latency = self._owd.observe(tx, now, hint)
            self._received(mid, data, len(data), ST_DELIVERED, now, latency, sid)
            self._ctrl_ids[C_ACK_IDS].append(mid)
            self._schedule_ctrl(delayed=True)
        except StreamReset as exc:
            if mid is not None:
                now = loop.time()
                if exc.code == RESET_EXPIRED:
                    self._received(mid, None, 0, ST_EXPIRED, now, NAN, sid, "reset by sender")
                    self._ctrl_ids[C_EXPIRED_IDS].append(mid)
                else:
                    self._received(mid, None, 0, ST_FAILED, now, NAN, sid,
                                   f"stream reset by the peer (code {exc.code})")
                    self._ctrl_ids[C_FAILED_IDS].append(mid)
                self._schedule_ctrl()
        except (SessionClosed, asyncio.IncompleteReadError):
            return

    # ================================================================ control
    def _on_stream(self, kind: int, stream: Any) -> None:
        if kind == KIND_CONTROL:
            task = self._loop.create_task(self._read_control(stream))
            self._rx_tasks.add(task)
            task.add_done_callback(self._rx_tasks.discard)
        elif kind == KIND_ORDERED:
            self._on_ordered_stream(stream)
        else:
            self._on_message_stream(stream)

    def _schedule_ctrl(self, delayed: bool = False) -> None:
        """Have the control writer run: now, or (``delayed``: plain acknowledgements) within
        ``ACK_DELAY_S``, so acknowledgements are batched and stay off a reply's critical
        path, as QUIC's own ACKs are (max_ack_delay)."""
        if self._ctrl_scheduled or self._closed_exc is not None:
            return
        if delayed:
            if self._ctrl_timer is None:
                self._ctrl_timer = self._loop.call_later(ACK_DELAY_S, self._ctrl_timer_fired)
            return
        self._ctrl_scheduled = True
        if self._ctrl_task is None:
            self._ctrl_task = self._loop.create_task(self._ctrl_writer())
        self._ctrl_wake.set()

    def _ctrl_timer_fired(self) -> None:
        self._ctrl_timer = None
        self._schedule_ctrl()

    def _take_ctrl(self) -> bytes:
        self._ctrl_scheduled = False
        out = bytearray()
        if self._ctrl_buf:  # earlier records (a previous stream's acks) go first
            out += self._ctrl_buf
            self._ctrl_buf.clear()
        if self._ctrl_ack_upto > self._ctrl_ack_sent:
            out += (encode_varint(C_ACK_UPTO) + encode_varint(self._ctrl_ack_start)
                    + encode_varint(self._ctrl_ack_upto))
            self._ctrl_ack_sent = self._ctrl_ack_upto
        for kind, ids in self._ctrl_ids.items():
            if ids:
                out += encode_varint(kind) + _ranges(ids)
                ids.clear()
        if self._ctrl_end is not None:
            out += encode_varint(C_END) + encode_varint(self._ctrl_end)
            self._ctrl_end = None
        return bytes(out)

    async def _ctrl_writer(self) -> None:
        try:
            stream = await self.session.open_uni()
            stream.write(bytes((MAGIC, KIND_CONTROL)) + self._prefix)
            self._ctrl_stream = stream
            while True:
                await self._ctrl_wake.wait()
                self._ctrl_wake.clear()
                await asyncio.sleep(0)  # coalesce everything delivered in this loop pass
                data = self._take_ctrl()
                if data:
                    stream.write(data)
                    await stream.drain()
        except WtlabError:
            return

    async def _read_control(self, stream: Any) -> None:
        buf = bytearray()
        loop = self._loop
        try:
            while True:
                chunk = await stream.read(1 << 16)
                if not chunk:
                    return
                buf += chunk
                pos = 0
                while True:
                    got = _parse_control(buf, pos)
                    if got is None:
                        break
                    kind, args, pos = got
                    self._on_control(kind, args, loop.time())
                if pos:
                    del buf[:pos]
        except (WtlabError, asyncio.IncompleteReadError):
            return

    def _on_control(self, kind: int, args: list[int], now: float) -> None:
        if kind == C_ACK_UPTO:
            start, upto = args
            status = self._s_status
            upto = min(upto, len(status))
            floor = self._ack_floors.get(start, start)
            done, rec, flow = self._s_done, self.recorder, self.flow
            sizes, streams, times = self._s_size, self._s_stream, self._s_time
            for mid in range(floor, upto):  # once per message: inlined _resolve
                if status[mid] != ST_PENDING:
                    self._resolve(mid, ST_DELIVERED, now)  # a late confirmation, or a no-op
                    continue
                status[mid] = ST_DELIVERED
                done[mid] = now
                self._unresolved -= 1
                if rec is not None:
                    rec.append(now, K_MESSAGE_ACKED, 0, flow, mid, streams[mid], sizes[mid],
                               NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN, NAN,
                               NAN, NAN)
                    rec.set_extra(len(rec) - 1, {"latency_s": now - times[mid]})
            self._ack_floors[start] = max(floor, upto)
            w = self._resolved_waiter
            if self._unresolved == 0 and w is not None and not w.done():
                w.set_result(None)
        elif kind in (C_ACK_IDS, C_EXPIRED_IDS, C_FAILED_IDS):
            status = {C_ACK_IDS: ST_DELIVERED, C_EXPIRED_IDS: ST_EXPIRED,
                      C_FAILED_IDS: ST_FAILED}[kind]
            reason = {C_EXPIRED_IDS: "expired at the receiver",
                      C_FAILED_IDS: "stream reset"}.get(kind)
            for start, n in zip(args[::2], args[1::2], strict=True):
                for mid in range(start, start + n):
                    self._forget_message_stream(mid)
                    self._resolve(mid, status, now, reason)
        elif kind == C_END:
            # Datagrams sent before the END may still be on their way: wait for all of them,
            # or a few RTTs for those that were lost.
            self._peer_total = args[0]
            self._end_grace = max(0.05, 4 * _rtt_hint(self.session))
            self._end_at = now + self._end_grace
            self._loop.call_at(self._end_at, self._end_check)
            self._wake_inbox()

    # ================================================================ datagrams
    async def _send_datagram_mode(self, data: bytes, lifetime: float | None) -> int:
        engine = self.engine
        assert engine is not None
        while engine.queued_packets >= engine.max_in_flight and self._closed_exc is None:
            fut = self._space_waiter = self._loop.create_future()
            self._pump_engine()
            try:
                await fut
            finally:
                self._space_waiter = None
        if self._closed_exc is not None:
            raise self._closed_exc
        now = self._loop.time()
        mid = engine.send(data, now, lifetime_s=lifetime)
        self._new_message(len(data), now, -1)
        if not self._dgram_flush_scheduled:
            self._dgram_flush_scheduled = True
            self._loop.call_soon(self._pump_engine)
        return mid

    def _on_datagram(self, data: bytes) -> None:
        engine = self.engine
        if engine is None:
            self._mux.dropped += 1
            return
        if self._peer_total is not None:
            # still arriving after the peer's END (its queue draining): keep listening
            self._end_at = self._loop.time() + self._end_grace
        try:
            engine.receive_datagram(data, self._loop.time())
        except ProtocolError:
            self._mux.dropped += 1
            return
        self._pump_engine()

    def _pump_engine(self) -> None:
        """Move engine output to the session, engine events to the channel, re-arm timer."""
        self._dgram_flush_scheduled = False
        engine = self.engine
        if engine is None or self._closed_exc is not None:
            return
        now = self._loop.time()
        prefix = self._prefix
        send = self.session.send_datagram
        try:
            for d in engine.datagrams_to_send(now):
                send(prefix + d)
        except SessionClosed as exc:
            self._on_session_closed(exc)
            return
        except MessageTooLarge:
            # the session's datagram limit shrank below what the engine was sized for
            raise
        while (ev := engine.next_event()) is not None:
            if isinstance(ev, MessageDelivered):
                lat = ev.latency_s if ev.latency_s is not None else NAN
                self._received(ev.message_id, ev.data, len(ev.data), ST_DELIVERED, now, lat, -1)
            elif isinstance(ev, MessageAcked):
                self._resolve(ev.message_id, ST_DELIVERED, now)
            elif isinstance(ev, MessageExpired):
                if ev.side == "sender":
                    status = ST_FAILED if ev.reason == "cancelled" else ST_EXPIRED
                    self._resolve(ev.message_id, status, now, ev.reason)
                elif ev.side == "peer":
                    self._resolve(ev.message_id, ST_EXPIRED, now, "expired at the receiver",
                                  retract=True)
                else:
                    self._received(ev.message_id, None, 0, ST_EXPIRED, now, NAN, -1, ev.reason)
            elif isinstance(ev, MessageDropped):
                self._received(ev.message_id, None, 0, ST_FAILED, now, NAN, -1, ev.reason)
        w = self._space_waiter
        if w is not None and not w.done() and engine.queued_packets < engine.max_in_flight:
            w.set_result(None)
        w = self._quiet_waiter
        if w is not None and not w.done() and not engine.notices_outstanding:
            w.set_result(None)
        if self._peer_total is not None:
            self._wake_inbox()
        t = engine.next_timer()
        if t != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = t
            self._timer = None if t is None else self._loop.call_at(t, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        engine = self.engine
        if engine is None or self._closed_exc is not None:
            return
        engine.on_timer(self._loop.time())
        self._pump_engine()

    # ================================================================ closing
    def _on_session_closed(self, exc: BaseException) -> None:
        if self._closed_exc is not None:
            return
        self._closed_exc = exc
        now = self._loop.time()
        self._fail_pending(range(len(self._s_status)), now, "session closed before delivery "
                           "was confirmed")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for _, handle in self._msg_streams.values():
            if handle is not None:
                handle.cancel()
        self._msg_streams.clear()
        for fut in (self._inbox_waiter, self._space_waiter, self._resolved_waiter):
            if fut is not None and not fut.done():
                fut.set_result(None)
        if self._ctrl_task is not None:
            self._ctrl_task.cancel()
        if self._ctrl_timer is not None:
            self._ctrl_timer.cancel()
        self._mux.unregister(self)


async def _read_varint(stream: Any) -> int:
    first = (await stream.readexactly(1))[0]
    n = 1 << (first >> 6)
    value = first & 0x3F
    if n > 1:
        for b in await stream.readexactly(n - 1):
            value = (value << 8) | b
    return value


def _parse_control(buf: bytearray, pos: int) -> tuple[int, list[int], int] | None:
    got = try_decode_varint(buf, pos)
    if got is None:
        return None
    kind, p = got
    if kind in (C_ACK_UPTO, C_END):
        args = []
        for _ in range(2 if kind == C_ACK_UPTO else 1):
            got = try_decode_varint(buf, p)
            if got is None:
                return None
            args.append(got[0])
            p = got[1]
        return kind, args, p
    if kind in (C_ACK_IDS, C_EXPIRED_IDS, C_FAILED_IDS):
        got = try_decode_varint(buf, p)
        if got is None:
            return None
        n, p = got
        args = []
        for _ in range(2 * n):
            got = try_decode_varint(buf, p)
            if got is None:
                return None
            args.append(got[0])
            p = got[1]
        return kind, args, p
    raise ProtocolError(f"unknown channel control record {kind}")
