"""The built-in server routes: ``/echo``, ``/sink``, ``/source?bytes=N``.

* ``/echo``: every bidirectional stream is echoed on the same stream (FIN
  answered with FIN, a reset answered with a reset of the same code); every
  unidirectional stream is echoed on a new unidirectional stream; every
  datagram is echoed as a datagram. What the echo has read and not yet sent is
  at most about ``ECHO_BACKLOG_BYTES`` per session, however many streams the
  peer opens: a peer that sends and does not read stalls its own echo (and its
  unread data then counts against the session's buffer limit).
* ``/sink``: counts what the client sends. Totals are reported as one JSON
  object (UTF-8) with keys ``stream_bytes`` (bytes on the stream carrying the
  report), ``bytes`` (stream bytes of the whole session so far), ``streams``
  (streams finished so far, this one included), ``datagrams``,
  ``datagram_bytes`` and ``messages`` (= streams + datagrams):
  on every bidirectional stream, after the client's FIN, the server writes the
  report on that stream and FINs it; a client that wants the totals of the
  whole session therefore finishes its other streams, then opens one more
  bidirectional stream (possibly empty), FINs it and reads the report. When the
  session ends, the final totals are appended to ``server.sink_totals``.
* ``/source?bytes=N``: the server opens one unidirectional stream, sends
  ``N`` bytes of :func:`source_bytes` (the pattern 0, 1, ..., 255 repeated)
  and FINs it. ``N`` must be an integer in 0..2**40.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine

from wtlab.errors import MessageTooLarge, SessionClosed, StreamReset
from wtlab.transport.session import Session, Stream

logger = logging.getLogger("wtlab.transport")

CHUNK = 64 * 1024
ECHO_BACKLOG_BYTES = 1024 * 1024  # unsent echo per session, shared by its streams
_MIN_SHARE = 16 * 1024
_BLOCK = bytes(range(256)) * (CHUNK // 256)
MAX_SOURCE_BYTES = 1 << 40
CLOSE_BAD_REQUEST = 0x4C03


def source_bytes(n: int, offset: int = 0) -> bytes:
    """The first ``n`` bytes (from ``offset``) of what ``/source`` sends."""
    start = offset % 256
    reps = (start + n) // len(_BLOCK) + 1
    return (_BLOCK * reps)[start:start + n]


_QUIET = (SessionClosed, StreamReset, ConnectionError, asyncio.CancelledError)


class _Tasks:
    """The tasks of one session; cancelled together when the session ends."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not isinstance(
                task.exception(), _QUIET):
            logger.error("session task failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


async def echo(session: Session) -> None:
    """The ``/echo`` route: echoes every bidirectional stream, each unidirectional stream on a new
    one, and every datagram.
    """
    tasks = _Tasks()
    active = [0]  # streams being echoed: each may keep its share of the backlog unsent

    def share() -> int:
        return max(_MIN_SHARE, ECHO_BACKLOG_BYTES // max(1, active[0]))

    async def echo_bidi(stream: Stream) -> None:
        active[0] += 1
        try:
            while True:
                quota = share()
                data = await stream.read(min(CHUNK, quota))
                if not data:
                    break
                stream.write(data)
                await stream.drain(quota)
            stream.write_eof()
        except StreamReset as exc:
            stream.reset(exc.code)
        finally:
            active[0] -= 1

    async def echo_uni(stream: Stream) -> None:
        out: Stream | None = None
        active[0] += 1
        try:
            while True:
                quota = share()
                data = await stream.read(min(CHUNK, quota))
                if not data:
                    break
                if out is None:
                    out = await session.open_uni()
                out.write(data)
                await out.drain(quota)
            if out is None:
                out = await session.open_uni()
            out.write_eof()
        except StreamReset as exc:
            if out is not None:
                out.reset(exc.code)
        finally:
            active[0] -= 1

    async def bidi_loop() -> None:
        while True:
            tasks.spawn(echo_bidi(await session.accept_bidi()))

    async def uni_loop() -> None:
        while True:
            tasks.spawn(echo_uni(await session.accept_uni()))

    async def datagram_loop() -> None:
        while True:
            data = await session.receive_datagram()
            try:
                session.send_datagram(data)
            except MessageTooLarge:
                pass

    tasks.spawn(bidi_loop())
    tasks.spawn(uni_loop())
    tasks.spawn(datagram_loop())
    try:
        await session.wait_closed()
    finally:
        await tasks.close()


async def sink(session: Session, totals: list[dict[str, int]] | None = None) -> None:
    """The ``/sink`` route: reads and counts everything; answers each bidirectional stream with
    a JSON report of the counts (also appended to ``totals`` if given).
    """
    tasks = _Tasks()
    count = {"bytes": 0, "streams": 0, "datagrams": 0, "datagram_bytes": 0}

    def report(stream_bytes: int) -> dict[str, int]:
        out = {"stream_bytes": stream_bytes, **count}
        out["messages"] = count["streams"] + count["datagrams"]
        return out

    async def drain_stream(stream: Stream, answer: bool) -> None:
        n = 0
        while True:
            data = await stream.read(CHUNK)
            if not data:
                break
            n += len(data)
            count["bytes"] += len(data)
        count["streams"] += 1
        if answer:
            stream.write(json.dumps(report(n)).encode())
            stream.write_eof()

    async def bidi_loop() -> None:
        while True:
            tasks.spawn(drain_stream(await session.accept_bidi(), True))

    async def uni_loop() -> None:
        while True:
            tasks.spawn(drain_stream(await session.accept_uni(), False))

    async def datagram_loop() -> None:
        while True:
            data = await session.receive_datagram()
            count["datagrams"] += 1
            count["datagram_bytes"] += len(data)

    tasks.spawn(bidi_loop())
    tasks.spawn(uni_loop())
    tasks.spawn(datagram_loop())
    try:
        await session.wait_closed()
    finally:
        await tasks.close()
        if totals is not None:
            totals.append(report(0))


async def source(session: Session) -> None:
    """The ``/source?bytes=N`` route: sends N bytes on a unidirectional stream; closes the session
    with an error for a bad N.
    """
    raw = session.query.get("bytes", "0")
    try:
        n = int(raw)
        if not 0 <= n <= MAX_SOURCE_BYTES:
            raise ValueError
    except ValueError:
        await session.close(CLOSE_BAD_REQUEST, f"bytes={raw!r} must be an integer in 0..2**40")
        return
    stream = await session.open_uni()
    sent = 0
    view = memoryview(_BLOCK)
    while sent < n:
        take = min(CHUNK, n - sent)
        stream.write(view[:take])
        sent += take
        await stream.drain()
    stream.write_eof()
    await session.wait_closed()
