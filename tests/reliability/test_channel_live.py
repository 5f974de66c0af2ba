"""Channels over live WebTransport sessions on loopback, directly and through the impairment
relay (10% loss with reordering and duplication)."""

from __future__ import annotations

import asyncio

import pytest

import wtlab
from tests.reliability.scenario import (
    ServerSide,
    client_transfer,
    message_ids,
    payload,
    received_rows,
    sent_rows,
)
from tests.transport.conftest import running_server
from wtlab.net.link import LinkSpec
from wtlab.net.loss import Bernoulli
from wtlab.net.path import Path
from wtlab.net.relay import Relay

pytestmark = pytest.mark.timeout(120)

MODES = [
    dict(mode="reliable"),
    dict(mode="unordered"),
    dict(mode="partial", lifetime=2.0),
    dict(mode="reliable", transport="datagram", fragment=True),
    dict(mode="unordered", transport="datagram", fragment=True),
    dict(mode="partial", transport="datagram", lifetime=2.0, ordered=True, fragment=True),
    dict(mode="unreliable"),
]


def _id(kw):
    return "-".join(f"{v}" if k in ("mode", "transport") else k for k, v in kw.items())


async def _transfer(url_of, cert, server: ServerSide, **kw):
    async with wtlab.connect(url_of("/chan"), cert_hashes=[cert], timeout=5.0) as session:
        return await client_transfer(session, server, **kw)


@pytest.mark.parametrize("kw", MODES, ids=_id)
async def test_every_mode_delivers_on_clean_loopback(kw):
    n = 200
    default_transport = "datagram" if kw["mode"] == "unreliable" else "stream"
    big = kw.get("fragment") or kw.get("transport", default_transport) == "stream"
    size = (lambda i: 1 + (i * 97) % 4000) if big else (lambda i: 1 + (i * 97) % 900)
    server = ServerSide(dict(kw))
    async with running_server(routes={"/chan": server.handler}) as srv:
        res = await _transfer(srv.url, srv.cert_sha256, server, n=n, size=size, **kw)
    assert res.error is None and res.server_error is None
    ids = message_ids(res.received)
    assert sorted(ids) == list(range(n))
    assert all(m == payload(i, size(i)) for i, (_, m) in zip(ids, res.received, strict=True))
    if kw["mode"] == "reliable" or kw.get("ordered"):
        assert ids == list(range(n))
    sent = sent_rows(res.client)
    want = "sent" if kw["mode"] == "unreliable" else "delivered"
    assert (sent["status"] == want).all() and len(sent) == n
    rx = received_rows(res.server)
    assert (rx["status"] == "delivered").all() and sorted(rx.index) == list(range(n))
    assert (rx["latency_s"].dropna() >= 0).all()
    if want == "delivered":
        assert (sent["latency_s"] > 0).all()


def _lossy_path(seed: int, loss: object = "10%", delay: str = "5ms") -> Path:
    spec = dict(rate_bps="50mbit", delay_s=delay, loss=loss, reorder_p=0.05,
                reorder_delay_s="4ms", duplicate_p=0.03)
    return Path(down=LinkSpec(**spec), up=LinkSpec(**spec), seed=seed)


async def _through_relay(server: ServerSide, path: Path, idle_timeout_s=None, **kw):
    async with running_server(routes={"/chan": server.handler}) as srv:
        if idle_timeout_s is not None:
            srv.server.quic_config.idle_timeout = idle_timeout_s  # advertised to the client
        async with Relay(target=("127.0.0.1", srv.port), path=path) as relay:
            url = f"https://127.0.0.1:{relay.address[1]}/chan"
            async with wtlab.connect(url, cert_hashes=[srv.cert_sha256], timeout=10.0) as s:
                res = await client_transfer(s, server, **kw)
            links = (path.up.stats, path.down.stats)
            return res, {k: sum(getattr(st, k) for st in links)
                         for k in ("dropped_loss", "duplicated", "reordered", "offered")}


RELIABLE = [
    dict(mode="reliable"),
    dict(mode="unordered"),
    dict(mode="reliable", transport="datagram", fragment=True),
    dict(mode="unordered", transport="datagram", fragment=True),
]


@pytest.mark.parametrize("kw", RELIABLE, ids=_id)
async def test_reliable_modes_deliver_everything_at_10pct_loss(kw):
    n = 150
    size = lambda i: 1 + (i * 389) % 3000  # noqa: E731
    server = ServerSide(dict(kw))
    res, stats = await _through_relay(server, _lossy_path(seed=3), n=n, size=size, **kw)
    assert res.error is None and res.resolved
    ids = message_ids(res.received)
    assert sorted(ids) == list(range(n)), "every message exactly once"
    assert all(m == payload(i, size(i)) for i, (_, m) in zip(ids, res.received, strict=True))
    if kw["mode"] == "reliable":
        assert ids == list(range(n))
    assert (sent_rows(res.client)["status"] == "delivered").all()
    # the path really was lossy, reordering and duplicating
    assert stats["dropped_loss"] > 0.05 * stats["offered"], stats
    assert stats["duplicated"] > 0 and stats["reordered"] > 0, stats


PARTIAL = [
    dict(mode="partial", lifetime=0.06),
    dict(mode="partial", transport="datagram", lifetime=0.06),
    dict(mode="partial", transport="datagram", lifetime=0.06, ordered=True),
]


@pytest.mark.parametrize("kw", PARTIAL, ids=_id)
async def test_partial_never_late_and_every_expiry_reported(kw):
    n = 300
    lifetime = kw["lifetime"]
    size = lambda i: 200  # noqa: E731
    server = ServerSide(dict(kw))
    # RTT 40 ms: a message whose first copy is lost is recovered after about 65 ms, so a
    # 60 ms lifetime makes (at least) the lost ones expire
    res, _ = await _through_relay(server, _lossy_path(seed=5, loss="15%", delay="20ms"), n=n,
                                  size=size, gap_s=0.002, **kw)
    assert res.error is None and res.resolved
    ids = message_ids(res.received)
    assert len(ids) == len(set(ids))
    if kw.get("ordered"):
        assert ids == sorted(ids)
    sent = sent_rows(res.client)
    rx = received_rows(res.server)
    # never delivered after its lifetime: the channel's delivery time against send() time
    # (one process, so both ends read the same clock)
    rx_ok = rx[rx["status"] == "delivered"]
    age = rx_ok["done_s"] - sent.loc[rx_ok.index, "sent_s"]
    assert (age <= lifetime).all(), age[age > lifetime]
    assert set(sent["status"]) <= {"delivered", "expired"}, "every message has a verdict"
    delivered_rx = set(rx.index[rx["status"] == "delivered"])
    delivered_tx = set(sent.index[sent["status"] == "delivered"])
    assert delivered_rx == set(ids)
    assert delivered_tx <= delivered_rx, "a confirmation is never wrong"
    expired = set(sent.index[sent["status"] == "expired"])
    assert expired | delivered_tx == set(range(n))
    # 15% loss with a lifetime of 1.5 RTT: some expire (how many depends on the congestion
    # controller's reaction and on this machine's load, so only the direction is asserted)
    assert expired and len(delivered_tx) > n // 10
    if kw.get("transport", "stream") == "stream":
        # control records travel reliably: the sender's view is exact
        assert delivered_tx == delivered_rx


async def test_unreliable_delivers_about_one_minus_p():
    n, p = 600, 0.10
    server = ServerSide(dict(mode="unreliable"))
    path = Path(down=LinkSpec(rate_bps="50mbit", delay_s="5ms", loss=Bernoulli(p)),
                up=LinkSpec(rate_bps="50mbit", delay_s="5ms", loss=Bernoulli(p)), seed=11)
    res, _ = await _through_relay(server, path, n=n, size=lambda i: 1000, gap_s=0.0005,
                                  mode="unreliable")
    got = len(set(message_ids(res.received)))
    # 600 Bernoulli(0.9) trials: sd 0.012; 4 sd of tolerance
    assert abs(got / n - (1 - p)) < 0.05, got
    assert (sent_rows(res.client)["status"] == "sent").all()


async def test_unreliable_refuses_oversized_messages_unless_fragmenting():
    server = ServerSide(dict(mode="unreliable"))
    async with running_server(routes={"/chan": server.handler}) as srv:
        async with wtlab.connect(srv.url("/chan"), cert_hashes=[srv.cert_sha256]) as s:
            ch = s.channel(mode="unreliable")
            with pytest.raises(wtlab.MessageTooLarge, match="fragment=True"):
                await ch.send(b"x" * (s.max_datagram_size + 1))
            ch2 = s.channel(mode="unreliable", channel_id=1, fragment=True)
            await ch2.send(b"y" * 5000)
            with pytest.raises(wtlab.ConfigError, match="unreliable"):
                s.channel(mode="unreliable", transport="stream", channel_id=2)
            with pytest.raises(wtlab.ConfigError, match="already open"):
                s.channel(mode="reliable", channel_id=1)


async def test_cancelled_stream_fails_only_its_message():
    """The sender resets one message's stream mid-flight: the receiver sees a reset from
    its peer, that message fails at both ends, the channel goes on. A 20 Mbit/s relay keeps
    the 3 MB message on the wire for over a second (its 64 KB buffer keeps the rest in the
    sender's QUIC stream), so the reset lands mid-message."""
    server = ServerSide(dict(mode="unordered"))
    spec = dict(rate_bps="20mbit", delay_s="1ms", buffer="64KB")
    path = Path(down=LinkSpec(**spec), up=LinkSpec(**spec), seed=1)
    async with running_server(routes={"/chan": server.handler}) as srv:
        async with Relay(target=("127.0.0.1", srv.port), path=path) as relay:
            url = f"https://127.0.0.1:{relay.address[1]}/chan"
            async with wtlab.connect(url, cert_hashes=[srv.cert_sha256]) as s:
                ch = s.channel(mode="unordered")
                for i in range(10):
                    await ch.send(payload(i, 10_000))
                big = await ch.send(payload(10, 3_000_000))
                # cancel once the receiver holds part of it (bounded poll of its byte count)
                for _ in range(1000):
                    if server.sessions and \
                            server.sessions[0].stats()["stream_bytes_received"] > 300_000:
                        break
                    await asyncio.sleep(0.002)
                assert ch.cancel(big)
                for i in range(11, 20):
                    await ch.send(payload(i, 10_000))
                assert await ch.wait_resolved(10)
                await ch.close()
                async for _ in ch:
                    pass
    sent = sent_rows(ch.report())
    assert sent.loc[big, "status"] == "failed"
    assert (sent.drop(index=big)["status"] == "delivered").all()
    rx = received_rows(server.channels[0].report())
    assert rx.loc[big, "status"] == "failed" and "reset" in rx.loc[big, "reason"]
    assert sorted(message_ids(server.received)) == [i for i in range(20) if i != big]


async def test_peer_stop_sending_fails_only_that_streams_messages():
    """The receiver stops the reliable ordered stream: the sender's unconfirmed messages on it
    fail, and the channel continues on a new stream."""
    n = 300

    def stop_after_100(ch, count):
        if count == 100:
            ch._rx_ordered_streams[0].stop_sending(9)  # fault injection: the peer gives up

    server = ServerSide(dict(mode="reliable"), on_message=stop_after_100)
    async with running_server(routes={"/chan": server.handler}) as srv:
        async with wtlab.connect(srv.url("/chan"), cert_hashes=[srv.cert_sha256]) as s:
            res = await client_transfer(s, server, n=n, size=lambda i: 100, gap_s=0.001,
                                        mode="reliable")
    assert res.error is None
    sent = sent_rows(res.client)
    failed = set(sent.index[sent["status"] == "failed"])
    delivered = set(sent.index[sent["status"] == "delivered"])
    assert failed and delivered | failed == set(range(n))
    ids = message_ids(res.received)
    assert set(ids) == delivered and ids == sorted(ids)
    assert ids[:100] == list(range(100)) and max(ids) == n - 1  # the channel went on
    streams = sent["stream_id"].dropna().unique()
    assert len(streams) == 2


@pytest.mark.parametrize("transport", ["stream", "datagram"])
async def test_channel_rows_in_the_trace(transport):
    rec = wtlab.Recorder()
    kw = dict(mode="partial", lifetime=1.0, transport=transport)
    server = ServerSide(dict(kw))
    async with running_server(routes={"/chan": server.handler}) as srv:
        async with wtlab.connect(srv.url("/chan"), cert_hashes=[srv.cert_sha256],
                                 recorder=rec, flow=3) as s:
            res = await client_transfer(s, server, n=20, size=lambda i: 50, **kw)
    df = rec.to_pandas()
    msg = df[df["kind"].astype(str).str.startswith("message_")]
    assert (msg["flow"] == 3).all()
    assert sorted(msg[msg.kind == "message_sent"]["pn"]) == list(range(20))
    acked = msg[msg.kind == "message_acked"]
    assert sorted(acked["pn"]) == list(range(20))
    assert acked["extra"].str.contains("latency_s").all()
    if transport == "stream":
        assert msg[msg.kind == "message_sent"]["stream_id"].notna().all()
    else:
        assert acked["srtt_s"].notna().all()  # the engine's RTT state rides along
    assert len(res.received) == 20


async def test_session_close_mid_channel_is_typed():
    server = ServerSide(dict(mode="reliable"))
    async with running_server(routes={"/chan": server.handler}) as srv:
        s = await wtlab.connect(srv.url("/chan"), cert_hashes=[srv.cert_sha256])
        ch = s.channel(mode="reliable")
        await ch.send(b"hello")
        reader = asyncio.ensure_future(ch.receive())
        await s.close(0x17, "bye")
        with pytest.raises(wtlab.SessionClosed):
            await reader
        with pytest.raises(wtlab.SessionClosed):
            await ch.send(b"more")



async def test_channel_handler_route_echoes():
    from wtlab.reliability import channel_handler

    routes = {"/echo-chan": channel_handler(mode="reliable"),
              "/dgram-chan": channel_handler(mode="unordered", transport="datagram")}
    async with running_server(routes=routes) as srv:
        for path, kw in (("/echo-chan", dict(mode="reliable")),
                         ("/dgram-chan", dict(mode="unordered", transport="datagram"))):
            async with wtlab.connect(srv.url(path), cert_hashes=[srv.cert_sha256]) as s:
                ch = s.channel(**kw)
                msgs = [payload(i, 100 + i) for i in range(50)]
                for m in msgs:
                    await ch.send(m)
                got = [await asyncio.wait_for(ch.receive(), 5) for _ in msgs]
                assert sorted(got) == sorted(msgs)
                if kw["mode"] == "reliable":
                    assert got == msgs


async def test_several_channels_share_one_session():
    """Channels are demultiplexed by id: different modes side by side, both directions."""
    specs = {0: dict(mode="reliable"), 1: dict(mode="unordered"),
             2: dict(mode="partial", transport="datagram", lifetime=1.0),
             3: dict(mode="unreliable")}
    got: dict[int, list[bytes]] = {}

    async def handler(session):
        chans = {cid: session.channel(channel_id=cid, **kw) for cid, kw in specs.items()}

        async def serve_one(cid, ch):
            got[cid] = [m async for m in ch]
            for m in got[cid]:
                await ch.send(m[::-1])  # answer on the same channel
            await ch.close()

        await asyncio.gather(*(serve_one(c, ch) for c, ch in chans.items()))
        await session.wait_closed()

    async with running_server(routes={"/multi": handler}) as srv:
        async with wtlab.connect(srv.url("/multi"), cert_hashes=[srv.cert_sha256]) as s:
            chans = {cid: s.channel(channel_id=cid, **kw) for cid, kw in specs.items()}
            sent = {cid: [b"ch%d-%03d" % (cid, i) + b"." * i for i in range(60)]
                    for cid in specs}
            for i in range(60):  # interleaved sends
                for cid, ch in chans.items():
                    await ch.send(sent[cid][i])
            for ch in chans.values():
                await ch.close()
            answers = {cid: [m async for m in ch] for cid, ch in chans.items()}
    for cid in specs:
        if cid == 0:
            assert got[cid] == sent[cid]
        else:
            assert sorted(got[cid]) == sorted(sent[cid])  # loopback: nothing lost
        assert sorted(answers[cid]) == sorted(m[::-1] for m in got[cid])


async def test_live_three_second_outage_session_survives():
    """Through the live relay: the path goes dark for 3 s mid-transfer, then returns; the
    session survives and every reliable message arrives, in order."""
    n = 300
    spec = dict(rate_bps="50mbit", delay_s="5ms", outages=[(1.0, 4.0)])
    path = Path(down=LinkSpec(**spec), up=LinkSpec(**spec), seed=1)
    server = ServerSide(dict(mode="reliable"))
    res, stats = await _through_relay(server, path, n=n, size=lambda i: 500, gap_s=0.005,
                                      mode="reliable", resolve_timeout_s=30.0)
    assert res.error is None and res.server_error is None
    assert message_ids(res.received) == list(range(n))
    assert (sent_rows(res.client)["status"] == "delivered").all()
    assert path.up.stats.dropped_outage > 0  # the outage really cut the transfer
    times = [t for t, _ in res.received]
    assert max(times) - min(times) > 2.5  # delivery resumed only after the path came back


async def test_live_outage_past_idle_timeout_ends_session_typed():
    """The path dies for good: the idle timeout (2 s) ends the session on both ends with
    SessionClosed; the receiver's report says exactly what was delivered, the sender's
    confirmations are a subset, and nothing is left pending."""
    n = 300
    spec = dict(rate_bps="50mbit", delay_s="5ms", outages=[(1.0, 1000.0)])
    path = Path(down=LinkSpec(**spec), up=LinkSpec(**spec), seed=1)
    server = ServerSide(dict(mode="reliable"))
    res, _ = await _through_relay(server, path, idle_timeout_s=2.0, n=n, size=lambda i: 500,
                                  gap_s=0.005, mode="reliable", resolve_timeout_s=20.0)
    assert isinstance(res.error, wtlab.SessionClosed)
    assert isinstance(res.server_error, wtlab.SessionClosed)
    sent = sent_rows(res.client)
    rx = received_rows(res.server)
    assert set(sent["status"]) <= {"delivered", "failed"}
    delivered_rx = set(rx.index[rx["status"] == "delivered"])
    delivered_tx = set(sent.index[sent["status"] == "delivered"])
    assert delivered_tx <= delivered_rx and 0 < len(delivered_rx) < n
    assert sorted(delivered_rx) == list(range(len(delivered_rx)))
