"""Sweeps: a parameter grid run into a dataset, on local processes or a Dask cluster.

    >>> import wtlab
    >>> res = wtlab.sweep({"algo": ["reno", "cubic"], "loss_pct": [0, 1], "seed": [1, 2],
    ...                    "duration_s": [2]}, out="datasets/demo")      # doctest: +SKIP
    >>> res.summary[["algo", "loss_pct", "goodput_bps"]]                # doctest: +SKIP

What a user may rely on:

* **Grid**: a dict of lists (their cartesian product, in key order; a scalar is a
  one-value list) or a list of dicts (one run each; a key some runs omit takes its
  default there, so all runs have the same keys). Keys are those of :data:`KEYS`; a
  key the grid never names takes its default. A malformed grid raises
  :class:`wtlab.GridError` naming the key, before anything runs.
* **Runs**: each grid point is one run, identified by ``wtlab.datasets.run_id`` of
  its parameters (the keys the grid gave): the same point always has the same id.
* **Where**: ``executor=None`` runs on local processes (``workers`` of them, default
  the CPU count); any ``concurrent.futures.Executor`` (threads, processes, MPI...)
  or a ``dask.distributed.Client`` runs them there instead. Nothing else changes.
* **Streaming, resumable**: results are written into the dataset ``out`` as runs
  finish (one Parquet part per run, atomically, in the parent process, so workers
  need no shared file system). A sweep interrupted by Ctrl-C or killed resumes when
  run again: finished runs are skipped. A run that raises is recorded with its error
  in ``out/_failures/`` and the others go on; the next sweep retries it.
* **Progress**: a tqdm bar (``tqdm.auto``: a widget in notebooks, text in a terminal).
* **Engines**: ``"model"`` (:mod:`wtlab.model`, fast) or ``"emulate"`` (full-stack
  aioquic over the virtual network; :func:`_run_emulate` is the one place that calls it).

Summary columns (``SweepResult.summary``, :func:`summary`): the run's parameters, the
run-level figures of :mod:`wtlab.trace.metrics` over the whole run (``goodput_bps``,
``goodput_packet_bps``, ``utilisation``, ``rtt_p95_s``, ``loss_rate``, ``jain_index``
with several flows, ...), the flows' means of ``rtt_mean_s`` and ``mean_cwnd_bytes``
(time-weighted), message latency percentiles (message workloads), and how the run
went (``events``, ``realtime_factor``). Both engines compute them the same way, from
their traces, so one table can hold both.

``trace`` chooses what each part holds: ``"full"`` (every event), ``"cwnd"`` (the
window, RTT, loss and state rows only: a fraction of the size) or ``"none"`` (no rows;
the run's metrics are still in the part's metadata). :func:`summary` reads the
per-run metrics of a dataset back as one DataFrame.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from wtlab.errors import ConfigError, GridError

ENGINES = ("model", "emulate")
TRACE_MODES = ("full", "cwnd", "none")
_CWND_KINDS = ("cwnd_changed", "rtt_sample", "packet_lost", "state_changed", "pacing_changed",
               "persistent_congestion", "pto_expired")


def _num(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
         integer: bool = False, none_ok: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if v is None and none_ok:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "is not a number"
        if integer and (not isinstance(v, int) and not float(v).is_integer()):
            return "is not an integer"
        if not math.isfinite(v):
            return "is not finite"
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {lo:g}"
        if hi is not None and v > hi:
            return f"must be <= {hi:g}"
        return None
    return check


def _name(choices: tuple[str, ...] | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, str) or not v:
            return "is not a name (a non-empty string)"
        if choices is not None and v not in choices:
            return f"is not one of {', '.join(choices)}"
        return None
    return check


#: grid key -> (check, default, meaning)
KEYS: dict[str, tuple[Callable[[Any], str | None], Any, str]] = {
    "algo": (_name(), "cubic", "congestion controller name (wtlab.cc registry)"),
    "rate_mbps": (_num(0, lo_open=True), 10.0, "bottleneck rate, Mbit/s (both directions)"),
    "rtt_ms": (_num(0, lo_open=True), 40.0, "propagation RTT, ms"),
    "loss_pct": (_num(0, 100), 0.0, "random (Bernoulli) loss, percent, both directions"),
    "buffer_bdp": (_num(0, lo_open=True, none_ok=True), 1.0,
                   "drop-tail buffer in BDPs (None: unlimited)"),
    "aqm": (_name(("droptail", "codel")), "droptail", "queue discipline"),
    "jitter_ms": (_num(0), 0.0, "uniform jitter, ms (never reorders)"),
    "seed": (_num(0, integer=True), 1, "seed of the path's randomness"),
    "duration_s": (_num(0, lo_open=True), 10.0, "virtual seconds per run"),
    "flows": (_num(1, integer=True), 1, "flows sharing the bottleneck (same algo)"),
    "msg_rate_hz": (_num(0, none_ok=True), None,
                    "messages per second (with msg_size_bytes: a message workload)"),
    "msg_size_bytes": (_num(1, integer=True, none_ok=True), None, "bytes per message"),
    "ack_policy": (_name(("aioquic", "rfc9000")), "aioquic", "receiver ACK policy (model)"),
}
# the model engine's cc= also accepts this name
_ALIASES = {"cc": "algo"}


# ------------------------------------------------------------------ grids
def expand(grid: Any) -> list[dict[str, Any]]:
    """The runs of ``grid`` as a list of parameter dicts (validated; see module doc)."""
    if isinstance(grid, Mapping):
        if not grid:
            raise GridError("the grid is empty; give at least one key, e.g. {'algo': ['cubic']}")
        keys = [_key(k) for k in grid]
        values = []
        for raw_key, key in zip(grid, keys, strict=True):
            v = grid[raw_key]
            if isinstance(v, (list, tuple)):
                if not v:
                    raise GridError(f"grid key {raw_key!r} has an empty list; give at least "
                                    "one value")
                vals = list(v)
            elif isinstance(v, (Mapping, set)):
                raise GridError(f"grid key {raw_key!r} must be a value or a list of values, "
                                f"not a {type(v).__name__}")
            else:
                vals = [v]
            for x in vals:
                _check_value(key, x)
            values.append(vals)
        runs = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]
    elif isinstance(grid, (list, tuple)):
        if not grid:
            raise GridError("the grid is an empty list of runs")
        runs = []
        for i, point in enumerate(grid):
            if not isinstance(point, Mapping) or not point:
                raise GridError(f"grid run #{i} must be a non-empty dict of parameters, "
                                f"not {point!r}")
            run = {}
            for raw_key, v in point.items():
                key = _key(raw_key)
                if isinstance(v, (list, tuple, Mapping, set)):
                    raise GridError(f"grid key {raw_key!r} in run #{i} must be a single value "
                                    "(lists only in the dict-of-lists form)")
                _check_value(key, v)
                run[key] = v
            runs.append(run)
        # every run gets every key some run names (defaults fill the gaps), so the
        # dataset's partition folders have one layout that DuckDB/Dask can read
        keys: list[str] = []
        for run in runs:
            keys += [k for k in run if k not in keys]
        runs = [{k: run.get(k, KEYS[k][1]) for k in keys} for run in runs]
    else:
        raise GridError(f"a grid is a dict of lists or a list of dicts, not "
                        f"{type(grid).__name__}")
    seen = {}
    for run in runs:
        _check_run(run)
        rid = _run_id(run)
        if rid in seen:
            raise GridError(f"the grid repeats the run {run}; each run must be distinct "
                            "(vary 'seed' to repeat a configuration)")
        seen[rid] = run
    return runs


def _key(raw: Any) -> str:
    if not isinstance(raw, str):
        raise GridError(f"grid key {raw!r} is not a string")
    key = _ALIASES.get(raw, raw)
    if key not in KEYS:
        raise GridError(f"unknown grid key {raw!r}; known keys: {', '.join(KEYS)}")
    return key


def _check_value(key: str, value: Any) -> None:
    problem = KEYS[key][0](value)
    if problem:
        raise GridError(f"grid key {key!r}: value {value!r} {problem}")


def _check_run(run: Mapping[str, Any]) -> None:
    has_rate = run.get("msg_rate_hz") is not None
    has_size = run.get("msg_size_bytes") is not None
    if has_rate != has_size:
        key = "msg_size_bytes" if has_rate else "msg_rate_hz"
        raise GridError(f"grid key {key!r} is missing: a message workload needs both "
                        "msg_rate_hz and msg_size_bytes")


def _run_id(params: Mapping[str, Any]) -> str:
    from wtlab.datasets import run_id

    return run_id(params)


def resolve(params: Mapping[str, Any]) -> dict[str, Any]:
    """A grid point with every key filled in from the defaults."""
    out = {k: spec[1] for k, spec in KEYS.items()}
    out.update(params)
    return out


# ------------------------------------------------------------------ one run (in a worker)
def _path_args(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"rate_bps": float(p["rate_mbps"]) * 1e6, "rtt_s": float(p["rtt_ms"]) / 1000.0,
            "loss": float(p["loss_pct"]) / 100.0 if p["loss_pct"] else None,
            "buffer_bdp": None if p["buffer_bdp"] is None else float(p["buffer_bdp"]),
            "aqm": p["aqm"], "jitter_s": float(p["jitter_ms"]) / 1000.0,
            "seed": int(p["seed"])}


def _workload(p: Mapping[str, Any]) -> Any:
    if p.get("msg_rate_hz") is not None:
        return {"kind": "messages", "rate_hz": float(p["msg_rate_hz"]),
                "size_bytes": int(p["msg_size_bytes"])}
    return "bulk"


def _run_model(p: Mapping[str, Any]):
    """engine="model": one run of the fast flow model -> (recorder, metrics)."""
    import wtlab.model

    res = wtlab.model.run(_path_args(p), cc=p["algo"], duration_s=float(p["duration_s"]),
                          flows=int(p["flows"]), workload=_workload(p),
                          ack_policy=p["ack_policy"])
    return res.recorder, _figures(res)


def _run_emulate(p: Mapping[str, Any]):
    """engine="emulate": the full-stack emulation (aioquic + WebTransport over the virtual
    network, ``wtlab.net.emulate.emulate``) -> (recorder, metrics). The only place the
    sweep calls the emulator."""
    try:
        from wtlab.net.emulate import emulate
    except ImportError as exc:
        raise ConfigError("engine='emulate' needs wtlab.net.emulate (the full-stack "
                          f"emulator), which is not available here ({exc}); use "
                          "engine='model'") from None
    from wtlab.net.path import Path

    if p["ack_policy"] != "aioquic":
        raise ConfigError("engine='emulate' runs aioquic's own ACK policy; leave ack_policy "
                          "at 'aioquic'")
    duration = float(p["duration_s"])
    workload = None
    if p.get("msg_rate_hz") is not None:
        workload = {"workload": "messages", "rate_hz": float(p["msg_rate_hz"]),
                    "size_bytes": int(p["msg_size_bytes"]), "duration_s": duration}
    path = Path.symmetric(**_path_args(p))
    res = emulate(path, cc=p["algo"], workload=workload, flows=int(p["flows"]),
                  until_s=duration)
    speed = res.speed()
    return res.recorder, _figures(res, {"engine": "emulate", "wall_s": res.wall_s,
                                        "events": len(res.recorder),
                                        "realtime_factor": speed.get("virtual_per_wall",
                                                                     math.nan),
                                        "link": res.path.down.stats.as_dict()})


def _figures(res: Any, engine: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A run's figures for its dataset part and the summary: ``res.summary()`` (run level,
    :mod:`wtlab.trace.metrics`) and ``flows`` (``res.metrics()`` as records)."""
    out = {**res.summary(), **(engine or {})}
    out["flows"] = res.metrics().to_dict("records")
    return out


_ENGINE_FUNCS = {"model": _run_model, "emulate": _run_emulate}


def _execute(params: dict[str, Any], engine: str, trace: str) -> dict[str, Any]:
    """Run one grid point; never raises for a failing run (returns the error instead)."""
    t0 = time.perf_counter()
    try:
        full = resolve(params)
        recorder, metrics = _ENGINE_FUNCS[engine](full)
        frame = None
        if recorder is not None:
            frame = recorder.to_pandas()
            if trace == "cwnd":
                frame = frame[frame["kind"].isin(_CWND_KINDS)].reset_index(drop=True)
            elif trace == "none":
                frame = frame.iloc[0:0]
        meta = {"engine": engine, "resolved_params": full, "metrics": metrics,
                "trace_mode": trace}
        if recorder is not None:
            meta = {**recorder.meta, **meta}
        return {"ok": True, "params": params, "frame": frame, "meta": meta,
                "metrics": metrics, "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # a failing run is data, not the end of the sweep
        return {"ok": False, "params": params, "error_type": type(exc).__name__,
                "error": str(exc), "traceback": traceback.format_exc(),
                "wall_s": time.perf_counter() - t0}


# ------------------------------------------------------------------ the sweep
@dataclass
class SweepResult:
    """What a sweep did: counts, the dataset folder, and one summary row per run it ran."""

    path: FsPath | None
    total: int
    ran: int
    skipped: int
    failed: int
    wall_s: float
    summary: Any  # pandas DataFrame: params + goodput/utilisation/... per run run now
    failures: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False

    def load(self, filters: Any = None):
        """The dataset's traces (``wtlab.datasets.load``)."""
        from wtlab.datasets import load

        if self.path is None:
            raise ConfigError("this sweep kept no dataset (out=None); pass out=PATH")
        return load(self.path, filters)

    def __repr__(self) -> str:
        return (f"SweepResult({self.ran} ran, {self.skipped} skipped, {self.failed} failed "
                f"of {self.total} in {self.wall_s:.1f} s -> {self.path})")


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(
        executor, "gather")


SUMMARY_FIGURES = ("goodput_bps", "goodput_packet_bps", "utilisation", "rtt_p95_s",
                   "queueing_delay_mean_s", "loss_rate", "jain_index", "events",
                   "realtime_factor")
FLOW_MEANS = ("rtt_mean_s", "mean_cwnd_bytes", "message_latency_p50_s",
              "message_latency_p95_s")


def _summary_row(params: Mapping[str, Any], metrics: Mapping[str, Any],
                 wall_s: float) -> dict[str, Any]:
    row = dict(params)
    for k in SUMMARY_FIGURES:
        if k in metrics:
            row[k] = metrics[k]
    flows = metrics.get("flows") or []
    for k in FLOW_MEANS:
        vals = [f[k] for f in flows if k in f]
        if vals:
            row[k] = sum(vals) / len(vals)
    row["run_wall_s"] = wall_s
    return row


def sweep(grid: Any, engine: str = "model", executor: Any = None, out: Any = None,
          progress: bool = True, *, workers: int | None = None, trace: str = "full",
          title: str | None = None, description: str = "",
          how_made: str | None = None) -> SweepResult:
    """Run every point of ``grid`` with ``engine``, streaming results into dataset ``out``.

    See the module docstring. Returns a :class:`SweepResult`; ``result.summary`` has one
    row per run made in this call (parameters and headline metrics).
    ``KeyboardInterrupt`` stops the sweep after writing what finished (and the card);
    rerun the same call to finish it.
    """
    import pandas as pd

    from wtlab import datasets

    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r}: use one of {', '.join(ENGINES)}")
    if trace not in TRACE_MODES:
        raise ConfigError(f"trace={trace!r}: use one of {', '.join(TRACE_MODES)}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers={workers!r} must be a positive integer")
    runs = expand(grid)
    root = FsPath(out) if out is not None else None
    done = datasets.finished_runs(root) if root is not None else set()
    todo = [r for r in runs if _run_id(r) not in done]
    skipped = len(runs) - len(todo)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    interrupted = False

    own_pool = None
    if executor is None and todo:
        own_pool = _local_pool(workers or os.cpu_count() or 1, len(todo))
        executor = own_pool
    dask = _is_dask_client(executor)
    bar = _progress_bar(len(runs), skipped, progress, engine)
    futures: dict[Any, dict[str, Any]] = {}
    try:
        if todo:
            # without a dataset nobody reads the traces: do not ship them back
            futures = _submit_all(executor, dask, todo, engine,
                                  trace if root is not None else "none")
            for result in _as_completed(futures, dask):
                _consume(result, root, rows, failures)
                bar.update(1)
                if failures:
                    bar.set_postfix(failed=len(failures), refresh=False)
    except KeyboardInterrupt:
        interrupted = True
        _cancel(futures, dask)
    finally:
        bar.close()
        if own_pool is not None:
            if interrupted:
                _stop_pool(own_pool)
            else:
                own_pool.shutdown(wait=True)
        if root is not None and (rows or failures or not root.exists()):
            datasets.write_card(
                root, title=title, description=description or
                f"Sweep of {len(runs)} runs, engine={engine!r}, trace={trace!r}.",
                how_made=how_made or "wtlab.sweep(grid, engine=" + repr(engine) + ")",
                extra_sections={"Grid keys": "\n".join(
                    f"- `{k}`: {KEYS[k][2]} (default {KEYS[k][1]!r})" for k in KEYS)})
    wall = time.perf_counter() - t0
    result = SweepResult(path=root, total=len(runs), ran=len(rows), skipped=skipped,
                         failed=len(failures), wall_s=wall, summary=pd.DataFrame(rows),
                         failures=failures, interrupted=interrupted)
    if interrupted:
        raise KeyboardInterrupt(f"sweep interrupted: {result!r}; run it again to resume")
    return result


def _local_pool(workers: int, n: int) -> Executor:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # fork (on Linux) inherits controllers a notebook registered; elsewhere: spawn
    method = "fork" if sys.platform.startswith("linux") else None
    ctx = mp.get_context(method)
    return ProcessPoolExecutor(max_workers=max(1, min(workers, n)), mp_context=ctx,
                               initializer=_worker_init)


def _worker_init() -> None:
    # Ctrl-C is the parent's to handle: a worker interrupted inside the pool's queue
    # can leave it locked, and the parent stops the workers itself (_stop_pool).
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool: Executor) -> None:
    """After Ctrl-C: drop queued runs and end the local workers now (their runs are lost
    anyway; a resumed sweep redoes them)."""
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.join(timeout=5)


def _progress_bar(total: int, initial: int, enabled: bool, engine: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="run",
                desc=f"sweep ({engine})", dynamic_ncols=True)


def _submit_all(executor: Any, dask: bool, todo: list[dict[str, Any]], engine: str,
                trace: str) -> dict[Any, dict[str, Any]]:
    futures = {}
    for params in todo:
        if dask:
            fut = executor.submit(_execute, params, engine, trace, pure=False,
                                  key=f"wtlab-run-{_run_id(params)}")
        else:
            fut = executor.submit(_execute, params, engine, trace)
        futures[fut] = params  # for failures the executor itself reports
    return futures


def _as_completed(futures: dict[Any, dict[str, Any]], dask: bool
                  ) -> Iterable[dict[str, Any]]:
    """Results as runs finish; an executor-level error (worker died) becomes a failure."""
    if dask:
        from distributed import as_completed as dask_as_completed

        iterator = dask_as_completed(list(futures))
    else:
        from concurrent.futures import as_completed

        iterator = as_completed(futures)
    for fut in iterator:
        try:
            yield fut.result()
        except Exception as exc:
            yield {"ok": False, "params": futures[fut],
                   "error_type": type(exc).__name__, "error": str(exc) or repr(exc),
                   "traceback": "".join(traceback.format_exception(exc)), "wall_s": math.nan}


def _consume(result: Mapping[str, Any], root: FsPath | None, rows: list, failures: list) -> None:
    from wtlab import datasets

    params = result["params"]
    if result["ok"]:
        if root is not None:
            datasets.write_run(root, result["frame"], params, result["meta"])
        rows.append(_summary_row(params, result["metrics"], result["wall_s"]))
    else:
        message = f"{result['error_type']}: {result['error']}"
        if root is not None and params:
            datasets.write_failure(root, params, message + "\n" + result["traceback"])
        failures.append({"params": params, "error": message,
                         "traceback": result["traceback"]})


def _cancel(futures: dict[Any, dict[str, Any]], dask: bool) -> None:
    for fut in futures:
        try:
            fut.cancel()
        except Exception:  # noqa: BLE001 - best effort while stopping
            pass


# ------------------------------------------------------------------ reading back
def summary(path: Any):
    """One row per finished run of dataset ``path``: its parameters and metrics."""
    import pandas as pd

    from wtlab import datasets

    info = datasets.runs(path)
    rows = []
    for _, r in info.iterrows():
        meta = r["meta"] or {}
        params = meta.get("params") or {k: r[k] for k in info.columns
                                        if k not in ("run_id", "rows", "file", "meta")}
        row = {"run_id": r["run_id"],
               **_summary_row(params, meta.get("metrics", {}), math.nan)}
        row.pop("run_wall_s", None)
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ CLI
def load_grid_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a grid file (YAML): ``{grid: ..., engine:, trace:, title:, description:}``.

    A file without a ``grid`` key is the grid itself. Errors name the file and key.
    """
    import yaml

    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise GridError(f"cannot read grid file {str(p)!r}: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GridError(f"grid file {str(p)!r} is not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping):
        raise GridError(f"grid file {str(p)!r} must hold a mapping (a 'grid:' key, or the "
                        "grid's keys at the top level)")
    top = {"engine", "trace", "title", "description", "grid"}
    if "grid" in doc:
        unknown = [k for k in doc if k not in top]
        if unknown:
            raise GridError(f"grid file {str(p)!r}: unknown top-level key {unknown[0]!r}; "
                            f"use {', '.join(sorted(top))}")
        spec = dict(doc)
    else:
        spec = {"grid": dict(doc)}
    try:
        expand(spec["grid"])
    except GridError as exc:
        raise GridError(f"grid file {str(p)!r}: {exc}") from None
    for key, allowed in (("engine", ENGINES), ("trace", TRACE_MODES)):
        if key in spec and spec[key] not in allowed:
            raise GridError(f"grid file {str(p)!r}: key {key!r} is {spec[key]!r}; use one "
                            f"of {', '.join(allowed)}")
    return spec


def cli_main(argv: list[str]) -> int:
    """``wtlab sweep GRID.yaml -o datasets/NAME [--engine model] [--workers N] [--dask ADDR]``."""
    ap = argparse.ArgumentParser(prog="wtlab sweep",
                                 description="Run a parameter grid into a dataset "
                                 "(resumable: run the same command again to finish it).")
    ap.add_argument("grid", help="grid file (YAML)")
    ap.add_argument("-o", "--out", required=True, help="dataset folder, e.g. datasets/NAME")
    ap.add_argument("--engine", choices=ENGINES, default=None,
                    help="model (fast flow model, default) or emulate (full stack)")
    ap.add_argument("--workers", type=int, default=None,
                    help="local worker processes (default: CPU count)")
    ap.add_argument("--dask", metavar="ADDRESS", default=None,
                    help="run on a Dask scheduler, e.g. tcp://127.0.0.1:8786")
    ap.add_argument("--trace", choices=TRACE_MODES, default=None,
                    help="rows kept per run: full, cwnd or none (default: full)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ns = ap.parse_args(argv)
    if ns.workers is not None and ns.workers < 1:
        raise ConfigError(f"--workers {ns.workers}: give a positive number of processes")
    spec = load_grid_file(ns.grid)
    engine = ns.engine or spec.get("engine", "model")
    trace = ns.trace or spec.get("trace", "full")
    cmd = "wtlab sweep " + " ".join(argv)
    client = None
    if ns.dask:
        from distributed import Client

        client = Client(ns.dask)
    try:
        res = sweep(spec["grid"], engine=engine, executor=client, out=ns.out,
                    progress=not ns.no_progress, workers=ns.workers, trace=trace,
                    title=spec.get("title"), description=spec.get("description", ""),
                    how_made=f"`{cmd}`")
    finally:
        if client is not None:
            client.close()
    print(f"wtlab sweep: {res.ran} ran, {res.skipped} already done, {res.failed} failed, "
          f"{res.total} in the grid; {res.wall_s:.1f} s -> {res.path}")
    for f in res.failures[:10]:
        print(f"  failed {f['params']}: {f['error']}", file=sys.stderr)
    return 1 if res.failed else 0
