"""wtlab against a WebTransport server built directly on aioquic's own H3Connection (draft-02).

The server is the raw-aioquic baseline of the benchmarks (``benchmarks/rawh3.py``):
aioquic's ``H3Connection(enable_webtransport=True)``, which advertises only
draft-02 (ENABLE_WEBTRANSPORT) and answers with ``sec-webtransport-http3-draft:
draft02``. wtlab's client must pick draft-02 from the SETTINGS alone, and must
keep aioquic-side HTTP/3 framing out of its bidirectional stream data.
"""

from __future__ import annotations

import asyncio
import os

import pytest

import wtlab
from benchmarks.rawh3 import SinkReport, raw_connect, raw_serve
from tests.interop.conftest import running_wtlab, wt_url
from tests.interop.pwt import free_udp_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def aioquic_server(interop_cert):
    port = free_udp_port()
    server = await raw_serve("127.0.0.1", port, str(interop_cert.certfile),
                             str(interop_cert.keyfile))
    try:
        yield port
    finally:
        server.close()


async def test_wtlab_client_on_aioquic_h3_server(aioquic_server, interop_cert):
    url = f"https://127.0.0.1:{aioquic_server}/echo"
    async with wtlab.connect(url, cert_hashes=[interop_cert.sha256]) as session:
        assert session.dialect == "draft02"
        payload = os.urandom(200_000)
        stream = await session.open_bidi()
        stream.write(payload)
        stream.write_eof()
        assert await asyncio.wait_for(stream.read(), 10) == payload

        uni = await session.open_uni()
        uni.write(b"uni payload")
        uni.write_eof()
        incoming = await asyncio.wait_for(session.accept_uni(), 10)
        assert await asyncio.wait_for(incoming.read(), 10) == b"uni payload"

        for _ in range(20):  # datagrams may be lost: resend, bounded
            session.send_datagram(b"dgram")
            try:
                got = await asyncio.wait_for(session.receive_datagram(), 0.25)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no datagram echo after 20 sends")
        assert got == b"dgram"


async def test_wtlab_client_sink_report_from_aioquic_h3_server(aioquic_server, interop_cert):
    url = f"https://127.0.0.1:{aioquic_server}/sink"
    async with wtlab.connect(url, cert_hashes=[interop_cert.sha256]) as session:
        stream = await session.open_bidi()
        for _ in range(100):
            stream.write(b"z" * 1000)
            await stream.drain()
        stream.write_eof()
        report = SinkReport.decode(await asyncio.wait_for(stream.read(), 10))
    assert report.bytes == 100_000


async def test_aioquic_h3_client_on_wtlab_server(interop_cert):
    """And the reverse: a bare aioquic H3 client (draft-02 header) against wtlab.serve."""
    async with running_wtlab(cert=str(interop_cert.certfile),
                             key=str(interop_cert.keyfile)) as srv:
        url = wt_url(srv, "/echo")
        async with raw_connect("127.0.0.1", srv.port) as client:
            await asyncio.wait_for(client.open_session(url.split("/")[2], "/echo"), 10)
            stream = client.open_bidi()
            payload = os.urandom(100_000)
            stream.write(payload, end_stream=True)
            assert await asyncio.wait_for(stream.read_all(), 10) == payload
            for _ in range(20):
                client.send_datagram(b"raw dgram")
                try:
                    got = await asyncio.wait_for(client.receive_datagram(), 0.25)
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError("no datagram echo after 20 sends")
            assert got == b"raw dgram"
