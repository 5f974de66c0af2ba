"""A sweep of a few hundred fast-model runs on local processes (or a local Dask cluster).

    .venv/bin/python -m benchmarks.sweep                      # 324 runs, local processes
    .venv/bin/python -m benchmarks.sweep --dask               # the same on a LocalCluster
    .venv/bin/python -m benchmarks.sweep --trace cwnd -o /tmp/ds --keep

Grid: reno/cubic/bbr x 10/50 Mbit/s x 20/80 ms x 0/0.5/2 % loss x 0.25/1/4 BDP buffer x
3 seeds, 2 virtual seconds each. Prints the wall time, runs per second, rows and bytes
written, then runs the same sweep again to show that a finished dataset is skipped
(what a resumed sweep does). The dataset goes to a temporary folder unless -o is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

GRID = {
    "algo": ["reno", "cubic", "bbr"],
    "rate_mbps": [10, 50],
    "rtt_ms": [20, 80],
    "loss_pct": [0, 0.5, 2],
    "buffer_bdp": [0.25, 1, 4],
    "seed": [1, 2, 3],
    "duration_s": [2],
}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    import wtlab
    from wtlab.lab.sweep import expand

    ap = argparse.ArgumentParser(prog="benchmarks.sweep", description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default=None, help="dataset folder (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the dataset")
    ap.add_argument("--workers", type=int, default=None, help="local processes (default: CPUs)")
    ap.add_argument("--dask", action="store_true", help="run on a dask LocalCluster")
    ap.add_argument("--trace", default="full", choices=("full", "cwnd", "none"))
    ap.add_argument("--quick", action="store_true", help="a 27-run grid")
    ns = ap.parse_args(sys.argv[1:])
    grid = dict(GRID)
    if ns.quick:
        grid.update(rate_mbps=[10], rtt_ms=[40], seed=[1])
    n = len(expand(grid))
    tmp = None
    if ns.out is None:
        tmp = tempfile.mkdtemp(prefix="wtlab-sweep-bench-")
        out = Path(tmp) / "ds"
    else:
        out = Path(ns.out)
    workers = ns.workers or os.cpu_count() or 1
    client = cluster = None
    if ns.dask:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    where = f"dask LocalCluster ({workers} workers)" if ns.dask else f"{workers} local processes"
    print(f"sweep of {n} runs (model engine, trace={ns.trace!r}) on {where} -> {out}")
    try:
        t0 = time.perf_counter()
        res = wtlab.sweep(grid, executor=client, out=out, workers=workers, trace=ns.trace,
                          title="benchmarks.sweep")
        wall = time.perf_counter() - t0
        rows = int(res.summary["events"].sum()) if len(res.summary) else 0
        virt = float(res.summary["duration_s"].sum()) if len(res.summary) else 0.0
        print(f"\n{res.ran} ran, {res.skipped} skipped, {res.failed} failed in {wall:.1f} s wall: "
              f"{res.ran / wall:.1f} runs/s, {virt / wall:.1f} virtual s per wall-s, "
              f"{rows:,} events, dataset {_size(out) / 1e6:.1f} MB")
        per_run = res.summary["run_wall_s"]
        print(f"per run (in its worker): min {per_run.min():.3f} s, median "
              f"{per_run.median():.3f} s, max {per_run.max():.3f} s")
        t1 = time.perf_counter()
        again = wtlab.sweep(grid, executor=client, out=out, workers=workers, trace=ns.trace,
                            progress=False)
        print(f"same sweep again (resume of a finished dataset): {again.ran} ran, "
              f"{again.skipped} skipped in {time.perf_counter() - t1:.2f} s")
        s = res.summary
        table = s.groupby(["algo", "loss_pct"])["goodput_bps"].median().unstack() / 1e6
        print("\nmedian goodput, Mbit/s (all rates, RTTs, buffers, seeds):")
        print(table.round(2).to_string())
    finally:
        if client is not None:
            client.close()
            cluster.close()
        if tmp is not None and not ns.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
