"""Application workloads over a wtlab WebTransport session, live or in virtual time.

Each workload is a small dataclass with two halves that speak to each other:

* ``await workload.client(session, ctx)``: runs on a session the client opened on
  ``workload.route()`` and returns a summary dict;
* ``await workload.server(session, ctx)``: the server handler for that route
  (``wtlab.serve(routes=workload.routes(ctx))``; :class:`~wtlab.net.network.VirtualNetwork`
  installs it for you).

The same code runs on a live loop and on the virtual-time loop: it reads time only
through ``loop.time()``. Application events go to ``ctx.recorder`` (if any) as rows of
``ctx.flow``:

==================  =====================================================================
kind                meaning
==================  =====================================================================
message_sent        the sender handed message ``pn`` (``bytes``) to the transport
message_delivered   the receiver got all of message ``pn``; ``extra``: ``{"latency_s": ..}``
                    (one-way: receive time minus the send time written in the message)
message_dropped     a datagram-carried frame never completed (video), at the end
==================  =====================================================================

One-way latency uses the send time carried in each message: both ends must share a
clock, which holds in virtual time and for a live server in the same process (the usual
case in tests and notebooks). Summaries are the workload's own report of its transfer,
timed by the application: ``transfer_rate_bps`` (application bytes delivered,
including those of a bulk stream still arriving (``partial_bytes``), per second from
the first send to the last arrival: not the trace's goodput, which
:mod:`wtlab.trace.metrics` defines over a window), ``delivered``/``sent`` counts and
the latency percentiles of what this workload calls latency (``latency_p50_s``,
``latency_p95_s``, ``latency_p99_s``; for RequestResponse, request to full response).

Workloads:

* :class:`Bulk`: ``size_bytes`` or ``duration_s`` of one stream, ``direction="up"``
  (client to server) or ``"down"``;
* :class:`Messages`: ``rate_hz`` messages of ``size_bytes``, each on its own
  unidirectional stream (``over="stream"``) or in one datagram (``over="datagram"``);
* :class:`RequestResponse`: requests of ``request_bytes`` answered with
  ``response_bytes`` on the same bidirectional stream, ``count`` of them, back to back or
  every ``interval_s``; latency is the request-to-complete-response time;
* :class:`Video`: frames at ``fps`` of ``frame_bytes`` (every ``keyframe_every``-th
  frame ``keyframe_bytes``), split into datagrams, client to server; a frame is delivered
  when all its datagrams arrived.
"""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode

from wtlab.errors import ConfigError, MessageTooLarge, SessionClosed, StreamReset

_HDR = struct.Struct("<Qd")  # message id, send time (loop clock, seconds)
_FRAG = struct.Struct("<IHHd")  # frame id, fragment index, fragment count, send time
_COUNT = struct.Struct("<Q")


@dataclass
class WorkloadContext:
    """Where a workload records: ``recorder`` (or None) and the ``flow`` id of its rows.

    Deliveries are also kept here (``latencies_s``, ``delivered_bytes``,
    ``first_sent_s``/``last_delivered_s``) so a summary exists without a recorder.
    """

    recorder: Any = None
    flow: int = 0
    sent: int = 0
    sent_bytes: int = 0
    delivered: int = 0
    delivered_bytes: int = 0
    latencies_s: list[float] = field(default_factory=list)
    first_sent_s: float | None = None
    last_delivered_s: float | None = None
    dropped: int = 0
    #: bytes of messages still arriving (a bulk stream in progress), counted in goodput
    partial_bytes: int = 0

    def now(self) -> float:
        """The running loop's time (virtual under emulation, monotonic live)."""
        return asyncio.get_running_loop().time()

    def on_sent(self, t: float, msg_id: int, nbytes: int) -> None:
        """Count message ``msg_id`` (``nbytes``) as sent at ``t``; records a ``message_sent`` row.
        """
        self.sent += 1
        self.sent_bytes += nbytes
        if self.first_sent_s is None:
            self.first_sent_s = t
        if self.recorder is not None:
            self.recorder.event(t, "message_sent", flow=self.flow, pn=msg_id, bytes=nbytes)

    def on_delivered(self, t: float, msg_id: int, nbytes: int, sent_at: float) -> None:
        """Count message ``msg_id`` (``nbytes``, sent at ``sent_at``) as delivered at ``t``; records
        a ``message_delivered`` row.
        """
        latency = t - sent_at
        self.delivered += 1
        self.delivered_bytes += nbytes
        self.latencies_s.append(latency)
        self.last_delivered_s = t
        if self.first_sent_s is None or sent_at < self.first_sent_s:
            self.first_sent_s = sent_at  # a receiver learns send times from the messages
        if self.recorder is not None:
            self.recorder.event(t, "message_delivered", flow=self.flow, pn=msg_id, bytes=nbytes,
                                extra={"latency_s": latency})

    def on_partial(self, t: float, nbytes: int, sent_at: float) -> None:
        """``nbytes`` more of a message still arriving (no row; goodput counts them)."""
        self.partial_bytes += nbytes
        self.last_delivered_s = t
        if self.first_sent_s is None or sent_at < self.first_sent_s:
            self.first_sent_s = sent_at

    def on_progress(self, t: float, report_id: int, nbytes: int, since: float) -> None:
        """A ``message_delivered`` row for a slice of a bulk transfer (not counted)."""
        if self.recorder is not None:
            self.recorder.event(t, "message_delivered", flow=self.flow, pn=report_id,
                                bytes=nbytes, extra={"latency_s": t - since, "progress": True})

    def on_dropped(self, t: float, msg_id: int, nbytes: int) -> None:
        """Count message ``msg_id`` as dropped at ``t``; records a ``message_dropped`` row."""
        self.dropped += 1
        if self.recorder is not None:
            self.recorder.event(t, "message_dropped", flow=self.flow, pn=msg_id, bytes=nbytes)

    def summary(self) -> dict[str, Any]:
        """Transfer rate, counts and latency percentiles of what was delivered so far."""
        out: dict[str, Any] = {"sent": self.sent, "sent_bytes": self.sent_bytes,
                               "delivered": self.delivered,
                               "delivered_bytes": self.delivered_bytes, "dropped": self.dropped}
        if self.first_sent_s is not None and self.last_delivered_s is not None:
            span = self.last_delivered_s - self.first_sent_s
            got = self.delivered_bytes + self.partial_bytes
            out["duration_s"] = span
            out["transfer_rate_bps"] = got * 8 / span if span > 0 else math.nan
            if self.partial_bytes:
                out["partial_bytes"] = self.partial_bytes
        else:
            out["duration_s"] = 0.0
            out["transfer_rate_bps"] = math.nan
        lat = sorted(self.latencies_s)
        for q in (50, 95, 99):
            out[f"latency_p{q}_s"] = _percentile(lat, q)
        out["latency_mean_s"] = sum(lat) / len(lat) if lat else math.nan
        return out


async def _sleep_until(loop: Any, due: float) -> None:
    """Wait for the loop's clock to reach ``due`` (at once if it already has)."""
    if due > loop.time():
        await asyncio.sleep(due - loop.time())


async def _report_count(control: Any, n: int, ctx: WorkloadContext) -> dict[str, Any]:
    """Tell the server how many messages were sent, wait for its answer, summarize."""
    control.write(_COUNT.pack(n))
    control.write_eof()
    await control.readexactly(_COUNT.size)
    return ctx.summary()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class Workload:
    """Base class: a route name, the parameters, ``client`` and ``server`` halves."""

    name: str = "workload"
    #: which end sends most bytes ("client" or "server"): its controller is the one studied
    sender: str = "client"

    def params(self) -> dict[str, Any]:
        """The workload's parameters that are set (``None`` left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}  # type: ignore[call-overload]

    def route(self) -> str:
        """Path (with the parameters as query string) the client opens its session on."""
        return f"/wtlab/{self.name}?{urlencode(self.params())}"

    def routes(self, ctx: WorkloadContext) -> dict[str, Any]:
        """``{path: handler}`` for ``wtlab.serve(routes=...)``, recording into ``ctx``."""
        async def handler(session: Any) -> None:
            await self.server(session, ctx)
        return {f"/wtlab/{self.name}": handler}

    def describe(self) -> dict[str, Any]:
        """The workload's name and parameters as plain data."""
        return {"workload": self.name, **self.params()}

    async def client(self, session: Any, ctx: WorkloadContext) -> dict[str, Any]:
        """Run the workload's client side on ``session``; returns what it measured (counts, bytes,
        times) as a dict. Subclasses implement it.
        """
        raise NotImplementedError

    async def server(self, session: Any, ctx: WorkloadContext) -> None:
        """Run the workload's server side on ``session`` (a route handler). Subclasses implement it.
        """
        raise NotImplementedError


def _positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"{name}={value!r} must be a positive number")


# ------------------------------------------------------------------------------ bulk
@dataclass
class Bulk(Workload):
    """One stream of ``size_bytes`` (or for ``duration_s``), ``direction`` "up" or "down".

    The transfer is recorded as message 0: ``message_sent`` when the first byte is
    written, ``message_delivered`` when the last byte arrives (latency = transfer time).
    With ``report_bytes``, the receiver also records one ``message_delivered`` row per
    ``report_bytes`` of progress (ids 1, 2, ..., ``extra`` has ``"progress": true``), so
    goodput over time can be read from the trace; they do not count as messages.
    """

    size_bytes: int | None = None
    duration_s: float | None = None
    direction: str = "up"
    chunk_bytes: int = 32768
    report_bytes: int | None = None
    name = "bulk"

    def __post_init__(self) -> None:
        if (self.size_bytes is None) == (self.duration_s is None):
            raise ConfigError("Bulk: give exactly one of size_bytes= or duration_s=")
        _positive("size_bytes", self.size_bytes, allow_none=True)
        _positive("duration_s", self.duration_s, allow_none=True)
        _positive("chunk_bytes", self.chunk_bytes)
        _positive("report_bytes", self.report_bytes, allow_none=True)
        if self.direction not in ("up", "down"):
            raise ConfigError(f"Bulk: direction={self.direction!r}; use 'up' or 'down'")

    @property
    def sender(self) -> str:  # type: ignore[override]
        return "client" if self.direction == "up" else "server"

    async def _send(self, stream: Any, ctx: WorkloadContext) -> int:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        header = _HDR.pack(0, t0)
        ctx.on_sent(t0, 0, self.size_bytes or 0)
        chunk = bytes(self.chunk_bytes)
        sent = 0
        stream.write(header)
        while True:
            if self.size_bytes is not None:
                n = min(self.chunk_bytes, self.size_bytes - sent)
                if n <= 0:
                    break
                data = chunk if n == self.chunk_bytes else chunk[:n]
            else:
                if loop.time() - t0 >= self.duration_s:
                    break
                data = chunk
            await stream.write(data)
            sent += len(data)
        stream.write_eof()
        return sent

    async def _receive(self, stream: Any, ctx: WorkloadContext) -> int:
        loop = asyncio.get_running_loop()
        msg_id, sent_at = _HDR.unpack(await stream.readexactly(_HDR.size))
        got = 0
        step = self.report_bytes
        next_report = step
        report_id = 1
        last = sent_at
        while True:
            data = await stream.read(65536)
            if not data:
                break
            got += len(data)
            now = loop.time()
            ctx.on_partial(now, len(data), sent_at)
            if step is not None:
                while got >= next_report:
                    # progress rows (not messages): latency = time since the previous one
                    ctx.on_progress(now, report_id, step, last)
                    last = now
                    report_id += 1
                    next_report += step
        ctx.partial_bytes -= got
        ctx.on_delivered(loop.time(), msg_id, got, sent_at)
        return got

    async def client(self, session: Any, ctx: WorkloadContext) -> dict[str, Any]:
        stream = await session.open_bidi()
        if self.direction == "up":
            await self._send(stream, ctx)
            (count,) = _COUNT.unpack(await stream.readexactly(_COUNT.size))
        else:
            stream.write(b"go")
            stream.write_eof()
            count = await self._receive(stream, ctx)
        out = ctx.summary()
        out["transferred_bytes"] = count
        return out

    async def server(self, session: Any, ctx: WorkloadContext) -> None:
        stream = await session.accept_bidi()
        if self.direction == "up":
            got = await self._receive(stream, ctx)
            stream.write(_COUNT.pack(got))
            stream.write_eof()
        else:
            await stream.read()
            await self._send(stream, ctx)
        await _wait_closed(session)


async def _wait_closed(session: Any) -> None:
    """Keep the server half alive until the client closes the session."""
    try:
        await session.wait_closed()
    except (SessionClosed, StreamReset, ConnectionError):
        pass


# ------------------------------------------------------------------------- messages
@dataclass
class Messages(Workload):
    """``rate_hz`` messages of ``size_bytes`` (>= 16), ``count`` of them or for
    ``duration_s``, client to server, each on a new stream or in one datagram."""

    rate_hz: float = 50.0
    size_bytes: int = 1000
    count: int | None = None
    duration_s: float | None = None
    over: str = "stream"
    name = "messages"

    def __post_init__(self) -> None:
        _positive("rate_hz", self.rate_hz)
        if self.size_bytes < _HDR.size:
            raise ConfigError(f"Messages: size_bytes={self.size_bytes} must be >= {_HDR.size} "
                              "(id and send time travel in the message)")
        if (self.count is None) == (self.duration_s is None):
            raise ConfigError("Messages: give exactly one of count= or duration_s=")
        if self.over not in ("stream", "datagram"):
            raise ConfigError(f"Messages: over={self.over!r}; use 'stream' or 'datagram'")

    def _n(self) -> int:
        return self.count if self.count is not None else max(1, int(self.duration_s * self.rate_hz))

    async def client(self, session: Any, ctx: WorkloadContext) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if self.over == "datagram" and self.size_bytes > session.max_datagram_size:
            raise MessageTooLarge(f"Messages: size_bytes={self.size_bytes} exceeds the session's "
                                  f"max_datagram_size={session.max_datagram_size}")
        control = await session.open_bidi()
        pad = bytes(self.size_bytes - _HDR.size)
        t0 = loop.time()
        n = self._n()
        for i in range(n):
            due = t0 + i / self.rate_hz
            await _sleep_until(loop, due)
            now = loop.time()
            msg = _HDR.pack(i, now) + pad
            ctx.on_sent(now, i, self.size_bytes)
            if self.over == "datagram":
                session.send_datagram(msg)
            else:
                stream = await session.open_uni()
                stream.write(msg)
                stream.write_eof()
        # tell the server how many were sent; it answers once all stream messages arrived
        # (datagram messages may be lost: it answers after a quiet period)
        return await _report_count(control, n, ctx)

    async def server(self, session: Any, ctx: WorkloadContext) -> None:
        loop = asyncio.get_running_loop()
        size = self.size_bytes
        done = asyncio.Event()
        expected: list[int] = []

        def delivered(data: bytes) -> None:
            msg_id, sent_at = _HDR.unpack_from(data)
            ctx.on_delivered(loop.time(), msg_id, len(data), sent_at)
            if expected and ctx.delivered >= expected[0]:
                done.set()

        async def read_stream(stream: Any) -> None:
            data = await stream.read()
            if len(data) == size:
                delivered(data)

        async def streams() -> None:
            tasks = set()
            while True:
                stream = await session.accept_uni()
                t = loop.create_task(read_stream(stream))
                tasks.add(t)
                t.add_done_callback(tasks.discard)

        async def datagrams() -> None:
            while True:
                delivered(await session.receive_datagram())

        reader = loop.create_task(streams() if self.over == "stream" else datagrams())
        try:
            control = await session.accept_bidi()
            (n,) = _COUNT.unpack(await control.readexactly(_COUNT.size))
            expected.append(n)
            if ctx.delivered < n:
                if self.over == "stream":
                    await done.wait()
                else:
                    # datagrams may be lost: wait until none arrived for a while
                    quiet = 1.0
                    last = -1
                    while ctx.delivered < n and ctx.delivered != last:
                        last = ctx.delivered
                        await asyncio.sleep(quiet)
            control.write(_COUNT.pack(ctx.delivered))
            control.write_eof()
            await _wait_closed(session)
        finally:
            reader.cancel()


# ------------------------------------------------------------------ request/response
@dataclass
class RequestResponse(Workload):
    """``count`` requests of ``request_bytes`` each answered by ``response_bytes`` on the
    same bidirectional stream; back to back (``interval_s=None``) or one every
    ``interval_s`` (open loop, requests may overlap)."""

    request_bytes: int = 200
    response_bytes: int = 20_000
    count: int = 20
    interval_s: float | None = None
    name = "rpc"
    sender = "server"

    def __post_init__(self) -> None:
        if self.request_bytes < _HDR.size + 8:
            raise ConfigError(f"RequestResponse: request_bytes must be >= {_HDR.size + 8}")
        _positive("response_bytes", self.response_bytes)
        _positive("count", self.count)
        _positive("interval_s", self.interval_s, allow_none=True)

    async def _one(self, session: Any, ctx: WorkloadContext, i: int) -> None:
        loop = asyncio.get_running_loop()
        stream = await session.open_bidi()
        now = loop.time()
        ctx.on_sent(now, i, self.request_bytes)
        stream.write(_HDR.pack(i, now) + _COUNT.pack(self.response_bytes)
                     + bytes(self.request_bytes - _HDR.size - 8))
        stream.write_eof()
        data = await stream.read()
        if len(data) != self.response_bytes:
            raise ConfigError(f"RequestResponse: response {i} had {len(data)} bytes, "
                              f"expected {self.response_bytes}")
        ctx.on_delivered(loop.time(), i, len(data), now)

    async def client(self, session: Any, ctx: WorkloadContext) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if self.interval_s is None:
            for i in range(self.count):
                await self._one(session, ctx, i)
        else:
            t0 = loop.time()
            tasks = []
            for i in range(self.count):
                due = t0 + i * self.interval_s
                await _sleep_until(loop, due)
                tasks.append(loop.create_task(self._one(session, ctx, i)))
            await asyncio.gather(*tasks)
        return ctx.summary()

    async def server(self, session: Any, ctx: WorkloadContext) -> None:
        loop = asyncio.get_running_loop()

        async def answer(stream: Any) -> None:
            req = await stream.read()
            (size,) = _COUNT.unpack_from(req, _HDR.size)
            await stream.write(bytes(size))
            stream.write_eof()

        tasks = set()
        try:
            while True:
                stream = await session.accept_bidi()
                t = loop.create_task(answer(stream))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
        except (SessionClosed, StreamReset, ConnectionError):
            pass


# ----------------------------------------------------------------------------- video
@dataclass
class Video(Workload):
    """Frames at ``fps`` over datagrams, client to server, for ``duration_s``.

    Frame ``k`` has ``keyframe_bytes`` if ``k % keyframe_every == 0`` else
    ``frame_bytes``; it is split into datagrams of at most the session's
    ``max_datagram_size``. Datagrams are not retransmitted: a frame with a lost piece is
    recorded as ``message_dropped`` at the end.
    """

    fps: float = 30.0
    frame_bytes: int = 8000
    keyframe_bytes: int = 40000
    keyframe_every: int = 60
    duration_s: float = 5.0
    name = "video"

    def __post_init__(self) -> None:
        _positive("fps", self.fps)
        _positive("frame_bytes", self.frame_bytes)
        _positive("keyframe_bytes", self.keyframe_bytes)
        _positive("keyframe_every", self.keyframe_every)
        _positive("duration_s", self.duration_s)

    def frame_size(self, k: int) -> int:
        """Size of frame ``k`` in bytes (a keyframe every ``keyframe_every`` frames)."""
        return self.keyframe_bytes if k % self.keyframe_every == 0 else self.frame_bytes

    async def client(self, session: Any, ctx: WorkloadContext) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        piece = session.max_datagram_size - _FRAG.size
        if piece < 100:
            raise MessageTooLarge(f"Video: max_datagram_size={session.max_datagram_size} "
                                  "leaves no room for frame data")
        control = await session.open_bidi()
        n = max(1, int(self.duration_s * self.fps))
        t0 = loop.time()
        for k in range(n):
            due = t0 + k / self.fps
            await _sleep_until(loop, due)
            now = loop.time()
            size = self.frame_size(k)
            count = -(-size // piece)
            ctx.on_sent(now, k, size)
            for j in range(count):
                body = min(piece, size - j * piece)
                session.send_datagram(_FRAG.pack(k, j, count, now) + bytes(body))
        return await _report_count(control, n, ctx)

    async def server(self, session: Any, ctx: WorkloadContext) -> None:
        loop = asyncio.get_running_loop()
        partial: dict[int, list] = {}  # frame -> [pieces seen, count, bytes, sent_at]

        async def datagrams() -> None:
            while True:
                data = await session.receive_datagram()
                k, _j, count, sent_at = _FRAG.unpack_from(data)
                st = partial.get(k)
                if st is None:
                    st = partial[k] = [0, count, 0, sent_at]
                st[0] += 1
                st[2] += len(data) - _FRAG.size
                if st[0] == count:
                    ctx.on_delivered(loop.time(), k, st[2], sent_at)
                    st[0] = -1 << 30  # done; duplicates cannot complete it again

        reader = loop.create_task(datagrams())
        try:
            control = await session.accept_bidi()
            (n,) = _COUNT.unpack(await control.readexactly(_COUNT.size))
            # late datagrams: wait one quiet second after the last one
            last = -1
            while ctx.delivered < n and ctx.delivered != last:
                last = ctx.delivered
                await asyncio.sleep(1.0)
            now = loop.time()
            for k in range(n):
                st = partial.get(k)
                if st is None or st[0] >= 0:
                    ctx.on_dropped(now, k, self.frame_size(k))
            control.write(_COUNT.pack(ctx.delivered))
            control.write_eof()
            await _wait_closed(session)
        finally:
            reader.cancel()


WORKLOADS: dict[str, type[Workload]] = {
    "bulk": Bulk, "messages": Messages, "rpc": RequestResponse, "video": Video}


def create(spec: Workload | dict | str) -> Workload:
    """A workload from an instance, ``{"workload": name, **params}`` or a name."""
    if isinstance(spec, Workload):
        return spec
    if isinstance(spec, str):
        spec = {"workload": spec}
    if not isinstance(spec, dict) or "workload" not in spec:
        raise ConfigError(f"workload {spec!r}: give a Workload or {{'workload': name, ...}}")
    params = dict(spec)
    name = params.pop("workload")
    cls = WORKLOADS.get(name)
    if cls is None:
        raise ConfigError(f"unknown workload {name!r}; use one of {sorted(WORKLOADS)}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"workload {name!r}: {exc}") from None
