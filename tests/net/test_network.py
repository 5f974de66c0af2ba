"""The virtual network: real aioquic connections over simulated links, in virtual time.

These tests use aioquic's own QUIC connection protocol (raw QUIC streams, no
WebTransport), which shows that unmodified asyncio code runs on the network.
"""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pandas as pd
import pytest
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from wtlab.cc.aioquic import attach
from wtlab.errors import ConfigError
from wtlab.net.link import Link
from wtlab.net.network import VirtualNetwork
from wtlab.transport.certs import default_certificate

ALPN = ["wtlab-test"]


def make_path(rate_bps=10e6, rtt_s=0.04, loss=None, buffer="1bdp", seed=1):
    """Both directions at ``rate_bps``; ``loss`` on the data (up) direction only."""
    return SimpleNamespace(
        up=Link(rate_bps, delay_s=rtt_s / 2, loss=loss, buffer=buffer, seed=seed, rtt_s=rtt_s),
        down=Link(rate_bps, delay_s=rtt_s / 2, buffer=buffer, seed=seed + 1, rtt_s=rtt_s),
    )


class SinkProtocol(QuicConnectionProtocol):
    """Server side: counts the bytes of each stream and answers b"ok" at its end."""

    def quic_event_received(self, event):
        if isinstance(event, events.StreamDataReceived) and event.end_stream:
            self._quic.send_stream_data(event.stream_id, b"ok", end_stream=True)
            self.transmit()


class UploadProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answer = asyncio.get_running_loop().create_future()

    def quic_event_received(self, event):
        if isinstance(event, events.StreamDataReceived) and event.end_stream:
            self.answer.set_result(event.data)


async def quic_server(port=4433):
    pair = default_certificate("rsa")  # fixed-length signatures: deterministic runs
    cfg = QuicConfiguration(is_client=False, alpn_protocols=ALPN, certificate=pair.certificate,
                            private_key=pair.private_key)
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: QuicServer(configuration=cfg, create_protocol=SinkProtocol),
        local_addr=("127.0.0.1", port))


async def upload(size_bytes, *, cc="reno", recorder=None, flow=0, port=4433):
    """Dial the server like aioquic's connect() does (IPv6 socket, IPv4-mapped address),
    send ``size_bytes`` on one stream; return (virtual seconds from first byte to answer)."""
    loop = asyncio.get_running_loop()
    cfg = QuicConfiguration(is_client=True, alpn_protocols=ALPN, verify_mode=0,
                            server_name="localhost")
    quic = QuicConnection(configuration=cfg)
    attach(quic, cc, recorder=recorder, flow=flow)
    info = await loop.getaddrinfo("server", port, type=socket.SOCK_DGRAM)
    addr = ("::ffff:" + info[0][4][0], port, 0, 0)
    transport, proto = await loop.create_datagram_endpoint(lambda: UploadProtocol(quic),
                                                           local_addr=("::", 0))
    proto.connect(addr)
    await proto.wait_connected()
    t0 = loop.time()
    sid = quic.get_next_available_stream_id()
    quic.send_stream_data(sid, b"\0" * size_bytes, end_stream=True)
    proto.transmit()
    answer = await proto.answer
    elapsed = loop.time() - t0
    proto.close()
    await proto.wait_closed()
    transport.close()
    assert answer == b"ok"
    return elapsed


def run_uploads(path, sizes, ccs=None, record_link="drops"):
    net = VirtualNetwork(path, record_link=record_link)
    net.spawn(quic_server())
    tasks = []
    for i, size in enumerate(sizes):
        host = net.add_client()
        cc = (ccs or ["reno"] * len(sizes))[i]
        tasks.append(net.spawn(upload(size, cc=cc, recorder=net.recorder, flow=i), host=host))
    net.run(stop=lambda: all(t.done() for t in tasks))
    return net, [t.result() for t in tasks]


def test_bulk_transfer_respects_the_bottleneck():
    size = 1_000_000
    net, (elapsed,) = run_uploads(make_path(rate_bps=10e6, rtt_s=0.04), [size])
    # The stream needs at least its bytes at the link rate, plus a round trip for the answer;
    # slow start from 10 packets adds a few RTTs, so 3x the floor bounds it from above.
    floor_s = size * 8 / 10e6 + 0.04
    assert floor_s <= elapsed < 3 * floor_s
    df = net.recorder.to_pandas()
    acked = df[df["kind"] == "packet_acked"]["bytes"].sum()
    assert acked >= size  # every stream byte was acknowledged (plus headers)
    assert net.loop.time() > elapsed
    net.close()


def frame_hash(df: pd.DataFrame) -> int:
    return int(pd.util.hash_pandas_object(df, index=True).sum())


def test_same_seed_gives_identical_trace():
    def one(seed):
        net, _ = run_uploads(make_path(rate_bps=20e6, rtt_s=0.03, loss=0.01, seed=seed),
                             [600_000, 400_000], ccs=["reno", "cubic"])
        df = net.recorder.to_pandas()
        net.close()
        return df

    a, b, c = one(7), one(7), one(8)
    assert len(a) > 1000 and (a["kind"] == "packet_lost").any()
    assert frame_hash(a) == frame_hash(b)
    assert frame_hash(a) != frame_hash(c)  # the hash does see a different loss pattern


def test_two_flows_share_one_bottleneck():
    path = make_path(rate_bps=10e6, rtt_s=0.04, buffer="1bdp")
    net, elapsed = run_uploads(path, [800_000, 800_000], ccs=["cubic", "reno"])
    df = net.recorder.to_pandas()
    assert set(df["flow"].unique()) >= {0, 1}
    # Both flows crossed the same FIFO link: its datagram count is the sum of both flows'
    # packets (a little less: handshake packets are coalesced into shared datagrams).
    sent = df[(df["kind"] == "packet_sent")].groupby("flow").size()
    assert sent[0] > 500 and sent[1] > 500
    assert 0.98 * sent.sum() <= path.up.stats.offered <= sent.sum()
    # Sharing: together they cannot beat the link: 1.6 MB needs >= 1.28 s at 10 Mbit/s.
    assert max(elapsed) >= 1_600_000 * 8 / 10e6
    net.close()


def test_buffer_overflow_is_recorded_as_link_drop():
    path = make_path(rate_bps=5e6, rtt_s=0.04, buffer="0.25bdp")
    net, _ = run_uploads(path, [1_500_000])
    drops = net.recorder.to_pandas().query("kind == 'link_drop'")
    assert len(drops) == path.up.stats.dropped_queue + path.down.stats.dropped_queue > 0
    assert set(drops["flow"]) == {0}
    assert drops["extra"].str.contains('"cause": "queue"').all()
    net.close()


def test_link_delivery_rows_on_request():
    path = make_path(rate_bps=10e6, rtt_s=0.02)
    net, _ = run_uploads(path, [100_000], record_link="all")
    df = net.recorder.to_pandas()
    delivered = (df["kind"] == "link_delivery").sum()
    assert delivered == path.up.stats.delivered + path.down.stats.delivered
    net.close()


def test_replies_come_from_the_address_dialled():
    """An IPv6 (dual-stack) client dialling ::ffff:127.0.0.1 must see replies from that form;
    an IPv4 server sees the client as plain IPv4."""
    net = VirtualNetwork(make_path())
    seen = {}

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            seen["server_saw"] = addr
            self.transport.sendto(data, addr)

    class Client(asyncio.DatagramProtocol):
        def __init__(self):
            self.reply = asyncio.get_running_loop().create_future()

        def datagram_received(self, data, addr):
            self.reply.set_result((data, addr))

    async def server():
        await asyncio.get_running_loop().create_datagram_endpoint(
            Echo, local_addr=("127.0.0.1", 9999))

    async def client():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            Client, local_addr=("::", 0), family=socket.AF_INET6)
        transport.sendto(b"ping", ("::ffff:127.0.0.1", 9999, 0, 0))
        data, addr = await proto.reply
        return data, addr, loop.time()

    net.spawn(server())
    host = net.add_client()
    data, addr, t = net.run_coroutine(client(), host=host)
    assert data == b"ping"
    assert addr == ("::ffff:127.0.0.1", 9999, 0, 0)
    assert seen["server_saw"][0] == host
    assert t == pytest.approx(0.04, abs=0.001)  # one RTT plus two tiny serialisations
    net.close()


def test_step_returns_rows_in_time_order_then_a_loss():
    net = VirtualNetwork(make_path(rate_bps=10e6, rtt_s=0.04, loss=0.02, seed=3))
    net.spawn(quic_server())
    host = net.add_client()
    net.spawn(upload(300_000, recorder=net.recorder), host=host)
    first = net.step()
    assert first["kind"] == "packet_sent" and first["flow"] == 0
    ack = net.step(kinds=["packet_acked"])
    assert ack["kind"] == "packet_acked" and ack["time_s"] > first["time_s"]
    assert ack["cwnd"] is not None and ack["srtt_s"] > 0
    loss = net.step(kinds="packet_lost")
    assert loss is not None and loss["time_s"] >= ack["time_s"]
    times = [net.step()["time_s"] for _ in range(50)]
    assert times == sorted(times) and times[0] >= loss["time_s"]
    net.run()  # and the run can be finished normally after stepping
    assert net.step() is None
    net.close()


def test_unknown_hosts_and_bad_options_raise_config_errors():
    with pytest.raises(ConfigError):
        VirtualNetwork(make_path(), record_link="sometimes")
    net = VirtualNetwork(None)
    with pytest.raises(ConfigError, match="no path"):
        net.add_client()
    with pytest.raises(ConfigError, match="unknown virtual host"):
        net.spawn(asyncio.sleep(0), host="10.9.9.9")
    net.close()


@pytest.mark.parametrize("coalesce_s", [0.0, 0.0005])
def test_receive_batching_is_bounded_and_exact_after_quiet(coalesce_s):
    path = make_path(rate_bps=8e6, rtt_s=0.02, buffer=None)
    net = VirtualNetwork(path, rx_coalesce_s=coalesce_s)
    got = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            got.append((data, net.now))

    async def server():
        await asyncio.get_running_loop().create_datagram_endpoint(
            Sink, local_addr=("127.0.0.1", 9000))

    async def client():
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", 9000))
        for i in range(5):  # a burst: 72-byte packets serialise 72 us apart at 8 Mbit/s
            transport.sendto(bytes([i]) * 44)
        await asyncio.sleep(0.1)
        transport.sendto(b"late")  # after a quiet spell
        return net.now

    net.spawn(server())
    late_sent = net.run_coroutine(client(), host=net.add_client())
    net.run(until=0.2)
    arrivals = [0.01 + (i + 1) * 72 * 8 / 8e6 for i in range(5)]
    times = [t for _, t in got]
    assert [d[:1] for d, _ in got[:5]] == [bytes([i]) for i in range(5)]  # FIFO kept
    if coalesce_s == 0:
        assert times[:5] == pytest.approx(arrivals, abs=1e-8)
    else:
        # the first is exact; the rest wait for one batch, at most coalesce_s after it
        assert times[0] == pytest.approx(arrivals[0], abs=1e-8)
        assert times[1:5] == pytest.approx([arrivals[0] + coalesce_s] * 4, abs=1e-8)
    assert times[5] == pytest.approx(late_sent + 0.01 + 32 * 8 / 8e6, abs=1e-8)  # exact
    net.close()


def test_stepped_rows_equal_the_trace_rows():
    net = VirtualNetwork(make_path(rate_bps=10e6, rtt_s=0.04, loss=0.01, seed=5))
    net.spawn(quic_server())
    net.spawn(upload(400_000, recorder=net.recorder), host=net.add_client())
    net.run(until=0.2)
    n0 = len(net.recorder)
    rows = [net.step() for _ in range(30)]
    df = net.recorder.to_pandas().iloc[n0:n0 + 30]
    for row, (_, want) in zip(rows, df.iterrows(), strict=True):
        for col, value in want.items():
            if pd.isna(value):
                assert row[col] is None, col
            else:
                assert row[col] == value, col
    net.close()


def test_a_datagram_wakes_only_the_host_it_reaches():
    # The client streams datagrams to the server every 0.1 ms. The server's 0.3 ms timer
    # runs with the first datagram after its deadline; the client's own 0.3 ms timer
    # sleeps its whole (epoll-rounded) millisecond, since nothing reaches the client.
    net = VirtualNetwork(make_path(rate_bps=1e9, rtt_s=0.0), timer_granularity_s=0.001)
    loop = net.loop
    fired: dict[str, float] = {}
    arrivals: list[float] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            arrivals.append(loop.time())

    async def server():
        await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 9000))
        loop.call_later(0.0003, lambda: fired.setdefault("server", loop.time()))

    async def client():
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", 9000))
        loop.call_later(0.0003, lambda: fired.setdefault("client", loop.time()))
        for _ in range(12):
            await asyncio.sleep(0)  # sends happen at whole client wake-ups...
            transport.sendto(b"x" * 100)
            # ...so pace them with exact events, not with the client's rounded timers
            fut = loop.create_future()
            loop.call_exact_at(loop.time() + 0.0001, fut.set_result, None)
            await fut

    net.spawn(server())
    net.spawn(client(), host=net.add_client())
    net.run(until=0.005)
    after = [t for t in arrivals if t >= 0.0003]
    assert fired["server"] == pytest.approx(after[0], abs=1e-8)
    assert fired["server"] < 0.0005
    assert fired["client"] == pytest.approx(0.001, abs=1e-8)
    net.close()
