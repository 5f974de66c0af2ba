"""Trace datasets: folders of Parquet files partitioned by run parameters.

Layout (hive style, readable by pandas/pyarrow, DuckDB, Dask and Spark)::

    DATASET/
      README.md                                  the card (``write_card``)
      algo=cubic/rate_mbps=10/seed=1/part-<run_id>.parquet
      algo=bbr/rate_mbps=10/seed=1/part-<run_id>.parquet
      _failures/<run_id>.json                    runs that raised (``write_failure``)

* One Parquet file per run, written atomically (temporary dot-file + ``os.replace``), so
  a crashed or interrupted sweep never leaves a half-written part, and several processes
  may write runs into the same dataset at once.
* The run id derives from the parameters only (:func:`run_id`), so it is stable across
  processes and sessions: :func:`finished_runs` tells a resumed sweep what to skip.
* Each part holds the trace schema (``wtlab.trace.schema``) plus a ``run_id`` column; the
  parameters live in the directory names (one level per parameter, in the order of the
  ``params`` dict unless ``partition_by`` says otherwise) and, with the run metadata, in
  the file's Parquet schema metadata under ``wtlab``.
* Parameter values become directory names: ``str(int)``, ``repr(float)``, ``true``/``false``,
  strings percent-encoded where needed (``/``, ``=``, spaces, ...). :func:`load` turns them
  back into numbers and booleans where every value of a column parses.

Reading it elsewhere::

    duckdb.sql("select algo, count(*) from read_parquet('DATASET/**/*.parquet',"
               " hive_partitioning=true) group by algo")
    dask.dataframe.read_parquet("DATASET/**/*.parquet")   # or the folder itself
    pandas.read_parquet("DATASET", ignore_prefixes=["README", ".", "_"])  # skip the card

(``wtlab.datasets.load`` does the same and also turns partition values back into numbers.)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import traceback
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wtlab.errors import ConfigError, TraceFormatError
from wtlab.trace import schema
from wtlab.trace.export import as_frame, atomic_path, meta_json, write_text_atomic

PART_PREFIX = "part-"
FAILURES_DIR = "_failures"
CARD_NAME = "README.md"
_NULL_VALUE = "__HIVE_DEFAULT_PARTITION__"  # hive's name for a null partition value
_SAFE = "-_.~"  # characters kept verbatim in partition values (besides alphanumerics)

__all__ = [
    "run_id",
    "write_run",
    "write_failure",
    "finished_runs",
    "failed_runs",
    "write_card",
    "write",
    "load",
    "runs",
]


# ---------------------------------------------------------------- parameters and ids
def _check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(params, Mapping) or not params:
        raise ConfigError("params must be a non-empty dict of run parameters, e.g. "
                          "{'algo': 'cubic', 'rate_mbps': 10, 'seed': 1}")
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key or not all(
                c.isalnum() or c == "_" for c in key) or key[0].isdigit():
            raise ConfigError(f"parameter name {key!r} must be an identifier "
                              "(letters, digits, underscores), it becomes a column and folder")
        if key in schema.DTYPES or key == "run_id":
            raise ConfigError(f"parameter name {key!r} collides with a trace column; rename it")
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy scalar
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"parameter {key!r}={value!r}: values must be str, int, float, "
                              "bool or None (they become folder names)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"parameter {key!r}={value!r}: use a finite number")
        if value == "":
            raise ConfigError(f"parameter {key!r} is an empty string (it names a folder); "
                              "use None or a name")
        out[key] = value
    return out


def run_id(params: Mapping[str, Any]) -> str:
    """Stable id of a run: 16 hex digits of SHA-256 over the sorted parameters.

    The same parameters give the same id in any process (``{"seed": 1}`` and
    ``{"seed": 1.0}`` differ, as JSON does).
    """
    p = _check_params(params)
    text = json.dumps(p, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode_value(value: Any) -> str:
    if value is None:
        return _NULL_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return urllib.parse.quote(str(value), safe=_SAFE)


def _decode_value(text: str) -> Any:
    if text == _NULL_VALUE:
        return None
    return urllib.parse.unquote(text)


def _partition_dir(root: Path, params: Mapping[str, Any],
                   partition_by: Sequence[str] | None) -> Path:
    keys = list(partition_by) if partition_by is not None else list(params)
    missing = [k for k in keys if k not in params]
    if missing:
        raise ConfigError(f"partition_by names {missing} which are not in params {list(params)}")
    d = root
    for k in keys:
        d = d / f"{k}={_encode_value(params[k])}"
    return d


# ---------------------------------------------------------------- streaming writes
def write_run(path: str | os.PathLike, frame: Any, params: Mapping[str, Any],
              meta: Mapping[str, Any] | None = None, *,
              partition_by: Sequence[str] | None = None) -> Path:
    """Write one run's trace into dataset ``path``; returns the Parquet file written.

    ``frame`` is a trace DataFrame or a Recorder. ``params`` (name -> str/int/float/bool)
    are the run parameters: they name the partition folders and the run id. ``meta`` is
    kept with the file (merged over the recorder's/``attrs`` metadata). Writing the same
    params again replaces that run's file; a failure record for it is removed.
    """
    import pyarrow.parquet as pq

    from wtlab.trace.export import to_arrow

    p = _check_params(params)
    rid = run_id(p)
    df, rec_meta = as_frame(frame)
    if meta:
        rec_meta.update(meta)
    rec_meta.update({"params": p, "dataset_run_id": rid})
    df = schema.conform(df)
    df = df.drop(columns=[c for c in df.columns if c in p], errors="ignore")
    df["run_id"] = pd.Categorical([rid] * len(df), categories=[rid])
    table = to_arrow(df, rec_meta)
    root = Path(path)
    target = _partition_dir(root, p, partition_by) / f"{PART_PREFIX}{rid}.parquet"
    with atomic_path(target, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    failure = root / FAILURES_DIR / f"{rid}.json"
    if failure.exists():
        failure.unlink(missing_ok=True)
    return target


def write_failure(path: str | os.PathLike, params: Mapping[str, Any],
                  error: BaseException | str, *, meta: Mapping[str, Any] | None = None) -> Path:
    """Record that the run with ``params`` failed (with its error); returns the JSON file.

    A failed run is not in :func:`finished_runs` (a resumed sweep tries it again); see
    :func:`failed_runs`.
    """
    p = _check_params(params)
    rid = run_id(p)
    if isinstance(error, BaseException):
        err = {"type": type(error).__name__, "message": str(error),
               "traceback": "".join(traceback.format_exception(error))}
    else:
        err = {"type": "Error", "message": str(error), "traceback": ""}
    record = {"run_id": rid, "params": p, "error": err,
              "time_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
              "meta": json.loads(meta_json(meta or {}))}
    target = Path(path) / FAILURES_DIR / f"{rid}.json"
    write_text_atomic(target, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return target


def _part_files(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted(f for f in root.rglob(f"{PART_PREFIX}*.parquet")
                  if not any(part.startswith((".", "_")) for part in f.relative_to(root).parts))


def _rid_of(f: Path) -> str:
    return f.name[len(PART_PREFIX):-len(".parquet")]


def finished_runs(path: str | os.PathLike) -> set[str]:
    """Run ids already written to dataset ``path`` (empty if it does not exist)."""
    return {_rid_of(f) for f in _part_files(Path(path))}


def failed_runs(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Run id -> failure record (params, error type/message/traceback, time)."""
    d = Path(path) / FAILURES_DIR
    out: dict[str, dict[str, Any]] = {}
    if not d.exists():
        return out
    for f in sorted(d.glob("*.json")):
        try:
            out[f.stem] = json.loads(f.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise TraceFormatError(f"failure record is not valid JSON ({exc})",
                                   path=str(f)) from exc
    return out


def _partition_values(root: Path, f: Path) -> dict[str, str]:
    out = {}
    for part in f.relative_to(root).parts[:-1]:
        if "=" not in part:
            raise TraceFormatError(f"folder {part!r} is not a key=value partition",
                                   path=str(f))
        k, v = part.split("=", 1)
        out[k] = v
    return out


def runs(path: str | os.PathLike) -> pd.DataFrame:
    """One row per finished run: run_id, the parameters, rows, file, and its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(path)
    rows = []
    for f in _part_files(root):
        try:
            md = pq.read_metadata(f)
            raw = (md.metadata or {}).get(b"wtlab")
            meta = json.loads(raw).get("meta", {}) if raw else {}
        except (OSError, ValueError, AttributeError, pa.ArrowException) as exc:
            raise TraceFormatError(f"cannot read dataset part metadata ({exc})",
                                   path=str(f)) from exc
        row = {"run_id": _rid_of(f)}
        row.update({k: _decode_value(v) for k, v in _partition_values(root, f).items()})
        row.update({"rows": md.num_rows, "file": str(f.relative_to(root)), "meta": meta})
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["run_id", "rows", "file", "meta"])
    for col in df.columns:
        if col not in ("run_id", "rows", "file", "meta"):
            df[col] = _infer_column(df[col])
    return df


# ---------------------------------------------------------------- card
def write_card(path: str | os.PathLike, *, title: str | None = None,
               description: str = "", how_made: str = "",
               extra_sections: Mapping[str, str] | None = None) -> Path:
    """Write the dataset card ``README.md`` from what is in the folder, atomically.

    The card lists what the dataset holds (runs, parameter values, row counts per run
    and in total, failed runs), how it was made (``how_made``: e.g. the command that
    regenerates it), the trace schema and how to load it.
    """
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    info = runs(root)
    failures = failed_runs(root)
    title = title or root.name
    params = [c for c in info.columns if c not in ("run_id", "rows", "file", "meta")]
    total = int(info["rows"].sum()) if len(info) else 0
    lines = [f"# {title}", ""]
    if description:
        lines += [description.strip(), ""]
    lines += ["## What it holds", "",
              f"- {len(info)} finished runs, {total:,} trace rows (events) in total.",
              f"- {len(failures)} failed runs (records in `{FAILURES_DIR}/`).",
              f"- Partitioned by: {', '.join(f'`{p}`' for p in params) or '(nothing)'}."]
    for p in params:
        values = sorted({str(v) for v in info[p].tolist()})
        lines.append(f"  - `{p}`: {', '.join(values)}")
    versions = sorted({json.dumps(m.get("versions", {}), sort_keys=True)
                       for m in info.get("meta", [])}) if len(info) else []
    if versions:
        lines.append(f"- Software versions: {'; '.join(versions)}.")
    lines += ["", "## How it was made", "", how_made.strip() or "(not stated)", "",
              "## Runs", "", "| run_id | " + " | ".join(params) + " | rows |",
              "|---|" + "---|" * len(params) + "---:|"]
    for _, r in info.iterrows():
        lines.append(f"| {r['run_id']} | " + " | ".join(str(r[p]) for p in params)
                     + f" | {r['rows']:,} |")
    if failures:
        lines += ["", "## Failed runs", "", "| run_id | params | error |", "|---|---|---|"]
        for rid, rec in failures.items():
            err = rec.get("error", {})
            msg = f"{err.get('type', '')}: {err.get('message', '')}".replace("|", "\\|")
            msg = msg.replace("\n", " ")[:200]
            lines.append(f"| {rid} | `{json.dumps(rec.get('params', {}), sort_keys=True)}` "
                         f"| {msg} |")
    lines += ["", "## Schema", "",
              "One row per event (see `wtlab.trace.schema`); partition columns and `run_id` "
              "are added on load.", "", "| column | dtype |", "|---|---|"]
    lines += [f"| `{c}` | {schema.DTYPES[c]} |" for c in schema.COLUMNS]
    lines += ["| `run_id` | category (16 hex digits from the parameters) |", "",
              "## Loading", "", "```python",
              "import wtlab.datasets", f"df = wtlab.datasets.load({str(root)!r})",
              "import pandas as pd  # the card is not Parquet: tell pyarrow to skip it",
              f"df = pd.read_parquet({str(root)!r}, ignore_prefixes=['README', '.', '_'])",
              "import duckdb",
              f"duckdb.sql(\"select * from read_parquet('{root}/**/*.parquet', "
              "hive_partitioning=true)\")",
              "```", ""]
    for name, text in (extra_sections or {}).items():
        lines += [f"## {name}", "", text.strip(), ""]
    return write_text_atomic(root / CARD_NAME, "\n".join(lines))


# ---------------------------------------------------------------- batch write and load
def _unpack_run(item: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    if isinstance(item, Mapping):
        trace = item.get("trace", item.get("frame", item.get("recorder")))
        return trace, dict(item.get("params") or {}), dict(item.get("meta") or {})
    if isinstance(item, tuple) and len(item) in (2, 3):
        return item[0], dict(item[1]), dict(item[2]) if len(item) == 3 else {}
    if hasattr(item, "meta") and hasattr(item, "to_pandas"):  # a Recorder
        params = item.meta.get("params")
        if not params:
            raise ConfigError("a Recorder passed to datasets.write needs meta['params'] "
                              "(the run parameters); or pass (recorder, params) tuples")
        return item, dict(params), {}
    raise ConfigError(f"cannot read a run from {type(item).__name__}; pass (trace, params), "
                      "(trace, params, meta), a dict with trace/params/meta, or a Recorder "
                      "with meta['params']")


def write(runs_: Iterable[Any], path: str | os.PathLike, *, title: str | None = None,
          description: str = "", how_made: str = "",
          partition_by: Sequence[str] | None = None) -> Path:
    """Write several runs and the card; returns the dataset folder.

    Each run is ``(trace, params)``, ``(trace, params, meta)``, a dict with ``trace``,
    ``params`` and optionally ``meta``, or a Recorder whose ``meta["params"]`` holds the
    parameters. Traces are Recorders or trace DataFrames.
    """
    root = Path(path)
    for item in runs_:
        trace, params, meta = _unpack_run(item)
        write_run(root, trace, params, meta, partition_by=partition_by)
    write_card(root, title=title, description=description, how_made=how_made)
    return root


def _infer_column(values: pd.Series) -> pd.Series:
    """Partition values (decoded text) -> int, float, bool or string column."""
    vals = values.tolist()
    present = [v for v in vals if v is not None]
    if present and all(isinstance(v, str) for v in present):
        if all(v in ("true", "false") for v in present):
            return pd.Series([None if v is None else v == "true" for v in vals],
                             index=values.index, dtype="boolean")
        try:
            ints = [None if v is None else int(v) for v in present]
            if all(str(i) == v for i, v in zip(ints, present, strict=True)):
                return pd.Series([None if v is None else int(v) for v in vals],
                                 index=values.index, dtype="Int64")
        except ValueError:
            pass
        try:
            [float(v) for v in present]
            return pd.Series([None if v is None else float(v) for v in vals],
                             index=values.index, dtype="float64")
        except ValueError:
            pass
    return values.astype("category")


def _match(value: Any, op: str, target: Any) -> bool:
    if op in ("=", "=="):
        return value == target
    if op == "!=":
        return value != target
    if op == "in":
        return value in target
    if op in ("not in", "not_in"):
        return value not in target
    if value is None:
        return False
    try:
        return {"<": value < target, "<=": value <= target, ">": value > target,
                ">=": value >= target}[op]
    except KeyError:
        raise ConfigError(f"filter operator {op!r} is not one of =, !=, <, <=, >, >=, in, "
                          "not in") from None
    except TypeError as exc:
        raise ConfigError(f"cannot compare {value!r} {op} {target!r}: {exc}") from None


def _normalise_filters(filters: Any) -> list[tuple[str, str, Any]]:
    if filters is None:
        return []
    if isinstance(filters, Mapping):
        out = []
        for k, v in filters.items():
            if isinstance(v, (list, tuple, set, frozenset)):
                out.append((k, "in", list(v)))
            else:
                out.append((k, "=", v))
        return out
    out = []
    for f in filters:
        if not (isinstance(f, (tuple, list)) and len(f) == 3):
            raise ConfigError(f"filter {f!r} must be a (column, op, value) triple or use a dict")
        out.append((str(f[0]), str(f[1]).lower(), f[2]))
    return out


def load(path: str | os.PathLike, filters: Any = None, *,
         columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read dataset ``path`` into one trace DataFrame with ``run_id`` and partition columns.

    ``filters``: ``{"algo": "cubic", "seed": [1, 2]}`` (equal / one of), or a list of
    ``(column, op, value)`` triples with op in ``= != < <= > >= in "not in"``. Filters on
    parameters prune whole files before reading; filters on trace columns (e.g.
    ``("kind", "=", "packet_lost")``) are pushed into the Parquet reader. ``columns``
    limits the trace columns read (schema columns not read come back as NA).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"dataset folder {str(root)!r} does not exist; write one with "
                          "wtlab.datasets.write or write_run")
    files = _part_files(root)
    info = [(f, {k: _decode_value(v) for k, v in _partition_values(root, f).items()})
            for f in files]
    param_names: list[str] = []
    for _, pv in info:
        for k in pv:
            if k not in param_names:
                param_names.append(k)
    # A parameter's type comes from all its values in the dataset (as in ``runs``).
    typed: dict[str, list[Any]] = {}
    dtypes: dict[str, Any] = {}
    for k in param_names:
        col = _infer_column(pd.Series([pv.get(k) for _, pv in info], dtype=object))
        typed[k] = col.tolist()
        dtypes[k] = col.dtype
    flist = _normalise_filters(filters)
    param_filters = [f for f in flist if f[0] in param_names]
    row_filters = [f for f in flist if f[0] not in param_names]
    for name, _, _ in row_filters:
        if name not in schema.DTYPES and name != "run_id":
            raise ConfigError(f"filter column {name!r} is neither a parameter "
                              f"({param_names}) nor a trace column")
    frames = []
    for i, (f, _) in enumerate(info):
        values = {k: typed[k][i] for k in param_names}
        values = {k: (None if v is pd.NA else v) for k, v in values.items()}
        if not all(_match(values[k], op, v) for k, op, v in param_filters):
            continue
        try:
            table = pq.read_table(f, columns=list(columns) + ["run_id"] if columns else None,
                                  filters=_arrow_filters(row_filters) if row_filters else None)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise TraceFormatError(f"cannot read dataset part ({exc})", path=str(f)) from exc
        df = table.to_pandas()
        for k in param_names:
            df[k] = values[k]
        frames.append(df)
    if not frames:
        out = schema.empty_frame()
        out["run_id"] = pd.Categorical([])
        for k in param_names:
            out[k] = pd.Series([], dtype=dtypes[k])
        return out
    out = schema.concat(frames)
    out["run_id"] = out["run_id"].astype(str).astype("category")
    for k in param_names:
        out[k] = pd.Series(out[k].astype(object).where(out[k].notna(), None).tolist(),
                           index=out.index, dtype=dtypes[k])
    return out


def _arrow_filters(flist: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    ops = {"=": "=", "==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
           "in": "in", "not in": "not in", "not_in": "not in"}
    out = []
    for k, op, v in flist:
        if op not in ops:
            raise ConfigError(f"filter operator {op!r} is not one of {sorted(set(ops))}")
        out.append((k, ops[op], v))
    return out
