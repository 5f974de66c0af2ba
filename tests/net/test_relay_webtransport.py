"""A live wtlab WebTransport session through the relay meets the bottleneck (issue 5, done-when)."""

from __future__ import annotations

import asyncio

import pytest

import wtlab
from wtlab.net.relay import Relay


async def test_webtransport_download_through_the_relay():
    rate, delay, nbytes = 8e6, 0.015, 600_000
    async with wtlab.serve(port=0) as server:
        async with Relay(("127.0.0.1", server.port), rate_bps=rate, delay_s=delay,
                         buffer="2bdp") as relay:
            url = f"https://127.0.0.1:{relay.address[1]}/source?bytes={nbytes}"
            loop = asyncio.get_running_loop()
            start = loop.time()
            async with wtlab.connect(url, cert_hashes=[server.cert_sha256], timeout=10.0) as s:
                connected = loop.time()
                stream = await s.accept_uni()
                data = await asyncio.wait_for(stream.read(), 30)
                done = loop.time()
            stats = relay.stats
    assert len(data) == nbytes
    # the QUIC + HTTP/3 + WebTransport setup crossed the path: at least two RTTs of 30 ms
    assert connected - start >= 2 * 2 * delay - 1e-3
    goodput = nbytes * 8 / (done - connected)
    assert goodput < rate, (goodput, stats)
    assert goodput > 0.5 * rate, (goodput, stats)
    assert stats["down"]["delivered"] >= nbytes / 1300
    assert stats["up"]["delivered"] > 0


@pytest.mark.parametrize("loss", ["5%"])
async def test_webtransport_survives_loss_through_the_relay(loss):
    async with wtlab.serve(port=0) as server:
        async with Relay(("127.0.0.1", server.port), rate_bps="20mbit", delay_s="5ms",
                         loss=loss, seed=3) as relay:
            url = f"https://127.0.0.1:{relay.address[1]}/source?bytes=300000"
            async with wtlab.connect(url, cert_hashes=[server.cert_sha256], timeout=10.0) as s:
                stream = await s.accept_uni()
                data = await asyncio.wait_for(stream.read(), 30)
            stats = relay.stats
    assert len(data) == 300_000  # QUIC recovered every loss
    assert stats["down"]["dropped_loss"] > 0
