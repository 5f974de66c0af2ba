"""Link model speed: ``Link.transmit`` calls per wall-second, per model.

Run: ``.venv/bin/python -m benchmarks.link [--packets N] [--rounds R] [--relay]``

Each model is offered the same stream: 1280-byte packets at 1.2x the link's
capacity (so the buffer fills and drop-tail/CoDel work), for N packets. Rounds
interleave the models so machine noise hits them alike; we print min / median /
max packets per second and the ratio to the plain constant-rate link measured
in the same run. The fast flow model needs the whole model (two links, the
controller, loss detection) at >= 200,000 packets per wall-second, so a link
should stay well above 1,000,000.

``--relay`` also measures the live relay on loopback (wall-clock timers): the
rate a UDP sink receives when a sender offers more than the set rate, against
the set rate; and how late echo replies come back, against 2 x the set delay.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from wtlab.net.link import Link
from wtlab.net.loss import GilbertElliott

TRACES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "traces")


def models() -> dict[str, dict]:
    base = dict(rate_bps=10e6, delay_s=0.02, buffer="1bdp", seed=1)
    out = {
        "rate, droptail": base,
        "rate, bernoulli 1%": {**base, "loss": 0.01},
        "rate, gilbert-elliott": {**base, "loss": GilbertElliott.from_burst(0.01, 3)},
        "rate, jitter+reorder+dup": {**base, "jitter_s": 0.002, "reorder_p": 0.01,
                                     "duplicate_p": 0.01},
        "rate, codel": {**base, "aqm": "codel", "buffer": "4bdp"},
    }
    trace = os.path.join(TRACES, "TMobile-LTE-short.down")
    if os.path.exists(trace):
        out["trace TMobile-LTE, droptail"] = dict(trace=trace, delay_s=0.02, buffer="1bdp", seed=1)
        out["trace TMobile-LTE, codel"] = dict(trace=trace, delay_s=0.02, buffer="4bdp",
                                               aqm="codel", seed=1)
    else:
        print(f"(no traces at {TRACES}: trace models skipped)")
    return out


def run_once(params: dict, packets: int) -> tuple[float, int]:
    link = Link(**params)
    gap = 1280 * 8 / (1.2 * link.capacity_bps)
    transmit = link.transmit
    t0 = time.perf_counter()
    now = 0.0
    for _ in range(packets):
        transmit(now, 1280)
        now += gap
    return time.perf_counter() - t0, link.stats.delivered


async def _relay_rate(rate_bps: float, seconds: float = 1.0) -> float:
    from wtlab.net.relay import Relay

    loop = asyncio.get_running_loop()
    times: list[float] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            times.append(loop.time())

    sink_t, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    count = int(rate_bps * seconds / (1200 * 8))
    async with Relay(sink_t.get_extra_info("sockname"), rate_bps=rate_bps) as relay:
        client_t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                          remote_addr=relay.address)
        per_ms = max(2, int(2 * rate_bps / (1200 * 8 * 1000)) + 1)  # offer ~2x the rate
        sent = 0
        while sent < count:
            for _ in range(min(per_ms, count - sent)):
                client_t.sendto(b"x" * 1172)
                sent += 1
            await asyncio.sleep(0.001)
        deadline = loop.time() + 2 * seconds + 1
        while len(times) < relay.path.up.stats.delivered and loop.time() < deadline:
            await asyncio.sleep(0.01)
        client_t.close()
    sink_t.close()
    if len(times) < 2:
        return 0.0
    return (len(times) - 1) * 1200 * 8 / (times[-1] - times[0])


async def _relay_lateness(delay_s: float, pings: int = 200) -> list[float]:
    from wtlab.net.relay import Relay

    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(data, addr)

    replies: asyncio.Queue = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            replies.put_nowait(loop.time())

    echo_t, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    late = []
    async with Relay(echo_t.get_extra_info("sockname"), rate_bps=1e9, delay_s=delay_s) as relay:
        client_t, _ = await loop.create_datagram_endpoint(Client, remote_addr=relay.address)
        for _ in range(pings):
            sent = loop.time()
            client_t.sendto(b"ping")
            got = await asyncio.wait_for(replies.get(), 5)
            late.append(got - sent - 2 * delay_s)
        client_t.close()
    echo_t.close()
    return sorted(late)


async def _relay_webtransport(rate_bps: float, delay_s: float, nbytes: int) -> tuple[float, float]:
    """(goodput bit/s, session setup s) of a wtlab WebTransport download through the relay."""
    import wtlab
    from wtlab.net.relay import Relay

    loop = asyncio.get_running_loop()
    async with wtlab.serve(port=0) as server:
        async with Relay(("127.0.0.1", server.port), rate_bps=rate_bps, delay_s=delay_s,
                         buffer="2bdp") as relay:
            url = f"https://127.0.0.1:{relay.address[1]}/source?bytes={nbytes}"
            start = loop.time()
            async with wtlab.connect(url, cert_hashes=[server.cert_sha256]) as session:
                connected = loop.time()
                stream = await session.accept_uni()
                await stream.read()
                done = loop.time()
    return nbytes * 8 / (done - connected), connected - start


def relay_report() -> None:
    print("\nlive relay on loopback (wall clock)")
    print(f"{'set rate':>10s} {'received':>10s} {'ratio':>6s}")
    for rate in (2e6, 10e6, 20e6, 50e6):
        got = asyncio.run(_relay_rate(rate))
        print(f"{rate / 1e6:8.0f}M {got / 1e6:9.2f}M {got / rate:6.3f}")
    print(f"{'delay':>10s} {'RTT - 2 x delay: min':>22s} {'median':>8s} {'p99':>8s}  (ms)")
    for delay in (0.005, 0.025):
        late = asyncio.run(_relay_lateness(delay))
        print(f"{delay * 1e3:8.0f}ms {late[0] * 1e3:22.3f} {late[len(late) // 2] * 1e3:8.3f} "
              f"{late[int(len(late) * 0.99)] * 1e3:8.3f}")
    print("wtlab WebTransport download (2 s at the set rate) through the relay, 2 x 15 ms RTT")
    print(f"{'set rate':>10s} {'goodput':>10s} {'ratio':>6s} {'setup':>8s}")
    for rate in (5e6, 10e6, 20e6):
        goodput, setup = asyncio.run(_relay_webtransport(rate, 0.015, int(rate * 2 / 8)))
        print(f"{rate / 1e6:8.0f}M {goodput / 1e6:9.2f}M {goodput / rate:6.3f} "
              f"{setup * 1e3:6.1f}ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.link")
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--relay", action="store_true", help="also measure the live relay")
    ap.add_argument("--quick", action="store_true", help="20k packets x 3 rounds")
    args = ap.parse_args(argv)
    if args.quick:
        args.packets, args.rounds = min(args.packets, 20_000), min(args.rounds, 3)
    table = models()
    rates: dict[str, list[float]] = {name: [] for name in table}
    # empty loop cost, to show what the harness itself costs
    t0 = time.perf_counter()
    now = 0.0
    for _ in range(args.packets):
        now += 1e-6
    harness = args.packets / (time.perf_counter() - t0)
    for _ in range(args.rounds):
        for name, params in table.items():
            elapsed, _ = run_once(params, args.packets)
            rates[name].append(args.packets / elapsed)
    ref = statistics.median(rates["rate, droptail"])
    print(f"{args.packets} packets x {args.rounds} rounds, interleaved; "
          f"bare harness loop {harness / 1e6:.1f} M iterations/s")
    print(f"{'model':32s} {'min':>10s} {'median':>10s} {'max':>10s}  (packets/s)  vs rate,droptail")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"{name:32s} {min(values):10,.0f} {med:10,.0f} {max(values):10,.0f}  "
              f"{med / ref:6.2f}x")
    if args.relay:
        relay_report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
