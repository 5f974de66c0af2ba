"""Write traces to Parquet and CSV (qlog lives in ``wtlab.trace.qlog``), atomically.

Every writer here takes a :class:`~wtlab.trace.Recorder` or a trace DataFrame and
writes through :mod:`wtlab.trace.files`: a temporary file next to the target, fsync-ed
and ``os.replace``-d into place, with the ordinary file mode the umask gives (0644
under umask 022). A reader never sees a half-written file, and an error leaves the old
file (if any) untouched.

Parquet keeps everything: dtypes (categoricals as dictionary columns, nullable
integers, float32), columns beyond the schema (e.g. ``run_id``), and the run
metadata as JSON under the ``wtlab`` key of the file's schema metadata.
``read_parquet`` gives the frame back with that metadata in ``df.attrs["meta"]``.

CSV is plain text for other tools: one header line, text fields quoted, numbers bare,
a missing value as an *unquoted* empty field (pandas, polars and DuckDB all read it as
null, so numeric columns stay numeric), ``extra`` as its JSON text (pandas cannot tell
an empty ``extra`` text from a missing one: both read back as None); it carries no
metadata. A column with no value at all has no type in CSV (polars reads it as text
full of nulls).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from wtlab.errors import ConfigError, TraceFormatError
from wtlab.trace import schema
from wtlab.trace.files import atomic_path, write_text

META_KEY = b"wtlab"
__all__ = ["atomic_path", "write_text_atomic", "as_frame", "meta_json", "to_arrow",
           "write_parquet", "read_parquet", "read_meta", "write_csv", "read_csv",
           "write_trace", "read_trace"]


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, mode per the umask; returns the path."""
    return write_text(path, text)


def as_frame(trace: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame, meta) from a Recorder or a DataFrame (meta from ``df.attrs["meta"]``)."""
    if hasattr(trace, "to_pandas") and hasattr(trace, "meta"):
        return trace.to_pandas(), dict(trace.meta)
    if isinstance(trace, pd.DataFrame):
        return trace, dict(trace.attrs.get("meta") or {})
    raise ConfigError(
        f"expected a wtlab Recorder or a trace DataFrame, got {type(trace).__name__}"
    )


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def meta_json(meta: Mapping[str, Any]) -> str:
    """Run metadata as JSON text (non-JSON values become strings)."""
    return json.dumps(dict(meta), default=_json_default, sort_keys=True)


def to_arrow(trace: Any, meta: Mapping[str, Any] | None = None):
    """The trace as a ``pyarrow.Table`` with run metadata in the schema metadata."""
    import pyarrow as pa

    df, rec_meta = as_frame(trace)
    if meta:
        rec_meta.update(meta)
    df = schema.conform(df)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.cast(_fixed_schema(table.schema))
    md = dict(table.schema.metadata or {})
    md[META_KEY] = json.dumps(
        {"schema_version": schema.SCHEMA_VERSION, "meta": json.loads(meta_json(rec_meta))}
    ).encode()
    return table.replace_schema_metadata(md)


def arrow_schema_types():
    """Arrow types of the schema columns in files wtlab writes (the same in every file,
    so datasets of many parts read as one table: an all-NA ``extra`` is still text)."""
    import pyarrow as pa

    cat = pa.dictionary(pa.int32(), pa.string())
    return {"time_s": pa.float64(), "flow": pa.uint16(), "kind": cat, "pn": pa.int64(),
            "stream_id": pa.int64(), "bytes": pa.int64(), "cwnd": pa.int64(),
            "bytes_in_flight": pa.int64(), "ssthresh": pa.int64(),
            **{c: pa.float32() for c in schema.FLOAT32_COLUMNS},
            "state": cat, "extra": pa.string()}


def _fixed_schema(inferred):
    import pyarrow as pa

    types = arrow_schema_types()
    fields = []
    for f in inferred:
        t = types.get(f.name)
        if t is None:
            if pa.types.is_dictionary(f.type):
                t = pa.dictionary(pa.int32(), pa.string())
            elif pa.types.is_large_string(f.type) or pa.types.is_null(f.type):
                t = pa.string()
            else:
                t = f.type
        fields.append(pa.field(f.name, t))
    return pa.schema(fields, metadata=inferred.metadata)


def write_parquet(trace: Any, path: str | os.PathLike, *, meta: Mapping[str, Any] | None = None,
                  compression: str = "zstd") -> Path:
    """Write a trace (Recorder or DataFrame) to one Parquet file, atomically.

    ``meta`` is merged over the recorder's (or ``df.attrs["meta"]``) run metadata.
    """
    import pyarrow.parquet as pq

    table = to_arrow(trace, meta)
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp, compression=compression)
    return Path(path)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The run metadata stored in a wtlab Parquet file ({} if none)."""
    import pyarrow.parquet as pq

    try:
        md = pq.read_schema(path).metadata or {}
    except (OSError, ValueError) as exc:
        raise TraceFormatError(f"not a readable Parquet file ({exc})", path=str(path)) from exc
    return _decode_meta(md, path)


def _decode_meta(md: Mapping[bytes, bytes], path: Any) -> dict[str, Any]:
    raw = md.get(META_KEY)
    if raw is None:
        return {}
    try:
        return dict(json.loads(raw).get("meta") or {})
    except (ValueError, AttributeError) as exc:
        raise TraceFormatError(f"the wtlab metadata is not valid JSON ({exc})",
                               path=str(path)) from exc


def read_parquet(path: str | os.PathLike, *, columns: list[str] | None = None,
                 filters: Any = None) -> pd.DataFrame:
    """Read a Parquet trace back into the schema; run metadata in ``df.attrs["meta"]``.

    Files written by other tools load too, as long as their columns convert to the
    schema's (missing schema columns become NA).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=columns, filters=filters)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise TraceFormatError(f"not a readable Parquet file ({exc})", path=str(path)) from exc
    meta = _decode_meta(table.schema.metadata or {}, path)
    try:
        df = schema.conform(table.to_pandas(), copy=False)
    except (ValueError, TypeError) as exc:
        raise TraceFormatError(f"columns do not fit the trace schema ({exc})",
                               path=str(path)) from exc
    df.attrs["meta"] = meta
    return df


def write_csv(trace: Any, path: str | os.PathLike) -> Path:
    """Write a trace as CSV (header line, unquoted empty field for NA), atomically."""
    import pyarrow.csv as pa_csv

    table = to_arrow(trace)
    # Arrow quotes every text value (a lone "\r" in extra survives) and leaves a null
    # as a bare empty field, which every CSV reader takes for null
    opts = pa_csv.WriteOptions(include_header=True, quoting_style="needed")
    with atomic_path(path, suffix=".csv.tmp") as tmp:
        pa_csv.write_csv(table, str(tmp), opts)
    return Path(path)


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv` (or any CSV with schema columns)."""
    # exact dtypes up front: integers with NA must not pass through float64 (2**53)
    dtypes = {c: "string" for c in ("kind", "state", "extra")}
    dtypes.update({c: "Int64" for c in schema.INT_COLUMNS})
    dtypes.update({"bytes": "Int64", "flow": "Int64", "time_s": "float64"})
    try:
        df = pd.read_csv(path, dtype=dtypes,
                         keep_default_na=False, na_values={c: [""] for c in schema.COLUMNS})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise TraceFormatError(f"not a readable trace CSV ({exc})", path=str(path)) from exc
    if "kind" not in df.columns or "time_s" not in df.columns:
        raise TraceFormatError("a trace CSV needs at least the columns time_s and kind",
                               path=str(path), line=1)
    if "state" in df.columns:
        df["state"] = df["state"].fillna("")
    try:
        return schema.conform(df, copy=False)
    except (ValueError, TypeError) as exc:
        raise TraceFormatError(f"columns do not fit the trace schema ({exc})",
                               path=str(path)) from exc


# ---------------------------------------------------------------- by file name
_QLOG_SUFFIXES = (".qlog", ".sqlog", ".json", ".jsonseq")


def write_trace(trace: Any, path: str | os.PathLike, **options: Any) -> Path:
    """Write a trace in the format its file name says, atomically.

    ``.parquet``, ``.csv``, ``.qlog``/``.json`` (qlog JSON), ``.sqlog`` (qlog JSON-SEQ);
    ``options`` go to the writer (e.g. ``flavour="legacy"`` for qlog, ``meta=`` for Parquet).
    """
    from wtlab.trace import qlog

    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        return write_parquet(trace, path, **options)
    if suffix == ".csv":
        return write_csv(trace, path, **options)
    if suffix in _QLOG_SUFFIXES:
        return qlog.write_qlog(trace, path, **options)
    raise ConfigError(f"cannot tell the trace format from {str(path)!r}; use a name ending "
                      "in .parquet, .csv, .qlog, .json or .sqlog")


def read_trace(path: str | os.PathLike, **options: Any) -> pd.DataFrame:
    """Read a trace file into the schema, choosing the reader by file name.

    ``.parquet``, ``.csv``, qlog (``.qlog``, ``.sqlog``, ``.json``, ``.jsonseq``; any
    supported version) and Mahimahi link logs (``.log``, ``.mahimahi``).
    """
    from wtlab.trace import mahimahi, qlog

    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path, **options)
    if suffix == ".csv":
        return read_csv(path)
    if suffix in _QLOG_SUFFIXES:
        return qlog.read_qlog(path)
    if suffix in (".log", ".mahimahi"):
        return mahimahi.read_mahimahi(path, **options)
    raise ConfigError(f"cannot tell the trace format from {str(path)!r}; use .parquet, .csv, "
                      ".qlog, .sqlog, .json or a Mahimahi .log, or call the reader directly")
