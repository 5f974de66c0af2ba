"""Recorder speed and memory, and export/import throughput.

Run: ``.venv/bin/python -m benchmarks.trace [--events N] [--repeats R] [--quick]``

Goals (issue 4): >= 1,000,000 events appended per second with ``Recorder.append`` and
<= 68 bytes held per event (the packed record). Rounds are interleaved (append, event, append, ...) so
machine noise hits every contender alike; min / median / max over the rounds are printed.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from wtlab.trace import Recorder, export, qlog
from wtlab.trace.schema import K_PACKET_ACKED, K_PACKET_SENT

GOAL_EVENTS_PER_S = 1_000_000
GOAL_BYTES_PER_EVENT = 68  # the packed record (wtlab.trace.schema.RECORD)


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


def _stats(xs: list[float]) -> str:
    return f"min {min(xs):>12,.0f}  median {statistics.median(xs):>12,.0f}  max {max(xs):>12,.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="200,000 events, 3 rounds")
    args, _unknown = ap.parse_known_args(argv)  # `python -m benchmarks` passes shared options
    n, r = args.events, args.repeats
    if args.quick:
        n, r = min(n, 200_000), min(r, 3)

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
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        df = rec.to_pandas()
        t_df = time.perf_counter() - t0
        print(f"  to_pandas()       : {len(df) / t_df:>12,.0f} rows/s")
        pq_path = Path(d) / "t.parquet"
        t0 = time.perf_counter()
        export.write_parquet(df, pq_path)
        t_w = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = export.read_parquet(pq_path)
        t_r = time.perf_counter() - t0
        print(f"  Parquet write/read: {len(df) / t_w:>12,.0f} / {len(back) / t_r:,.0f} rows/s, "
              f"{pq_path.stat().st_size / len(df):.1f} B/row on disk")
        small = df.iloc[: min(len(df), 200_000)]
        for flavour, suffix in (("ietf", ".sqlog"), ("legacy", ".qlog")):
            path = Path(d) / f"t{suffix}"
            t0 = time.perf_counter()
            qlog.write_qlog(small, path, flavour=flavour)
            t_w = time.perf_counter() - t0
            t0 = time.perf_counter()
            got = qlog.read_qlog(path)
            t_r = time.perf_counter() - t0
            print(f"  qlog {flavour:6s}{suffix:6s} write/read: {len(small) / t_w:>10,.0f} / "
                  f"{len(got) / t_r:,.0f} rows/s, {path.stat().st_size / len(small):.0f} B/row")
    from wtlab.trace import mahimahi

    lines = ["# base timestamp: 1000"]
    for i in range(min(n, 300_000) // 3):
        t = 1000 + i
        lines += [f"{t} # 1504", f"{t} + 1500", f"{t} - 1500 {i % 20}"]
    text = "\n".join(lines)
    t0 = time.perf_counter()
    mm = mahimahi.parse_mahimahi(text)
    print(f"  Mahimahi log parse: {len(mm) / (time.perf_counter() - t0):>11,.0f} lines/s")
    ok = statistics.median(append_rates) >= GOAL_EVENTS_PER_S and \
        max(per_event_traced, per_event_nbytes) <= GOAL_BYTES_PER_EVENT + 0.5
    # a missed goal is a measurement to read, not a failure: the exit code reports errors only
    print("GOALS MET" if ok else "GOALS NOT MET (median append rate or bytes per event)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
