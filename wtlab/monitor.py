"""``wtlab.monitor``: per-stream and whole-session performance tables from a trace.

Everything here is computed from trace rows (a Recorder or its DataFrame), never from
a second set of counters; see :class:`wtlab.trace.monitor.PerformanceMonitor`.

    >>> from wtlab.monitor import PerformanceMonitor
    >>> mon = PerformanceMonitor(recorder)          # doctest: +SKIP
    >>> mon.summary(); mon.per_stream(); mon.timeseries(bin_s=0.5)   # doctest: +SKIP
"""

from wtlab.trace.monitor import PerformanceMonitor

__all__ = ["PerformanceMonitor"]
