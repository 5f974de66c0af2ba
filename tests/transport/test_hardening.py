"""A server that holds: what a hostile peer sends, through a real QUIC client on loopback.

Each test sends what a well-behaved client never would (aioquic used directly, see
``tests/transport/attack.py``), checks the server's own accounting of what it holds
(``server.stats()["buffered_bytes"]``, the connection's ``held_bytes``, QUIC
reassembly) against its budget, and checks that a normal client served alongside
still gets its echo.
"""

from __future__ import annotations

import asyncio

import pytest
from aioquic.buffer import encode_uint_var

import wtlab
from tests.transport.attack import Attacker, echo_works, frame, until
from tests.transport.conftest import running_server
from wtlab.transport import protocol as P
from wtlab.transport.limits import Limits
from wtlab.transport.server_connection import AIOQUIC_INTERNALS

pytestmark = pytest.mark.timeout(120)

KIB, MIB = 1024, 1024 * 1024
HUGE = 1 << 60  # a declared length no buffer could hold
CHUNK = bytes(range(256)) * 64  # 16 KiB of garbage


def held(srv) -> int:
    return srv.server.stats()["buffered_bytes"]


# ------------------------------------------------------------------ H1: request stream
async def test_huge_declared_headers_is_answered_431_without_buffering():
    async with running_server() as srv:
        async with Attacker(srv.server) as a:
            sid = a.bidi(parse_answer=True)
            a.send(sid, frame(0x1, b"", declared=HUGE))
            a.send_chunks(sid, CHUNK, 64)  # 1 MiB that would follow the header block
            assert await a.response(sid) == 431
            assert a.stop_code(sid) == P.H3_REQUEST_REJECTED
            assert held(srv) < 4 * KIB
            assert await echo_works(srv.server)


async def test_header_block_over_limit_is_refused_before_it_is_complete():
    limit = 16 * KIB
    async with running_server() as srv:
        async with Attacker(srv.server) as a:
            sid = a.bidi(parse_answer=True)
            a.send(sid, frame(0x1, CHUNK[:1000], declared=16 * MIB))  # first KB of 16 MiB
            assert await a.response(sid) == 431
            assert held(srv) < limit


async def test_twenty_thousand_headers_are_refused():
    async with running_server() as srv:
        async with Attacker(srv.server) as a:
            extra = [(b"x-h%d" % i, b"v" * 80) for i in range(20_000)]
            sid = a.bidi()
            a.send_headers(sid, a.connect_headers("/echo", extra=extra))
            assert await a.response(sid, 10) == 431
            assert held(srv) < 32 * KIB
            assert srv.server.stats()["sessions"] == 0
        assert await echo_works(srv.server)


async def test_decoded_header_size_is_limited_too():
    """A header block small on the wire may not decode into more than the limit."""
    limits = Limits(max_header_bytes=4 * KIB)
    async with running_server(limits=limits) as srv:
        async with Attacker(srv.server) as a:
            # 120 static-table references cost a byte each but decode to >32 bytes each
            extra = [(b"accept", b"*/*")] * 120
            sid = a.bidi()
            a.send_headers(sid, a.connect_headers("/echo", extra=extra))
            assert await a.response(sid) == 431


async def test_bare_capsule_with_huge_length_ends_the_session():
    async with running_server() as srv:
        async with Attacker(srv.server) as a:
            sid = await a.session("/echo")
            a.send(sid, frame(P.CAPSULE_CLOSE_SESSION, b"\0\0\0\0", declared=HUGE))
            a.send_chunks(sid, CHUNK, 32)
            await until(lambda: a.reset_code(sid) == P.H3_MESSAGE_ERROR, what="CONNECT reset")
            await until(lambda: srv.server.stats()["sessions"] == 0, what="session dropped")
            assert held(srv) < 4 * KIB
            assert a.closed() is None  # only that session, not the connection
        assert await echo_works(srv.server)


async def test_capsules_inside_data_frames_are_never_collected():
    """An unknown capsule of 2**60 bytes inside an endless DATA frame: discarded as it comes."""
    async with running_server() as srv:
        async with Attacker(srv.server) as a:
            sid = await a.session("/echo")
            a.send(sid, frame(0x0, b"", declared=HUGE) + encode_uint_var(0x3F00)
                   + encode_uint_var(HUGE))
            peak = 0
            for _ in range(16):  # 8 MiB in all, checked as it goes
                a.send_chunks(sid, CHUNK, 32)
                await asyncio.sleep(0)
                peak = max(peak, held(srv))
            ep = a.endpoint()
            await until(lambda: ep.quic.rx_delivered_bytes > 8 * MIB, 20, "8 MiB delivered")
            assert max(peak, held(srv)) < 4 * KIB
            assert srv.server.stats()["sessions"] == 1  # unknown capsules are legal
        assert await echo_works(srv.server)


async def test_known_capsule_inside_data_with_huge_length_ends_the_session():
    async with running_server() as srv:
        async with Attacker(srv.server) as a:
            sid = await a.session("/echo")
            a.send(sid, frame(0x0, encode_uint_var(P.CAPSULE_WT_MAX_DATA)
                              + encode_uint_var(HUGE), declared=HUGE))
            a.send_chunks(sid, CHUNK, 16)
            await until(lambda: a.reset_code(sid) == P.H3_MESSAGE_ERROR, what="CONNECT reset")
            assert held(srv) < 4 * KIB


# ------------------------------------------------------------------ H2: early streams
async def test_streams_for_sessions_never_requested_are_bounded_in_bytes():
    limits = Limits(max_early_bytes_per_connection=256 * KIB)
    async with running_server(limits=limits) as srv:
        async with Attacker(srv.server) as a:
            streams = []
            for k in range(40):  # 40 streams for 8 sessions that are never requested
                sid = a.bidi()
                streams.append(sid)
                a.send(sid, encode_uint_var(P.FRAME_WEBTRANSPORT_STREAM)
                       + encode_uint_var(4 * (1000 + k % 8)))
                a.send_chunks(sid, CHUNK, 8)  # 128 KiB each, 5 MiB in all
            await until(lambda: sum(a.stop_code(s) == P.WT_BUFFERED_STREAM_REJECTED
                                    for s in streams) >= 30, 10, "early streams refused")
            ep = a.endpoint()
            assert ep.wt.held_bytes() <= 256 * KIB
            assert held(srv) <= 256 * KIB
            # streams for session ids no CONNECT could have (not a multiple of 4): refused
            odd = a.uni()
            a.send(odd, encode_uint_var(P.STREAM_TYPE_WEBTRANSPORT) + encode_uint_var(5) + CHUNK)
            await until(lambda: a.stop_code(odd) == P.WT_SESSION_GONE, what="refused")
        assert await echo_works(srv.server)


async def test_early_stream_is_delivered_when_its_session_arrives():
    async with running_server() as srv:
        async with Attacker(srv.server) as a:
            connect_sid = a.bidi()
            a.proto.h3_streams.add(connect_sid)
            a.proto.h3.send_headers(connect_sid, a.connect_headers("/echo"))
            sender = a.quic._streams[connect_sid].sender
            queued = sender._buffer_stop
            sender._pending.subtract(0, queued)  # hold the CONNECT back: the stream overtakes it
            data_sid = a.bidi()
            a.send(data_sid, encode_uint_var(P.FRAME_WEBTRANSPORT_STREAM)
                   + encode_uint_var(connect_sid) + b"early bird", end=True)
            await until(lambda: a.endpoint().wt.held_bytes() > 0, what="early data held")
            sender._pending.add(0, queued)
            sender.buffer_is_empty = False
            a.proto.transmit()
            assert await a.response(connect_sid) == 200

            def echoed() -> bytes:
                return b"".join(ev.data for ev in a.events
                                if getattr(ev, "stream_id", None) == data_sid
                                and hasattr(ev, "data") and type(ev).__name__ ==
                                "StreamDataReceived")
            await until(lambda: echoed().endswith(b"early bird"), what="early stream echoed")
            assert a.endpoint().wt.held_bytes() == 0


# ------------------------------------------------------------ QUIC: flow control windows
async def test_out_of_order_data_cannot_grow_the_windows():
    """One byte at the end of each window doubled aioquic's windows and made it allocate
    the gap: a few packets, gigabytes. The windows now slide over delivered bytes."""
    limits = Limits(stream_window_bytes=1 * MIB, connection_window_bytes=4 * MIB)
    async with running_server(limits=limits) as srv:
        async with Attacker(srv.server) as a:
            sid = await a.session("/echo")
            ep = a.endpoint()
            streams = []
            for _ in range(8):
                st = a.bidi()
                streams.append(st)
                a.send(st, encode_uint_var(P.FRAME_WEBTRANSPORT_STREAM) + encode_uint_var(sid))
            for _round in range(6):
                for st in streams:
                    # claim the last byte of whatever window the server grants, nothing before
                    limit = a.quic._streams[st].max_stream_data_remote
                    have = a.quic._streams[st].sender._buffer_stop
                    if limit > have:
                        a.quic.send_stream_data(st, b"\0" * (limit - have))
                        sender = a.quic._streams[st].sender
                        sender._pending.subtract(have, limit - 1)
                a.proto.transmit()
                await asyncio.sleep(0.02)
            assert ep.quic.reassembly_bytes() <= 4 * MIB
            assert ep.quic._local_max_data.value <= ep.quic.rx_delivered_bytes + 4 * MIB
            for st in streams:
                qs = ep.quic._streams.get(st)
                if qs is not None:
                    assert qs.max_stream_data_local <= qs.receiver.starting_offset() + 1 * MIB
        assert await echo_works(srv.server)


async def test_oversized_settings_frame_closes_the_connection():
    async with running_server() as srv:
        async with Attacker(srv.server, h3=False) as a:
            ctrl = a.uni()  # the connection's only control stream, SETTINGS first
            a.send(ctrl, encode_uint_var(0x00) + frame(0x4, b"", declared=HUGE))
            a.send_chunks(ctrl, CHUNK, 4)
            await until(a.closed, what="connection closed")
            assert a.closed().error_code == P.H3_EXCESSIVE_LOAD
            assert srv.server.stats()["budget_closes"] == 1  # closed by the server
        assert await echo_works(srv.server)


# --------------------------------------------------------------- unread data budgets
async def test_connection_budget_covers_several_sessions():
    async def idle(session):
        await session.wait_closed()  # never reads

    limits = Limits(max_buffered_bytes_per_session=1 * MIB,
                    max_buffered_bytes_per_connection=1536 * KIB)
    async with running_server(limits=limits, routes={"/idle": idle}) as srv:
        async with Attacker(srv.server) as a:
            s1, s2 = await a.session("/idle"), await a.session("/idle")
            for sid in (s1, s2):  # 900 KiB each: under the session limit, over the connection's
                st = a.bidi()
                a.send(st, encode_uint_var(P.FRAME_WEBTRANSPORT_STREAM) + encode_uint_var(sid))
                a.send_chunks(st, CHUNK, 56)
            await until(a.closed, 10, "connection closed")
            assert a.closed().error_code == P.H3_EXCESSIVE_LOAD
            assert srv.server.stats()["budget_closes"] == 1
            await until(lambda: held(srv) == 0, what="budget released")
        assert await echo_works(srv.server)


async def test_server_budget_closes_the_connection_that_breaks_it():
    async def idle(session):
        await session.wait_closed()

    limits = Limits(max_buffered_bytes_per_session=1 * MIB, max_buffered_bytes=1536 * KIB)
    async with running_server(limits=limits, routes={"/idle": idle}) as srv:
        async with Attacker(srv.server) as first, Attacker(srv.server) as second:
            for a in (first, second):
                sid = await a.session("/idle")
                st = a.bidi()
                a.send(st, encode_uint_var(P.FRAME_WEBTRANSPORT_STREAM) + encode_uint_var(sid))
                a.send_chunks(st, CHUNK, 56)  # 900 KiB
                await until(lambda a=a: a.closed() or a.endpoint() is None
                            or a.endpoint().wt.buffered_bytes() > 800 * KIB, 10, "data buffered")
            await until(second.closed, 10, "second connection closed")
            assert second.closed().error_code == P.H3_EXCESSIVE_LOAD
            assert srv.server.stats()["budget_closes"] == 1
            assert first.closed() is None
            assert held(srv) <= 1536 * KIB


async def test_echo_to_a_peer_that_never_reads_is_bounded():
    """32 streams x 128 KiB to /echo and no flow-control credit back: what the echo holds
    unsent stays within its per-session backlog (before: up to 1 MiB per stream, here all
    4 MiB)."""
    from wtlab.transport.handlers import ECHO_BACKLOG_BYTES

    streams, per_stream = 32, 128 * KIB
    async with running_server() as srv:
        async with Attacker(srv.server, max_data=64 * KIB, max_stream_data=16 * KIB) as a:
            a.quic._write_stream_limits = lambda *args, **kw: None  # never grant more
            a.quic._write_connection_limits = lambda *args, **kw: None
            sid = await a.session("/echo")
            for _ in range(streams):
                st = a.bidi()
                a.send(st, encode_uint_var(P.FRAME_WEBTRANSPORT_STREAM) + encode_uint_var(sid))
                a.send_chunks(st, CHUNK, per_stream // len(CHUNK))
            ep = a.endpoint()
            await until(lambda: ep.quic.rx_delivered_bytes >= streams * per_stream, 30,
                        "all delivered")
            (session,) = srv.server._sessions
            # each stream: its share of the backlog unsent plus one read of that size
            bound = 2 * max(ECHO_BACKLOG_BYTES // streams, 16 * KIB) * streams
            assert bound < streams * per_stream
            for _ in range(50):  # the echo tasks run meanwhile; the bound holds throughout
                unsent = sum(s.unsent_bytes() for s in session._streams.values())
                assert unsent <= bound
                await asyncio.sleep(0.002)
        assert await echo_works(srv.server)


async def test_a_bug_costs_one_connection_not_the_server():
    async with running_server() as srv:
        async with Attacker(srv.server) as a:
            await a.session("/echo")
            ep = a.endpoint()

            def broken(event):
                raise RuntimeError("injected")
            ep.wt.handle_event = broken
            a.send(a.bidi(), b"anything")
            await until(a.closed, what="connection closed")
            assert a.closed().error_code == 0x102  # H3_INTERNAL_ERROR
        assert await echo_works(srv.server)


# ------------------------------------------------------------------ M1: INITIAL floods
def _garbage_initial(i: int) -> bytes:
    """A v1 long-header INITIAL with a fresh DCID whose payload decrypts to nothing."""
    dcid = i.to_bytes(8, "big")
    head = bytes([0xC3]) + (1).to_bytes(4, "big") + bytes([8]) + dcid + bytes([8]) + dcid
    head += b"\x00"  # no token
    rest = 1200 - len(head) - 2
    head += (0x4000 | rest).to_bytes(2, "big")  # payload length, as a 2-byte varint
    return head + bytes((i + k) % 251 for k in range(rest))


async def test_garbage_initials_leave_no_state():
    async with running_server() as srv:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", srv.port))
        try:
            for i in range(2000):
                transport.sendto(_garbage_initial(i))
                if i % 100 == 99:
                    await asyncio.sleep(0)  # let the server read
            await until(lambda: srv.server.stats()["garbage_initials"] >= 1500, 10,
                        "garbage counted")
        finally:
            transport.close()
        stats = srv.server.stats()
        assert stats["connections"] == 0 and stats["handshakes"] == 0
        assert len(srv.server._proto.endpoints) == 0
        assert await echo_works(srv.server)


async def test_abandoned_handshakes_are_capped_retried_and_timed_out():
    """Valid INITIALs (anyone can make them) that never finish: the server asks for a
    Retry once handshakes pile up, keeps at most max_handshakes, drops them on timeout."""
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    limits = Limits(max_handshakes=8, retry_when_handshakes=4, handshake_timeout_s=0.5)
    async with running_server(limits=limits) as srv:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", srv.port))
        try:
            for _ in range(30):
                q = QuicConnection(configuration=QuicConfiguration(is_client=True,
                                                                   alpn_protocols=["h3"]))
                q.connect(("127.0.0.1", srv.port), now=loop.time())
                for data, _addr in q.datagrams_to_send(now=loop.time()):
                    transport.sendto(data)  # the first flight, and never anything else
                await asyncio.sleep(0)
            await until(lambda: srv.server.stats()["retries_sent"] >= 20, 5, "retries")
            stats = srv.server.stats()
            assert 4 <= stats["handshakes"] <= 8
            await until(lambda: srv.server.stats()["handshakes"] == 0, 5, "timeouts")
            assert srv.server.stats()["handshake_timeouts"] >= 4
            assert srv.server.stats()["connections"] == 0
        finally:
            transport.close()
        assert await echo_works(srv.server)  # fewer than 4 handshakes now: no Retry needed


async def test_retry_always_still_serves_clients():
    async with running_server(retry="always") as srv:
        assert await echo_works(srv.server)
        assert srv.server.stats()["retries_sent"] >= 1


async def test_retry_token_for_another_address_is_refused():
    async with running_server(retry="always") as srv:
        adm = srv.server.admission
        loop = asyncio.get_running_loop()
        token = adm._tokens.create_token(address=("127.0.0.1", 1111),
                                         original_destination_connection_id=b"odcid123",
                                         retry_source_connection_id=b"retrycid",
                                         now=loop.time())
        from types import SimpleNamespace
        header = SimpleNamespace(destination_cid=b"retrycid", source_cid=b"client01",
                                 token=token, version=1)
        assert adm.decide(header, ("127.0.0.1", 1111), loop.time()).__class__.__name__ == "Take"
        assert adm.decide(header, ("127.0.0.1", 2222), loop.time()) is None  # dropped
        assert adm.counts["tokens_invalid"] == 1


# ------------------------------------------------------------------ caps that hold
async def test_connections_per_address_are_capped_with_a_prompt_refusal():
    limits = Limits(max_connections_per_address=2)
    async with running_server(limits=limits) as srv:
        async with srv.connect("/echo"), srv.connect("/echo"):
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(wtlab.ProtocolError, match="max_connections_per_address"):
                async with srv.connect("/echo", timeout=10):
                    pass
            assert loop.time() - t0 < 5  # refused, not left to time out
            assert srv.server.stats()["refused_per_address"] == 1
        await until(lambda: srv.server.stats()["connections"] == 0, what="closed")
        assert await echo_works(srv.server)


async def test_sessions_per_connection_and_per_address_are_capped():
    limits = Limits(max_sessions_per_connection=2, max_sessions_per_address=3)
    async with running_server(limits=limits) as srv:
        async with Attacker(srv.server) as a:
            s1, s2 = await a.session(), await a.session()
            third = a.request()
            assert await a.response(third) == 429  # per connection
            assert s1 != s2
            async with srv.connect("/echo"):  # the address's third session
                with pytest.raises(wtlab.SessionRejected) as info:  # the fourth
                    async with srv.connect("/echo"):
                        pass
                assert info.value.status == 429


async def test_streams_per_session_beyond_aioquic_default_are_reachable():
    """300 streams open at once in one session: aioquic alone grants 128 per connection."""
    async with running_server(limits=Limits(max_streams_per_session=300)) as srv:
        async with srv.connect("/echo", dialect="draft02") as session:
            streams = [await session.open_bidi() for _ in range(300)]
            for i, stream in enumerate(streams):
                stream.write(b"%d" % i)  # no FIN: all 300 stay open at the server
            for i, stream in enumerate(streams):
                assert await asyncio.wait_for(stream.readexactly(len(b"%d" % i)), 10) == b"%d" % i
            assert not session.closed
            assert srv.server.limit_hits == 0


# ------------------------------------------------------------ browser-grade checks
async def test_authority_must_name_the_server_when_asked():
    async with running_server(authorities="certificate") as srv:
        assert await echo_works(srv.server)  # 127.0.0.1 is in the default certificate
        async with Attacker(srv.server) as a:
            sid = a.request("/echo", authority="evil.example:443")
            assert await a.response(sid) == 421
    async with running_server(authorities=["127.0.0.1:1"]) as srv:
        with pytest.raises(wtlab.SessionRejected) as info:  # right host, wrong port
            async with srv.connect("/echo"):
                pass
        assert info.value.status == 421


async def test_origin_allow_list():
    allowed = "http://127.0.0.1:8080"
    async with running_server(origins=[allowed]) as srv:
        async with srv.connect("/echo", headers={"origin": allowed}) as session:
            assert not session.closed
        with pytest.raises(wtlab.SessionRejected) as info:
            async with srv.connect("/echo", headers={"origin": "https://evil.example"}):
                pass
        assert info.value.status == 403
        assert await echo_works(srv.server)  # no Origin: not a browser, not checked


def test_non_loopback_bind_needs_the_explicit_flag():
    from wtlab.net.relay import Relay

    with pytest.raises(wtlab.ConfigError, match="allow_non_loopback"):
        wtlab.serve("0.0.0.0", 0)
    with pytest.raises(wtlab.ConfigError, match="allow_non_loopback"):
        Relay(("127.0.0.1", 4433), listen=("0.0.0.0", 0), rate_bps="10mbit")
    # allowed on request, with a warning naming the exposure (nothing is bound here)
    with pytest.warns(UserWarning, match="any host that can reach this machine"):
        wtlab.serve("0.0.0.0", 0, allow_non_loopback=True)
    with pytest.warns(UserWarning, match="any host that can reach this machine"):
        Relay(("127.0.0.1", 4433), listen=("0.0.0.0", 0), rate_bps="10mbit",
              allow_non_loopback=True)
    wtlab.serve("::1", 0)  # loopback needs no flag
    wtlab.serve("localhost", 0)


def test_serve_help_lists_every_limit(capsys):
    from wtlab.transport.limits import DESCRIPTIONS
    from wtlab.transport.server import cli_main

    with pytest.raises(SystemExit):
        cli_main(["--help"])
    out = capsys.readouterr().out
    for name in DESCRIPTIONS:
        assert Limits.option(name) in out
    with pytest.raises(wtlab.ConfigError):
        cli_main(["--max-sessions", "0"])


def test_aioquic_internals_the_server_relies_on_are_there():
    """Fails loudly when an aioquic upgrade moves what server_connection.py reaches into."""
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.stream import QuicStreamReceiver

    from wtlab.transport.certs import default_certificate

    cfg = QuicConfiguration(is_client=False)
    cfg.certificate = default_certificate().certificate
    cfg.private_key = default_certificate().private_key
    quic = QuicConnection(configuration=cfg, original_destination_connection_id=b"12345678")
    objects = {"QuicConnection": quic, "QuicStreamReceiver": QuicStreamReceiver(0, True)}
    for owner, name in AIOQUIC_INTERNALS:
        assert hasattr(objects[owner], name), f"aioquic {owner}.{name} is gone"
    for name in ("value", "used", "sent"):
        assert hasattr(quic._local_max_data, name)
        assert hasattr(quic._local_max_streams_bidi, name)
