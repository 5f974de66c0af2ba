"""Server under load: many sessions x many streams of echo, next to one-stream bulk.

    .venv/bin/python -m benchmarks.server                     # 100 x 10 x 64 KiB, 5 runs
    .venv/bin/python -m benchmarks.server --quick             # 20 x 10 x 64 KiB, 2 runs
    .venv/bin/python -m benchmarks.server --before ../main    # also a server from that tree

What is measured in each run, with a fresh server process for each measurement
(the server in its own process, all clients together in another one):

- ``bulk``: one session, one bidirectional stream, ``bulk_mb`` MB to ``/sink``,
  timed until the server's report arrives [MB/s, 1 MB = 1e6 bytes];
- ``load``: ``sessions`` sessions opened at once, each echoing ``streams``
  bidirectional streams of ``kib`` KiB at once on ``/echo``: completion time
  (from the first connect, so the 100 handshakes count; the bulk's clock starts
  on an open session) [s], aggregate rate (the echoed payload, counted once, over the completion
  time) [MB/s], p95 of the streams' completion times counted from the start
  [s], sessions lost (any error), the server's RSS growth (peak ``VmHWM``
  during the load minus ``VmRSS`` before it) [MB], the server's CPU time [s],
  and the host's UDP ``RcvbufErrors`` delta from ``/proc/net/snmp`` (host-wide:
  other processes' drops count too);
- ``echo1``: one session, one bidirectional stream, ``bulk_mb`` MB echoed on ``/echo``
  (written and read back at once), counted once as the load is [MB/s];
- the ratio of median load aggregate to median one-stream bulk (the issue's target,
  >= 0.5), and to the one-stream echo (the same work per byte: what concurrency costs),
  with the CPU the server and the clients used together during the load [cores].

``--attacks`` instead runs each attack of issue 16 once against a fresh server (of
each contender): a HEADERS frame declaring 2**60 bytes, an unknown capsule of 2**60
bytes inside a DATA frame, 64 streams for sessions never requested, one byte at the
end of each flow-control window of 16 streams, 12 times (aioquic doubled the windows
and allocated the gaps: "sent" is about zero, the gaps are what counts), 2000 garbage
INITIALs; for each, the server's RSS growth and whether a normal client is served
afterwards.

``--before PATH`` runs a second contender whose *server* imports wtlab from
PATH (e.g. a checkout of the main branch), interleaved with this tree's; the
clients are this tree's in both. Every load is bounded (``--deadline``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._util import print_table, rotations, summarize

ROOT = Path(__file__).resolve().parent.parent
MB = 1e6

SERVER_CODE = (
    "import asyncio, sys, wtlab\n"
    "async def main():\n"
    "    async with wtlab.serve('127.0.0.1', 0) as srv:\n"
    "        print('READY', srv.port, srv.cert_sha256, flush=True)\n"
    "        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)\n"
    "asyncio.run(main())\n"
)


# ------------------------------------------------------------------------ client side
async def _write_all(stream, nbytes: int) -> None:
    """Write ``nbytes`` in 64 KiB blocks, waiting for room after each, then FIN."""
    block = bytes(range(256)) * 256
    sent = 0
    while sent < nbytes:
        take = min(len(block), nbytes - sent)
        stream.write(block[:take])
        sent += take
        await stream.drain()
    stream.write_eof()


async def run_bulk(url: str, sha: str, nbytes: int, deadline_s: float) -> dict:
    import wtlab

    async with wtlab.connect(url, cert_hashes=[sha], timeout=30) as session:
        stream = await session.open_bidi()
        t0, cpu0 = time.perf_counter(), time.process_time()

        async def send() -> bytes:
            await _write_all(stream, nbytes)
            return await stream.read()

        report = json.loads(await asyncio.wait_for(send(), deadline_s))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if report.get("stream_bytes") != nbytes:
        raise RuntimeError(f"sink counted {report} for {nbytes} bytes sent")
    return {"mb_s": nbytes / elapsed / MB, "s": elapsed, "mb": nbytes / MB, "client_cpu_s": cpu}


async def run_echo1(url: str, sha: str, nbytes: int, deadline_s: float) -> dict:
    """One session, one stream of ``nbytes`` echoed (written and read back concurrently)."""
    import wtlab

    async with wtlab.connect(url, cert_hashes=[sha], timeout=30) as session:
        stream = await session.open_bidi()
        t0 = time.perf_counter()

        async def receive() -> int:
            got = 0
            while chunk := await stream.read(1 << 20):
                got += len(chunk)
            return got

        _, got = await asyncio.wait_for(asyncio.gather(_write_all(stream, nbytes), receive()),
                                        deadline_s)
        elapsed = time.perf_counter() - t0
    if got != nbytes:
        raise RuntimeError(f"echo returned {got} of {nbytes} bytes")
    return {"mb_s": nbytes / elapsed / MB, "s": elapsed}


async def run_load(url: str, sha: str, sessions: int, streams: int, size: int,
                   deadline_s: float) -> dict:
    import wtlab

    # wtlab.connect imports the transport package on first use (about 0.25 s): do it
    # before the clock starts, as the bulk's timing excludes it too
    connect = wtlab.connect
    payload = bytes((i * 7 + 3) % 256 for i in range(size))
    done_at: list[float] = []
    t0 = time.perf_counter()

    async def one_session() -> int:
        async with connect(url, cert_hashes=[sha], timeout=60) as session:
            async def one_stream() -> None:
                stream = await session.open_bidi()
                stream.write(payload)
                stream.write_eof()
                if await stream.read() != payload:
                    raise RuntimeError("echo differs from what was sent")
                done_at.append(time.perf_counter() - t0)

            await asyncio.gather(*(one_stream() for _ in range(streams)))
            return streams

    tasks = [asyncio.ensure_future(one_session()) for _ in range(sessions)]
    finished, pending = await asyncio.wait(tasks, timeout=deadline_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    elapsed = time.perf_counter() - t0
    errors = [t.exception() for t in finished if t.exception() is not None]
    lost = len(errors) + len(pending)
    completed = len(done_at)
    done_at.sort()
    p95 = done_at[max(0, int(0.95 * len(done_at)) - 1)] if done_at else float("nan")
    last = done_at[-1] if done_at else float("nan")
    return {"completed": completed, "expected": sessions * streams, "sessions_lost": lost,
            "s": last if completed == sessions * streams else elapsed,
            "mb_s": completed * size / (last if completed else elapsed) / MB,
            "p95_s": p95,
            "first_error": repr(errors[0])[:300] if errors else None}


ATTACKS = ("headers-2^60", "capsule-in-data-2^60", "early-streams", "out-of-order",
           "garbage-initials")


async def _push(a, stream_id: int, nbytes: int, deadline: float) -> int:
    """Write ``nbytes`` of garbage as flow control lets them go, until all left or the
    server stopped the stream (or the deadline passed). Returns the bytes that left."""
    loop = asyncio.get_running_loop()
    chunk = bytes(range(256)) * 256  # 64 KiB
    queued = left = 0
    while loop.time() < deadline and not a.closed():
        stream = a.quic._streams.get(stream_id)
        if stream is None or stream.sender._reset_error_code is not None:
            break  # the server stopped (and reset) the stream
        sender = stream.sender
        left = sender.highest_offset
        if queued < nbytes and sender._buffer_stop - sender.highest_offset < 1 << 20:
            a.quic.send_stream_data(stream_id, chunk)
            queued += len(chunk)
            a.proto.transmit()
        elif queued >= nbytes and sender.highest_offset >= sender._buffer_stop:
            break  # all of it left
        else:
            await asyncio.sleep(0.001)
    return left


async def run_attack(name: str, port: int, sha: str, mib: int, deadline_s: float) -> dict:
    """One attack from the issue against a running server; what it sent and whether a
    normal client is still served afterwards."""
    from types import SimpleNamespace

    from aioquic.buffer import encode_uint_var

    import wtlab
    from tests.transport.attack import Attacker, frame

    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    nbytes = mib << 20
    huge = 1 << 60
    sent = 0
    if name == "garbage-initials":
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                           remote_addr=("127.0.0.1", port))
        for i in range(2000):
            dcid = (i + 1).to_bytes(8, "big")
            head = bytes([0xC3, 0, 0, 0, 1, 8]) + dcid + bytes([8]) + dcid + b"\0"
            rest = 1200 - len(head) - 2
            transport.sendto(head + (0x4000 | rest).to_bytes(2, "big") + bytes(rest))
            sent += 1200
            if i % 50 == 49:
                await asyncio.sleep(0.001)
        transport.close()
    else:
        async with Attacker(SimpleNamespace(port=port), max_data=64 << 20) as a:
            if name == "headers-2^60":
                sid = a.bidi()
                a.send(sid, frame(0x1, b"", declared=huge))
                sent = await _push(a, sid, nbytes, deadline)
            elif name == "capsule-in-data-2^60":
                sid = await a.session("/echo")
                a.send(sid, frame(0x0, b"", declared=huge) + encode_uint_var(0x3F00)
                       + encode_uint_var(huge))
                sent = await _push(a, sid, nbytes, deadline)
            elif name == "early-streams":
                for k in range(64):
                    st = a.bidi()
                    a.send(st, encode_uint_var(0x41) + encode_uint_var(4 * (1000 + k)))
                    sent += await _push(a, st, nbytes // 64, deadline)
            elif name == "out-of-order":
                sid = await a.session("/echo")
                streams = []
                for _ in range(16):
                    st = a.bidi()
                    streams.append(st)
                    a.send(st, encode_uint_var(0x41) + encode_uint_var(sid))
                for _round in range(12):  # one byte at the end of every window granted
                    for st in streams:
                        qs = a.quic._streams[st]
                        limit, have = qs.max_stream_data_remote, qs.sender._buffer_stop
                        room = a.quic._remote_max_data - a.quic._remote_max_data_used
                        limit = min(limit, have + room // len(streams))
                        if limit > have + 1:
                            a.quic.send_stream_data(st, bytes(limit - have))
                            qs.sender._pending.subtract(have, limit - 1)
                            sent += 1
                    a.proto.transmit()
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
    served = False
    try:
        async with wtlab.connect(f"https://127.0.0.1:{port}/echo", cert_hashes=[sha],
                                 timeout=10) as session:
            stream = await session.open_bidi()
            stream.write(b"still served")
            stream.write_eof()
            served = await asyncio.wait_for(stream.read(), 10) == b"still served"
    except Exception:
        served = False
    return {"sent_mb": sent / MB, "served": served}


def client_main(args) -> None:
    url = f"https://127.0.0.1:{args.port}/"
    if args.client == "attack":
        out = asyncio.run(run_attack(args.attack, args.port, args.sha256, args.attack_mib,
                                     args.deadline))
    elif args.client == "bulk":
        out = asyncio.run(run_bulk(url + "sink", args.sha256, int(args.bulk_mb * MB),
                                   args.deadline))
    elif args.client == "echo1":
        out = asyncio.run(run_echo1(url + "echo", args.sha256, int(args.bulk_mb * MB),
                                    args.deadline))
    else:
        out = asyncio.run(run_load(url + "echo", args.sha256, args.sessions, args.streams,
                                   args.kib * 1024, args.deadline))
    print("RESULT " + json.dumps(out), flush=True)


# ------------------------------------------------------------------------ orchestrator
def udp_counters() -> dict[str, int]:
    try:
        with open("/proc/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Udp:")]
        return dict(zip(rows[0][1:], map(int, rows[1][1:]), strict=True))
    except (OSError, IndexError, ValueError):
        return {}


def socket_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket bound to ``port`` (IPv4 and IPv6)."""
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        drops += int(fields[-1])
        except (OSError, ValueError, IndexError, StopIteration):
            pass
    return drops


def proc_status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class ServerProc:
    def __init__(self, tree: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.p = subprocess.Popen([sys.executable, "-c", SERVER_CODE], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env, cwd=str(tree))
        line = self.p.stdout.readline().split()
        if line[:1] != ["READY"]:
            raise RuntimeError(f"server from {tree} did not start (exit {self.p.poll()})")
        self.port, self.sha = int(line[1]), line[2]

    def close(self) -> None:
        try:
            self.p.stdin.close()
            self.p.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait(timeout=5)


def run_client(kind: str, server: ServerProc, args, attack: str = "") -> dict:
    cmd = [sys.executable, "-m", "benchmarks.server", "--client", kind, "--port",
           str(server.port), "--sha256", server.sha, "--sessions", str(args.sessions),
           "--streams", str(args.streams), "--kib", str(args.kib), "--bulk-mb",
           str(args.bulk_mb), "--deadline", str(args.deadline), "--attack", attack or "none",
           "--attack-mib", str(args.attack_mib)]
    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True,
                          timeout=args.deadline + 60)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{kind} client exited {proc.returncode}: {proc.stderr[-1500:]}")


def measure_load(tree: Path, args) -> dict:
    server = ServerProc(tree)
    try:
        rss0 = proc_status_kb(server.p.pid, "VmRSS")
        cpu0 = proc_cpu_s(server.p.pid)
        udp0 = udp_counters()
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = run_client("load", server, args)
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        udp1 = udp_counters()
        res["client_cpu_s"] = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
        res["rss_growth_mb"] = (proc_status_kb(server.p.pid, "VmHWM") - rss0) * 1024 / MB
        res["server_cpu_s"] = proc_cpu_s(server.p.pid) - cpu0
        res["rcvbuf_errors"] = udp1.get("RcvbufErrors", 0) - udp0.get("RcvbufErrors", 0)
        res["server_socket_drops"] = socket_drops(server.port)
        return res
    finally:
        server.close()


def measure_bulk(tree: Path, args, kind: str = "bulk") -> dict:
    server = ServerProc(tree)
    try:
        cpu0 = proc_cpu_s(server.p.pid)
        res = run_client(kind, server, args)
        res["server_cpu_s"] = proc_cpu_s(server.p.pid) - cpu0  # handshake included
        return res
    finally:
        server.close()


def measure_attacks(trees: dict[str, Path], args) -> int:
    """Each attack against a fresh server of each tree: server RSS growth, still served."""
    print(f"\nattacks ({args.attack_mib} MiB each where the attack sends data): server RSS "
          "growth (peak VmHWM minus VmRSS before) and whether a normal client is served "
          "after", flush=True)
    print(f"  {'attack':<22}{'contender':<10}{'sent MB':>9}{'RSS +MB':>9}  served", flush=True)
    failures = 0
    for attack in ATTACKS:
        for name, tree in trees.items():
            server = ServerProc(tree)
            try:
                rss0 = proc_status_kb(server.p.pid, "VmRSS")
                res = run_client("attack", server, args, attack)
                growth = (proc_status_kb(server.p.pid, "VmHWM") - rss0) * 1024 / MB
            except Exception as exc:
                print(f"  {attack:<22}{name:<10} failed: {exc}", flush=True)
                failures += name == "after"
                continue
            finally:
                server.close()
            print(f"  {attack:<22}{name:<10}{res['sent_mb']:>9.1f}{growth:>9.1f}  "
                  f"{'yes' if res['served'] else 'NO'}", flush=True)
            failures += name == "after" and not res["served"]
    return failures


def orchestrate(args) -> int:
    trees = {"after": ROOT}
    if args.before:
        trees["before"] = Path(args.before).resolve()
    if args.attacks:
        return 1 if measure_attacks(trees, args) else 0
    total_mb = args.sessions * args.streams * args.kib * 1024 / MB
    print(f"server benchmark: {args.sessions} sessions x {args.streams} streams x {args.kib} KiB "
          f"echo ({total_mb:.1f} MB each way), one-stream bulk {args.bulk_mb} MB; "
          f"{args.runs} interleaved runs; contenders {', '.join(trees)}; "
          f"loadavg {os.getloadavg()[0]:.2f}", flush=True)
    keys = ("s", "mb_s", "p95_s", "sessions_lost", "rss_growth_mb", "server_cpu_s",
            "client_cpu_s", "rcvbuf_errors", "server_socket_drops")
    load: dict[str, dict[str, list[float]]] = {k: {c: [] for c in trees} for k in keys}
    bulk: dict[str, list[float]] = {c: [] for c in trees}
    echo1: dict[str, list[float]] = {c: [] for c in trees}
    # CPU-seconds per MB at the bulk's busier end (the sending client, as a rule)
    bulk_cpu_s_per_mb: dict[str, list[float]] = {c: [] for c in trees}
    failures = 0
    for run, order in enumerate(rotations(list(trees), args.runs), 1):
        for name in order:
            for kind, into in (("bulk", bulk), ("echo1", echo1)):
                try:
                    res = measure_bulk(trees[name], args, kind)
                    into[name].append(res["mb_s"])
                    if kind == "bulk":
                        bulk_cpu_s_per_mb[name].append(
                            max(res["client_cpu_s"], res["server_cpu_s"]) / res["mb"])
                except Exception as exc:  # a failed run is reported, never hidden
                    print(f"  run {run} {kind} {name}: failed: {exc}", flush=True)
                    into[name].append(float("nan"))
                    failures += name == "after"
            try:
                r = measure_load(trees[name], args)
            except Exception as exc:
                print(f"  run {run} load {name}: failed: {exc}", flush=True)
                failures += name == "after"
                continue
            for k in keys:
                load[k][name].append(float(r[k]))
            print(f"  run {run} {name}: load {r['completed']}/{r['expected']} streams in "
                  f"{r['s']:.2f} s ({r['mb_s']:.2f} MB/s, p95 {r['p95_s']:.2f} s), "
                  f"{r['sessions_lost']} sessions lost, RSS +{r['rss_growth_mb']:.1f} MB, "
                  f"server CPU {r['server_cpu_s']:.2f} s (clients {r['client_cpu_s']:.2f} s), "
                  f"RcvbufErrors +{r['rcvbuf_errors']} "
                  f"(server socket {r['server_socket_drops']}); "
                  f"bulk {bulk[name][-1]:.2f} MB/s, one-stream echo {echo1[name][-1]:.2f} MB/s",
                  flush=True)
            if r["first_error"]:
                print(f"    first session error: {r['first_error']}", flush=True)
            if name == "after" and r["completed"] != r["expected"]:
                failures += 1
    print_table("one-stream bulk", bulk, unit="MB/s")
    print_table("one-stream echo (counted once, as the load)", echo1, unit="MB/s")
    units = {"s": ("load completion", "s", False), "mb_s": ("load aggregate", "MB/s", True),
             "p95_s": ("load p95 stream completion", "s", False),
             "sessions_lost": ("sessions lost", "count", False),
             "rss_growth_mb": ("server RSS growth", "MB", False),
             "server_cpu_s": ("server CPU during load", "s", False),
             "client_cpu_s": ("client process CPU during load (this tree's client)", "s", False),
             "rcvbuf_errors": ("UDP RcvbufErrors delta (host)", "count", False),
             "server_socket_drops": ("of which at the server's socket", "count", False)}
    for k in keys:
        title, unit, higher = units[k]
        print_table(title, load[k], unit=unit, higher_is_better=higher)
    print()
    for name in trees:
        agg, one = summarize(load["mb_s"][name]).median, summarize(bulk[name]).median
        ratio = agg / one if one == one and one else float("nan")
        rss = summarize(load["rss_growth_mb"][name]).max
        lost = summarize(load["sessions_lost"][name]).max
        print(f"{name}: load aggregate / one-stream bulk = {ratio:.2f} (target >= 0.5: "
              f"{'met' if ratio >= 0.5 else 'missed'}); sessions lost (max) {lost:g} "
              f"(target 0); RSS growth (max) {rss:.1f} MB (target <= 64)", flush=True)
        e1 = summarize(echo1[name]).median
        busy = [(sc + cc) / t for sc, cc, t in zip(load["server_cpu_s"][name],
                                                   load["client_cpu_s"][name], load["s"][name],
                                                   strict=True)]
        print(f"{name}: load aggregate / one-stream echo (the same work per byte) = "
              f"{agg / e1 if e1 == e1 and e1 else float('nan'):.2f}; server + client CPU "
              f"during the load {summarize(busy).median:.2f} cores of {os.cpu_count()}",
              flush=True)
        # The load is bound by the server's one core: each echoed MB is received and sent
        # again there, while the bulk's MB costs its busier end (the sender) one pass.
        load_cost = [c / total_mb for c in load["server_cpu_s"][name]]
        server_busy = [c / t for c, t in zip(load["server_cpu_s"][name], load["s"][name],
                                             strict=True)]
        bc, lc = summarize(bulk_cpu_s_per_mb[name]).median, summarize(load_cost).median
        print(f"{name}: CPU per MB: bulk's busier end {1e3 * bc:.1f} ms, the server per MB "
              f"echoed {1e3 * lc:.1f} ms (busy {summarize(server_busy).median:.2f} of a core "
              f"during the load): a server busy all the time reaches load / bulk = "
              f"{bc / lc if lc == lc and lc else float('nan'):.2f}", flush=True)
    if "before" in trees:
        a = summarize(load["mb_s"]["after"]).median
        b = summarize(load["mb_s"]["before"]).median
        if a == a and b == b and b:
            print(f"load aggregate after/before = {a / b:.2f}x (medians {a:.2f} / {b:.2f} MB/s)",
                  flush=True)
    return 1 if failures else 0


def main() -> int:
    p = argparse.ArgumentParser(prog="benchmarks.server", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20 sessions, 2 runs, 16 MB bulk")
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--sessions", type=int, default=None)
    p.add_argument("--streams", type=int, default=10)
    p.add_argument("--kib", type=int, default=64)
    p.add_argument("--bulk-mb", type=float, default=None)
    p.add_argument("--deadline", type=float, default=None, help="seconds per load at most")
    p.add_argument("--before", help="a wtlab source tree whose server runs as 'before'")
    p.add_argument("--attacks", action="store_true",
                   help="instead: the issue's attacks, server RSS growth for each")
    p.add_argument("--attack-mib", type=int, default=None,
                   help="MiB each data attack sends (default 64, 16 with --quick)")
    p.add_argument("--client", choices=("bulk", "echo1", "load", "attack"),
                   help=argparse.SUPPRESS)
    p.add_argument("--attack", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--sha256", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sessions is None:
        args.sessions = 20 if args.quick else 100
    if args.runs is None:
        args.runs = 2 if args.quick else 5
    if args.bulk_mb is None:
        args.bulk_mb = 16.0 if args.quick else 64.0
    if args.deadline is None:
        args.deadline = 120.0 if args.quick else 300.0
    if args.attack_mib is None:
        args.attack_mib = 16 if args.quick else 64
    if args.client:
        client_main(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    raise SystemExit(main())
