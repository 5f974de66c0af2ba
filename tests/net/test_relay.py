"""The live relay on loopback: UDP echo and sink, aioquic through it, the CLI."""

from __future__ import annotations

import asyncio
import os
import ssl
import statistics
import subprocess
import sys
from pathlib import Path as FsPath

import pytest

from wtlab import ConfigError
from wtlab.cli import main as wtlab_main
from wtlab.net.link import LinkSpec
from wtlab.net.path import Path
from wtlab.net.relay import Relay, cli_main, parse_address, relay_from_args

ROOT = FsPath(__file__).resolve().parents[2]


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class Sink(asyncio.DatagramProtocol):
    def __init__(self, expected: int):
        self.times: list[float] = []
        self.bytes = 0
        self.expected = expected
        self.done = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, addr):
        self.times.append(asyncio.get_running_loop().time())
        self.bytes += len(data)
        if len(self.times) >= self.expected and not self.done.done():
            self.done.set_result(None)


class Collector(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait((asyncio.get_running_loop().time(), data, addr))


async def _udp(factory, **kw):
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(factory, **kw)


async def test_echo_rtt_includes_the_delay_both_ways():
    echo_t, _ = await _udp(Echo, local_addr=("127.0.0.1", 0))
    server = echo_t.get_extra_info("sockname")
    try:
        async with Relay(server, rate_bps="100mbit", delay_s="25ms") as relay:
            client_t, col = await _udp(Collector, remote_addr=relay.address)
            loop = asyncio.get_running_loop()
            rtts = []
            for i in range(10):
                sent = loop.time()
                client_t.sendto(b"ping %d" % i)
                t, data, addr = await asyncio.wait_for(col.queue.get(), 2.0)
                assert data == b"ping %d" % i
                rtts.append(t - sent)
            client_t.close()
            assert relay.stats["up"]["delivered"] == 10 == relay.stats["down"]["delivered"]
    finally:
        echo_t.close()
    assert min(rtts) >= 0.050 - 1e-3  # 2 x 25 ms; never early (beyond clock rounding)
    # late only by loop scheduling; generous for a shared, loaded 2-core machine
    assert statistics.median(rtts) < 0.050 + 0.015


async def _blast(relay_addr, sink: Sink, count: int, size: int, batch: int = 10):
    """Send `count` datagrams, a batch at a time, yielding so the relay can read them."""
    client_t, _ = await _udp(asyncio.DatagramProtocol, remote_addr=relay_addr)
    payload = b"x" * size
    for i in range(0, count, batch):
        for _ in range(min(batch, count - i)):
            client_t.sendto(payload)
        await asyncio.sleep(0.001)
    return client_t


@pytest.mark.parametrize("rate_bps", [4e6, 8e6])
async def test_udp_throughput_tracks_the_set_rate(rate_bps):
    size = 1172  # 1200 bytes on the link with the 28-byte IP/UDP overhead
    count = int(rate_bps * 0.6 / (1200 * 8))  # 0.6 s at the set rate
    sink_t, sink = await _udp(lambda: Sink(count), local_addr=("127.0.0.1", 0))
    _big_buffer(sink_t)
    try:
        async with Relay(sink_t.get_extra_info("sockname"), rate_bps=rate_bps,
                         delay_s="5ms") as relay:
            client_t = await _blast(relay.address, sink, count, size)
            await asyncio.wait_for(sink.done, 10.0)
            client_t.close()
    finally:
        sink_t.close()
    span = sink.times[-1] - sink.times[0]
    measured = (count - 1) * 1200 * 8 / span
    # the sender offers faster than the rate, so the queue never empties: the receiver
    # sees exactly the link rate, give or take timer jitter at both ends of the span
    assert measured == pytest.approx(rate_bps, rel=0.08)


async def test_loss_and_trace_through_the_relay(tmp_path):
    from wtlab.net.traces import MahimahiTrace

    MahimahiTrace([1]).save(tmp_path / "12mbps.trace")  # 12 Mbit/s: 1500 bytes each ms
    count = 600
    sink_t, sink = await _udp(lambda: Sink(count), local_addr=("127.0.0.1", 0))
    _big_buffer(sink_t)
    target = sink_t.get_extra_info("sockname")
    try:
        path = Path(down=LinkSpec(rate_bps=1e8),
                    up=LinkSpec(trace=tmp_path / "12mbps.trace", loss="10%"), seed=3)
        async with Relay(target, path=path) as relay:
            client_t = await _blast(relay.address, sink, count, 1472)
            up = relay.path.up
            # bounded waits: the relay has read all datagrams, then sent all it scheduled
            for _ in range(1000):
                if up.stats.offered == count and not relay._up.heap:
                    break
                await asyncio.sleep(0.01)
            for _ in range(100):
                if len(sink.times) >= up.stats.delivered:
                    break
                await asyncio.sleep(0.01)
            client_t.close()
            st = up.stats
    finally:
        sink_t.close()
    assert st.offered == count
    assert len(sink.times) == st.delivered == count - st.dropped_loss
    # 10% loss: 60 expected, sd ~7
    assert 30 <= st.dropped_loss <= 90
    span = sink.times[-1] - sink.times[0]
    # lost packets used their opportunity too, so the wire ran at 12 Mbit/s for all of them
    assert (count - 1) * 1500 * 8 / span == pytest.approx(12e6, rel=0.08)


def _big_buffer(transport):
    import socket

    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)


# --- aioquic through the relay -------------------------------------------------------------

def _certificate(tmp: FsPath) -> tuple[str, str]:
    from wtlab.transport.certs import generate_certificate

    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    generate_certificate(hostnames=("localhost",)).write(str(cert_path), str(key_path))
    return str(cert_path), str(key_path)


async def _quic_download(tmp: FsPath, rate_bps: float, delay_s: float, nbytes: int):
    from aioquic.asyncio import connect, serve
    from aioquic.quic.configuration import QuicConfiguration

    cert, key = _certificate(tmp)
    server_cfg = QuicConfiguration(is_client=False, alpn_protocols=["wtlab-test"])
    server_cfg.load_cert_chain(cert, key)

    def handler(reader, writer):
        async def serve_one():
            request = await reader.read()
            writer.write(b"\0" * int(request))
            writer.write_eof()
        asyncio.get_running_loop().create_task(serve_one())

    server = await serve("127.0.0.1", 0, configuration=server_cfg, stream_handler=handler)
    port = server._transport.get_extra_info("sockname")[1]
    try:
        async with Relay(("127.0.0.1", port), rate_bps=rate_bps, delay_s=delay_s,
                         buffer="2bdp") as relay:
            client_cfg = QuicConfiguration(is_client=True, alpn_protocols=["wtlab-test"],
                                           verify_mode=ssl.CERT_NONE)
            host, rport = relay.address
            async with connect(host, rport, configuration=client_cfg) as client:
                loop = asyncio.get_running_loop()
                reader, writer = await client.create_stream()
                start = loop.time()
                writer.write(str(nbytes).encode())
                writer.write_eof()
                data = await asyncio.wait_for(reader.read(), 20.0)
                elapsed = loop.time() - start
                rtt_min = client._quic._loss._rtt_min
            stats = relay.stats
    finally:
        server.close()
    assert len(data) == nbytes
    return nbytes * 8 / elapsed, rtt_min, stats


async def test_aioquic_transfer_through_the_relay_tracks_rate_and_rtt(tmp_path):
    results = {}
    for rate in (5e6, 10e6):
        goodput, rtt_min, stats = await _quic_download(tmp_path, rate, 0.010, int(rate / 10))
        results[rate] = goodput
        # the handshake and every ack crossed the relay: the RTT holds 2 x 10 ms
        assert 0.020 - 1e-3 <= rtt_min < 0.020 + 0.015, rtt_min
        assert stats["down"]["delivered"] > rate / 10 / 1300, stats
        # goodput is capped by the bottleneck (QUIC and IP headers take ~5%) and fills most
        # of it, slow start included, in a transfer of 0.8 s at the set rate
        assert 0.55 * rate < goodput < rate, (rate, goodput, stats)
    assert 1.5 < results[10e6] / results[5e6] < 2.3, results


# --- CLI ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, flag", [
    (["--to", "127.0.0.1:4433", "--rate", "fast"], "--rate"),
    (["--to", "127.0.0.1:4433", "--rate", "10mbit", "--delay", "25"], "--delay"),
    (["--to", "127.0.0.1:4433", "--rate", "10mbit", "--loss", "200%"], "--loss"),
    (["--to", "127.0.0.1:4433", "--rate", "10mbit", "--buffer", "lots"], "--buffer"),
    (["--to", "localhost", "--rate", "10mbit"], "--to"),
    (["--to", "127.0.0.1:4433", "--listen", "127.0.0.1:99999", "--rate", "1mbit"], "--listen"),
    (["--to", "127.0.0.1:4433"], "--rate"),
    (["--to", "127.0.0.1:4433", "--trace", "/nonexistent.trace"], "--trace"),
    (["--to", "127.0.0.1:4433", "--rate", "1mbit", "--trace", "x"], "--rate and --trace"),
    (["--to", "127.0.0.1:4433", "--rate", "1mbit", "--seed", "abc"], "--seed"),
    (["--to", "127.0.0.1:4433", "--rate", "1mbit", "--aqm", "fq_codel"], "--aqm"),
    (["--rate", "1mbit"], "--to"),
    (["--to", "127.0.0.1:4433", "--rate", "1mbit", "--bogus"], "--bogus"),
    (["--to", "127.0.0.1:4433", "--rate", "1mbit", "--up-loss", "x"], "--up-loss"),
])
def test_bad_arguments_raise_config_error_naming_the_flag(argv, flag):
    with pytest.raises(ConfigError, match=flag):
        cli_main(argv)


def test_wtlab_command_reports_bad_arguments(capsys):
    assert wtlab_main(["relay", "--to", "127.0.0.1:4433", "--rate", "fast"]) == 2
    assert "--rate" in capsys.readouterr().err


def test_arguments_build_the_path():
    relay, duration, quiet = relay_from_args([
        "--to", "[::1]:4433", "--listen", "127.0.0.1:0", "--rate", "10mbit", "--up-rate",
        "1mbit", "--delay", "25ms", "--loss", "1%", "--buffer", "1bdp", "--aqm", "codel",
        "--seed", "5", "--duration", "2s", "--quiet"])
    assert relay.target == ("::1", 4433) and duration == 2.0 and quiet
    assert relay.path.down.capacity_bps == 10e6 and relay.path.up.capacity_bps == 1e6
    assert relay.path.rtt_s == pytest.approx(0.05) and relay.path.seed == 5
    assert relay.path.down.buffer_bytes == 62_500
    assert relay.path.down.spec.aqm is not None and relay.path.up.spec.loss.p == 0.01
    assert parse_address("localhost:80") == ("localhost", 80)
    relay, _, _ = relay_from_args(["--to", "127.0.0.1:1", "--rate", "1mbit", "--loss", "2%",
                                   "--up-loss", "0%"])
    assert relay.path.down.spec.loss.p == 0.02 and relay.path.up.spec.loss is None


def test_command_line_relay_runs(tmp_path):
    """`python -m wtlab relay ... --duration` in a subprocess, echo through it."""

    async def scenario():
        echo_t, _ = await _udp(Echo, local_addr=("127.0.0.1", 0))
        port = echo_t.get_extra_info("sockname")[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wtlab", "relay", "--listen", "127.0.0.1:0", "--to",
            f"127.0.0.1:{port}", "--rate", "10mbit", "--delay", "20ms", "--duration", "20s",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT),
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20.0)).decode()
            assert line.startswith("wtlab relay: listening on 127.0.0.1:"), line
            relay_port = int(line.split()[4].rsplit(":", 1)[1])
            client_t, col = await _udp(Collector, remote_addr=("127.0.0.1", relay_port))
            loop = asyncio.get_running_loop()
            sent = loop.time()
            client_t.sendto(b"hello")
            t, data, _ = await asyncio.wait_for(col.queue.get(), 5.0)
            assert data == b"hello" and t - sent >= 0.040 - 1e-3
            client_t.close()
        finally:
            proc.terminate()
            await proc.wait()
            echo_t.close()

    asyncio.run(scenario())


async def test_idle_clients_are_forgotten_and_status_lines_report():
    import io

    echo_t, _ = await _udp(Echo, local_addr=("127.0.0.1", 0))
    relay = Relay(echo_t.get_extra_info("sockname"), rate_bps="10mbit", delay_s="1ms",
                  idle_timeout_s=0.2)
    out = io.StringIO()
    serving = asyncio.get_running_loop().create_task(
        relay.serve_forever(duration_s=5.0, report_s=0.1, out=out))
    try:
        while relay.address is None:
            await asyncio.sleep(0.01)
        client_t, col = await _udp(Collector, remote_addr=relay.address)
        client_t.sendto(b"x" * 1000)
        await asyncio.wait_for(col.queue.get(), 2.0)
        assert relay.stats["clients"] == 1
        for _ in range(200):  # bounded: the sweep runs every 0.1 s
            if relay.stats["clients"] == 0:
                break
            await asyncio.sleep(0.02)
        assert relay.stats["clients"] == 0
        # a forgotten client that speaks again gets a new upstream socket
        client_t.sendto(b"again")
        assert (await asyncio.wait_for(col.queue.get(), 2.0))[1] == b"again"
        client_t.close()
    finally:
        serving.cancel()
        try:
            await serving
        except asyncio.CancelledError:
            pass
        echo_t.close()
    lines = out.getvalue().splitlines()
    assert lines and all("down:" in ln and "up:" in ln and "Mbit/s" in ln for ln in lines)


async def test_ipv6_listen_to_ipv4_server():
    echo_t, _ = await _udp(Echo, local_addr=("127.0.0.1", 0))
    try:
        async with Relay(echo_t.get_extra_info("sockname"), listen="[::1]:0",
                         rate_bps="10mbit", delay_s="2ms") as relay:
            assert relay.address[0] == "::1"
            client_t, col = await _udp(Collector, remote_addr=relay.address)
            client_t.sendto(b"v6")
            _, data, addr = await asyncio.wait_for(col.queue.get(), 2.0)
            assert data == b"v6" and addr[0] == "::1"
            client_t.close()
    finally:
        echo_t.close()
