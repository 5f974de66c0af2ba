"""Interoperability with pywebtransport 0.8.1, a WebTransport stack no one here wrote.

Both ways: pywebtransport's client against ``wtlab.serve``, and wtlab's client
against pywebtransport's server. pywebtransport speaks the newer drafts with
WebTransport flow control (WT_MAX_SESSIONS 0x14e9cd29, initial limits,
flow-control capsules), so these tests also cover wtlab's "latest" dialect.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from pywebtransport import WebTransportClient, WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream

import wtlab
from tests.interop import pwt
from tests.interop.conftest import running_wtlab, wt_url

pytestmark = pytest.mark.timeout(60)

SETTING_WT_MAX_SESSIONS = 0x14E9CD29
SETTING_WT_INITIAL_MAX_DATA = 0x2B61


async def _next_uni(session: WebTransportSession, timeout: float = 10.0):
    async def first():
        async for stream in session.incoming_streams():
            if isinstance(stream, WebTransportReceiveStream):
                return stream
        raise AssertionError("session closed before the echoed uni stream arrived")

    return await asyncio.wait_for(first(), timeout)


async def _pwt_datagram_echo(session: WebTransportSession, payload: bytes) -> bytes:
    transport = await session.create_datagram_transport()
    for _ in range(20):  # datagrams may be lost: resend, bounded
        await transport.send(data=payload)
        try:
            return await transport.receive(timeout=0.25)
        except Exception:
            continue
    raise AssertionError("no datagram echo after 20 sends")


async def _wtlab_datagram_echo(session, payload: bytes) -> bytes:
    for _ in range(20):  # datagrams may be lost: resend, bounded
        session.send_datagram(payload)
        try:
            return await asyncio.wait_for(session.receive_datagram(), 0.25)
        except TimeoutError:
            continue
    raise AssertionError("no datagram echo after 20 sends")


# ------------------------------------------------------- pywebtransport client -> wtlab server


async def test_pywebtransport_client_echo_on_wtlab_server(interop_cert):
    bidi_payload = os.urandom(300_000)  # more than one flow-control window's worth of frames
    uni_payload = os.urandom(50_000)
    dgram_payload = os.urandom(200)
    pwt.RECEIVED_SETTINGS.clear()
    async with running_wtlab(cert=str(interop_cert.certfile), key=str(interop_cert.keyfile)) as srv:
        async with WebTransportClient(config=pwt.pwt_client_config()) as client:
            session = await client.connect(url=wt_url(srv, "/echo"))

            stream = await session.create_bidirectional_stream()
            writer = asyncio.create_task(stream.write_all(data=bidi_payload))
            echoed = await asyncio.wait_for(stream.read_all(), 20)
            await writer
            assert echoed == bidi_payload

            uni = await session.create_unidirectional_stream()
            await uni.write_all(data=uni_payload)
            incoming = await _next_uni(session)
            assert await asyncio.wait_for(incoming.read_all(), 10) == uni_payload

            assert await _pwt_datagram_echo(session, dgram_payload) == dgram_payload
            await session.close()

    # pywebtransport only opens streams because wtlab advertised the newer drafts' settings
    settings = pwt.RECEIVED_SETTINGS[0]
    assert settings.get(SETTING_WT_MAX_SESSIONS, 0) >= 1, settings
    assert settings.get(SETTING_WT_INITIAL_MAX_DATA, 0) > 0, settings


async def test_pywebtransport_client_many_streams_on_wtlab_server(interop_cert):
    """More concurrent bidi streams than one initial stream credit: needs WT_MAX_STREAMS capsules."""
    async with running_wtlab(cert=str(interop_cert.certfile), key=str(interop_cert.keyfile)) as srv:
        async with WebTransportClient(config=pwt.pwt_client_config()) as client:
            session = await client.connect(url=wt_url(srv, "/echo"))

            async def one(i: int) -> bool:
                payload = f"stream {i} ".encode() * (i + 1)
                stream = await session.create_bidirectional_stream(timeout=10)
                await stream.write_all(data=payload)
                return await asyncio.wait_for(stream.read_all(), 10) == payload

            for batch in range(3):
                results = await asyncio.gather(*(one(batch * 50 + i) for i in range(50)))
                assert all(results), f"batch {batch}: {results.count(False)} streams echoed wrong"
            await session.close()


async def test_pywebtransport_client_close_seen_by_wtlab_server(interop_cert):
    seen: asyncio.Future = asyncio.get_running_loop().create_future()

    async def hold(session) -> None:
        try:
            result = await session.wait_closed()
            if not seen.done():
                seen.set_result(("returned", result))
        except wtlab.SessionClosed as exc:
            if not seen.done():
                seen.set_result(("raised", (exc.code, exc.reason)))

    async with running_wtlab(cert=str(interop_cert.certfile), key=str(interop_cert.keyfile),
                             routes={"/hold": hold}) as srv:
        async with WebTransportClient(config=pwt.pwt_client_config()) as client:
            session = await client.connect(url=wt_url(srv, "/hold"))
            await session.close(code=7, reason="bye from pywebtransport", close_connection=False)
            _how, (code, reason) = await asyncio.wait_for(seen, 10)
    assert (code, reason) == (7, "bye from pywebtransport")


# ------------------------------------------------------- wtlab client -> pywebtransport server


async def test_wtlab_client_echo_on_pywebtransport_server(interop_cert):
    bidi_payload = os.urandom(300_000)
    uni_payload = os.urandom(50_000)
    dgram_payload = os.urandom(200)
    async with pwt.pwt_echo_server(interop_cert) as srv:
        async with wtlab.connect(srv.url("/echo"), cert_hashes=[interop_cert.sha256]) as session:
            stream = await session.open_bidi()
            stream.write(bidi_payload)
            stream.write_eof()
            assert await asyncio.wait_for(stream.read(), 20) == bidi_payload

            uni = await session.open_uni()
            uni.write(uni_payload)
            uni.write_eof()
            incoming = await asyncio.wait_for(session.accept_uni(), 10)
            assert await asyncio.wait_for(incoming.read(), 10) == uni_payload

            assert await _wtlab_datagram_echo(session, dgram_payload) == dgram_payload

            # many concurrent streams: exercises pywebtransport's stream credit capsules
            async def one(i: int) -> bool:
                payload = os.urandom(1000 + i)
                s = await session.open_bidi()
                s.write(payload)
                s.write_eof()
                return await asyncio.wait_for(s.read(), 10) == payload

            results = await asyncio.gather(*(one(i) for i in range(100)))
            assert all(results)
    assert srv.sessions == 1 and srv.paths == ["/echo"]


async def test_wtlab_client_sees_pywebtransport_server_close(interop_cert):
    async with pwt.pwt_echo_server(interop_cert) as srv:
        @srv.app.route(path="/bye")
        async def bye(session: WebTransportSession) -> None:
            await asyncio.sleep(0.05)
            await session.close(code=5, reason="server says bye", close_connection=False)

        async with wtlab.connect(srv.url("/bye"), cert_hashes=[interop_cert.sha256]) as session:
            with pytest.raises(wtlab.SessionClosed) as info:
                await asyncio.wait_for(session.receive_datagram(), 10)
    assert (info.value.code, info.value.reason) == (5, "server says bye")


async def test_wtlab_client_unknown_route_on_pywebtransport_server(interop_cert):
    async with pwt.pwt_echo_server(interop_cert) as srv:
        with pytest.raises(wtlab.SessionRejected) as info:
            async with wtlab.connect(srv.url("/nowhere"), cert_hashes=[interop_cert.sha256]):
                pass
    assert info.value.status == 404


async def test_wtlab_client_follows_pywebtransport_credit_capsules(interop_cert):
    """pywebtransport grants only 64 KiB of session data and 4 streams at first: wtlab must
    wait for its WT_MAX_DATA / WT_MAX_STREAMS capsules, then send everything."""
    payload = os.urandom(1_000_000)
    async with pwt.pwt_echo_server(interop_cert, initial_max_data=65536,
                                   initial_max_streams_bidi=4,
                                   stream_flow_control_increment_bidi=4) as srv:
        async with wtlab.connect(srv.url("/echo"), cert_hashes=[interop_cert.sha256]) as session:
            stream = await session.open_bidi()

            async def send() -> None:
                for i in range(0, len(payload), 50_000):
                    await stream.write(payload[i:i + 50_000])
                stream.write_eof()

            sender = asyncio.create_task(send())
            assert await asyncio.wait_for(stream.read(), 30) == payload
            await sender

            async def one(i: int) -> bytes:
                s = await session.open_bidi()
                s.write(b"%d" % i)
                s.write_eof()
                return await asyncio.wait_for(s.read(), 10)

            got = await asyncio.gather(*(one(i) for i in range(12)))
            assert got == [b"%d" % i for i in range(12)]
            assert session.stats()["stream_bytes_sent"] >= len(payload)
            assert session.dialect == "latest"
            assert session.flow_control_stalls > 0  # the credit path was really taken
