"""The QUIC idle timeout is a parameter of connect/serve; silence ends the session typed."""

import asyncio

import pytest

import wtlab


def test_bad_idle_timeout_is_typed():
    with pytest.raises(wtlab.ConfigError, match="idle_timeout_s"):
        wtlab.serve(port=0, idle_timeout_s=0)


async def test_silence_past_idle_timeout_closes_the_session():
    async with wtlab.serve(port=0, idle_timeout_s=0.5) as server:
        session = await wtlab.connect(server.url("/echo"), cert_hashes=[server.cert_sha256],
                                      idle_timeout_s=0.5)
        with pytest.raises(wtlab.SessionClosed):
            # nothing is sent: the connection goes idle and closes (bounded wait)
            await asyncio.wait_for(session.receive_datagram(), timeout=10)
        with pytest.raises(wtlab.ConfigError, match="idle_timeout_s"):
            await wtlab.connect(server.url("/echo"), idle_timeout_s=-1)
