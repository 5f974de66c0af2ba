"""Reliability-mode benchmark: what a channel costs over the raw stream or datagram.

    .venv/bin/python -m benchmarks.reliability            # 5 interleaved runs
    .venv/bin/python -m benchmarks.reliability --quick    # smaller counts, 3 runs

Client and server run on one loop in this process (wtlab's own client and server on
loopback), so rates are what one CPU core does for both ends.

1. ``wire``: bytes on the wire (UDP payloads plus IP/UDP headers, both directions, counted
   by an unimpaired loopback relay) per delivered message, moving N messages of 1000 bytes
   client -> server at 0% loss (datagram contenders: until all arrived or arrivals stop;
   a few may be dropped by socket buffers, so bytes are divided by messages delivered):
   raw stream (the bytes written back to back on one stream) vs the reliable ordered
   channel; raw datagrams vs the unreliable and reliable-datagram channels. Printed as
   bytes per message and overhead ratios. Target (issue 6): reliable ordered <= 5%.
2. ``latency``: one 1000-byte message there and back (ping-pong, the server echoes on the
   same channel / stream / datagram), median of many, per run [ms].
3. ``rate``: 64-byte messages per second on one channel, client -> server, timed until the
   server has all of them: reliable ordered channel vs raw 64-byte writes on one stream
   (the receiver counts bytes). Target (issue 6): >= 50,000 messages/s for reliable ordered.
4. ``engine``: the datagram engine alone (two sans-IO engines in virtual time), messages
   per wall-second at 0% and 10% loss, per mode.

Each run interleaves the contenders (rotated order); min/median/max over runs and the
ratios of medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import wtlab
from benchmarks._util import print_table, ratio, rotations, summarize
from wtlab.net.link import LinkSpec
from wtlab.net.path import Path
from wtlab.net.relay import Relay

MSG_1K = bytes(range(250)) * 4  # 1000 bytes
MSG_64 = b"m" * 64


class Bench:
    """One server with the routes the contenders need; counters the server fills in."""

    def __init__(self) -> None:
        self.expect = 0
        self.done: asyncio.Event | None = None
        self.count = 0
        self.delivered_fraction: dict[str, list[float]] = {}

    def _arm(self, expect: int) -> asyncio.Event:
        self.expect = expect
        self.count = 0
        self.done = asyncio.Event()
        return self.done

    async def channel_sink(self, session) -> None:
        q = session.query
        kw = {"mode": q.get("mode", "reliable")}
        if "transport" in q:
            kw["transport"] = q["transport"]
        ch = session.channel(**kw)
        echo = q.get("echo") == "1"
        try:
            async for msg in ch:
                if echo:
                    await ch.send(msg)
                    continue
                self.count += 1
                if self.count >= self.expect and self.done is not None:
                    self.done.set()
        except wtlab.SessionClosed:
            pass

    async def raw_sink(self, session) -> None:
        """Count bytes on each incoming uni stream and datagrams."""

        async def stream_loop():
            while True:
                st = await session.accept_uni()
                total = 0
                while True:
                    data = await st.read(1 << 16)
                    if not data:
                        break
                    total += len(data)
                    if total >= self.expect and self.done is not None:
                        self.done.set()

        async def dgram_loop():
            while True:
                await session.receive_datagram()
                self.count += 1
                if self.count >= self.expect and self.done is not None:
                    self.done.set()

        try:
            await asyncio.gather(stream_loop(), dgram_loop())
        except wtlab.WtlabError:
            pass


async def _connect(url: str, cert: str):
    return await wtlab.connect(url, cert_hashes=[cert], timeout=10.0)


# ------------------------------------------------------------------------- wire bytes
async def wire_bytes(bench: Bench, srv, name: str, n: int) -> float:
    """Bytes on the wire per message for contender ``name`` (fresh session via a relay)."""
    spec = dict(rate_bps="10gbit", delay_s=0.0)
    path = Path(down=LinkSpec(**spec), up=LinkSpec(**spec))
    async with Relay(target=("127.0.0.1", srv.port), path=path) as relay:
        base = f"https://127.0.0.1:{relay.address[1]}"
        route = {
            "raw-stream": "/raw", "raw-datagram": "/raw",
            "reliable": "/chan?mode=reliable",
            "unreliable": "/chan?mode=unreliable",
            "reliable-datagram": "/chan?mode=reliable&transport=datagram",
        }[name]
        session = await _connect(base + route, srv.cert_sha256)
        # settle the handshake's packets before counting
        await asyncio.sleep(0.05)
        before = path.up.stats.offered_bytes + path.down.stats.offered_bytes
        done = bench._arm(n * len(MSG_1K) if name == "raw-stream" else n)
        if name == "raw-stream":
            st = await session.open_uni()
            for _ in range(n):
                st.write(MSG_1K)
            await st.drain()
            st.write_eof()
        elif name == "raw-datagram":
            for i in range(n):
                session.send_datagram(MSG_1K)
                if i % 16 == 15:
                    await asyncio.sleep(0)  # let the connection transmit
        else:
            kw = {"mode": "unreliable" if name == "unreliable" else "reliable"}
            if name == "reliable-datagram":
                kw["transport"] = "datagram"
            ch = session.channel(**kw)
            for i in range(n):
                await ch.send(MSG_1K)
                if name == "unreliable" and i % 16 == 15:
                    await asyncio.sleep(0)
        if name in ("raw-datagram", "unreliable"):
            # datagrams may be dropped (socket buffers): wait for all, or for arrivals to stop
            last, still = -1, 0
            while not done.is_set() and still < 30:
                await asyncio.sleep(0.01)
                still = still + 1 if bench.count == last else 0
                last = bench.count
        else:
            await asyncio.wait_for(done.wait(), 60)
        # the last ACKs (QUIC's and the channel's) belong to the transfer too
        await asyncio.sleep(0.1)
        after = path.up.stats.offered_bytes + path.down.stats.offered_bytes
        await session.close()
        # per delivered message: loopback socket buffers may drop a few datagrams
        delivered = min(n, bench.count) if name in ("raw-datagram", "unreliable") else n
        bench.delivered_fraction.setdefault(name, []).append(delivered / n)
        return (after - before) / max(1, delivered)


# ---------------------------------------------------------------------------- latency
async def ping_pong(srv, name: str, rounds: int) -> float:
    """Median round trip of one 1000-byte message, ms."""
    route = {"raw-stream": "/echo", "raw-datagram": "/echo",
             "reliable": "/chan?mode=reliable&echo=1",
             "unreliable": "/chan?mode=unreliable&echo=1",
             "reliable-datagram": "/chan?mode=reliable&transport=datagram&echo=1"}[name]
    session = await _connect(srv.url(route), srv.cert_sha256)
    samples = []
    try:
        if name == "raw-stream":
            st = await session.open_bidi()
            for _ in range(rounds):
                t0 = time.perf_counter()
                st.write(MSG_1K)
                await st.readexactly(len(MSG_1K))
                samples.append(time.perf_counter() - t0)
        elif name == "raw-datagram":
            for _ in range(rounds):
                t0 = time.perf_counter()
                session.send_datagram(MSG_1K)
                await asyncio.wait_for(session.receive_datagram(), 2)
                samples.append(time.perf_counter() - t0)
        else:
            kw = {"mode": "unreliable" if name == "unreliable" else "reliable"}
            if name == "reliable-datagram":
                kw["transport"] = "datagram"
            ch = session.channel(**kw)
            for _ in range(rounds):
                t0 = time.perf_counter()
                await ch.send(MSG_1K)
                await asyncio.wait_for(ch.receive(), 2)
                samples.append(time.perf_counter() - t0)
    finally:
        await session.close()
    return statistics.median(samples) * 1e3


# ------------------------------------------------------------------------------- rate
async def message_rate(bench: Bench, srv, name: str, n: int) -> float:
    """64-byte messages per second, client -> server, until the server has them all."""
    route = "/raw" if name == "raw-stream" else "/chan?mode=reliable"
    session = await _connect(srv.url(route), srv.cert_sha256)
    try:
        if name == "raw-stream":
            done = bench._arm(n * len(MSG_64))
            st = await session.open_uni()
            t0 = time.perf_counter()
            for _ in range(n):
                st.write(MSG_64)
                await st.drain()
        else:
            done = bench._arm(n)
            ch = session.channel(mode="reliable")
            await ch.send(MSG_64)  # open the stream before the clock starts
            bench.count = 0
            bench.expect = n
            t0 = time.perf_counter()
            for _ in range(n):
                await ch.send(MSG_64)
        await asyncio.wait_for(done.wait(), 60)
        return n / (time.perf_counter() - t0)
    finally:
        await session.close()


def engine_rate(mode: str, loss: float, n: int) -> float:
    """Messages per wall-second through two sans-IO engines in virtual time (no network
    stack at all): what the retransmission logic itself costs."""
    from wtlab.reliability import Engine, EnginePair, LossyLink

    kw = {"lifetime_s": 0.1} if mode == "partial" else {}
    pair = EnginePair(Engine(mode, **kw), Engine(mode, **kw),
                      LossyLink(delay_s=0.01, loss=loss, seed=1))
    for i in range(n):
        pair.send_at(i * 1e-5, MSG_64)
    t0 = time.perf_counter()
    pair.run()
    return n / (time.perf_counter() - t0)


async def amain(runs: int, n_wire: int, n_rate: int, rounds: int) -> dict:
    bench = Bench()
    routes = {"/chan": bench.channel_sink, "/raw": bench.raw_sink}
    results: dict[str, dict[str, list[float]]] = {"wire": {}, "latency": {}, "rate": {}}
    wire_names = ["raw-stream", "reliable", "raw-datagram", "unreliable", "reliable-datagram"]
    rate_names = ["raw-stream", "reliable"]
    async with wtlab.serve(port=0, routes=routes) as srv:
        for order in rotations(wire_names, runs):
            for name in order:
                results["wire"].setdefault(name, []).append(
                    await wire_bytes(bench, srv, name, n_wire))
                results["latency"].setdefault(name, []).append(
                    await ping_pong(srv, name, rounds))
        for order in rotations(rate_names, runs):
            for name in order:
                results["rate"].setdefault(name, []).append(
                    await message_rate(bench, srv, name, n_rate))
    results["delivered"] = bench.delivered_fraction
    engine_names = {f"{m} {int(p * 100)}% loss": (m, p) for m in ("reliable", "partial",
                                                                  "unreliable")
                    for p in (0.0, 0.1)}
    results["engine"] = {}
    for order in rotations(list(engine_names), runs):
        for name in order:
            results["engine"].setdefault(name, []).append(
                engine_rate(*engine_names[name], n_rate // 10))
    return results


def report(results: dict, n_wire: int, n_rate: int) -> None:
    wire = results["wire"]
    print_table(f"wire: bytes on the wire per delivered 1000-byte message ({n_wire} sent, "
                "both directions, IP+UDP headers included)", wire, unit="bytes/message",
                higher_is_better=False)
    for name, fr in results.get("delivered", {}).items():
        if name not in ("raw-datagram", "unreliable"):
            continue
        print(f"  {name}: delivered fraction min {min(fr):.3f} median "
              f"{statistics.median(fr):.3f} (datagrams dropped by loopback socket buffers)")
    for a, b, target in (("reliable", "raw-stream", 1.05), ("unreliable", "raw-datagram", None),
                         ("reliable-datagram", "raw-datagram", None)):
        r = ratio(wire, a, b)
        line = f"  {a} / {b} = {r:.4f} ({(r - 1) * 100:+.2f}% bytes)"
        if target is not None:
            line += f"  target <= {(target - 1) * 100:.0f}%: {'met' if r <= target else 'MISSED'}"
        print(line)
    lat = results["latency"]
    print_table("latency: 1000-byte ping-pong round trip (median of each run)", lat, unit="ms",
                higher_is_better=False)
    for a, b in (("reliable", "raw-stream"), ("unreliable", "raw-datagram"),
                 ("reliable-datagram", "raw-datagram")):
        print(f"  {a} / {b} = {ratio(lat, a, b):.2f}x")
    rate = results["rate"]
    print_table(f"rate: 64-byte messages per second on one channel ({n_rate} messages)", rate,
                unit="msg/s")
    print_table(f"engine: 64-byte messages per wall-second through two sans-IO engines "
                f"({n_rate // 10} messages, virtual time, 10 ms one-way)", results["engine"],
                unit="msg/s")
    med = summarize(rate["reliable"]).median
    print(f"  reliable / raw-stream = {ratio(rate, 'reliable', 'raw-stream'):.2f}x;"
          f" reliable ordered median {med:,.0f} msg/s, target >= 50,000:"
          f" {'met' if med >= 50_000 else 'MISSED'}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller counts, 3 runs")
    ap.add_argument("--runs", type=int, default=None)
    args = ap.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    n_wire, n_rate, rounds = (1000, 50_000, 100) if args.quick else (5000, 200_000, 300)
    results = asyncio.run(amain(runs, n_wire, n_rate, rounds))
    report(results, n_wire, n_rate)


if __name__ == "__main__":
    main()
