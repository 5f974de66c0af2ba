"""Round trips on every stream kind and datagrams, against wtlab's own server."""

from __future__ import annotations

import asyncio

import pytest

import wtlab


async def test_bidi_uni_datagram_round_trip(server):
    async with server.connect("/echo") as session:
        stream = await session.open_bidi()
        stream.write(b"hello ")
        await stream.write(b"world")
        stream.write_eof()
        assert await stream.read() == b"hello world"

        out = await session.open_uni()
        out.write(b"one way")
        out.write_eof()
        back = await session.accept_uni()
        assert await back.read() == b"one way"

        session.send_datagram(b"ping")
        assert await asyncio.wait_for(session.receive_datagram(), 5) == b"ping"
        assert session.stats()["srtt_s"] > 0


@pytest.mark.parametrize("dialect", ["draft02", "draft07", "latest"])
async def test_each_dialect_against_own_server(server, dialect):
    async with server.connect("/echo", dialect=dialect) as session:
        assert session.dialect == dialect
        stream = await session.open_bidi()
        stream.write(b"x" * 5000)
        stream.write_eof()
        assert await stream.readexactly(5000) == b"x" * 5000
        assert await stream.read() == b""
        session.send_datagram(b"d")
        assert await asyncio.wait_for(session.receive_datagram(), 5) == b"d"


async def test_readexactly_incomplete(server):
    async with server.connect("/echo") as session:
        stream = await session.open_bidi()
        stream.write(b"abc")
        stream.write_eof()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await stream.readexactly(10)
        assert info.value.partial == b"abc"


async def test_connect_is_awaitable(server):
    session = await wtlab.connect(server.url("/echo"), cert_hashes=[server.cert_sha256])
    try:
        stream = await session.open_bidi()
        stream.write(b"z")
        stream.write_eof()
        assert await stream.read() == b"z"
    finally:
        await session.close()
    assert session.closed


async def test_recorder_gets_the_connection_trace(server):
    rec = wtlab.Recorder()
    async with server.connect("/echo", recorder=rec, flow=3, congestion_control="reno") as session:
        stream = await session.open_bidi()
        stream.write(b"x" * 50_000)
        stream.write_eof()
        assert len(await stream.read()) == 50_000
        session.send_datagram(b"d")
        await asyncio.wait_for(session.receive_datagram(), 5)
        assert session.controller is not None and session.controller.name == "reno"
    df = rec.to_pandas()
    kinds = set(df["kind"].astype(str))
    assert {"packet_sent", "packet_acked", "stream_opened", "datagram_sent",
            "datagram_received"} <= kinds
    assert set(df["flow"]) == {3}
    assert df["time_s"].is_monotonic_increasing


async def test_concurrent_waiters_all_make_progress(server):
    """Several tasks accepting, draining and opening at once on one session."""
    async with server.connect("/echo") as session:
        stream = await session.open_bidi()
        big = b"q" * (3 << 20)  # above the drain high-water mark

        async def drainer():
            await stream.write(big[: 1 << 20])

        await asyncio.wait_for(asyncio.gather(drainer(), drainer(), drainer()), 20)
        stream.write_eof()
        echoed = await asyncio.wait_for(stream.read(), 30)
        assert len(echoed) == 3 << 20
        with pytest.raises(wtlab.ConfigError):
            other = await session.open_bidi()
            reader = asyncio.ensure_future(other.read())
            await asyncio.sleep(0.01)
            try:
                await other.read()
            finally:
                reader.cancel()


async def test_w3c_shaped_stats(server):
    async with server.connect("/echo") as session:
        stream = await session.open_bidi()
        stream.write(b"s" * 20_000)
        stream.write_eof()
        assert len(await stream.read()) == 20_000
        stats = session.get_stats()
        assert stats["bytes_sent"] > 20_000 and stats["packets_sent"] > 10
        assert stats["bytes_received"] > 20_000
        assert 0 < stats["smoothed_rtt"] < 1 and stats["min_rtt"] <= stats["smoothed_rtt"] * 2
        assert stats["bytes_sent_overhead"] > 0


async def test_packet_size_is_what_both_ends_ask_for_live():
    # max_datagram_size is honoured live, both ways (1472: a 1500-byte MTU); out of range
    # it is refused before any packet leaves
    from tests.transport.conftest import running_server

    client_rec, server_rec = wtlab.Recorder(), wtlab.Recorder()
    async with running_server(max_datagram_size=1472, recorder=server_rec) as server:
        async with server.connect("/echo", recorder=client_rec,
                                  max_datagram_size=1472) as session:
            stream = await session.open_bidi()
            stream.write(b"x" * 200_000)
            stream.write_eof()
            assert len(await asyncio.wait_for(stream.read(), 20)) == 200_000
        for bad in (1199, 1500):
            with pytest.raises(wtlab.ConfigError, match="max_datagram_size"):
                server.connect("/echo", max_datagram_size=bad)
    for rec in (client_rec, server_rec):
        sent = rec.to_pandas().query("kind == 'packet_sent'")
        assert sent["bytes"].max() == 1472
        assert (sent["bytes"] == 1472).sum() > 100  # 200 kB each way in full packets
    with pytest.raises(wtlab.ConfigError, match="max_datagram_size"):
        wtlab.serve(max_datagram_size=1473)
