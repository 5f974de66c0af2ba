"""``make demo`` / ``wtlab demo``: the main job on an embedded default, no configuration.

1. Live: starts wtlab's WebTransport server on 127.0.0.1 (a free port), opens a
   session, echoes a bidi stream and a datagram, runs a bulk transfer, and prints
   what it measured.
2. Emulated: compares Reno, CUBIC and BBR on an emulated bottleneck (10 Mbit/s,
   50 ms RTT, 1 BDP drop-tail buffer, then the same with 1 % random loss) in
   virtual time, and prints the table with Mathis' prediction beside it.
3. Leaves a report (``report.html``, interactive plots) and a dataset (Parquet,
   one file per run, with a card) in ``--out`` (default ``wtlab-demo/``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from pathlib import Path

import pandas as pd

import wtlab
from wtlab.lab.experiment import Experiment, compare
from wtlab.lab.plots import display_table

LIVE_BULK_BYTES = 20_000_000
QUICK_BULK_MB = 2.0  # --quick: enough to see the stack move data, in about a second
QUICK_DURATION_S = 5.0  # --quick: Startup and a few loss cycles at 10 Mbit/s, 50 ms
DEMO_COLUMNS = ["cc", "goodput_bps", "utilisation", "rtt_p95_s", "queueing_delay_mean_s",
                "loss_rate"]
REFERENCE_COLUMNS = ["mathis_bps", "cubic_response_bps"]


async def live_demo(bulk_bytes: int = LIVE_BULK_BYTES, cc: str = "cubic") -> pd.DataFrame:
    """Echo and bulk transfer against the embedded server; one row per measurement."""
    rows = []
    async with wtlab.serve(port=0) as server:
        t0 = time.perf_counter()
        async with wtlab.connect(server.url("/echo"), cert_hashes=[server.cert_sha256],
                                 congestion_control=cc) as session:
            rows.append({"measurement": "session setup", "value": (time.perf_counter() - t0) * 1e3,
                         "unit": "ms"})
            t0 = time.perf_counter()
            stream = await session.open_bidi()
            stream.write(b"x")
            stream.write_eof()
            echoed = await stream.read()
            rows.append({"measurement": "open bidi + 1-byte echo",
                         "value": (time.perf_counter() - t0) * 1e3, "unit": "ms"})
            assert echoed == b"x"
            t0 = time.perf_counter()
            session.send_datagram(b"ping")
            got = await asyncio.wait_for(session.receive_datagram(), 5.0)
            rows.append({"measurement": "datagram echo", "value": (time.perf_counter() - t0) * 1e3,
                         "unit": "ms"})
            assert got == b"ping"
            payload = bytes(range(256)) * 4096  # 1 MiB of known bytes
            stream = await session.open_bidi()
            digest = hashlib.sha256()
            t0 = time.perf_counter()

            async def reader() -> int:
                n = 0
                while chunk := await stream.read(1 << 20):
                    digest.update(chunk)
                    n += len(chunk)
                return n

            task = asyncio.ensure_future(reader())
            sent = 0
            while sent < bulk_bytes:
                chunk = payload[: min(len(payload), bulk_bytes - sent)]
                await stream.write(chunk)
                sent += len(chunk)
            stream.write_eof()
            received = await task
            elapsed = time.perf_counter() - t0
            rows.append({"measurement": f"bulk echo {bulk_bytes / 1e6:.0f} MB ({cc}): bytes "
                         "echoed per second, timed by the application",
                         "value": received * 8 / elapsed / 1e6, "unit": "Mbit/s"})
            stats = session.stats()
            rows.append({"measurement": "smoothed RTT", "value": stats.get("srtt_s", float("nan"))
                         * 1e3, "unit": "ms"})
            if received != bulk_bytes:
                raise wtlab.ProtocolError(f"bulk echo returned {received} of {bulk_bytes} bytes")
    return pd.DataFrame(rows)


def emulated_demo(duration_s: float = 20.0):
    """Reno, CUBIC and BBR on the default path, clean and with 1 % loss."""
    out = {}
    for label, loss in (("clean", None), ("1% loss", 0.01)):
        exp = Experiment(path={"rate_bps": 10e6, "rtt_s": 0.05, "buffer_bdp": 1.0, "loss": loss},
                         seed=1)
        out[label] = compare(exp, ccs=["reno", "cubic", "bbr"], duration_s=duration_s)
    return out


def write_report(out_dir: Path, live: pd.DataFrame, comparisons: dict) -> Path:
    """Write ``report.html`` (tables and plots) and ``dataset/`` (one Parquet file per run, with a
    card) into ``out_dir``; returns the report's path.
    """
    from wtlab import datasets
    from wtlab.trace.export import write_text_atomic

    style = ("<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse;margin:0.5em 0 1em}"
             "td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}"
             "th{background:#f4f4f4}</style>")
    parts = ["<html><head><meta charset='utf-8'><title>wtlab demo</title>" + style +
             "</head><body>",
             "<h1>wtlab demo</h1><h2>Live session against the embedded server</h2>",
             "<p>wtlab's WebTransport client and server on 127.0.0.1 (no bottleneck: loopback)."
             "</p>",
             live.to_html(index=False, float_format=lambda v: f"{v:.3g}")]
    include_js = True
    runs = []
    for label, cmp in comparisons.items():
        parts.append(f"<h2>Emulated path, {label}</h2><p>10 Mbit/s, 50 ms RTT, 1 BDP drop-tail "
                     "buffer (loss on the data direction), virtual time (fast flow model). "
                     "Goodput counts the acknowledged application payload; utilisation what "
                     "the link carried (packets with their IP/UDP headers) over its capacity "
                     "(definitions: wtlab.trace.metrics)."
                     + (" Mathis' law and RFC 9438's response at the same packet size beside "
                        "it." if "loss" in label else "")
                     + "</p>")
        parts.append(display_table(cmp.table).to_html(index=False,
                                                      float_format=lambda v: f"{v:.3g}"))
        fig = cmp.trace_figure()
        fig.update_layout(title=f"cwnd, rates and RTT ({label})")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=include_js))
        include_js = False
        for cc, result in cmp.results.items():
            runs.append((result.recorder, {"scenario": label.replace("%", "pct").replace(" ", "_"),
                                           "cc": cc}, {}))
    parts.append("</body></html>")
    report = write_text_atomic(out_dir / "report.html", "\n".join(parts))
    datasets.write(runs, out_dir / "dataset", title="wtlab demo",
                   description="Reno, CUBIC and BBR on a 10 Mbit/s, 50 ms, 1-BDP path, "
                   "clean and with 1 % random loss (fast flow model, virtual time).",
                   how_made="`make demo` (wtlab.lab.demo)")
    return report


def cli_main(argv: list[str]) -> int:
    """``wtlab demo [--out DIR] [--bulk-mb N] [--duration S] [--quick]``: run the demo, print
    its tables, write the report and the dataset; returns the exit status.
    """
    ap = argparse.ArgumentParser(prog="wtlab demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="wtlab-demo", help="folder for report.html and dataset/")
    ap.add_argument("--bulk-mb", type=float, default=None,
                    help=f"megabytes of the live bulk echo (default {LIVE_BULK_BYTES / 1e6:g})")
    ap.add_argument("--duration", type=float, default=None,
                    help="emulated seconds per run (default 20)")
    ap.add_argument("--quick", action="store_true",
                    help=f"a short run: {QUICK_BULK_MB:g} MB live, {QUICK_DURATION_S:g} s emulated "
                    "(explicit --bulk-mb / --duration win)")
    args = ap.parse_args(argv)
    if args.bulk_mb is None:
        args.bulk_mb = QUICK_BULK_MB if args.quick else LIVE_BULK_BYTES / 1e6
    if args.duration is None:
        args.duration = QUICK_DURATION_S if args.quick else 20.0
    out_dir = Path(args.out)
    pd.set_option("display.width", 120)
    print("== live WebTransport session against the embedded server (127.0.0.1) ==")
    live = asyncio.run(live_demo(int(args.bulk_mb * 1e6)))
    print(live.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\n== Reno vs CUBIC vs BBR, emulated 10 Mbit/s, 50 ms RTT, {args.duration:g} s ==")
    comparisons = emulated_demo(args.duration)
    for label, cmp in comparisons.items():
        print(f"-- {label}")
        print(display_table(cmp.table[DEMO_COLUMNS + [c for c in REFERENCE_COLUMNS
                                                      if c in cmp.table]])
              .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    report = write_report(out_dir, live, comparisons)
    print(f"\nreport: {report}\ndataset: {out_dir / 'dataset'} (pandas, DuckDB, Dask read it;"
          " see its README.md)")
    return 0
