"""Congestion-control costs: live loopback bulk transfer and per-packet microbenchmark.

    .venv/bin/python -m benchmarks.cc                 # both parts
    .venv/bin/python -m benchmarks.cc --runs 7 --mb 30
    .venv/bin/python -m benchmarks.cc --quick         # fewer, smaller runs

(a) Bulk: a plain aioquic asyncio client sends ``--mb`` MB on one QUIC stream to
    a plain aioquic asyncio server on 127.0.0.1 (no wtlab transport), with the
    sender's congestion control being aioquic's built-in ``reno``, wtlab's
    ``reno`` attached without a recorder, and wtlab's ``reno`` attached with a
    recorder (every event recorded). Interleaved; medians; ratio target: wtlab
    with recording >= 0.90x built-in.
(c) Pair: two aioquic QuicConnections in memory with a virtual clock, the
    same three variants: CPU microseconds per client packet. Deterministic
    work, so this isolates the hook's and the recorder's cost from the noise
    of a shared machine.
(b) Micro: microseconds per packet sent and acked (ACK frames of 2 packets,
    one RTT sample per frame), controller alone, in congestion avoidance (BBR
    from startup on), for aioquic's reno and cubic and wtlab's reno / cubic /
    bbr with recording off and on. Recording writes 2 rows per packet
    (packet_sent, packet_acked) plus a cwnd_changed row whenever cwnd moved.
    Target: wtlab reno with recording < 1.5 us.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import time

from benchmarks._util import interleaved, print_table, ratio_line, summarize

MDS = 1200


# ---------------------------------------------------------------- (b) micro
def _micro_aioquic(name: str, n: int) -> float:
    import aioquic.quic.recovery  # noqa: F401  (registers reno/cubic)
    from aioquic.quic.congestion.base import create_congestion_control

    from wtlab.cc import Packet

    cc = create_congestion_control(name, max_datagram_size=MDS)
    cc.ssthresh = cc.congestion_window  # steady state: congestion avoidance
    pkts = [Packet(i, MDS, i * 1e-5) for i in range(n)]
    t0 = time.perf_counter()
    now = 0.0
    for i in range(0, n, 2):
        a, b = pkts[i], pkts[i + 1]
        cc.on_packet_sent(packet=a)
        cc.on_packet_sent(packet=b)
        now = a.sent_time + 0.05
        cc.on_packet_acked(now=now, packet=a)
        cc.on_packet_acked(now=now, packet=b)
        cc.on_rtt_measurement(now=now, rtt=0.05)
    return (time.perf_counter() - t0) / n * 1e6


def _micro_wtlab(name: str, n: int, record: bool) -> float:
    from wtlab.cc import Packet, RttStats, create
    from wtlab.trace import Recorder

    rec = Recorder() if record else None
    cc = create(name, max_datagram_size=MDS, recorder=rec)
    if name != "bbr":
        cc.ssthresh = cc.cwnd  # steady state: congestion avoidance, as for aioquic's
    rtt = RttStats()
    rtt.update(0.05, 0.0, 0.05)  # RTT estimation is the driver's (aioquic's recovery), not timed
    pkts = [Packet(i, MDS, i * 1e-5) for i in range(n)]
    t0 = time.perf_counter()
    for i in range(0, n, 2):
        a, b = pkts[i], pkts[i + 1]
        cc.on_packet_sent(a.sent_time, a)
        cc.on_packet_sent(b.sent_time, b)
        now = a.sent_time + 0.05
        cc.on_packets_acked(now, (a, b), rtt)
    return (time.perf_counter() - t0) / n * 1e6


def _micro_append_floor(n: int) -> float:
    """Two Recorder.append calls per packet and nothing else: recording's floor."""
    from wtlab.trace import Recorder

    rec = Recorder()
    append = rec.append
    nan = float("nan")
    t0 = time.perf_counter()
    for i in range(0, n, 2):
        for pn in (i, i + 1):
            append(0.1, 0, 1, 0, pn, -1, MDS, 12000, 1200, 0xFFFFFFFF, 0.05, 0.05, 0.05, 0.01,
                   nan, nan)
            append(0.15, 1, 1, 0, pn, -1, MDS, 12000, 0, 0xFFFFFFFF, 0.05, 0.05, 0.05, 0.01,
                   nan, nan)
    return (time.perf_counter() - t0) / n * 1e6


def micro(runs: int, n: int) -> dict[str, list[float]]:
    contenders = {
        "2x rec.append": lambda: _micro_append_floor(n),
        "aioquic reno": lambda: _micro_aioquic("reno", n),
        "aioquic cubic": lambda: _micro_aioquic("cubic", n),
        "wtlab reno": lambda: _micro_wtlab("reno", n, False),
        "wtlab reno+rec": lambda: _micro_wtlab("reno", n, True),
        "wtlab cubic": lambda: _micro_wtlab("cubic", n, False),
        "wtlab cubic+rec": lambda: _micro_wtlab("cubic", n, True),
        "wtlab bbr": lambda: _micro_wtlab("bbr", n, False),
        "wtlab bbr+rec": lambda: _micro_wtlab("bbr", n, True),
    }
    return interleaved(contenders, runs=runs)


# ----------------------------------------------------------------- (a) bulk
def _certificate():
    from wtlab.transport.certs import generate_certificate

    pair = generate_certificate(hostnames=("localhost",))
    return pair.certificate, pair.private_key


async def _bulk_once(port: int, cert, key, nbytes: int, variant: str) -> float:
    """Seconds to send ``nbytes`` on one stream and get the server's 'done'."""
    from aioquic.asyncio import QuicConnectionProtocol, connect, serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived

    import wtlab.cc.aioquic as wa
    from wtlab.trace import Recorder

    class Sink(QuicConnectionProtocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.received = 0

        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived):
                self.received += len(event.data)
                if event.end_stream:
                    self._quic.send_stream_data(event.stream_id, b"done", end_stream=True)
                    self.transmit()

    recorders: list = []

    class Sender(QuicConnectionProtocol):
        def __init__(self, quic, *args, **kwargs):
            if variant != "aioquic reno":
                rec = Recorder() if variant.endswith("+rec") else None
                recorders.append(rec)
                wa.attach(quic, "reno", recorder=rec)
            super().__init__(quic, *args, **kwargs)
            self.done = asyncio.get_running_loop().create_future()

        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived) and event.end_stream:
                if not self.done.done():
                    self.done.set_result(None)

    scfg = QuicConfiguration(is_client=False, alpn_protocols=["wtlab-bench"])
    scfg.certificate, scfg.private_key = cert, key
    server = await serve("127.0.0.1", port, configuration=scfg, create_protocol=Sink)
    try:
        ccfg = QuicConfiguration(is_client=True, alpn_protocols=["wtlab-bench"],
                                 congestion_control_algorithm="reno")
        ccfg.verify_mode = ssl.CERT_NONE
        async with connect("127.0.0.1", port, configuration=ccfg,
                           create_protocol=Sender) as client:
            payload = bytes(nbytes)
            t0 = time.perf_counter()
            sid = client._quic.get_next_available_stream_id()
            client._quic.send_stream_data(sid, payload, end_stream=True)
            client.transmit()
            await asyncio.wait_for(client.done, timeout=120)
            elapsed = time.perf_counter() - t0
    finally:
        server.close()
    if recorders and recorders[0] is not None:
        assert len(recorders[0]) > nbytes // MDS, "recording was on but recorded too little"
    return elapsed


def bulk(runs: int, mb: float) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Throughput (Mbit/s) and CPU seconds of this process (client and server) per MB."""
    cert, key = _certificate()
    nbytes = int(mb * 1e6)
    ports = iter(range(47000, 47000 + 1000))
    names = ["aioquic reno", "wtlab reno", "wtlab reno+rec"]
    cpu: dict[str, list[float]] = {n: [] for n in names}

    def contender(variant: str):
        def run() -> float:
            c0 = time.process_time()
            elapsed = asyncio.run(_bulk_once(next(ports), cert, key, nbytes, variant))
            cpu[variant].append((time.process_time() - c0) * 1e3 / mb)
            return nbytes * 8 / elapsed / 1e6  # Mbit/s
        return run

    return interleaved({n: contender(n) for n in names}, runs=runs), cpu


# ------------------------------------------------- (c) in-memory pair, virtual clock
def _pair_once(variant: str, nbytes: int, cert, key) -> float:
    """CPU microseconds per client packet for a transfer between two QuicConnections
    exchanging datagrams in memory with a fake clock (10 ms one way): deterministic
    work, so the difference between variants is the hook's and the recorder's cost."""
    import heapq

    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.events import StreamDataReceived

    import wtlab.cc.aioquic as wa
    from wtlab.trace import Recorder

    ccfg = QuicConfiguration(is_client=True, alpn_protocols=["wtlab-bench"],
                             congestion_control_algorithm="reno")
    ccfg.verify_mode = ssl.CERT_NONE
    scfg = QuicConfiguration(is_client=False, alpn_protocols=["wtlab-bench"])
    scfg.certificate, scfg.private_key = cert, key
    client = QuicConnection(configuration=ccfg)
    server = QuicConnection(configuration=scfg, original_destination_connection_id=client
                            .original_destination_connection_id)
    if variant != "aioquic reno":
        wa.attach(client, "reno", recorder=Recorder() if variant.endswith("+rec") else None)
    addr_c, addr_s = ("127.0.0.1", 40000), ("127.0.0.1", 4433)
    now, seq, received, sent, stream = 0.0, 0, 0, 0, None
    transit: list = []
    client.connect(addr_s, now=now)
    c0 = time.process_time()
    for _ in range(2_000_000):
        for conn, to in ((client, "s"), (server, "c")):
            if conn._network_paths:
                for data, _ in conn.datagrams_to_send(now):
                    seq += 1
                    sent += to == "s"
                    heapq.heappush(transit, (now + 0.01, seq, to, data))
        if stream is None and client._handshake_complete:
            stream = client.get_next_available_stream_id()
            client.send_stream_data(stream, bytes(nbytes), end_stream=True)
            continue
        while (ev := server.next_event()) is not None:
            if isinstance(ev, StreamDataReceived):
                received += len(ev.data)
        if received >= nbytes:
            break
        times = [t for t in (client.get_timer(), server.get_timer()) if t is not None]
        if transit:
            times.append(transit[0][0])
        now = max(now, min(times) + 1e-9)
        while transit and transit[0][0] <= now:
            _, _, to, data = heapq.heappop(transit)
            (server if to == "s" else client).receive_datagram(
                data, addr_c if to == "s" else addr_s, now=now)
        for conn in (client, server):
            t = conn.get_timer()
            if t is not None and t <= now:
                conn.handle_timer(now)
    return (time.process_time() - c0) / max(sent, 1) * 1e6


def pair(runs: int, mb: float) -> dict[str, list[float]]:
    from benchmarks._util import interleaved as _interleaved

    cert, key = _certificate()
    nbytes = int(mb * 1e6)
    names = ["aioquic reno", "wtlab reno", "wtlab reno+rec"]
    return _interleaved({n: (lambda n=n: _pair_once(n, nbytes, cert, key)) for n in names},
                        runs=runs)


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.cc", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=float, default=20.0, help="MB per bulk transfer")
    parser.add_argument("--packets", type=int, default=200_000, help="packets per micro run")
    parser.add_argument("--quick", action="store_true", help="3 runs, 5 MB, 50k packets")
    parser.add_argument("--only", choices=["bulk", "micro", "pair"], default=None)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.mb, args.packets = 3, 5.0, 50_000

    if args.only in (None, "micro"):
        res = micro(args.runs, args.packets)
        print_table(f"(b) controller cost per packet sent+acked ({args.packets} packets, "
                    "ACK frames of 2)", res, unit="us/packet", higher_is_better=False)
        for name in ("wtlab reno", "wtlab reno+rec", "wtlab cubic+rec", "wtlab bbr+rec"):
            med = summarize(res[name]).median
            print(f"  {name} / aioquic reno = {med / summarize(res['aioquic reno']).median:.2f}x")
        med = summarize(res["wtlab reno+rec"]).median
        print(f"  wtlab reno+rec median {med:.2f} us (target < 1.5 us: "
              f"{'met' if med < 1.5 else 'MISSED'})")

    if args.only in (None, "pair"):
        res = pair(args.runs, min(args.mb, 5.0))
        print_table(f"(c) in-memory aioquic pair, {min(args.mb, 5.0):g} MB, virtual clock: CPU "
                    "per client packet (both endpoints)", res, unit="CPU us/packet",
                    higher_is_better=False)
        print(ratio_line("(c)", res, "wtlab reno", "aioquic reno", higher_is_better=False))
        print(ratio_line("(c)", res, "wtlab reno+rec", "aioquic reno", higher_is_better=False,
                         target=0.90))

    if args.only in (None, "bulk"):
        res, cpu = bulk(args.runs, args.mb)
        print_table(f"(a) loopback bulk transfer, {args.mb:g} MB on one QUIC stream "
                    "(aioquic asyncio client -> server)", res, unit="Mbit/s")
        print(ratio_line("(a)", res, "wtlab reno", "aioquic reno"))
        print(ratio_line("(a)", res, "wtlab reno+rec", "aioquic reno", target=0.90))
        # CPU time is less disturbed by other processes than wall-clock throughput.
        print_table("(a) CPU of client + server per MB (process time; less noisy on a "
                    "shared machine)", cpu, unit="CPU ms/MB", higher_is_better=False)
        print(ratio_line("(a) cpu", cpu, "wtlab reno", "aioquic reno", higher_is_better=False))
        print(ratio_line("(a) cpu", cpu, "wtlab reno+rec", "aioquic reno",
                         higher_is_better=False, target=0.90))


if __name__ == "__main__":
    main()
