"""Server limits (sessions, streams per session, buffered bytes) and WT flow control."""

from __future__ import annotations

import asyncio

import pytest

from tests.transport.conftest import running_server
from wtlab.errors import SessionClosed, SessionRejected
from wtlab.transport import Limits
from wtlab.transport.server import CLOSE_BUFFER_LIMIT, CLOSE_STREAM_LIMIT


async def _echo_once(session, payload: bytes = b"ok") -> bytes:
    stream = await session.open_bidi()
    stream.write(payload)
    stream.write_eof()
    return await asyncio.wait_for(stream.read(), 5)


async def test_stream_limit_closes_only_that_session():
    async with running_server(limits=Limits(max_streams_per_session=3)) as srv:
        async with srv.connect("/echo", dialect="draft02") as bystander:
            async with srv.connect("/echo", dialect="draft02") as session:
                streams = [await session.open_bidi() for _ in range(5)]
                for s in streams:
                    s.write(b"held open")  # no FIN: all five stay open at the server
                with pytest.raises(SessionClosed) as info:
                    await asyncio.wait_for(session.accept_bidi(), 5)
                assert info.value.code == CLOSE_STREAM_LIMIT
                assert "streams per session" in info.value.reason
            # the server keeps serving the other session, and new ones
            assert await _echo_once(bystander) == b"ok"
        async with srv.connect("/echo") as fresh:
            assert await _echo_once(fresh) == b"ok"
        assert srv.server.limit_hits >= 1


async def test_buffered_bytes_limit():
    async def idle(session):
        await session.wait_closed()  # never reads

    limits = Limits(max_buffered_bytes_per_session=100_000)
    async with running_server(limits=limits, routes={"/idle": idle}) as srv:
        async with srv.connect("/idle") as session:
            stream = await session.open_bidi()
            stream.write(b"x" * 300_000)
            with pytest.raises(SessionClosed) as info:
                await asyncio.wait_for(stream.read(), 5)
            assert info.value.code == CLOSE_BUFFER_LIMIT
        async with srv.connect("/echo") as other:
            assert await _echo_once(other) == b"ok"


async def test_session_limit_answers_429():
    async with running_server(limits=Limits(max_sessions=2)) as srv:
        async with srv.connect("/echo") as a, srv.connect("/echo") as b:
            with pytest.raises(SessionRejected) as info:
                async with srv.connect("/echo"):
                    pass
            assert info.value.status == 429
            assert await _echo_once(a) == b"ok" and await _echo_once(b) == b"ok"
        # after they close, a new session fits again (the server notices the close)
        for _ in range(50):  # bounded wait for the server to see both closes
            if srv.server.stats()["sessions"] == 0:
                break
            await asyncio.sleep(0.02)
        async with srv.connect("/echo") as c:
            assert await _echo_once(c) == b"ok"


async def test_latest_dialect_stream_credit_blocks_then_resumes():
    """With WT flow control a client may not open more streams than granted; it waits."""
    async with running_server(limits=Limits(max_streams_per_session=4)) as srv:
        async with srv.connect("/echo", dialect="latest") as session:
            held = [await session.open_bidi() for _ in range(4)]
            fifth = asyncio.ensure_future(session.open_bidi())
            await asyncio.sleep(0.2)
            assert not fifth.done()  # no credit yet
            for s in held:  # finishing streams makes the server grant new ones
                s.write(b"done")
                s.write_eof()
                assert await asyncio.wait_for(s.read(), 5) == b"done"
            stream = await asyncio.wait_for(fifth, 5)
            stream.write(b"fifth")
            stream.write_eof()
            assert await asyncio.wait_for(stream.read(), 5) == b"fifth"
            assert not session.closed


async def test_latest_dialect_data_credit_is_regranted():
    """A 64 KiB session window: a 1 MB transfer needs WT_MAX_DATA capsules to finish."""
    limits = Limits(session_window_bytes=64 * 1024)
    async with running_server(limits=limits) as srv:
        async with srv.connect("/echo", dialect="latest") as session:
            payload = bytes(range(256)) * 4000
            stream = await session.open_bidi()

            async def writer():
                for i in range(0, len(payload), 10_000):
                    await stream.write(payload[i:i + 10_000])
                stream.write_eof()

            _, echoed = await asyncio.gather(writer(), asyncio.wait_for(stream.read(), 30))
            assert echoed == payload
            assert session.stats()["flow_control_stalls"] > 0


async def test_latest_dialect_credit_never_trips_the_stream_limit():
    """Stream credit comes back only when a stream is done both ways, so a client that
    respects it never exceeds the server's streams-per-session limit."""
    async with running_server(limits=Limits(max_streams_per_session=4)) as srv:
        async with srv.connect("/echo", dialect="latest") as session:
            async def one(i: int) -> bytes:
                stream = await session.open_bidi()
                stream.write(b"%d" % i * 5000)
                stream.write_eof()
                return await stream.read()

            results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(40))), 30)
            assert results == [b"%d" % i * 5000 for i in range(40)]
            assert not session.closed
        assert srv.server.limit_hits == 0
