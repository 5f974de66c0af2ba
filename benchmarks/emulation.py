"""Emulation speed: the virtual-time network against a live loopback transfer.

    .venv/bin/python -m benchmarks.emulation [--quick] [--runs N] [--mb MB] [--fidelity]

1. Bottleneck packets per wall-second: the same bulk download (``--mb`` MB, wtlab's
   WebTransport client and server, CUBIC, the same workload code) once over a virtual
   100 Mbit/s, 20 ms path and once live over real loopback UDP (no bottleneck), in the
   same process, interleaved. Emulated: data packets offered to the bottleneck link per
   wall-second. Live: packets the sender sent per wall-second. Target: emulated/live >= 1.
   Also per CPU-second of this process (robust on a shared machine).
2. Simulated seconds per wall-second for 10, 50 and 100 Mbit/s paths (40 ms RTT, 1-BDP
   buffer, one CUBIC bulk download, ``--sim-s`` virtual seconds each).
3. With ``--fidelity``: the whole-path fidelity ratios (tests/fidelity) printed again.
4. Where Debian's ``ns3`` and ``libns3-dev`` packages are installed (an optional
   benchmark dependency: ``apt-get install ns3 libns3-dev``; never a test dependency):
   the same dumbbell in ns-3 3.37 (``benchmarks/ns3/dumbbell.cc``, built here with g++:
   TCP CUBIC, the same rate, one-way delay and 1-BDP drop-tail buffer in 1500-byte
   packets), bottleneck packets per wall-second, interleaved with the emulator's at
   100 Mbit/s 20 ms and 20 Mbit/s 60 ms; printed as ratios.
5. With ``--profile``: where an emulated run's time goes, by component (aioquic's packet
   builder, parser, crypto, recovery; wtlab's driver and seam; the link; the virtual
   network and event loop; recording), from cProfile's own times, built-ins charged to
   the component that called them; at 20 Mbit/s 60 ms and 100 Mbit/s 20 ms.

Numbers on a shared machine are noisy: contenders are interleaved and min/median/max
printed; compare medians of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

from benchmarks._ns3 import ns3_binary, ns3_missing_line, ns3_packets_per_s
from benchmarks._util import interleaved, print_table, ratio_line, summarize
from wtlab.net.emulate import emulate
from wtlab.net.link import LinkSpec
from wtlab.net.loss import Periodic
from wtlab.net.path import Path
from wtlab.trace.recorder import Recorder
from wtlab.transport.workloads import Bulk, WorkloadContext


def _path(rate_bps: float, rtt_s: float, buffer_bdp: float = 1.0, loss=None, seed: int = 1):
    down = LinkSpec(rate_bps=rate_bps, delay_s=rtt_s / 2, loss=loss, buffer=f"{buffer_bdp}bdp")
    up = LinkSpec(rate_bps=rate_bps, delay_s=rtt_s / 2, buffer=f"{buffer_bdp}bdp")
    return Path(down=down, up=up, seed=seed)


_CPU: dict[str, list[float]] = {"emulated": [], "emulated, rx batching": [],
                                 "live loopback": []}


def emulated_packets_per_s(size_bytes: int, rx_coalesce_s: float = 0.0) -> float:
    path = _path(100e6, 0.02)
    cpu0 = time.process_time()
    res = emulate(path, cc="cubic", workload=Bulk(size_bytes=size_bytes, direction="down"),
                  until_s=3600.0, rx_coalesce_s=rx_coalesce_s)
    cpu = time.process_time() - cpu0
    flow = res.flows[0]
    assert flow.summary is not None and flow.summary["transferred_bytes"] == size_bytes
    name = "emulated, rx batching" if rx_coalesce_s else "emulated"
    offered = res.path.down.stats.offered
    _CPU[name].append(offered / cpu)
    return offered / res.wall_s


async def _live(size_bytes: int) -> tuple[int, float]:
    import wtlab

    rec = Recorder()
    work = Bulk(size_bytes=size_bytes, direction="down")
    ctx = WorkloadContext()
    # the sender (server) records, like the emulated run, so both pay the same tracing cost
    async with wtlab.serve(port=0, routes=work.routes(ctx), congestion_control="cubic",
                           recorder=rec, cert_kind="rsa") as server:
        t0 = time.perf_counter()
        async with wtlab.connect(server.url(work.route()), cert_hashes=[server.cert_sha256],
                                 cert_hash_policy="relaxed",  # an RSA certificate
                                 congestion_control="cubic") as session:
            summary = await work.client(session, WorkloadContext())
        wall = time.perf_counter() - t0
    assert summary["transferred_bytes"] == size_bytes
    sent = int((rec.to_pandas()["kind"] == "packet_sent").sum())
    return sent, wall


def live_packets_per_s(size_bytes: int) -> float:
    cpu0 = time.process_time()
    sent, wall = asyncio.run(_live(size_bytes))
    _CPU["live loopback"].append(sent / (time.process_time() - cpu0))
    return sent / wall


_SIM_CPU: dict[str, list[float]] = {}


def simulated_per_wall(rate_bps: float, sim_s: float) -> float:
    cpu0 = time.process_time()
    res = emulate(_path(rate_bps, 0.04), cc="cubic", until_s=sim_s)
    cpu = time.process_time() - cpu0
    _SIM_CPU.setdefault(f"{int(rate_bps / 1e6)} Mbit/s", []).append(sim_s / cpu)
    return sim_s / res.wall_s


def emulated_run_packets_per_s(rate_bps: float, rtt_s: float, sim_s: float) -> float:
    """Bottleneck packets per wall-second of an emulated CUBIC bulk download."""
    res = emulate(_path(rate_bps, rtt_s), cc="cubic", until_s=sim_s)
    return res.path.down.stats.offered / res.wall_s


def versus_ns3(runs: int, sim_s: float) -> None:
    binary = ns3_binary()
    if binary is None:
        print("\n" + ns3_missing_line())
        return
    for rate, rtt in ((100e6, 0.02), (20e6, 0.06)):
        name = f"{rate / 1e6:g} Mbit/s {rtt * 1e3:g} ms"
        res = interleaved({f"emulator {name}": lambda r=rate, t=rtt:
                           emulated_run_packets_per_s(r, t, sim_s),
                           f"ns-3 {name}": lambda r=rate, t=rtt:
                           ns3_packets_per_s(binary, r, t, sim_s)}, runs=runs)
        print_table(f"bottleneck packets per wall-second, CUBIC dumbbell {name}, 1-BDP "
                    f"drop-tail, {sim_s:g} simulated s", res, unit="packets/s")
        print(ratio_line(f"emulator vs ns-3 ({name})", res, f"emulator {name}",
                         f"ns-3 {name}", target=1.0 if rate == 100e6 else None))


def fidelity() -> None:
    """The ratios tests/fidelity asserts on, printed (same paths, seeds and windows)."""
    from wtlab.trace.metrics import jain_index

    for p in (0.005, 0.01, 0.02):
        m = emulate(_path(10e6, 0.1, loss=p), cc="reno", until_s=60.0).metrics(from_s=2.0)
        per_byte = 8 / 0.1 * 1.22 / math.sqrt(p)
        print(f"reno p={p}: goodput/Mathis = "
              f"{m.goodput_bps[0] / (m.payload_per_packet_bytes[0] * per_byte):.3f} "
              f"(per packet sent {m.goodput_packet_bps[0] / (m.mean_packet_bytes[0] * per_byte):.3f})")
    m = emulate(_path(10e6, 0.2, loss=Periodic(0.001)), cc="cubic",
                until_s=40.0).metrics(from_s=20.0)
    ref = 1.054 * 0.2 ** 0.75 / 0.001 ** 0.75
    print(f"cubic (periodic loss): mean window / RFC 9438 = "
          f"{m.mean_cwnd_bytes[0] / m.mean_packet_bytes[0] / ref:.3f} per packet sent "
          f"({m.mean_cwnd_bytes[0] / 1200 / ref:.3f} per 1200 B)")
    m = emulate(_path(20e6, 0.04, 2.0), cc="bbr", until_s=10.0).metrics(from_s=2.0)
    print(f"bbr 20 Mbit/s 40 ms: utilisation {m.utilisation[0]:.3f}, queueing delay "
          f"{m.queueing_delay_mean_s[0] / 0.04:.2f} RTT")
    for cc in ("bbr", "cubic"):
        m = emulate(_path(20e6, 0.04, 2.0, loss=0.02), cc=cc, until_s=10.0).metrics(from_s=2.0)
        print(f"{cc} at 2% loss: {m.utilisation[0]:.3f} of capacity")
    m = emulate(_path(20e6, 0.04, 2.0), cc=["cubic", "cubic"], until_s=20.0,
                start_s=[0.0, 1.0]).metrics(from_s=10.0)
    print(f"two cubic, 2-BDP buffer: Jain {jain_index(m.goodput_bps):.3f}")
    res = emulate(_path(20e6, 0.04, 0.25), cc=["reno", "cubic", "bbr", "bbr3"] * 2, until_s=8.0)
    print(f"8 mixed flows, 0.25-BDP buffer: aggregate "
          f"{res.summary(from_s=2.0)['utilisation']:.3f} of capacity")


_COMPONENTS = (  # (component, substring of the file path, function name prefixes or None)
    ("aioquic build", "aioquic/quic/packet_builder", None),
    ("aioquic build", "aioquic/quic/connection", ("_write", "datagrams_to_send", "_flush")),
    ("aioquic parse", "aioquic/quic/connection", ("_handle", "receive_datagram",
                                                  "_payload_received")),
    ("aioquic parse", "aioquic/quic/packet.py", None),
    ("aioquic parse", "aioquic/buffer", None),
    ("crypto", "aioquic/quic/crypto", None),
    ("crypto", "aioquic/_crypto", None),
    ("crypto", "cryptography", None),
    ("aioquic recovery", "aioquic/quic/recovery", None),
    ("aioquic recovery", "aioquic/quic/rangeset", None),
    ("aioquic streams", "aioquic/quic/stream", None),
    ("aioquic connection (timers, events)", "aioquic/quic/connection", None),
    ("aioquic other", "aioquic", None),
    ("wtlab cc seam", "wtlab/cc/aioquic", None),
    ("wtlab controllers", "wtlab/cc/", None),
    ("wtlab driver", "wtlab/transport/", None),
    ("link", "wtlab/net/link", None),
    ("link", "wtlab/net/loss", None),
    ("virtual network", "wtlab/net/network", None),
    ("virtual network", "wtlab/net/vtime", None),
    ("recording", "wtlab/trace/", None),
    ("workload", "wtlab/lab/workloads", None),
    ("event loop", "asyncio", None),
    ("event loop", "selectors", None),
)


def _component(func: tuple) -> str | None:
    path, _, name = func
    if path == "~" or path.endswith(("/enum.py", "/typing.py", "/dataclasses.py")):
        return None  # built-ins and helpers: charged to their caller
    for comp, where, prefixes in _COMPONENTS:
        if where in path and (prefixes is None or name.startswith(prefixes)):
            return comp
    return "other"


def profile_run(rate_bps: float, rtt_s: float, size_bytes: int) -> None:
    """One emulated bulk download under cProfile; time per component (module docstring)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    res = emulate(_path(rate_bps, rtt_s), cc="cubic",
                  workload=Bulk(size_bytes=size_bytes, direction="down"), until_s=3600.0)
    prof.disable()
    stats = pstats.Stats(prof).stats  # func -> (cc, nc, tottime, cumtime, callers)
    by: dict[str, float] = {}
    for func, (_, _, tottime, _, callers) in stats.items():
        comp = _component(func)
        if comp is None:  # a built-in: charge it to the component of its busiest caller
            caller = max(callers.items(), key=lambda kv: kv[1][2], default=(None, None))[0]
            comp = (_component(caller) or "other") if caller else "other"
        by[comp] = by.get(comp, 0.0) + tottime
    total = sum(by.values())
    packets = res.path.down.stats.offered
    print(f"\nprofile: {rate_bps / 1e6:g} Mbit/s, {rtt_s * 1e3:g} ms, {size_bytes / 1e6:g} MB, "
          f"{packets} bottleneck packets, {total:.2f} s profiled (cProfile slows every call; "
          "shares are what to read)")
    for comp, t in sorted(by.items(), key=lambda kv: -kv[1]):
        print(f"  {comp:<36} {t / total * 100:5.1f} %  {t / packets * 1e6:7.1f} us/packet "
              "(profiled)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.emulation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 3 runs")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--mb", type=float, default=None, help="bulk size in MB (default 20)")
    ap.add_argument("--sim-s", type=float, default=None, help="virtual seconds per rate run")
    ap.add_argument("--fidelity", action="store_true", help="also print the fidelity ratios")
    ap.add_argument("--profile", action="store_true",
                    help="only the time per component at 20 and 100 Mbit/s")
    args = ap.parse_args(argv)
    if args.profile:
        mb = args.mb or (2 if args.quick else 10)
        profile_run(20e6, 0.06, int(mb * 1e6))
        profile_run(100e6, 0.02, int(mb * 1e6))
        return 0
    runs = args.runs or (3 if args.quick else 5)
    size = int((args.mb or (5 if args.quick else 20)) * 1e6)
    sim_s = args.sim_s or (2.0 if args.quick else 5.0)

    print(f"bulk download of {size / 1e6:g} MB, wtlab WebTransport + CUBIC, {runs} runs "
          "interleaved")
    res = interleaved({"emulated": lambda: emulated_packets_per_s(size),
                       "emulated, rx batching": lambda: emulated_packets_per_s(size, 0.0005),
                       "live loopback": lambda: live_packets_per_s(size)}, runs=runs)
    print_table("bottleneck packets per wall-second (emulated: 100 Mbit/s 20 ms path; "
                "live: loopback)", res, unit="packets/s")
    print(ratio_line("emulation speed", res, "emulated", "live loopback", target=1.0))
    print(ratio_line("emulation speed with 0.5 ms rx batching (not the default: it "
                     "aggregates ACKs)", res, "emulated, rx batching", "live loopback",
                     target=1.0))
    # CPU time is what a shared machine does not steal: both contenders run client and
    # server in this one process, so packets per CPU-second compare the work per packet
    print_table("bottleneck packets per CPU-second (same runs)", _CPU, unit="packets/s")
    print(ratio_line("emulation speed per CPU-second", _CPU, "emulated", "live loopback",
                     target=1.0))
    print(ratio_line("  with rx batching", _CPU, "emulated, rx batching", "live loopback",
                     target=1.0))

    rates = {f"{int(r / 1e6)} Mbit/s": r for r in (10e6, 50e6, 100e6)}
    sims = interleaved({name: (lambda r=r: simulated_per_wall(r, sim_s))
                        for name, r in rates.items()}, runs=runs)
    print_table(f"simulated seconds per wall-second (40 ms RTT, 1-BDP buffer, CUBIC, "
                f"{sim_s:g} s runs)", sims, unit="x real time")
    for name, values in sims.items():
        s = summarize(values)
        print(f"  {name}: {s.median:.2f}x real time (median)")
    print_table("simulated seconds per CPU-second (same runs)", _SIM_CPU, unit="x")
    versus_ns3(runs, sim_s)
    if args.fidelity:
        print("\nfidelity ratios (tests/fidelity):")
        fidelity()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
