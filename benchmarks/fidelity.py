"""wtlab against the Linux kernel's TCP on issue 19's scenarios (the table of docs/fidelity.md).

    .venv/bin/python -m benchmarks.fidelity            # every scenario, both engines
    .venv/bin/python -m benchmarks.fidelity --quick    # short runs, the fast model only
    .venv/bin/python -m benchmarks.fidelity --only bbr-loss,outage

The kernel's figures (Linux 6.18 TCP through Mahimahi: mm-delay + mm-link + mm-loss, per-packet
queueing delay measured at the bottleneck) are issue 19's; wtlab's are measured here, from
the trace (``wtlab.trace.metrics``), queueing delay as mean RTT minus the propagation RTT
(which also holds the receiver's ~1 ms ACK delay). Every run is seeded: the same command
prints the same numbers. "before" rows run what wtlab did before issue 19 where a switch
still selects it (``bbr-draft00``, ``full_packets=False``); the persistent-congestion fix
has no switch (docs/fidelity.md gives the numbers measured before it).

Scenarios (``--only``):

* ``steady``: 12 Mbit/s (Mahimahi's 12mbps.trace: a 1500-byte opportunity per ms), 40 ms,
  1- and 4-BDP buffers, no loss: utilisation and queueing delay of Reno, CUBIC and BBR.
* ``loss``: the same path at 1% random loss: Reno and CUBIC in packets per RTT (Mathis:
  12.2; the kernel's: 11-13), BBR's queue (the kernel's: 16-18 ms).
* ``lte``: BBR on the Verizon LTE trace (25 ms one way, 100-packet buffer): the kernel's
  mean queueing delay 160 ms, p95 268 ms (needs ../shared/traces or WTLAB_TRACES).
* ``outage``: the same LTE trace with 10 s without delivery opportunities (the queue holds
  through it, as in Mahimahi), Reno and CUBIC: goodput of the first second after the link
  returns (the kernel's: 1.3-1.4 Mbit/s after an RTO restart from cwnd 1).
* ``packets``: CUBIC, 1-BDP buffer: share of short packets and payload per packet, with
  and without full packets, at 1200 and 1472 bytes.

Only figures are printed (no timing): this is a fidelity report, not a speed benchmark.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path as FsPath

KERNEL = {
    "bbr loss queue": "16-18 ms",
    "reno/cubic loss window": "11-13 packets/RTT",
    "lte bbr queue": "mean 160 ms, p95 268 ms",
    "outage first second": "1.3-1.4 Mbit/s of 5.2",
}
ROOT = FsPath(__file__).resolve().parents[1]


def _traces_dir() -> FsPath | None:
    """../shared/traces beside the project (or beside the worktree's parent), or
    $WTLAB_TRACES; None if the LTE trace is not there."""
    given = os.environ.get("WTLAB_TRACES")
    for here in ([FsPath(given)] if given else
                 [ROOT.parent / "shared" / "traces", ROOT.parent.parent / "shared" / "traces"]):
        if (here / "Verizon-LTE-short.down").exists():
            return here
    return None


def _run(engine: str, path, cc, until_s: float, **options):
    from wtlab import model
    from wtlab.net.emulate import emulate

    if engine == "model":
        return model.run(path, cc=cc, duration_s=until_s, **options)
    return emulate(path, cc=cc, until_s=until_s, **options)


def _path(trace, *, loss=None, buffer="1bdp", one_way_s=0.02, up_trace=None, seed=1):
    from wtlab.net.link import LinkSpec
    from wtlab.net.path import Path

    down = LinkSpec(trace=trace, delay_s=one_way_s, loss=loss, buffer=buffer)
    up = LinkSpec(trace=up_trace or trace, delay_s=one_way_s, buffer=buffer)
    return Path(down=down, up=up, seed=seed)


def _trace12():
    from wtlab.net.traces import MahimahiTrace

    return MahimahiTrace.constant(12e6)


def _row(label: str, kernel: str, text: str) -> None:
    print(f"  {label:<44} {text:<58} kernel: {kernel}")


def steady(engines, dur):
    print("12 Mbit/s, 40 ms, no loss (from 2 s)")
    for buffer in ("1bdp", "4bdp"):
        for engine in engines:
            for cc in ("reno", "cubic", "bbr"):
                m = _run(engine, _path(_trace12(), buffer=buffer), cc, dur).metrics(
                    from_s=2.0).iloc[0]
                _row(f"{cc} {buffer} {engine}", "(close: issue 19)",
                     f"util {m.utilisation:.3f}, queue {m.queueing_delay_mean_s * 1e3:.1f} ms")


def loss(engines, dur):
    print("12 Mbit/s, 40 ms, 1% random loss (from 2 s)")
    for buffer in ("1bdp", "4bdp"):
        for engine in engines:
            for cc in ("reno", "cubic"):
                m = _run(engine, _path(_trace12(), loss=0.01, buffer=buffer), cc, dur).metrics(
                    from_s=2.0).iloc[0]
                per_rtt = m.goodput_bps / 8 / m.payload_per_packet_bytes * m.rtt_mean_s
                _row(f"{cc} {buffer} {engine}", KERNEL["reno/cubic loss window"],
                     f"{per_rtt:.1f} packets/RTT, util {m.utilisation:.3f}")
            for cc, mds, when in (("bbr-draft00", 1200, "before"), ("bbr", 1200, "after"),
                                  ("bbr", 1472, "after, 1472 B")):
                m = _run(engine, _path(_trace12(), loss=0.01, buffer=buffer), cc, dur,
                         max_datagram_size=mds).metrics(from_s=2.0).iloc[0]
                _row(f"bbr {buffer} {engine} ({when})", KERNEL["bbr loss queue"],
                     f"queue {m.queueing_delay_mean_s * 1e3:.1f} ms, util {m.utilisation:.3f}")


def lte(engines, dur):
    from wtlab.net.traces import MahimahiTrace

    where = _traces_dir()
    if where is None:
        print("lte: skipped (needs ../shared/traces/Verizon-LTE-short.* or WTLAB_TRACES)")
        return
    down = MahimahiTrace.load(where / "Verizon-LTE-short.down")
    up = MahimahiTrace.load(where / "Verizon-LTE-short.up")
    print(f"Verizon LTE trace, 25 ms one way, 100-packet buffer, {dur:g} s (from 3 s)")
    for engine in engines:
        for cc, when in (("bbr-draft00", "before"), ("bbr", "after")):
            path = _path(down, up_trace=up, buffer="100p", one_way_s=0.025)
            res = _run(engine, path, cc, dur)
            m = res.metrics(from_s=3.0).iloc[0]
            df = res.trace()
            rtt = df[(df["kind"] == "rtt_sample") & (df["time_s"] >= 3.0)]["latest_rtt_s"]
            p95 = float(rtt.quantile(0.95)) - 0.05
            _row(f"bbr {engine} ({when})", KERNEL["lte bbr queue"],
                 f"queue mean {m.queueing_delay_mean_s * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms, "
                 f"goodput {m.goodput_bps / 1e6:.2f} Mbit/s")


def _with_outage(trace, start_s: float, length_s: float):
    """``trace`` with no delivery opportunity in [start, start + length): the queue holds."""
    from wtlab.net.traces import MahimahiTrace

    a, b = start_s * 1000, (start_s + length_s) * 1000
    stamps = [t for t in trace.timestamps_ms if not a < t <= b]
    if stamps[-1] != trace.period_ms:
        stamps.append(trace.period_ms)
    return MahimahiTrace(stamps, name=f"{trace.name}+outage")


def outage(engines, dur):
    from wtlab.net.traces import MahimahiTrace

    where = _traces_dir()
    start, length = 20.0, 10.0
    if where is None:
        print("outage: the LTE trace is missing; a constant 12 Mbit/s trace stands in")
        # spelled out over 60 s: the one-line constant trace repeats every millisecond
        down = up = MahimahiTrace(list(range(1, 60_001)), name="12mbps-60s")
    else:
        down = MahimahiTrace.load(where / "Verizon-LTE-short.down")
        up = MahimahiTrace.load(where / "Verizon-LTE-short.up")
    link = _with_outage(down, start, length)
    back = start + length
    cap = link.capacity_bytes(back, back + 1.0) * 8 / 1e6
    print(f"{down.name} with {length:g} s without delivery from {start:g} s (queue holds), "
          f"100-packet buffer, 25 ms one way; capacity of the first second after: "
          f"{cap:.2f} Mbit/s")
    for engine in engines:
        for cc in ("reno", "cubic"):
            res = _run(engine, _path(link, up_trace=up, buffer="100p", one_way_s=0.025), cc,
                       min(dur, back + 3.0))
            m = res.metrics(from_s=back, to_s=back + 1.0).iloc[0]
            df = res.trace()
            pc = df[(df["kind"] == "persistent_congestion") & (df["time_s"] >= start)]
            when = f"collapse at {pc['time_s'].iloc[0]:.2f} s" if len(pc) else "no collapse"
            _row(f"{cc} {engine}", KERNEL["outage first second"],
                 f"{m.goodput_bps / 1e6:.2f} Mbit/s, {when}")


def packets(engines, dur):
    from wtlab.net.path import Path

    print("CUBIC, 12 Mbit/s, 40 ms, 1-BDP buffer (window-limited), from 2 s")
    for engine in engines:
        for mds in (1200, 1472):
            for full in (False, True):
                p = Path.symmetric(rate_bps=12e6, rtt_s=0.04, buffer_bdp=1, seed=1)
                m = _run(engine, p, "cubic", dur, max_datagram_size=mds,
                         full_packets=full).metrics(from_s=2.0).iloc[0]
                _row(f"cubic {engine} {mds} B full_packets={full}", "whole segments",
                     f"short {m.short_packet_share:.3f}, payload/packet "
                     f"{m.payload_per_packet_bytes:.0f} B, mean packet "
                     f"{m.mean_packet_bytes:.0f} B, goodput {m.goodput_bps / 1e6:.2f}")


SCENARIOS = {"steady": steady, "loss": loss, "lte": lte, "outage": outage, "packets": packets}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.fidelity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short runs of the fast model only (a smoke test)")
    ap.add_argument("--only", default=None, help="comma-separated scenarios: "
                    + ", ".join(SCENARIOS))
    args = ap.parse_args(argv)
    names = list(SCENARIOS) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; use {', '.join(SCENARIOS)}")
    engines = ["model"] if args.quick else ["model", "emulate"]
    durations = {"steady": 20.0, "loss": 30.0, "lte": 60.0, "outage": 33.0, "packets": 10.0}
    t0 = time.perf_counter()
    for name in names:
        dur = durations[name] if not args.quick else min(durations[name], 6.0
                                                         if name != "outage" else 33.0)
        SCENARIOS[name](engines, dur)
        sys.stdout.flush()
    print(f"(done in {time.perf_counter() - t0:.0f} s of wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
