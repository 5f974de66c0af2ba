"""Bulk transfer checked byte for byte, and many concurrent sessions and streams."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from tests.transport.conftest import running_server
from wtlab.transport.handlers import source_bytes

pytestmark = pytest.mark.timeout(120)

MB = 1_000_000


async def test_50mb_echo_hashed_at_both_ends():
    """50 MB of random bytes up and the same 50 MB back on one stream; SHA-256 at each end."""
    server_hashes: list[str] = []

    async def hash_echo(session):
        stream = await session.accept_bidi()
        digest = hashlib.sha256()
        while True:
            data = await stream.read(1 << 16)
            if not data:
                break
            digest.update(data)
            stream.write(data)
            await stream.drain()
        stream.write_eof()
        server_hashes.append(digest.hexdigest())
        await session.wait_closed()

    size = 50 * MB
    block = random.Random(2).randbytes(MB)
    blocks = [bytes([i]) + block[1:] for i in range(size // MB)]  # no two blocks alike
    sent = hashlib.sha256(b"".join(blocks)).hexdigest()
    async with running_server(routes={"/hash-echo": hash_echo}) as srv:
        async with srv.connect("/hash-echo", congestion_control="reno", timeout=10) as session:
            stream = await session.open_bidi()

            async def writer():
                for b in blocks:
                    stream.write(b)
                    await stream.drain()
                stream.write_eof()

            async def reader():
                digest = hashlib.sha256()
                n = 0
                while True:
                    data = await stream.read(1 << 20)
                    if not data:
                        return n, digest.hexdigest()
                    n += len(data)
                    digest.update(data)

            _, (n, received) = await asyncio.gather(writer(), reader())
    assert n == size
    assert server_hashes == [sent]
    assert received == sent


async def test_source_route_bytes_are_exact(server):
    n = 3 * MB + 17
    async with server.connect(f"/source?bytes={n}") as session:
        stream = await session.accept_uni()
        data = await asyncio.wait_for(stream.read(), 30)
    assert len(data) == n
    assert data == source_bytes(n)


async def test_50_sessions_x_10_streams(server):
    rng = random.Random(5)
    payloads = [[rng.randbytes(rng.randrange(1, 20_000)) for _ in range(10)] for _ in range(50)]

    async def one_session(i: int) -> int:
        async with server.connect("/echo", timeout=30) as session:
            async def one_stream(payload: bytes) -> bool:
                stream = await session.open_bidi()
                stream.write(payload)
                stream.write_eof()
                return await stream.read() == payload

            results = await asyncio.gather(*(one_stream(p) for p in payloads[i]))
            return sum(results)

    counts = await asyncio.wait_for(asyncio.gather(*(one_session(i) for i in range(50))), 90)
    assert counts == [10] * 50
    assert server.server.sessions_served >= 50


async def test_many_streams_on_one_session_are_forgotten(server):
    """Finished streams do not accumulate (memory stays bounded over a long session)."""
    async with server.connect("/echo") as session:
        for i in range(300):
            stream = await session.open_bidi()
            stream.write(b"%d" % i)
            stream.write_eof()
            assert await stream.read() == b"%d" % i
        ep = session._ep
        assert len(ep.streams) < 5
        assert len(ep.wt.streams) < 5
