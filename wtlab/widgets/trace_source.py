"""Loading a recorded trace for the Replay widget: files, datasets, recorders, results.

``load_trace(source, run_id=None) -> (trace, meta, run ids)``; :func:`run_labels` names
each run of a dataset by its scenario and controller, for the run picker.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError
from wtlab.trace.schema import COLUMNS

TRACE_SUFFIXES = (".parquet", ".qlog", ".sqlog", ".json", ".csv")
CONTROLLER_COLUMNS = ("algo", "cc", "algorithm", "controller")


def load_trace(source: Any, *, run_id: str | None = None
               ) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """(trace, meta, run ids) from a Recorder, a run result, a DataFrame or a path.

    Paths: ``.parquet`` (``wtlab.trace.export``), ``.qlog``/``.sqlog``/``.json``
    (``wtlab.trace.qlog``), ``.csv``, or a dataset folder (``wtlab.datasets``). A trace
    holding several runs (a dataset) is cut to ``run_id`` (default: the first run);
    ``meta["run_labels"]`` then names every run (:func:`run_labels`).
    """
    meta: dict[str, Any] = {}
    if hasattr(source, "to_pandas") and hasattr(source, "meta"):  # Recorder
        df, meta = source.to_pandas(), dict(source.meta)
    elif hasattr(source, "recorder") and hasattr(source.recorder, "to_pandas"):  # Result
        df, meta = source.recorder.to_pandas(), dict(source.recorder.meta)
    elif isinstance(source, pd.DataFrame):
        df, meta = source, dict(source.attrs.get("meta") or {})
    elif isinstance(source, (str, Path)):
        df, meta = _read_path(Path(source).expanduser(), run_id)
    else:
        raise ConfigError(f"cannot load a trace from a {type(source).__name__}: give a Recorder, "
                          "a Result, a trace DataFrame, or the path of a .parquet/.qlog/.sqlog/"
                          ".csv file or a dataset folder")
    for col in ("time_s", "flow", "kind"):
        if col not in df.columns:
            raise ConfigError(f"the trace has no {col!r} column; give a table in the wtlab trace "
                              "schema (wtlab.trace.schema)")
    runs: list[str] = []
    if "run_id" in df.columns and len(df):
        runs = [str(r) for r in pd.unique(df["run_id"].astype(str))]
        if len(runs) > 1:
            meta = {**meta, "run_labels": run_labels(df, meta)}
        if len(runs) > 1 or run_id is not None:
            chosen = run_id if run_id is not None else runs[0]
            if chosen not in runs:
                raise ConfigError(f"run_id {chosen!r} is not in this trace; it holds {runs[:5]}"
                                  f"{' ...' if len(runs) > 5 else ''}")
            df = df[df["run_id"].astype(str) == chosen]
            meta = {**meta, "run_id": chosen}
    t = df["time_s"].to_numpy(dtype=float)
    if len(t) > 1 and not (np.diff(t) >= 0).all():
        df = df.sort_values("time_s", kind="stable")  # once, at load: scrubbing needs order
    if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0:
        df = df.reset_index(drop=True)
    return df, meta, runs


def _read_path(path: Path, run_id: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    if path.is_dir():
        from wtlab import datasets
        from wtlab.trace.export import read_meta

        filters = {"run_id": run_id} if run_id is not None else None
        df = datasets.load(path, filters=filters)
        meta: dict[str, Any] = {}
        if len(df):
            rid = run_id or str(df["run_id"].iloc[0])
            part = next(iter(path.rglob(f"{datasets.PART_PREFIX}{rid}.parquet")), None)
            if part is not None:
                meta = read_meta(part)
        return df, meta
    if not path.exists():
        raise ConfigError(f"{str(path)!r} does not exist; give a trace file "
                          f"({', '.join(TRACE_SUFFIXES)}) or a dataset folder")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from wtlab.trace.export import read_parquet

        df = read_parquet(path)
        return df, dict(df.attrs.get("meta") or {})
    if suffix in (".qlog", ".sqlog", ".json"):
        from wtlab.trace.qlog import read_qlog

        df = read_qlog(path)
        return df, dict(df.attrs.get("meta") or {})
    if suffix == ".csv":
        from wtlab.trace.export import read_csv

        return read_csv(path), {}
    raise ConfigError(f"{path.name}: unknown trace format {suffix!r}; use one of "
                      f"{', '.join(TRACE_SUFFIXES)} or a dataset folder")


def run_labels(df: pd.DataFrame, meta: Mapping[str, Any] | None = None) -> dict[str, str]:
    """run id -> "scenario · controller" for every run of a multi-run trace (a dataset):
    the scenario from the partition columns (``rate_mbps=20 rtt_ms=40 ...``), the
    controller from ``algo``/``cc`` (or the metadata)."""
    if "run_id" not in df.columns or not len(df):
        return {}
    extra = [c for c in df.columns if c not in COLUMNS and c != "run_id"]
    firsts = df.drop_duplicates("run_id")
    out = {}
    for _, row in firsts.iterrows():
        rid = str(row["run_id"])
        cc = next((str(row[c]) for c in CONTROLLER_COLUMNS if c in extra), None)
        if cc is None and meta:
            value = meta.get("algorithm") or meta.get("cc")
            cc = value[0] if isinstance(value, list) and len(value) == 1 else value
        scenario = " ".join(f"{c}={_short(row[c])}" for c in extra
                            if c not in CONTROLLER_COLUMNS)
        parts = [p for p in (scenario, f"{cc}" if cc else "") if p]
        out[rid] = " · ".join(parts) + f" ({rid[:8]})" if parts else rid
    return out


def _short(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)
