"""Trace datasets: one Parquet file per run, typed, that every reader opens as it is.

Layout::

    DATASET/
      README.md                  the card: every column with unit and meaning, the
                                 parameters with their values, how it was made
      data/part-<run_id>.parquet one file per run, and nothing else
      _failures/<run_id>.json    runs that raised (``write_failure``)

What a user may rely on:

* ``DATASET/data`` holds only Parquet files, so each of these opens it with no options
  and gets typed columns (numbers as numbers, names as categories)::

      pandas.read_parquet("DATASET/data")
      pyarrow.dataset.dataset("DATASET/data").to_table()
      polars.read_parquet("DATASET/data")
      duckdb.sql("select * from read_parquet('DATASET/data')")
      dask.dataframe.read_parquet("DATASET/data")

  (``wtlab.datasets.load("DATASET")`` does the same, with filters.)
* Every part holds the trace schema (``wtlab.trace.schema``), ``run_id`` and the run's
  parameters as typed columns: ``int`` -> int64, ``float`` -> float64, ``bool`` -> bool,
  ``str`` -> dictionary (a category), ``None`` -> null of the parameter's type. A
  parameter has one type in the whole dataset: an integer parameter that later gets a
  float (``buffer_bdp: [2, 0.5]``) becomes float64 in every part (earlier parts are
  rewritten), and incompatible values make it text. Parts keep the run metadata as JSON
  under ``wtlab`` in their Parquet schema metadata.
* Writes are atomic (temporary dot-file + ``os.replace``) and follow the umask, so a
  crashed sweep never leaves half a part, several processes may add runs at once, and a
  colleague on the same machine can read the files.
* The run id derives from the parameters only (:func:`run_id`), so it is stable across
  processes: :func:`finished_runs` tells a resumed sweep what to skip.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wtlab.errors import ConfigError, TraceFormatError
from wtlab.trace import schema
from wtlab.trace.export import as_frame, meta_json
from wtlab.trace.files import atomic_path, write_text

PART_PREFIX = "part-"
DATA_DIR = "data"
FAILURES_DIR = "_failures"
CARD_NAME = "README.md"
TYPES_NAME = "_parameters.json"  # parameter -> type, kept beside the data (not in it)

__all__ = ["run_id", "write_run", "write_failure", "finished_runs", "failed_runs",
           "write_card", "write", "load", "runs", "data_dir", "COLUMN_DOCS"]

COLUMN_DOCS = schema.COLUMN_DOCS  # column -> (unit, meaning), defined with the schema

# unit of a parameter from its name's suffix (the project's naming rule)
_UNIT_SUFFIXES = (("_mbps", "Mbit/s"), ("_kbps", "kbit/s"), ("_bps", "bit/s"),
                  ("_ms", "ms"), ("_us", "us"), ("_s", "s"), ("_pct", "%"),
                  ("_bdp", "bandwidth-delay products"), ("_bytes", "bytes"),
                  ("_hz", "1/s"), ("_pkts", "packets"))


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
                              "(letters, digits, underscores), it becomes a column")
        if key in schema.DTYPES or key in ("run_id", "path_id"):
            raise ConfigError(f"parameter name {key!r} collides with a trace column; rename it")
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy scalar
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"parameter {key!r}={value!r}: values must be str, int, float, "
                              "bool or None")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"parameter {key!r}={value!r}: use a finite number")
        if value == "":
            raise ConfigError(f"parameter {key!r} is an empty string; use None or a name")
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


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"


def _unify(a: str, b: str) -> str:
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    if {a, b} == {"int64", "float64"}:
        return "float64"
    return "string"


def _arrow_type(name: str):
    import pyarrow as pa

    return {"null": pa.float64(), "bool": pa.bool_(), "int64": pa.int64(),
            "float64": pa.float64(),
            "string": pa.dictionary(pa.int32(), pa.string())}[name]


def _value_text(value: Any) -> str:
    """A parameter value as the card and a text column show it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def data_dir(path: str | os.PathLike) -> Path:
    """The folder of dataset ``path`` that holds its Parquet parts (and nothing else)."""
    return Path(path) / DATA_DIR


def _read_types(root: Path) -> dict[str, str]:
    f = root / TYPES_NAME
    if not f.exists():
        return {}
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise TraceFormatError(f"parameter types are not valid JSON ({exc})",
                               path=str(f)) from None
    return {str(k): str(v) for k, v in d.items()} if isinstance(d, dict) else {}


def _retype_parts(root: Path, name: str, type_name: str) -> None:
    """Give parameter column ``name`` type ``type_name`` in every part that differs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = _arrow_type(type_name)
    for f in _part_files(root):
        sch = pq.read_schema(f)
        i = sch.get_field_index(name)
        if i < 0 or sch.field(i).type == target:
            continue
        table = pq.read_table(f)
        col = table.column(i)
        if type_name == "string":
            texts = [None if v is None else _value_text(v) for v in col.to_pylist()]
            new = pa.array(texts, pa.string()).dictionary_encode()
        else:
            new = col.cast(target)
        table = table.set_column(i, pa.field(name, target), new)
        with atomic_path(f, suffix=".parquet.tmp") as tmp:
            pq.write_table(table, tmp, compression="zstd")


def _settle_types(root: Path, params: Mapping[str, Any]) -> dict[str, str]:
    """The dataset's parameter types once ``params`` joins it (earlier parts retyped)."""
    known = _read_types(root)
    types = dict(known)
    for k, v in params.items():
        types[k] = _unify(types.get(k, "null"), _type_of(v))
    changed = {k: t for k, t in types.items() if known.get(k) != t}
    for k, t in changed.items():
        if k in known:  # parts already written with another type
            _retype_parts(root, k, t)
    if changed:
        write_text(root / TYPES_NAME, json.dumps(types, indent=1, sort_keys=True) + "\n")
    return types


def _param_column(value: Any, type_name: str, n: int):
    import pyarrow as pa

    if type_name == "string":
        text = None if value is None else _value_text(value)
        return pa.array([text] * n, pa.string()).dictionary_encode() if n else pa.array(
            [], pa.string()).dictionary_encode()
    return pa.array([value] * n, _arrow_type(type_name))


# ---------------------------------------------------------------- streaming writes
def write_run(path: str | os.PathLike, frame: Any, params: Mapping[str, Any],
              meta: Mapping[str, Any] | None = None, *,
              partition_by: Sequence[str] | None = None) -> Path:
    """Write one run's trace into dataset ``path``; returns the Parquet file written.

    ``frame`` is a trace DataFrame or a Recorder. ``params`` (name -> str/int/float/bool/
    None) become typed columns of the part and make its run id. ``meta`` is kept with the
    file (merged over the recorder's/``attrs`` metadata). Writing the same params again
    replaces that run's file; a failure record for it is removed. ``partition_by`` is
    accepted for older callers and ignored (parameters are columns now).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wtlab.trace.export import to_arrow

    del partition_by
    p = _check_params(params)
    rid = run_id(p)
    root = Path(path)
    _check_layout(root)
    df, rec_meta = as_frame(frame)
    if meta:
        rec_meta.update(meta)
    rec_meta.update({"params": p, "dataset_run_id": rid})
    df = schema.conform(df)
    df = df.drop(columns=[c for c in df.columns if c in p or c == "run_id"])
    table = to_arrow(df, rec_meta)
    n = table.num_rows
    table = table.append_column(pa.field("run_id", pa.dictionary(pa.int32(), pa.string())),
                                pa.array([rid] * n, pa.string()).dictionary_encode())
    types = _settle_types(root, p)
    for k, v in p.items():
        table = table.append_column(pa.field(k, _arrow_type(types[k])),
                                    _param_column(v, types[k], n))
    target = data_dir(root) / f"{PART_PREFIX}{rid}.parquet"
    with atomic_path(target, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    failure = root / FAILURES_DIR / f"{rid}.json"
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
    write_text(target, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return target


def _check_layout(root: Path) -> None:
    """Refuse the key=value folders of wtlab's first dataset layout (never mixed in)."""
    if root.is_dir() and any(c.is_dir() and "=" in c.name for c in root.iterdir()):
        raise TraceFormatError(
            "this dataset uses wtlab's old key=value folder layout; regenerate it (its "
            "README.md says how) or write into a new folder", path=str(root))


def _part_files(root: Path) -> list[Path]:
    d = data_dir(root)
    if not d.is_dir():
        _check_layout(root)
        return []
    return sorted(f for f in d.glob(f"{PART_PREFIX}*.parquet") if f.is_file())


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


def _typed(values: list[Any]) -> pd.Series:
    """Parameter values (JSON-typed) -> Int64, float64, boolean or category column."""
    present = [v for v in values if v is not None]
    kinds = {_type_of(v) for v in present}
    if kinds == {"bool"}:
        return pd.Series(values, dtype="boolean")
    if kinds == {"int64"}:
        return pd.Series(values, dtype="Int64")
    if kinds and kinds <= {"int64", "float64"}:
        return pd.Series([math.nan if v is None else float(v) for v in values],
                         dtype="float64")
    return pd.Series([None if v is None else _value_text(v) for v in values],
                     dtype="category")


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
        rows.append((_rid_of(f), dict(meta.get("params") or {}), md.num_rows,
                     str(f.relative_to(root)), meta))
    names: list[str] = []
    if rows:  # the grid's order, as the parts hold the columns
        first = pq.read_schema(root / rows[0][3]).names
        names = [c for c in first if c in rows[0][1]]
    for _, params, *_ in rows:
        names += [k for k in params if k not in names]
    out = pd.DataFrame({"run_id": [r[0] for r in rows]})
    for k in names:
        out[k] = _typed([r[1].get(k) for r in rows])
    out["rows"] = [r[2] for r in rows]
    out["file"] = [r[3] for r in rows]
    out["meta"] = [r[4] for r in rows]
    return out


# ---------------------------------------------------------------- card
def _param_docs(extra_sections: Mapping[str, str] | None) -> dict[str, str]:
    """Meanings of parameters from bullet lines ``- `name`: meaning`` of extra sections."""
    out = {}
    for text in (extra_sections or {}).values():
        for m in re.finditer(r"^\s*[-*]\s+`([A-Za-z_][A-Za-z0-9_]*)`:\s*(.+)$", text, re.M):
            out.setdefault(m.group(1), m.group(2).strip())
    return out


def _type_label(arrow_type: str) -> str:
    """A column's Parquet/Arrow type as the card names it."""
    if arrow_type.startswith("dictionary") or arrow_type in ("string", "category"):
        return "category" if arrow_type != "string" else "string"
    return {"double": "float64", "float": "float32", "null": "float64", "bool": "bool",
            "int64": "int64", "uint16": "uint16", "float64": "float64"}.get(
        arrow_type, arrow_type)


def _unit(name: str) -> str:
    return next((u for suffix, u in _UNIT_SUFFIXES if name.endswith(suffix)), "")


def write_card(path: str | os.PathLike, *, title: str | None = None,
               description: str = "", how_made: str = "",
               extra_sections: Mapping[str, str] | None = None,
               param_docs: Mapping[str, str] | None = None) -> Path:
    """Write the dataset card ``README.md`` from what is in the folder, atomically.

    The card lists what the dataset holds (runs, the parameters with their values, row
    counts, failed runs), every column with its type, unit and meaning (``param_docs``
    or ``- `name`: meaning`` bullets of ``extra_sections`` for the parameters), how it was
    made (``how_made``: e.g. the command that regenerates it) and how to open it. It also
    makes parameter types agree in every part (after concurrent writers).
    """
    import pyarrow.parquet as pq

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    info = runs(root)
    types = _read_types(root)
    for k, t in types.items():
        _retype_parts(root, k, t)
    failures = failed_runs(root)
    title = title or root.name
    params = [c for c in info.columns if c not in ("run_id", "rows", "file", "meta")]
    docs = {**_param_docs(extra_sections), **(param_docs or {})}
    total = int(info["rows"].sum()) if len(info) else 0
    arrow_types = {}
    if len(info):
        sch = pq.read_schema(root / info["file"].iloc[0])
        arrow_types = {f.name: str(f.type) for f in sch}
    lines = [f"# {title}", ""]
    if description:
        lines += [description.strip(), ""]
    lines += ["## What it holds", "",
              f"- {len(info)} finished runs, {total:,} trace rows (events) in total, one "
              f"Parquet file per run in `{DATA_DIR}/`.",
              f"- {len(failures)} failed runs (records in `{FAILURES_DIR}/`).",
              f"- Parameters: {', '.join(f'`{p}`' for p in params) or '(none)'}."]
    for p in params:  # the values as the runs were given them
        given = {m.get("params", {}).get(p) for m in info["meta"]}
        values = [_value_text(v) for v in sorted(
            (v for v in given if v is not None),
            key=lambda v: (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)))]
        if None in given:
            values.append("null")
        label = _type_label(arrow_types.get(p, types.get(p, "")))
        lines.append(f"  - `{p}` ({label}): {', '.join(values)}")
    versions = sorted({json.dumps(m.get("versions", {}), sort_keys=True)
                       for m in info["meta"]}) if len(info) else []
    if versions:
        lines.append(f"- Software versions: {'; '.join(versions)}.")
    lines += ["", "## How it was made", "", how_made.strip() or "(not stated)", "",
              "Regenerating it gives the same runs (run ids come from the parameters) and, "
              "for deterministic engines, the same rows.", "",
              "## Columns", "",
              "Every part has these columns, typed (no reader needs options).", "",
              "| column | type | unit | meaning |", "|---|---|---|---|"]
    for c in (*schema.COLUMNS, "run_id"):
        unit, meaning = COLUMN_DOCS[c]
        lines.append(f"| `{c}` | {_type_label(arrow_types.get(c, schema.DTYPES.get(c, '')))}"
                     f" | {unit} | {meaning} |")
    for p in params:
        lines.append(f"| `{p}` | {_type_label(arrow_types.get(p, types.get(p, '')))} | "
                     f"{_unit(p)} | {docs.get(p, 'run parameter')} |")
    d = f"{root}/{DATA_DIR}"
    lines += ["", "## Opening it", "",
              f"`{DATA_DIR}/` holds only Parquet files: open it with no options.", "",
              "```python", "import pandas as pd", f"df = pd.read_parquet({d!r})",
              "import pyarrow.dataset as ds", f"table = ds.dataset({d!r}).to_table()",
              "import polars as pl", f"df = pl.read_parquet({d!r})",
              "import duckdb", f"duckdb.sql(\"select * from read_parquet('{d}')\")",
              "import dask.dataframe as dd", f"ddf = dd.read_parquet({d!r})",
              "import wtlab.datasets  # with filters on parameters and trace columns",
              f"df = wtlab.datasets.load({str(root)!r}, filters={{'algo': 'cubic'}})",
              "```", "", "## Runs", "",
              "| run_id | " + " | ".join(params) + " | rows |",
              "|---|" + "---|" * len(params) + "---:|"]
    for _, r in info.iterrows():
        vals = ["null" if pd.isna(r[p]) else _value_text(r[p]) for p in params]
        lines.append(f"| {r['run_id']} | " + " | ".join(vals) + f" | {r['rows']:,} |")
    if failures:
        lines += ["", "## Failed runs", "", "| run_id | params | error |", "|---|---|---|"]
        for rid, rec in failures.items():
            err = rec.get("error", {})
            msg = f"{err.get('type', '')}: {err.get('message', '')}".replace("|", "\\|")
            msg = msg.replace("\n", " ")[:200]
            lines.append(f"| {rid} | `{json.dumps(rec.get('params', {}), sort_keys=True)}` "
                         f"| {msg} |")
    for name, text in (extra_sections or {}).items():
        lines += ["", f"## {name}", "", text.strip()]
    return write_text(root / CARD_NAME, "\n".join(lines) + "\n")


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
          partition_by: Sequence[str] | None = None,
          param_docs: Mapping[str, str] | None = None) -> Path:
    """Write several runs and the card; returns the dataset folder.

    Each run is ``(trace, params)``, ``(trace, params, meta)``, a dict with ``trace``,
    ``params`` and optionally ``meta``, or a Recorder whose ``meta["params"]`` holds the
    parameters. Traces are Recorders or trace DataFrames.
    """
    root = Path(path)
    for item in runs_:
        trace, params, meta = _unpack_run(item)
        write_run(root, trace, params, meta, partition_by=partition_by)
    write_card(root, title=title, description=description, how_made=how_made,
               param_docs=param_docs)
    return root


_OPS = {"=": "==", "==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
        "in": "in", "not in": "not in", "not_in": "not in"}


def _normalise_filters(filters: Any) -> list[tuple[str, str, Any]]:
    if filters is None:
        return []
    if isinstance(filters, Mapping):
        return [(k, "in", list(v)) if isinstance(v, (list, tuple, set, frozenset))
                else (k, "==", v) for k, v in filters.items()]
    out = []
    for f in filters:
        if not (isinstance(f, (tuple, list)) and len(f) == 3):
            raise ConfigError(f"filter {f!r} must be a (column, op, value) triple or use a dict")
        op = _OPS.get(str(f[1]).lower())
        if op is None:
            raise ConfigError(f"filter operator {f[1]!r} is not one of =, !=, <, <=, >, >=, "
                              "in, not in")
        out.append((str(f[0]), op, f[2]))
    return out


def _expression(flist: list[tuple[str, str, Any]]):
    import pyarrow.compute as pc

    expr = None
    for name, op, value in flist:
        field = pc.field(name)
        if op in ("in", "not in"):
            e = field.isin(list(value))
            e = ~e if op == "not in" else e
        else:
            e = {"==": field == value, "!=": field != value, "<": field < value,
                 "<=": field <= value, ">": field > value, ">=": field >= value}[op]
        expr = e if expr is None else expr & e
    return expr


def load(path: str | os.PathLike, filters: Any = None, *,
         columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read dataset ``path`` into one trace DataFrame with ``run_id`` and the parameters.

    ``filters``: ``{"algo": "cubic", "seed": [1, 2]}`` (equal / one of), or a list of
    ``(column, op, value)`` triples with op in ``= != < <= > >= in "not in"``, on
    parameters or trace columns (pushed into the Parquet reader). ``columns`` limits
    the trace columns read (schema columns not read come back as NA). Parameters come
    back as Int64, float64, boolean or category columns.
    """
    import pyarrow as pa
    import pyarrow.dataset as pa_ds

    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"dataset folder {str(root)!r} does not exist; write one with "
                          "wtlab.datasets.write or write_run")
    files = _part_files(root)
    types = _read_types(root)
    flist = _normalise_filters(filters)
    for name, _, _ in flist:
        if name not in schema.DTYPES and name != "run_id" and name not in types:
            raise ConfigError(f"filter column {name!r} is neither a parameter "
                              f"({sorted(types)}) nor a trace column")
    if not files:
        out = schema.empty_frame()
        out["run_id"] = pd.Categorical([])
        for k, t in types.items():
            out[k] = pd.Series([], dtype={"int64": "Int64", "bool": "boolean",
                                          "string": "category"}.get(t, "float64"))
        return out
    try:
        dataset = pa_ds.dataset([str(f) for f in files], format="parquet")
        cols = None
        if columns:
            cols = [c for c in dataset.schema.names
                    if c in columns or c not in schema.DTYPES]
        expr = _expression(flist) if flist else None
        table = dataset.to_table(columns=cols, filter=expr)
    except (OSError, ValueError, pa.ArrowException) as exc:
        bad = _first_bad(files)
        raise TraceFormatError(f"cannot read dataset part ({exc})",
                               path=str(bad or root)) from exc
    table = table.replace_schema_metadata(None)
    df = table.to_pandas()
    out = schema.conform(df, copy=False)
    out["run_id"] = out["run_id"].astype(str).astype("category")
    for k, t in types.items():
        if k not in out.columns:
            continue
        if t == "int64":
            out[k] = out[k].astype("Int64")
        elif t == "bool":
            out[k] = out[k].astype("boolean")
        elif t == "string":
            out[k] = out[k].astype("category")
    return out


def _first_bad(files: list[Path]) -> Path | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for f in files:
        try:
            pq.read_metadata(f)
        except (OSError, ValueError, pa.ArrowException):
            return f
    return None
