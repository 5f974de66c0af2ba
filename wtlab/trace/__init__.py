"""Trace recording, DataFrame views, export and import.

* :class:`Recorder` collects events (68-byte packed records); ``to_pandas()`` gives the
  tidy table described in :mod:`wtlab.trace.schema`; :func:`merge` joins runs.
* :mod:`wtlab.trace.export`: Parquet (with run metadata) and CSV.
* :mod:`wtlab.trace.qlog`: qlog JSON / JSON-SEQ out, streamed (draft-ietf-quic-qlog
  main-schema-14 / quic-events-13, or qlog 0.3 for qvis: :mod:`~wtlab.trace.qlog_write`)
  and in (aioquic, quic-go, picoquic single and multipath, mvfst, IETF drafts:
  :mod:`~wtlab.trace.qlog_read`, :mod:`~wtlab.trace.qlog_columns` for wtlab's own files,
  :mod:`~wtlab.trace.qlog_acks` for acknowledgements), names in :mod:`~wtlab.trace.qlog_schema`.
* :mod:`wtlab.trace.files`: every file wtlab writes goes through it: atomic, and with
  the ordinary mode the umask gives.
* :mod:`wtlab.trace.mahimahi`: Mahimahi link logs in, delivered/queued/drop views.
* :mod:`wtlab.trace.monitor`: :class:`PerformanceMonitor`, per-flow and per-stream
  performance tables computed from a trace.

Only the recorder loads with the package (controllers and drivers write into it on
every packet); pandas, pyarrow and the readers and writers load on first use.
"""

import importlib

from wtlab.trace.recorder import Recorder, merge

_LAZY = {
    "read_csv": "wtlab.trace.export",
    "read_parquet": "wtlab.trace.export",
    "read_trace": "wtlab.trace.export",
    "write_csv": "wtlab.trace.export",
    "write_parquet": "wtlab.trace.export",
    "write_trace": "wtlab.trace.export",
    "PerformanceMonitor": "wtlab.trace.monitor",
    "parse_qlog": "wtlab.trace.qlog",
    "read_qlog": "wtlab.trace.qlog",
    "write_qlog": "wtlab.trace.qlog",
    "concat": "wtlab.trace.schema",
    "conform": "wtlab.trace.schema",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wtlab.trace' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["Recorder", "merge", *_LAZY]
