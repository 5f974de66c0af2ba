"""``wtlab trace``: convert and summarise trace files from the shell.

::

    wtlab trace convert run.sqlog run.parquet          # any supported input -> any output
    wtlab trace convert run.parquet run.qlog --flavour legacy   # for qvis
    wtlab trace convert client.qlog acks.parquet --derive-acks
    wtlab trace summary run.parquet                    # PerformanceMonitor.summary()

Formats follow the file names (see :func:`wtlab.trace.export.read_trace` and
:func:`~wtlab.trace.export.write_trace`).
"""

from __future__ import annotations

import argparse
import sys

from wtlab.trace.export import read_trace, write_trace


def cli_main(argv: list[str]) -> int:
    """``wtlab trace convert|summary ...``; returns the exit status."""
    ap = argparse.ArgumentParser(prog="wtlab trace", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="read one trace file and write it in another format")
    conv.add_argument("src", help=".parquet, .csv, .qlog, .sqlog, .json or a Mahimahi .log")
    conv.add_argument("dst", help=".parquet, .csv, .qlog, .json or .sqlog")
    conv.add_argument("--flavour", choices=["ietf", "legacy"], default="ietf",
                      help="qlog event names: current IETF drafts or qlog 0.3 (qvis)")
    conv.add_argument("--derive-acks", action="store_true",
                      help="add packet_acked rows from ACK frames of imported qlog")
    summ = sub.add_parser("summary", help="print per-flow performance of a trace file")
    summ.add_argument("src")
    summ.add_argument("--derive-acks", action="store_true")
    args = ap.parse_args(argv)

    df = read_trace(args.src)
    if args.derive_acks:
        from wtlab.trace.qlog import derive_acks

        df = derive_acks(df)
    if args.cmd == "convert":
        opts = {"flavour": args.flavour} if args.dst.lower().endswith(
            (".qlog", ".sqlog", ".json", ".jsonseq")) else {}
        out = write_trace(df, args.dst, **opts)
        print(f"{len(df):,} rows: {args.src} -> {out}")
        return 0
    from wtlab.trace.monitor import PerformanceMonitor

    table = PerformanceMonitor(df).summary()
    print(table.T.to_string(header=[f"flow {f}" for f in table["flow"]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_main(sys.argv[1:]))
