"""Trace recording, DataFrame views, export and import.

* :class:`Recorder` collects events (64-byte packed records); ``to_pandas()`` gives the
  tidy table described in :mod:`wtlab.trace.schema`; :func:`merge` joins runs.
* :mod:`wtlab.trace.export`: Parquet (with run metadata) and CSV, written atomically.
* :mod:`wtlab.trace.qlog`: qlog JSON / JSON-SEQ out (IETF or legacy 0.3 names) and in
  (aioquic, picoquic draft-00, quic-go draft-02, current IETF drafts).
* :mod:`wtlab.trace.mahimahi`: Mahimahi link logs in, delivered/queued/drop views.
* :mod:`wtlab.trace.monitor`: :class:`PerformanceMonitor`, per-flow and per-stream
  performance tables computed from a trace.
"""

from wtlab.trace.export import (
    read_csv,
    read_parquet,
    read_trace,
    write_csv,
    write_parquet,
    write_trace,
)
from wtlab.trace.monitor import PerformanceMonitor
from wtlab.trace.qlog import parse_qlog, read_qlog, write_qlog
from wtlab.trace.recorder import Recorder, merge
from wtlab.trace.schema import concat, conform

__all__ = [
    "PerformanceMonitor",
    "Recorder",
    "concat",
    "conform",
    "merge",
    "parse_qlog",
    "read_csv",
    "read_parquet",
    "read_qlog",
    "read_trace",
    "write_csv",
    "write_parquet",
    "write_qlog",
    "write_trace",
]
