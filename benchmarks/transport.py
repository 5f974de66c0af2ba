"""Transport benchmark: wtlab vs raw aioquic vs pywebtransport 0.8.1, in one run.

    .venv/bin/python -m benchmarks.transport            # full: 100 MB bulk, 5 runs
    .venv/bin/python -m benchmarks.transport --quick    # 10 MB bulk, smaller counts, 5 runs
    .venv/bin/python -m benchmarks.transport --profile  # cProfile of wtlab's client and server

What is measured, for each contender (its own client against its own server):

- ``setup``: QUIC handshake + extended CONNECT until the session is usable [ms];
- ``open+echo``: open a bidirectional stream, send 1 byte + FIN, read the echo
  to its FIN, on an established session [ms, median of ``echo_ops`` per run];
- ``pingpong1k``: on one bidirectional stream, write 1 KB and read the 1 KB
  echo back, ``pingpongs`` times in a row [ms per round trip, median]; every
  round has a 3 s deadline, so a stack that stalls reports the round it stalled at;
- ``bulk``: one stream, client to server, ``bulk_mb`` MB, timed until the server
  reports having read it all [MB/s, 1 MB = 1e6 bytes];
- ``msg64``: 64-byte writes on one stream, client to server, until the server
  reports them all [messages/s];
- ``dgram64`` / ``dgram1000``: datagrams the server received per second
  (count / span between its first and last arrival) while the client sends as
  fast as its stack lets it [datagrams/s]; the delivered fraction is printed too.

Each contender's server and client run in their own processes; the
orchestrator interleaves the contenders (rotating the order each run) so the
noise of a shared machine hits all alike, and prints min/median/max over the
runs and the ratios of medians. The raw-aioquic baseline is ``benchmarks/rawh3.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._util import print_table, ratio_line, rotations, summarize

CONTENDERS = ("wtlab", "raw", "pywebtransport")
HOST = "127.0.0.1"
BULK_CHUNK = 64 * 1024
MSG = b"m" * 64

# metric -> (unit, higher is better)
METRICS = {
    "setup": ("ms", False),
    "open+echo": ("ms", False),
    "pingpong1k": ("ms", False),
    "bulk": ("MB/s", True),
    "msg64": ("msg/s", True),
    "dgram64": ("dgram/s", True),
    "dgram1000": ("dgram/s", True),
}

# Targets from issue 2: (metric, versus, minimum ratio of medians, "better" direction).
TARGETS = [
    ("bulk", "raw", 1.0), ("msg64", "raw", 1.0),
    ("pingpong1k", "raw", 1 / 1.1),  # issue 12: a 1 KB round trip at most 1.1x raw aioquic's
    ("bulk", "pywebtransport", 2.0), ("msg64", "pywebtransport", 4.0),
]


def sizes(quick: bool) -> dict:
    if quick:
        return dict(setup_n=5, echo_ops=100, bulk_mb=10, msgs=50_000, dgrams=20_000,
                    pingpongs=1000)
    return dict(setup_n=10, echo_ops=300, bulk_mb=100, msgs=200_000, dgrams=50_000,
                pingpongs=3000)


# =========================================================================== clients

DATAGRAM_HIGH_WATER = 1024  # datagrams queued in the sender's stack before the client waits
DATAGRAM_POLL_S = 0.0005


async def wait_until_at_most(queued, limit: int) -> int:
    """Poll (every DATAGRAM_POLL_S) until ``queued() <= limit``; returns the number of polls.

    None of the three stacks offers a datagram send-queue wait, so every contender
    gets the same timed poll: no spinning that would steal the server's CPU.
    """
    polls = 0
    while queued() > limit:
        polls += 1
        await asyncio.sleep(DATAGRAM_POLL_S)
    return polls

# Each adapter uses its stack the way its documentation suggests, with bounded
# send buffering. ``session(path)`` is an async context manager.


class RawAdapter:
    name = "raw"

    def __init__(self, port: int, cert_sha256: bytes) -> None:
        self.port = port

    @contextlib.asynccontextmanager
    async def session(self, path: str):
        from benchmarks.rawh3 import raw_connect

        async with raw_connect(HOST, self.port) as client:
            await client.open_session(f"{HOST}:{self.port}", path)
            yield client

    async def echo_once(self, s, data: bytes) -> bytes:
        st = s.open_bidi()
        st.write(data, end_stream=True)
        return await st.read_all()

    async def pingpong(self, s, n: int, data: bytes) -> list[float]:
        st = s.open_bidi()
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            st.write(data)
            got = bytearray()
            while len(got) < len(data):
                got += await _round_deadline(st.read(), i)
            times.append(time.perf_counter() - t0)
        st.write_eof()
        return times

    async def send_bulk(self, s, total: int) -> bytes:
        st = s.open_bidi()
        chunk = b"\0" * BULK_CHUNK
        sent = 0
        while sent < total:
            n = min(BULK_CHUNK, total - sent)
            st.write(chunk if n == BULK_CHUNK else chunk[:n])
            sent += n
            await st.drain()
        st.write_eof()
        return await st.read_all()

    async def send_messages(self, s, n: int) -> bytes:
        st = s.open_bidi()
        for i in range(n):
            st.write(MSG)
            if i & 63 == 63:
                await st.drain()
        st.write_eof()
        return await st.read_all()

    async def send_datagrams(self, s, n: int, payload: bytes) -> int:
        waits = 0
        for _ in range(n):
            if s.datagrams_pending() > DATAGRAM_HIGH_WATER:
                waits += await wait_until_at_most(s.datagrams_pending, DATAGRAM_HIGH_WATER)
            s.send_datagram(payload)
        await wait_until_at_most(s.datagrams_pending, 0)
        return waits

    async def sink_report(self, s) -> bytes:
        st = s.open_bidi()
        st.write_eof()
        return await st.read_all()


class PwtAdapter:
    name = "pywebtransport"

    def __init__(self, port: int, cert_sha256: bytes) -> None:
        self.port = port
        self._dgram = {}

    @contextlib.asynccontextmanager
    async def session(self, path: str):
        from pywebtransport import WebTransportClient

        from tests.interop.pwt import pwt_client_config

        async with WebTransportClient(config=pwt_client_config()) as client:
            session = await client.connect(url=f"https://{HOST}:{self.port}{path}")
            try:
                yield session
            finally:
                with contextlib.suppress(Exception):
                    await session.close()

    async def echo_once(self, s, data: bytes) -> bytes:
        st = await s.create_bidirectional_stream()
        await st.write(data=data, end_stream=True)
        return await st.read_all()

    async def pingpong(self, s, n: int, data: bytes) -> list[float]:
        st = await s.create_bidirectional_stream()
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            await st.write(data=data, wait_flush=False)
            await _round_deadline(st.readexactly(n=len(data)), i)
            times.append(time.perf_counter() - t0)
        await st.write(data=b"", end_stream=True)
        return times

    async def send_bulk(self, s, total: int) -> bytes:
        st = await s.create_bidirectional_stream()
        chunk = b"\0" * BULK_CHUNK
        sent = 0
        while sent < total:
            n = min(BULK_CHUNK, total - sent)
            await st.write(data=chunk if n == BULK_CHUNK else chunk[:n], wait_flush=False)
            sent += n
        await st.write(data=b"", end_stream=True)
        return await st.read_all()

    async def send_messages(self, s, n: int) -> bytes:
        st = await s.create_bidirectional_stream()
        for _ in range(n):
            await st.write(data=MSG, wait_flush=False)
        await st.write(data=b"", end_stream=True)
        return await st.read_all()

    async def send_datagrams(self, s, n: int, payload: bytes) -> int:
        transport = await s.create_datagram_transport()
        # pywebtransport's send queue drops its oldest datagram when full, and hands
        # datagrams to aioquic without a bound: keep both below their high-water marks.
        high = max(1, transport.outgoing_high_water_mark - 1)
        pending = s.protocol_handler.quic_connection._datagrams_pending

        def queued() -> int:
            if transport.get_send_buffer_size() >= high:
                return DATAGRAM_HIGH_WATER + 1
            return len(pending)

        waits = 0
        for _ in range(n):
            if queued() > DATAGRAM_HIGH_WATER:
                waits += await wait_until_at_most(queued, DATAGRAM_HIGH_WATER)
            await transport.send(data=payload)
        await wait_until_at_most(lambda: transport.get_send_buffer_size() + len(pending), 0)
        return waits

    async def sink_report(self, s) -> bytes:
        st = await s.create_bidirectional_stream()
        await st.write(data=b"", end_stream=True)
        return await st.read_all()


class WtlabAdapter:
    name = "wtlab"

    def __init__(self, port: int, cert_sha256: bytes) -> None:
        self.port = port
        self.cert_sha256 = cert_sha256

    @contextlib.asynccontextmanager
    async def session(self, path: str):
        import wtlab

        async with wtlab.connect(f"https://{HOST}:{self.port}{path}",
                                 cert_hashes=[self.cert_sha256]) as session:
            yield session

    async def echo_once(self, s, data: bytes) -> bytes:
        st = await s.open_bidi()
        st.write(data)
        st.write_eof()
        return await st.read()

    async def pingpong(self, s, n: int, data: bytes) -> list[float]:
        st = await s.open_bidi()
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            st.write(data)
            await _round_deadline(st.readexactly(len(data)), i)
            times.append(time.perf_counter() - t0)
        st.write_eof()
        return times

    async def send_bulk(self, s, total: int) -> bytes:
        st = await s.open_bidi()
        chunk = b"\0" * BULK_CHUNK
        sent = 0
        while sent < total:
            n = min(BULK_CHUNK, total - sent)
            st.write(chunk if n == BULK_CHUNK else chunk[:n])
            sent += n
            await st.drain()
        st.write_eof()
        return await st.read()

    async def send_messages(self, s, n: int) -> bytes:
        st = await s.open_bidi()
        for i in range(n):
            st.write(MSG)
            if i & 63 == 63:
                await st.drain()
        st.write_eof()
        return await st.read()

    async def send_datagrams(self, s, n: int, payload: bytes) -> int:
        # send_datagram() queues without a bound: keep aioquic's queue short, as for raw.
        pending = s.quic._datagrams_pending
        waits = 0
        for _ in range(n):
            if len(pending) > DATAGRAM_HIGH_WATER:
                waits += await wait_until_at_most(pending.__len__, DATAGRAM_HIGH_WATER)
            s.send_datagram(payload)
        await wait_until_at_most(pending.__len__, 0)
        return waits

    async def sink_report(self, s) -> bytes:
        st = await s.open_bidi()
        st.write_eof()
        return await st.read()


ADAPTERS = {a.name: a for a in (RawAdapter, PwtAdapter, WtlabAdapter)}


async def op_setup(ad, n: int) -> dict:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with ad.session("/echo"):
            times.append((time.perf_counter() - t0) * 1e3)
    return {"value": statistics.median(times)}


async def op_echo(ad, n: int) -> dict:
    times = []
    async with ad.session("/echo") as s:
        for i in range(n + 5):
            t0 = time.perf_counter()
            got = await ad.echo_once(s, b"x")
            dt = (time.perf_counter() - t0) * 1e3
            if got != b"x":
                raise RuntimeError(f"echo returned {got!r}, expected b'x'")
            if i >= 5:  # warm-up
                times.append(dt)
    return {"value": statistics.median(times)}


PINGPONG_ROUND_S = 3.0


async def _round_deadline(aw, i: int):
    """``aw`` within PINGPONG_ROUND_S, or a TimeoutError naming the round that stalled."""
    try:
        return await asyncio.wait_for(aw, PINGPONG_ROUND_S)
    except TimeoutError:
        raise TimeoutError(f"round trip {i} got no echo within {PINGPONG_ROUND_S} s "
                           "(the stack stalled)") from None


async def op_pingpong(ad, n: int) -> dict:
    data = b"p" * 1024
    async with ad.session("/echo") as s:
        times = await ad.pingpong(s, n, data)
    return {"value": statistics.median(times[10:] or times) * 1e3,
            "max_ms": max(times) * 1e3}


def _check_report(raw: bytes, expect_bytes: int) -> dict:
    report = json.loads(raw)
    if report["bytes"] != expect_bytes:
        raise RuntimeError(f"server read {report['bytes']} bytes, client sent {expect_bytes}")
    return report


async def op_bulk(ad, mb: float) -> dict:
    total = int(mb * 1e6)
    async with ad.session("/sink") as s:
        t0 = time.perf_counter()
        raw = await ad.send_bulk(s, total)
        dt = time.perf_counter() - t0
    _check_report(raw, total)
    return {"value": total / dt / 1e6}


async def op_msgs(ad, n: int) -> dict:
    async with ad.session("/sink") as s:
        t0 = time.perf_counter()
        raw = await ad.send_messages(s, n)
        dt = time.perf_counter() - t0
    _check_report(raw, n * len(MSG))
    return {"value": n / dt}


async def op_dgrams(ad, n: int, size: int) -> dict:
    payload = b"d" * size
    async with ad.session("/sink") as s:
        drops = await ad.send_datagrams(s, n, payload)  # waits for room, per stack
        await asyncio.sleep(0.1)  # let the last datagrams land; not part of the timing
        report = _check_report(await ad.sink_report(s), 0)
    got, span = report["datagrams"], report["datagram_span_s"]
    return {"value": got / span if span > 0 else float("nan"),
            "delivered": got / n, "send_waits": drops}


async def run_op(ad, req: dict) -> dict:
    op = req["op"]
    if op == "setup":
        return await op_setup(ad, req["n"])
    if op == "open+echo":
        return await op_echo(ad, req["n"])
    if op == "pingpong1k":
        return await op_pingpong(ad, req["n"])
    if op == "bulk":
        return await op_bulk(ad, req["mb"])
    if op == "msg64":
        return await op_msgs(ad, req["n"])
    if op in ("dgram64", "dgram1000"):
        return await op_dgrams(ad, req["n"], int(op[5:]))
    raise ValueError(f"unknown op {op!r}")


async def client_worker(name: str, port: int, cert_sha256: bytes) -> None:
    """Answer one JSON request per stdin line with one JSON line on stdout."""
    ad = ADAPTERS[name](port, cert_sha256)
    loop = asyncio.get_running_loop()
    out = sys.stdout
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        req = json.loads(line)
        try:
            res = await asyncio.wait_for(run_op(ad, req), timeout=req.get("timeout", 300))
        except Exception as exc:  # report, keep serving the next request
            res = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(res) + "\n")
        out.flush()


# =========================================================================== servers


async def serve_wtlab(certfile: str, keyfile: str):
    """wtlab's server: its own /echo route, plus a /sink handler written on its session API."""
    import wtlab
    from benchmarks.rawh3 import DatagramCounter

    async def sink(session) -> None:
        counter = DatagramCounter()

        async def datagrams() -> None:
            with contextlib.suppress(Exception):
                while True:
                    counter.add(len(await session.receive_datagram()))

        async def one_stream(stream) -> None:
            n = 0
            while chunk := await stream.read(65536):
                n += len(chunk)
            stream.write(counter.report(n).encode())
            stream.write_eof()

        tasks = {asyncio.create_task(datagrams())}
        try:
            while True:
                stream = await session.accept_bidi()
                tasks.add(asyncio.create_task(one_stream(stream)))
        finally:
            for t in tasks:
                t.cancel()

    # Our /sink replaces the built-in one so that every contender answers the same report.
    server = await wtlab.serve(HOST, 0, cert=certfile, key=keyfile, routes={"/sink": sink}).start()
    return server, server.port


async def serve_raw(certfile: str, keyfile: str):
    from benchmarks.rawh3 import raw_serve
    from tests.interop.pwt import free_udp_port

    port = free_udp_port(HOST)
    server = await raw_serve(HOST, port, certfile, keyfile)
    return server, port


async def serve_pwt(certfile: str, keyfile: str):
    from pywebtransport import WebTransportStream

    from benchmarks.rawh3 import DatagramCounter
    from tests.interop.certs import CertFiles
    from tests.interop.pwt import pwt_echo_server

    cm = pwt_echo_server(CertFiles(Path(certfile), Path(keyfile), b""), HOST)
    server = await cm.__aenter__()

    @server.app.route(path="/sink")
    async def sink(session) -> None:
        counter = DatagramCounter()

        async def datagrams() -> None:
            with contextlib.suppress(Exception):
                transport = await session.create_datagram_transport()
                while True:
                    counter.add(len(await transport.receive()))

        async def one_stream(stream) -> None:
            n = 0
            while chunk := await stream.read(size=65536):
                n += len(chunk)
            await stream.write(data=counter.report(n).encode(), end_stream=True)

        tasks = {asyncio.create_task(datagrams())}
        try:
            async for stream in session.incoming_streams():
                if isinstance(stream, WebTransportStream):
                    tasks.add(asyncio.create_task(one_stream(stream)))
            await session.wait_closed()
        finally:
            for t in tasks:
                t.cancel()

    return cm, server.port


SERVERS = {"wtlab": serve_wtlab, "raw": serve_raw, "pywebtransport": serve_pwt}


async def server_main(name: str, certfile: str, keyfile: str) -> None:
    server, port = await SERVERS[name](certfile, keyfile)
    print(f"READY {port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the orchestrator closes stdin


# =========================================================================== orchestrator


class Proc:
    """A child process speaking line-delimited JSON on stdin/stdout."""

    def __init__(self, args: list[str], profile_to: str | None = None) -> None:
        cmd = [sys.executable]
        if profile_to:
            cmd += ["-m", "cProfile", "-o", profile_to]
            cmd += ["-m", "benchmarks.transport", *args]
        else:
            cmd += ["-m", "benchmarks.transport", *args]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, cwd=Path(__file__).resolve().parent.parent)

    def readline(self) -> str:
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.p.args} exited with {self.p.wait()}")
        return line

    def request(self, req: dict) -> dict:
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        return json.loads(self.readline())

    def close(self, timeout: float = 20) -> None:
        with contextlib.suppress(Exception):
            self.p.stdin.close()
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.terminate()
            self.p.wait(timeout=5)


def make_cert(directory: Path) -> tuple[str, str, bytes]:
    from tests.interop.certs import make_cert as _make_cert

    c = _make_cert(directory)
    return str(c.certfile), str(c.keyfile), c.sha256


def requests_for(sz: dict) -> dict[str, dict]:
    return {
        "setup": {"op": "setup", "n": sz["setup_n"]},
        "open+echo": {"op": "open+echo", "n": sz["echo_ops"]},
        "pingpong1k": {"op": "pingpong1k", "n": sz["pingpongs"]},
        "bulk": {"op": "bulk", "mb": sz["bulk_mb"]},
        "msg64": {"op": "msg64", "n": sz["msgs"]},
        "dgram64": {"op": "dgram64", "n": sz["dgrams"]},
        "dgram1000": {"op": "dgram1000", "n": sz["dgrams"]},
    }


def start_pair(name: str, tmp: Path, cert: tuple[str, str, bytes],
               profile: bool = False) -> tuple[Proc, Proc]:
    certfile, keyfile, sha = cert
    server = Proc(["--serve", name, "--cert", certfile, "--key", keyfile],
                  profile_to=str(tmp / f"{name}-server.prof") if profile else None)
    ready = server.readline().split()
    if ready[:1] != ["READY"]:
        raise RuntimeError(f"{name} server did not start: {ready}")
    client = Proc(["--client", name, "--port", ready[1], "--sha256", sha.hex()],
                  profile_to=str(tmp / f"{name}-client.prof") if profile else None)
    return server, client


def orchestrate(args) -> int:
    sz = sizes(args.quick)
    reqs = requests_for(sz)
    metrics = [m for m in METRICS if not args.only or m in args.only]
    contenders = [c for c in CONTENDERS if not args.contenders or c in args.contenders]
    print(f"transport benchmark: {', '.join(contenders)}; {args.runs} interleaved runs; "
          f"bulk {sz['bulk_mb']} MB, {sz['msgs']} x 64 B messages, {sz['dgrams']} datagrams, "
          f"{sz['echo_ops']} echo ops, {sz['setup_n']} setups per run; "
          f"loadavg {os.getloadavg()[0]:.2f}", flush=True)
    print("congestion control, each stack's default: wtlab 'default' (wtlab CUBIC), raw aioquic "
          "'reno', pywebtransport aioquic 'cubic'", flush=True)
    results: dict[str, dict[str, list[float]]] = {m: {c: [] for c in contenders} for m in metrics}
    extras: dict[str, dict[str, list[dict]]] = {m: {c: [] for c in contenders} for m in metrics}
    errors = 0
    with tempfile.TemporaryDirectory(prefix="wtlab-bench-") as tmpdir:
        tmp = Path(tmpdir)
        cert = make_cert(tmp)
        pairs = {c: start_pair(c, tmp, cert) for c in contenders}
        try:
            for run, order in enumerate(rotations(contenders, args.runs), 1):
                for metric in metrics:
                    for c in order:
                        res = pairs[c][1].request(reqs[metric])
                        if "error" in res:
                            print(f"  run {run} {metric} {c}: ERROR {res['error']}", flush=True)
                            errors += c == "wtlab"
                            results[metric][c].append(float("nan"))
                        else:
                            results[metric][c].append(res["value"])
                            extras[metric][c].append(res)
                print(f"  run {run}/{args.runs} done (loadavg {os.getloadavg()[0]:.2f})",
                      flush=True)
        finally:
            for server, client in pairs.values():
                client.close()
                server.close()
    for metric in metrics:
        unit, higher = METRICS[metric]
        print_table(metric, results[metric], unit=unit, higher_is_better=higher)
        if metric.startswith("dgram"):
            for c in contenders:
                fr = [e.get("delivered", float("nan")) for e in extras[metric][c]]
                if fr:
                    print(f"    {c}: delivered fraction median {summarize(fr).median:.3f}")
    print("\nratios of medians (wtlab / other; >1 means wtlab is better):")
    for metric in metrics:
        _unit, higher = METRICS[metric]
        for other in contenders:
            if other == "wtlab" or "wtlab" not in contenders:
                continue
            target = next((t for m, o, t in TARGETS if m == metric and o == other), None)
            print("  " + ratio_line(metric, results[metric], "wtlab", other,
                                    higher_is_better=higher, target=target))
    if "open+echo" in metrics and "wtlab" in contenders:
        med = summarize(results["open+echo"]["wtlab"]).median
        print(f"  open+echo wtlab median {med:.3f} ms (target < 1 ms: "
              f"{'met' if med < 1 else 'MISSED'})")
    if errors:
        print(f"\nFAILED: {errors} wtlab run(s) ended in an error (see above)")
    return 1 if errors else 0


def profile(args) -> int:
    """Run wtlab's bulk and msg64 once under cProfile, client and server; print hot spots."""
    sz = sizes(args.quick)
    reqs = requests_for(sz)
    with tempfile.TemporaryDirectory(prefix="wtlab-prof-") as tmpdir:
        tmp = Path(args.profile_dir or tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        cert = make_cert(tmp)
        name = args.contenders[0] if args.contenders else "wtlab"
        server, client = start_pair(name, tmp, cert, profile=True)
        try:
            for metric in args.only or ("bulk", "msg64"):
                res = client.request(reqs[metric])
                print(f"{name} {metric} (under cProfile): {res}")
        finally:
            client.close()
            server.close()
        for side in ("client", "server"):
            path = tmp / f"{name}-{side}.prof"
            if not path.exists():
                print(f"no profile for the {side}")
                continue
            buf = io.StringIO()
            st = pstats.Stats(str(path), stream=buf)
            st.strip_dirs().sort_stats(args.sort).print_stats(args.top)
            print(f"\n===== {name} {side}: top {args.top} by {args.sort} =====")
            print(buf.getvalue().split("\n", 6)[-1][:8000])
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.transport",
                                description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10 MB bulk and smaller counts")
    p.add_argument("--runs", type=int, default=5, help="interleaved repeats (default 5)")
    p.add_argument("--only", nargs="*", choices=list(METRICS), help="metrics to run")
    p.add_argument("--contenders", nargs="*", choices=CONTENDERS, help="contenders to run")
    p.add_argument("--profile", action="store_true",
                   help="profile one contender (default wtlab) on bulk and msg64 instead")
    p.add_argument("--top", type=int, default=25, help="functions to show per profile")
    p.add_argument("--profile-dir", help="keep the .prof files here (for snakeviz, pstats)")
    p.add_argument("--sort", default="tottime", choices=["tottime", "cumtime", "ncalls"],
                   help="profile order (default tottime: own time)")
    # internal: child processes
    p.add_argument("--serve", choices=CONTENDERS, help=argparse.SUPPRESS)
    p.add_argument("--client", choices=CONTENDERS, help=argparse.SUPPRESS)
    p.add_argument("--cert", help=argparse.SUPPRESS)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--sha256", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.serve:
        asyncio.run(server_main(args.serve, args.cert, args.key))
        return 0
    if args.client:
        asyncio.run(client_worker(args.client, args.port, bytes.fromhex(args.sha256)))
        return 0
    if args.runs < 1:
        print("--runs must be >= 1", file=sys.stderr)
        return 2
    return profile(args) if args.profile else orchestrate(args)


if __name__ == "__main__":
    raise SystemExit(main())
