"""Performance tables of a trace: per flow, per stream, per message and over time.

::

    mon = PerformanceMonitor(rec)          # a Recorder or a trace DataFrame
    mon.summary()        # one row per flow: every figure of wtlab.trace.metrics, plus
                         # byte counters, RTT p99 and jitter, cwnd range, message stats
    mon.per_stream()     # one row per (flow, stream_id); datagram messages: stream_id <NA>
    mon.timeseries(0.1)  # one row per (flow, 100 ms bin): rates, losses, RTT, cwnd
    mon.messages()       # one row per message: sent, acked, delivered, latency, outcome

This is a view: every number comes from :mod:`wtlab.trace.metrics`, where each figure
is defined once (its :data:`~wtlab.trace.metrics.FLOW_METRICS`,
:data:`~wtlab.trace.metrics.DETAIL_METRICS` and
:data:`~wtlab.trace.metrics.MESSAGE_METRICS` say what each column means). The window
is the whole trace, from 0 to its last row. Per stream, ``delivered_bps`` is the bytes
of messages delivered on the stream (else of stream data received) x 8 over the
stream's first to last row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError
from wtlab.trace import metrics as M
from wtlab.trace import schema

SUMMARY_COLUMNS = [m.name for m in M.FLOW_METRICS + M.DETAIL_METRICS + M.MESSAGE_METRICS]
PER_STREAM_COLUMNS = [
    "flow", "stream_id", "first_s", "last_s", "stream_bytes_sent", "stream_bytes_received",
    "message_bytes_sent", "message_bytes_delivered",
    *(m.name for m in M.MESSAGE_METRICS), "delivered_bps"]
TIMESERIES_COLUMNS = M.TIMESERIES_COLUMNS


def _frame(trace: Any) -> pd.DataFrame:
    if hasattr(trace, "to_pandas") and hasattr(trace, "meta"):
        trace = trace.to_pandas()
    if not isinstance(trace, pd.DataFrame):
        raise ConfigError(f"PerformanceMonitor needs a Recorder or a trace DataFrame, "
                          f"got {type(trace).__name__}")
    return schema.conform(trace)


class PerformanceMonitor:
    """Per-flow, per-stream and over-time performance of one trace."""

    def __init__(self, trace: Any, *, match_flows: bool = True) -> None:
        self.df = _frame(trace)
        self.match_flows = match_flows

    def messages(self) -> pd.DataFrame:
        """One row per message (:func:`wtlab.trace.metrics.message_table`)."""
        return M.message_table(self.df, match_flows=self.match_flows)

    def summary(self) -> pd.DataFrame:
        """One row per flow over the whole trace (see the module docstring)."""
        df = self.df
        if not len(df):
            return pd.DataFrame(columns=SUMMARY_COLUMNS)
        end = float(df["time_s"].max())
        flows = sorted(int(f) for f in df["flow"].unique())
        table = M.flow_metrics(df, from_s=0.0, to_s=end,
                               labels={f: f"flow {f}" for f in flows})
        msgs = self.messages()
        rows = []
        for f in table["flow"]:
            mine = msgs[msgs["flow"] == f] if len(msgs) else msgs
            rows.append({**M.flow_detail(df, f, 0.0, end), **M.message_stats(mine)})
        extra = pd.DataFrame(rows, index=table.index)
        table = table.drop(columns=[c for c in extra.columns if c in table.columns])
        return pd.concat([table, extra], axis=1)[SUMMARY_COLUMNS]

    def per_stream(self) -> pd.DataFrame:
        """One row per (flow, stream_id) with stream or message rows (module docstring)."""
        df = self.df
        kind = df["kind"].astype(str)
        msgs = self.messages()
        s = df[df["stream_id"].notna() | kind.str.startswith("message_")]
        rows = []
        if not len(s):
            return pd.DataFrame(rows, columns=PER_STREAM_COLUMNS)
        for (flow, sid), g in s.groupby(["flow", "stream_id"], dropna=False, sort=True):
            k = g["kind"].astype(str)
            t0, t1 = float(g["time_s"].min()), float(g["time_s"].max())
            sid_na = sid is pd.NA or (isinstance(sid, float) and np.isnan(sid))
            if len(msgs):
                mm = msgs[(msgs["flow"] == flow) & (msgs["stream_id"].isna() if sid_na
                                                   else msgs["stream_id"] == sid)]
            else:
                mm = msgs
            delivered_bytes = int(mm.loc[mm["outcome"].astype(str).isin(
                ["delivered", "acked"]), "bytes"].sum()) if len(mm) else 0
            recv_bytes = int(g.loc[k == "stream_data_received", "bytes"].sum())
            span = t1 - t0
            rows.append({
                "flow": int(flow), "stream_id": pd.NA if sid_na else int(sid),
                "first_s": t0, "last_s": t1,
                "stream_bytes_sent": int(g.loc[k == "stream_data_sent", "bytes"].sum()),
                "stream_bytes_received": recv_bytes,
                "message_bytes_sent": int(mm["bytes"][mm["sent_s"].notna()].sum())
                if len(mm) else 0,
                "message_bytes_delivered": delivered_bytes,
                **M.message_stats(mm),
                "delivered_bps": (delivered_bytes or recv_bytes) * 8 / span if span > 0
                else float("nan")})
        out = pd.DataFrame(rows, columns=PER_STREAM_COLUMNS)
        out["stream_id"] = out["stream_id"].astype("Int64")
        return out

    def timeseries(self, bin_s: float = 0.1) -> pd.DataFrame:
        """One row per (flow, ``bin_s`` bin): :func:`wtlab.trace.metrics.timeseries`."""
        return M.timeseries(self.df, bin_s)
