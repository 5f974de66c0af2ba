"""Fair service under load: 100 sessions x 10 bidirectional streams x 64 KiB echo, all at once.

Every stream must come back whole (1000/1000): no session may starve until its idle
timeout. What the server buffers for its peers (its own accounting, sampled through
the run) stays under a stated bound. Timing is measured in ``benchmarks/server.py``,
never asserted here.
"""

from __future__ import annotations

import asyncio

import pytest

import wtlab
from tests.transport.conftest import running_server

pytestmark = pytest.mark.timeout(240)

SESSIONS, STREAMS, SIZE = 100, 10, 64 * 1024
BUFFERED_BOUND = 16 * 1024 * 1024  # bytes held unread at once, whole server


async def test_hundred_sessions_ten_streams_all_served():
    payloads = [bytes([(s * 31 + k) % 256]) * SIZE for s in range(SESSIONS) for k in range(STREAMS)]
    async with running_server(idle_timeout_s=30.0) as srv:
        server = srv.server
        peak = 0
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, server.stats()["buffered_bytes"])
                await asyncio.sleep(0.01)

        async def one_session(s: int) -> int:
            async with wtlab.connect(srv.url("/echo"), cert_hashes=[srv.cert_sha256],
                                     timeout=60, idle_timeout_s=30.0) as session:
                async def one_stream(k: int) -> bool:
                    payload = payloads[s * STREAMS + k]
                    stream = await session.open_bidi()
                    stream.write(payload)
                    stream.write_eof()
                    return await stream.read() == payload

                return sum(await asyncio.gather(*(one_stream(k) for k in range(STREAMS))))

        sampler = asyncio.ensure_future(sample())
        try:
            counts = await asyncio.wait_for(
                asyncio.gather(*(one_session(s) for s in range(SESSIONS))), 200)
        finally:
            done.set()
            await sampler
        assert counts == [STREAMS] * SESSIONS  # 1000/1000, byte for byte
        stats = server.stats()
        assert stats["sessions_served"] == SESSIONS
        assert stats["sessions_rejected"] == 0 and stats["limit_hits"] == 0
        assert stats["budget_closes"] == 0
        assert peak <= BUFFERED_BOUND
