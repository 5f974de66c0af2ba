"""Every error path of the client and server: each raises the documented WtlabError."""

from __future__ import annotations

import asyncio
import socket

import pytest

import wtlab
import wtlab.cc.aioquic  # noqa: F401  (imported up front: timing tests measure the protocol)
from tests.transport.conftest import running_server
from wtlab.errors import (
    CertificateError,
    ConfigError,
    ConnectTimeout,
    InvalidURL,
    MessageTooLarge,
    SessionClosed,
    SessionRejected,
    StreamReset,
)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:4433/echo",      # wrong scheme
    "wss://127.0.0.1:4433/echo",
    "https:///echo",                   # no host
    "https://127.0.0.1:99999/echo",    # port out of range
    "https://127.0.0.1:x/echo",        # port not a number
    "127.0.0.1:4433/echo",             # no scheme
    "",
])
async def test_invalid_url_raises_before_any_packet(url):
    with pytest.raises(InvalidURL):
        async with wtlab.connect(url):
            pass


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_nothing_listening_fails_within_timeout():
    port = _free_udp_port()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(ConnectTimeout):
        async with wtlab.connect(f"https://127.0.0.1:{port}/echo", timeout=2.0, verify=False):
            pass
    assert loop.time() - t0 < 2.5


async def test_silent_peer_times_out():
    # A UDP socket that reads and never answers: no ICMP, so only the timeout ends it.
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    t0 = loop.time()
    try:
        with pytest.raises(ConnectTimeout):
            async with wtlab.connect(f"https://127.0.0.1:{port}/echo", timeout=0.5, verify=False):
                pass
    finally:
        transport.close()
    assert 0.4 < loop.time() - t0 < 1.5


async def test_wrong_certificate_hash(server):
    with pytest.raises(CertificateError) as info:
        async with wtlab.connect(server.url("/echo"), cert_hashes=["00" * 32], timeout=5):
            pass
    assert server.cert_sha256 in str(info.value)


async def test_untrusted_certificate_without_hash(server):
    with pytest.raises(CertificateError):
        async with wtlab.connect(server.url("/echo"), timeout=5):
            pass


async def test_verify_false_accepts_self_signed(server):
    async with wtlab.connect(server.url("/echo"), verify=False, timeout=5) as session:
        assert not session.closed


async def test_malformed_hash_is_config_error(server):
    with pytest.raises(ConfigError):
        async with wtlab.connect(server.url("/echo"), cert_hashes=["abc"]):
            pass


async def test_unknown_route_is_404(server):
    with pytest.raises(SessionRejected) as info:
        async with server.connect("/no-such-route"):
            pass
    assert info.value.status == 404


async def test_server_initiated_close_reaches_every_waiter():
    async def closer(session):
        stream = await session.accept_bidi()
        await stream.readexactly(2)
        await session.close(42, "bye now")

    async with running_server(routes={"/closer": closer}) as srv:
        async with srv.connect("/closer") as session:
            waiting_uni = asyncio.ensure_future(session.accept_uni())
            waiting_dgram = asyncio.ensure_future(session.receive_datagram())
            stream = await session.open_bidi()
            stream.write(b"go")
            for waiter in (waiting_uni, waiting_dgram, stream.read()):
                with pytest.raises(SessionClosed) as info:
                    await asyncio.wait_for(waiter, 5)
                assert (info.value.code, info.value.reason) == (42, "bye now")
            assert await session.wait_closed() == (42, "bye now")
            with pytest.raises(SessionClosed):
                await session.open_bidi()
            with pytest.raises(SessionClosed):
                session.send_datagram(b"x")


async def test_stream_reset_is_echoed(server):
    async with server.connect("/echo") as session:
        stream = await session.open_bidi()
        stream.write(b"partial")
        await asyncio.wait_for(stream.readexactly(7), 5)
        stream.reset(7)
        with pytest.raises(StreamReset) as info:
            await asyncio.wait_for(stream.read(), 5)
        assert info.value.code == 7
        # the session survives a stream reset
        other = await session.open_bidi()
        other.write(b"still here")
        other.write_eof()
        assert await asyncio.wait_for(other.read(), 5) == b"still here"


async def test_stop_sending_reaches_the_writer():
    got = asyncio.get_running_loop().create_future()

    async def stopper(session):
        stream = await session.accept_bidi()
        await stream.readexactly(1)
        stream.stop_sending(9)
        got.set_result(True)
        await session.wait_closed()

    async with running_server(routes={"/stop": stopper}) as srv:
        async with srv.connect("/stop") as session:
            stream = await session.open_bidi()
            stream.write(b"a")
            await asyncio.wait_for(got, 5)
            with pytest.raises(StreamReset) as info:
                for _ in range(1000):  # bounded: STOP_SENDING arrives within a few RTTs
                    stream.write(b"b" * 1000)
                    await asyncio.sleep(0.005)
            assert info.value.code == 9


async def test_datagram_too_large(server):
    async with server.connect("/echo") as session:
        limit = session.max_datagram_size
        assert 1000 < limit < 1500
        session.send_datagram(b"x" * limit)  # the largest one fits
        assert await asyncio.wait_for(session.receive_datagram(), 5) == b"x" * limit
        with pytest.raises(MessageTooLarge):
            session.send_datagram(b"x" * (limit + 1))


async def test_unknown_congestion_control_is_rejected_before_connecting(server):
    with pytest.raises(wtlab.UnknownAlgorithm):
        async with server.connect("/echo", congestion_control="no-such-cc"):
            pass


async def test_bad_close_code(server):
    async with server.connect("/echo") as session:
        with pytest.raises(ConfigError):
            await session.close(2**32, "too big")


def test_cli_prints_certificate_hash(capsys):
    from wtlab.transport.server import cli_main

    assert cli_main(["--port", "0", "--duration", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "listening on https://127.0.0.1:" in out
    digest = out.split("certificate SHA-256:")[1].split()[0]
    assert len(digest) == 64 and int(digest, 16) >= 0


async def test_server_shutdown_reaches_client_waiters():
    async with running_server() as srv:
        session = await srv.connect("/echo")
        waiter = asyncio.ensure_future(session.accept_bidi())
        await asyncio.sleep(0.05)
        srv.server.close()
        with pytest.raises(SessionClosed):
            await asyncio.wait_for(waiter, 5)
        assert session.closed
        await session.close()  # closing an already closed session is harmless


async def test_outgoing_datagram_queue_is_bounded(server):
    from wtlab.transport.session import DATAGRAM_SEND_QUEUE

    async with server.connect("/sink") as session:
        for _ in range(DATAGRAM_SEND_QUEUE + 500):  # all in one loop turn: nothing is sent yet
            session.send_datagram(b"d" * 100)
        assert len(session.quic._datagrams_pending) <= DATAGRAM_SEND_QUEUE
        assert session.stats()["datagrams_send_dropped"] >= 500


async def test_session_close_ends_a_read_that_has_partial_data():
    async def half_then_close(session):
        stream = await session.accept_bidi()
        await stream.readexactly(1)
        stream.write(b"partial")  # no FIN
        await asyncio.sleep(0.05)
        await session.close(3, "gone")

    async with running_server(routes={"/half": half_then_close}) as srv:
        async with srv.connect("/half") as session:
            stream = await session.open_bidi()
            stream.write(b"?")
            with pytest.raises(SessionClosed) as info:
                await asyncio.wait_for(stream.read(), 5)  # to FIN, which never comes
            assert info.value.code == 3


async def test_peer_drain_ends_waiters_but_not_streams():
    async def drainer(session):
        stream = await session.accept_bidi()
        session.request_drain()
        data = await stream.read()
        stream.write(data)
        stream.write_eof()
        await session.wait_closed()

    async with running_server(routes={"/drain": drainer}) as srv:
        async with srv.connect("/drain") as session:
            stream = await session.open_bidi()
            stream.write(b"abc")
            with pytest.raises(SessionClosed):
                await asyncio.wait_for(session.accept_uni(), 5)
            assert session.draining
            stream.write_eof()
            assert await asyncio.wait_for(stream.read(), 5) == b"abc"
