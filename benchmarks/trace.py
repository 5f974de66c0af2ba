"""Recorder speed and memory; qlog write and read next to Parquet, in the same run.

Run: ``.venv/bin/python -m benchmarks.trace [--events N] [--repeats R] [--quick]``

Goals (issue 4): >= 1,000,000 events appended per second with ``Recorder.append`` and
<= 68 bytes held per event. Goals (issue 14), for N = 1,000,000 events: qlog written at
<= 2 s per million events and >= 10x the writer before issue 14 (loaded from git history,
commit ``BEFORE``, and run on the same machine in the same run); the writer's peak memory
flat (writing 4x the events peaks at < 1.5x the memory); qlog read at >= 250,000 events/s.
Rounds are interleaved (each contender once per round) so machine noise hits them alike;
min / median / max over the rounds are printed, and ratios of medians. ``--quick`` uses
200,000 events, 3 rounds and a small sample for the old writer; it exits 0 whatever it
measures (``make test`` smoke-runs it).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wtlab.trace import Recorder, export, qlog
from wtlab.trace.schema import K_PACKET_ACKED, K_PACKET_SENT

GOAL_EVENTS_PER_S = 1_000_000
GOAL_BYTES_PER_EVENT = 68  # the packed record (wtlab.trace.schema.RECORD)
GOAL_QLOG_WRITE_S_PER_M = 2.0
GOAL_QLOG_SPEEDUP = 10.0
GOAL_QLOG_READ_PER_S = 250_000
GOAL_MEMORY_GROWTH = 1.5
BEFORE = "b452944"  # main before issue 14: the qlog writer the speedup is measured against
ROOT = Path(__file__).resolve().parents[1]


def _append_round(n: int) -> tuple[float, Recorder]:
    rec = Recorder()
    ap = rec.append
    nan = float("nan")
    t0 = time.perf_counter()
    for i in range(n):  # a driver's per-packet call: positional, pre-encoded
        ap(i * 1e-5, K_PACKET_SENT if i & 1 else K_PACKET_ACKED, 1, 0, i, -1, 1200, 120000,
           60000, 0xFFFFFFFF, 0.05, 0.04, 0.05, 0.01, nan, nan)
    return time.perf_counter() - t0, rec


def _event_round(n: int) -> float:
    rec = Recorder()
    ev = rec.event
    t0 = time.perf_counter()
    for i in range(n):
        ev(i * 1e-5, "packet_sent", pn=i, bytes=1200, cwnd=120000, bytes_in_flight=60000,
           srtt_s=0.05, state="slow_start")
    return time.perf_counter() - t0


def _memory_per_event(n: int) -> tuple[float, float]:
    """(bytes per event held by the recorder as traced by tracemalloc, by ``nbytes``)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    rec = Recorder()
    ap = rec.append
    nan = float("nan")
    for i in range(n):
        ap(i * 1e-5, K_PACKET_SENT, 1, 0, i, -1, 1200, 120000, 60000, 0xFFFFFFFF, 0.05, 0.04,
           0.05, 0.01, nan, nan)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return held / n, rec.nbytes / len(rec)


def _live_like(n: int) -> Recorder:
    """A sender's trace shaped like a live one: sends, acks, RTT samples, window changes,
    a loss now and then (every row carries the controller's state)."""
    rec = Recorder()
    ev = rec.event
    t, cwnd, pn, acked = 0.0, 12000, 0, 0
    i = 0
    while i < n:
        t += 1e-4
        ev(t, "packet_sent", pn=pn, bytes=1200, cwnd=cwnd, bytes_in_flight=(pn - acked) * 1200,
           srtt_s=0.05, min_rtt_s=0.04, latest_rtt_s=0.05, rttvar_s=0.01, state="slow_start")
        pn += 1
        i += 1
        if pn % 2 == 0 and i < n:
            ev(t, "packet_acked", pn=acked, bytes=1200, cwnd=cwnd, srtt_s=0.05,
               min_rtt_s=0.04, latest_rtt_s=0.05 + (pn % 7) * 1e-3, rttvar_s=0.01,
               state="congestion_avoidance")
            acked += 1
            i += 1
        if pn % 50 == 0 and i < n:
            cwnd += 1200
            ev(t, "cwnd_changed", cwnd=cwnd, bytes_in_flight=(pn - acked) * 1200,
               state="congestion_avoidance")
            i += 1
        if pn % 997 == 0 and i < n:
            ev(t, "packet_lost", pn=acked, bytes=1200, extra={"trigger": "packet_threshold"})
            i += 1
    return rec


def _old_qlog() -> Any | None:
    """The qlog module as it was before issue 14 (from git history), or None."""
    try:
        src = subprocess.run(["git", "show", f"{BEFORE}:wtlab/trace/qlog.py"], cwd=ROOT,
                             capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(tempfile.mkdtemp()) / "qlog_before.py"
    path.write_bytes(src)
    spec = importlib.util.spec_from_file_location("qlog_before", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - the old module no longer imports: no baseline
        return None
    return module


def _stats(xs: list[float], fmt: str = ",.0f") -> str:
    return (f"min {min(xs):>11{fmt}}  median {statistics.median(xs):>11{fmt}}  "
            f"max {max(xs):>11{fmt}}")


def _timed(fn: Callable[[], Any], cpu: list[float] | None = None) -> float:
    """Wall seconds of ``fn()``; its CPU seconds (this process, all threads) go to ``cpu``:
    on a shared machine wall time also counts the others' load, CPU time does not."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return wall


def _peak_mb(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / 1e6


def _recorder_section(n: int, r: int) -> tuple[bool, Recorder]:
    append_rates, event_rates = [], []
    rec = None
    for _ in range(r):  # interleaved rounds
        dt, rec = _append_round(n)
        append_rates.append(n / dt)
        event_rates.append(n / 4 / _event_round(n // 4))
    per_event_traced, per_event_nbytes = _memory_per_event(n)
    print(f"Recorder, {n:,} events per round, {r} interleaved rounds")
    print(f"  append() events/s : {_stats(append_rates)}   goal >= {GOAL_EVENTS_PER_S:,}")
    print(f"  event()  events/s : {_stats(event_rates)}   (friendly API, for comparison)")
    print(f"  append / event speed ratio (medians): "
          f"{statistics.median(append_rates) / statistics.median(event_rates):.2f}x")
    print(f"  memory per event  : {per_event_traced:.1f} B traced by tracemalloc, "
          f"{per_event_nbytes:.1f} B of records   goal <= {GOAL_BYTES_PER_EVENT}")
    assert rec is not None
    ok = statistics.median(append_rates) >= GOAL_EVENTS_PER_S and \
        max(per_event_traced, per_event_nbytes) <= GOAL_BYTES_PER_EVENT + 0.5
    return ok, rec


def _export_section(n: int, r: int, old_n: int, d: Path) -> bool:
    rec = _live_like(n)
    print(f"\nqlog next to Parquet: a live-like trace of {len(rec):,} events, {r} interleaved "
          "rounds (events/s)")
    paths = {"parquet": d / "t.parquet", "qlog ietf .sqlog": d / "t.sqlog",
             "qlog ietf .qlog": d / "t.qlog", "qlog legacy .qlog": d / "l.qlog"}
    writers = {
        "parquet": lambda: export.write_parquet(rec, paths["parquet"]),
        "qlog ietf .sqlog": lambda: qlog.write_qlog(rec, paths["qlog ietf .sqlog"]),
        "qlog ietf .qlog": lambda: qlog.write_qlog(rec, paths["qlog ietf .qlog"]),
        "qlog legacy .qlog": lambda: qlog.write_qlog(rec, paths["qlog legacy .qlog"],
                                                     flavour="legacy"),
    }
    readers = {k: (lambda p=p: export.read_parquet(p)) if k == "parquet"
               else (lambda p=p: qlog.read_qlog(p)) for k, p in paths.items()}
    old = _old_qlog()
    small = rec.to_pandas().iloc[:old_n]
    write_s: dict[str, list[float]] = {k: [] for k in writers}
    read_s: dict[str, list[float]] = {k: [] for k in readers}
    write_cpu: dict[str, list[float]] = {k: [] for k in writers}
    read_cpu: dict[str, list[float]] = {k: [] for k in readers}
    old_write: list[float] = []
    old_cpu: list[float] = []
    for _ in range(r):
        for k, fn in writers.items():
            write_s[k].append(_timed(fn, write_cpu[k]))
        for k, fn in readers.items():
            read_s[k].append(_timed(fn, read_cpu[k]))
        if old is not None:
            old_write.append(_timed(lambda: old.write_qlog(small, d / "old.sqlog"), old_cpu)
                             / len(small))
    m = len(rec)
    pq_w, pq_r = statistics.median(write_s["parquet"]), statistics.median(read_s["parquet"])
    for k in writers:
        print(f"  write {k:18s}: {_stats([m / x for x in write_s[k]])}   "
              f"time x{statistics.median(write_s[k]) / pq_w:5.1f} of Parquet, "
              f"{statistics.median(write_s[k]) / m * 1e6:.2f} s per million, "
              f"{paths[k].stat().st_size / m:.0f} B/event")
    for k in readers:
        print(f"  read  {k:18s}: {_stats([m / x for x in read_s[k]])}   "
              f"time x{statistics.median(read_s[k]) / pq_r:5.1f} of Parquet")
    print("  CPU seconds per million events (process time, median; not inflated by other "
          "processes):")
    for k in writers:
        print(f"    write {k:18s}: {statistics.median(write_cpu[k]) / m * 1e6:6.2f}   "
              f"read: {statistics.median(read_cpu[k]) / m * 1e6:6.2f}")
    new_per_event = statistics.median(write_s["qlog ietf .sqlog"]) / m
    speedup = cpu_speedup = float("nan")
    if old_write:
        speedup = statistics.median(old_write) / new_per_event
        cpu_speedup = (statistics.median(old_cpu) / len(small)) / (
            statistics.median(write_cpu["qlog ietf .sqlog"]) / m)
        print(f"  qlog writer before issue 14 ({BEFORE}, {len(small):,} events): "
              f"{_stats([1 / x for x in old_write])}   new/old speed x{speedup:.1f} "
              f"(CPU time x{cpu_speedup:.1f}; old: "
              f"{statistics.median(old_cpu) / len(small) * 1e6:.1f} CPU s per million)")
    else:
        print("  qlog writer before issue 14: not available (no git history)")
    # memory: the streaming writer's peak does not grow with the trace (sizes of at
    # least two writer chunks, so the larger is 4x the smaller in both modes)
    from wtlab.trace.qlog_write import CHUNK_ROWS

    lo_n = max(m // 4, CHUNK_ROWS)
    lo, hi = _live_like(lo_n), _live_like(4 * lo_n)
    qlog.write_qlog(lo, d / "lo.sqlog")
    qlog.write_qlog(hi, d / "hi.sqlog")
    mem = {"qlog write": (_peak_mb(lambda: qlog.write_qlog(lo, d / "m.sqlog")),
                          _peak_mb(lambda: qlog.write_qlog(hi, d / "m.sqlog"))),
           "parquet write": (_peak_mb(lambda: export.write_parquet(lo, d / "m.parquet")),
                             _peak_mb(lambda: export.write_parquet(hi, d / "m.parquet"))),
           "qlog read": (_peak_mb(lambda: qlog.read_qlog(d / "lo.sqlog")),
                         _peak_mb(lambda: qlog.read_qlog(d / "hi.sqlog")))}
    print(f"  peak memory MB at {lo_n:,} -> {4 * lo_n:,} events (tracemalloc):")
    for k, (a, b) in mem.items():
        print(f"    {k:14s}: {a:8.1f} -> {b:8.1f}   x{b / a:.2f}")
    if old is not None:
        old_mem = _peak_mb(lambda: old.write_qlog(small, d / "old.sqlog"))
        print(f"    qlog write before issue 14: {old_mem:8.1f} MB for {len(small):,} events "
              f"({old_mem / len(small) * 1e6:,.0f} MB per million: it grows with the trace)")
    read_rate = m / statistics.median(read_s["qlog ietf .sqlog"])
    growth = mem["qlog write"][1] / mem["qlog write"][0]
    ok = (new_per_event * 1e6 <= GOAL_QLOG_WRITE_S_PER_M and read_rate >= GOAL_QLOG_READ_PER_S
          and growth < GOAL_MEMORY_GROWTH and (speedup != speedup or speedup >= GOAL_QLOG_SPEEDUP))
    print(f"  goals: write <= {GOAL_QLOG_WRITE_S_PER_M} s per million ({new_per_event * 1e6:.2f}), "
          f">= {GOAL_QLOG_SPEEDUP:.0f}x before (x{speedup:.1f}), memory growth < "
          f"{GOAL_MEMORY_GROWTH}x (x{growth:.2f}), read >= {GOAL_QLOG_READ_PER_S:,}/s "
          f"({read_rate:,.0f})")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true",
                    help="100,000 events, 3 rounds; exits 0 whatever it measures")
    args, _unknown = ap.parse_known_args(argv)  # `python -m benchmarks` passes shared options
    n, r = args.events, args.repeats
    old_n = 200_000
    if args.quick:
        n, r, old_n = min(n, 100_000), min(r, 3), 10_000
    rec_ok, rec = _recorder_section(n, r)
    del rec
    with tempfile.TemporaryDirectory() as d:
        export_ok = _export_section(n, r, min(old_n, n), Path(d))
    from wtlab.trace import mahimahi

    lines = ["# base timestamp: 1000"]
    for i in range(min(n, 300_000) // 3):
        t = 1000 + i
        lines += [f"{t} # 1504", f"{t} + 1500", f"{t} - 1500 {i % 20}"]
    text = "\n".join(lines)
    t0 = time.perf_counter()
    mm = mahimahi.parse_mahimahi(text)
    print(f"\nMahimahi log parse: {len(mm) / (time.perf_counter() - t0):>11,.0f} lines/s")
    ok = rec_ok and export_ok
    print("GOALS MET" if ok else "GOALS NOT MET (see the goal lines above)")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
