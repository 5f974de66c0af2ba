"""Performance tables computed from a trace (no second set of counters).

::

    mon = PerformanceMonitor(rec)          # a Recorder or a trace DataFrame
    mon.summary()        # one row per flow: bytes/packets sent, acked, lost, loss rate,
                         # goodput, RTT percentiles and jitter, cwnd stats, messages
    mon.per_stream()     # one row per (flow, stream_id); datagram messages: stream_id <NA>
    mon.timeseries(0.1)  # one row per (flow, 100 ms bin): rates, losses, RTT, cwnd
    mon.messages()       # one row per message: sent, acked, delivered, latency, outcome

Definitions (what the numbers mean, so they can be relied on):

* ``bytes_sent``/``packets_sent``: ``packet_sent`` rows; ``bytes_acked``: ``packet_acked``
  rows; ``bytes_lost``/``packets_lost``: ``packet_lost`` rows; ``loss_rate`` =
  packets_lost / packets_sent. ``bytes_received``: ``packet_received`` rows.
* ``duration_s``: first to last row of the flow. ``goodput_bps`` = bytes_acked x 8 /
  duration_s; ``send_rate_bps`` = bytes_sent x 8 / duration_s; ``receive_rate_bps`` =
  bytes_received x 8 / duration_s.
* RTT: the ``latest_rtt_s`` of ``rtt_sample`` rows (if a flow has none, of any row carrying
  one, e.g. imported ``metrics_updated``); ``rtt_p50_s``/``p95``/``p99``, ``rtt_mean_s``,
  ``rtt_min_s``; ``jitter_s`` = mean absolute difference of consecutive samples.
* cwnd: the ``cwnd`` column as a step function of time; ``cwnd_mean_bytes`` is its
  time-weighted mean over the flow's duration, plus min, max and last value.
* Messages: ``message_sent`` rows joined with ``message_acked`` (sender learns delivery),
  ``message_delivered``/``message_expired``/``message_dropped`` rows on (``flow``,
  ``stream_id``, ``pn``) (``pn`` is the message id); ``latency_s`` = first delivered (or
  acked if no delivery row) minus first sent. ``match_flows=False`` joins across flows
  (when sender and receiver record under different flow numbers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError
from wtlab.trace import schema

_MESSAGE_STATS = ["messages_sent", "messages_delivered", "messages_expired", "messages_dropped",
                  "messages_retransmitted", "message_latency_mean_s", "message_latency_p50_s",
                  "message_latency_p95_s", "message_latency_max_s"]
SUMMARY_COLUMNS = [
    "flow", "start_s", "end_s", "duration_s", "packets_sent", "bytes_sent", "packets_acked",
    "bytes_acked", "packets_lost", "bytes_lost", "packets_received", "bytes_received",
    "loss_rate", "goodput_bps", "send_rate_bps", "receive_rate_bps", "rtt_samples",
    "rtt_mean_s", "rtt_min_s", "rtt_p50_s", "rtt_p95_s", "rtt_p99_s", "jitter_s", "pto_count",
    "cwnd_mean_bytes", "cwnd_min_bytes", "cwnd_max_bytes", "cwnd_last_bytes", *_MESSAGE_STATS]
PER_STREAM_COLUMNS = [
    "flow", "stream_id", "first_s", "last_s", "stream_bytes_sent", "stream_bytes_received",
    "message_bytes_sent", "message_bytes_delivered", *_MESSAGE_STATS, "goodput_bps"]
TIMESERIES_COLUMNS = [
    "flow", "time_s", "sent_bps", "goodput_bps", "lost_bytes", "packets_lost", "rtt_mean_s",
    "cwnd_bytes", "bytes_in_flight", "messages_delivered", "delivered_bps"]
_MSG_END = {"message_delivered": "delivered", "message_expired": "expired",
            "message_dropped": "dropped"}


def _frame(trace: Any) -> pd.DataFrame:
    if hasattr(trace, "to_pandas") and hasattr(trace, "meta"):
        trace = trace.to_pandas()
    if not isinstance(trace, pd.DataFrame):
        raise ConfigError(f"PerformanceMonitor needs a Recorder or a trace DataFrame, "
                          f"got {type(trace).__name__}")
    df = schema.conform(trace)
    df["kind"] = df["kind"].astype(object).where(df["kind"].notna(), "").astype(str)
    return df


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


class PerformanceMonitor:
    """Per-flow, per-stream and over-time performance of one trace."""

    def __init__(self, trace: Any, *, match_flows: bool = True) -> None:
        self.df = _frame(trace)
        self.match_flows = match_flows

    # ------------------------------------------------------------------ helpers
    def _rtt(self, g: pd.DataFrame) -> np.ndarray:
        rtt = g.loc[g["kind"] == "rtt_sample", "latest_rtt_s"].to_numpy(np.float64)
        rtt = rtt[~np.isnan(rtt)]
        if not len(rtt):
            rtt = g["latest_rtt_s"].to_numpy(np.float64)
            rtt = rtt[~np.isnan(rtt)]
        return rtt

    @staticmethod
    def _cwnd_stats(g: pd.DataFrame, end_s: float) -> dict[str, float]:
        c = g[g["cwnd"].notna()]
        if not len(c):
            nan = float("nan")
            return {"cwnd_mean_bytes": nan, "cwnd_min_bytes": nan, "cwnd_max_bytes": nan,
                    "cwnd_last_bytes": nan}
        t = c["time_s"].to_numpy(np.float64)
        v = c["cwnd"].to_numpy(np.float64)
        dt = np.diff(np.append(t, max(end_s, t[-1])))
        mean = float((v * dt).sum() / dt.sum()) if dt.sum() > 0 else float(v.mean())
        return {"cwnd_mean_bytes": mean, "cwnd_min_bytes": float(v.min()),
                "cwnd_max_bytes": float(v.max()), "cwnd_last_bytes": float(v[-1])}

    # ------------------------------------------------------------------ tables
    def messages(self) -> pd.DataFrame:
        """One row per message seen: flow, stream_id, message_id, bytes, sent_s, acked_s,
        done_s, outcome (delivered/expired/dropped/acked/pending/received), latency_s,
        retransmissions (``message_retransmitted`` rows)."""
        df = self.df
        keys = ["flow", "stream_id", "pn"] if self.match_flows else ["stream_id", "pn"]
        m = df[df["kind"].str.startswith("message_")]
        cols = ["flow", "stream_id", "message_id", "bytes", "sent_s", "acked_s", "done_s",
                "outcome", "latency_s", "retransmissions"]
        if not len(m):
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})

        def first(kind: str, name: str) -> pd.DataFrame:
            sub = m[m["kind"] == kind]
            return (sub.groupby(keys, dropna=False, sort=False)
                    .agg(**{name: ("time_s", "min"), f"{name}_bytes": ("bytes", "max")})
                    .reset_index())

        sent = first("message_sent", "sent_s")
        acked = first("message_acked", "acked_s")
        ends = m[m["kind"].isin(list(_MSG_END))]
        done = (ends.sort_values("time_s", kind="stable")
                .groupby(keys, dropna=False, sort=False)
                .agg(done_s=("time_s", "first"), end_kind=("kind", "first"),
                     done_bytes=("bytes", "max"))
                .reset_index())
        retx = (m[m["kind"] == "message_retransmitted"].groupby(keys, dropna=False, sort=False)
                .size().rename("retransmissions").reset_index())
        out = sent.merge(acked, on=keys, how="outer").merge(done, on=keys, how="outer")
        out = out.merge(retx, on=keys, how="left")
        out["retransmissions"] = out["retransmissions"].fillna(0).astype(np.int64)
        if not self.match_flows:
            flows = m.groupby(keys, dropna=False, sort=False)["flow"].min().reset_index()
            out = out.merge(flows, on=keys, how="left")
        outcome = np.where(out["end_kind"].notna(), out["end_kind"].map(_MSG_END),
                           np.where(out["acked_s"].notna(), "acked",
                                    np.where(out["sent_s"].notna(), "pending", "received")))
        out["outcome"] = outcome
        out.loc[out["sent_s"].isna() & out["end_kind"].notna(), "outcome"] = out["end_kind"].map(
            _MSG_END)
        finish = out["done_s"].where(out["end_kind"] == "message_delivered", out["acked_s"])
        out["latency_s"] = finish - out["sent_s"]
        out["bytes"] = out[["sent_s_bytes", "acked_s_bytes", "done_bytes"]].max(axis=1)
        out = out.rename(columns={"pn": "message_id"})
        out["bytes"] = out["bytes"].fillna(0).astype(np.int64)
        out["outcome"] = out["outcome"].astype("category")
        return out[cols].sort_values(["flow", "sent_s", "done_s"], kind="stable",
                                     na_position="last").reset_index(drop=True)

    def _message_stats(self, msgs: pd.DataFrame) -> dict[str, float]:
        lat = msgs["latency_s"].to_numpy(np.float64)
        lat = lat[~np.isnan(lat)]
        oc = msgs["outcome"].astype(str)
        return {
            "messages_sent": int(msgs["sent_s"].notna().sum()),
            "messages_delivered": int((oc == "delivered").sum() + (oc == "acked").sum()),
            "messages_expired": int((oc == "expired").sum()),
            "messages_dropped": int((oc == "dropped").sum()),
            "messages_retransmitted": int(msgs["retransmissions"].sum()) if len(msgs) else 0,
            "message_latency_mean_s": float(lat.mean()) if len(lat) else float("nan"),
            "message_latency_p50_s": _pct(lat, 50),
            "message_latency_p95_s": _pct(lat, 95),
            "message_latency_max_s": float(lat.max()) if len(lat) else float("nan"),
        }

    def summary(self) -> pd.DataFrame:
        """One row per flow (see the module docstring for each column's meaning)."""
        df = self.df
        msgs = self.messages()
        rows = []
        for flow, g in df.groupby("flow", sort=True):
            t0, t1 = float(g["time_s"].min()), float(g["time_s"].max())
            dur = t1 - t0
            k = g["kind"]
            sent, acked, lost = g[k == "packet_sent"], g[k == "packet_acked"], g[k == "packet_lost"]
            recv = g[k == "packet_received"]
            rtt = self._rtt(g)
            row: dict[str, Any] = {
                "flow": int(flow), "start_s": t0, "end_s": t1, "duration_s": dur,
                "packets_sent": len(sent), "bytes_sent": int(sent["bytes"].sum()),
                "packets_acked": len(acked), "bytes_acked": int(acked["bytes"].sum()),
                "packets_lost": len(lost), "bytes_lost": int(lost["bytes"].sum()),
                "packets_received": len(recv), "bytes_received": int(recv["bytes"].sum()),
                "loss_rate": len(lost) / len(sent) if len(sent) else float("nan"),
                "goodput_bps": acked["bytes"].sum() * 8 / dur if dur > 0 else float("nan"),
                "send_rate_bps": sent["bytes"].sum() * 8 / dur if dur > 0 else float("nan"),
                "receive_rate_bps": recv["bytes"].sum() * 8 / dur if dur > 0 else float("nan"),
                "rtt_samples": len(rtt),
                "rtt_mean_s": float(rtt.mean()) if len(rtt) else float("nan"),
                "rtt_min_s": float(rtt.min()) if len(rtt) else float("nan"),
                "rtt_p50_s": _pct(rtt, 50), "rtt_p95_s": _pct(rtt, 95),
                "rtt_p99_s": _pct(rtt, 99),
                "jitter_s": float(np.abs(np.diff(rtt)).mean()) if len(rtt) > 1
                else float("nan"),
                "pto_count": int((k == "pto_expired").sum()),
            }
            row.update(self._cwnd_stats(g, t1))
            fm = msgs[msgs["flow"] == flow] if len(msgs) else msgs
            row.update(self._message_stats(fm))
            rows.append(row)
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def per_stream(self) -> pd.DataFrame:
        """One row per (flow, stream_id) with stream or message rows.

        Columns: first_s, last_s, stream_bytes_sent/received (``stream_data_*`` rows),
        messages sent/delivered/expired/dropped, message bytes sent/delivered, message
        latency mean/p50/p95/max, goodput_bps (delivered message bytes, else received
        stream bytes, x 8 over first_s..last_s). Datagram messages have stream_id <NA>.
        """
        df = self.df
        msgs = self.messages()
        s = df[df["stream_id"].notna() | df["kind"].str.startswith("message_")]
        rows = []
        if not len(s):
            return pd.DataFrame(rows, columns=PER_STREAM_COLUMNS)
        for (flow, sid), g in s.groupby(["flow", "stream_id"], dropna=False, sort=True):
            k = g["kind"]
            t0, t1 = float(g["time_s"].min()), float(g["time_s"].max())
            sid_na = sid is pd.NA or (isinstance(sid, float) and np.isnan(sid))
            if len(msgs):
                mm = msgs[(msgs["flow"] == flow) & (msgs["stream_id"].isna() if sid_na
                                                   else msgs["stream_id"] == sid)]
            else:
                mm = msgs
            st = self._message_stats(mm)
            delivered_bytes = int(mm.loc[mm["outcome"].astype(str).isin(
                ["delivered", "acked"]), "bytes"].sum()) if len(mm) else 0
            recv_bytes = int(g.loc[k == "stream_data_received", "bytes"].sum())
            dur = t1 - t0
            good = delivered_bytes or recv_bytes
            row = {"flow": int(flow), "stream_id": pd.NA if sid_na else int(sid),
                   "first_s": t0, "last_s": t1,
                   "stream_bytes_sent": int(g.loc[k == "stream_data_sent", "bytes"].sum()),
                   "stream_bytes_received": recv_bytes,
                   "message_bytes_sent": int(mm["bytes"][mm["sent_s"].notna()].sum())
                   if len(mm) else 0,
                   "message_bytes_delivered": delivered_bytes,
                   **st,
                   "goodput_bps": good * 8 / dur if dur > 0 else float("nan")}
            rows.append(row)
        out = pd.DataFrame(rows, columns=PER_STREAM_COLUMNS)
        out["stream_id"] = out["stream_id"].astype("Int64")
        return out

    def timeseries(self, bin_s: float = 0.1) -> pd.DataFrame:
        """One row per (flow, time bin of ``bin_s`` seconds), bins from 0 to the last event.

        Columns: time_s (bin start), sent_bps, goodput_bps (acked bytes), lost_bytes,
        packets_lost, rtt_mean_s (rtt_sample rows in the bin), cwnd_bytes and
        bytes_in_flight (last value known at the bin's end, carried forward),
        messages_delivered, delivered_bps (delivered message bytes).
        """
        if not (isinstance(bin_s, (int, float)) and bin_s > 0):
            raise ConfigError(f"bin_s={bin_s!r} must be a positive number of seconds")
        df = self.df
        if not len(df):
            return pd.DataFrame(columns=TIMESERIES_COLUMNS)
        end = float(df["time_s"].max())
        n_bins = int(np.floor(max(end, 0.0) / bin_s)) + 1
        out = []
        for flow, g in df.groupby("flow", sort=True):
            b = np.clip((g["time_s"].to_numpy() / bin_s).astype(np.int64), 0, n_bins - 1)
            k = g["kind"].to_numpy()
            nbytes = g["bytes"].to_numpy(np.float64)

            def total(mask: np.ndarray, weights: np.ndarray | None = None,
                      b: np.ndarray = b) -> np.ndarray:
                return np.bincount(b[mask], weights=None if weights is None else weights[mask],
                                   minlength=n_bins)

            sent = total(k == "packet_sent", nbytes)
            acked = total(k == "packet_acked", nbytes)
            lost_mask = k == "packet_lost"
            rtt = g["latest_rtt_s"].to_numpy(np.float64)
            rmask = (k == "rtt_sample") & ~np.isnan(rtt)
            if not rmask.any():
                rmask = ~np.isnan(rtt)
            rsum, rcnt = total(rmask, np.nan_to_num(rtt)), total(rmask)
            dmask = k == "message_delivered"
            frame = pd.DataFrame({
                "flow": int(flow), "time_s": np.arange(n_bins) * bin_s,
                "sent_bps": sent * 8 / bin_s, "goodput_bps": acked * 8 / bin_s,
                "lost_bytes": total(lost_mask, nbytes).astype(np.int64),
                "packets_lost": total(lost_mask).astype(np.int64),
                "rtt_mean_s": np.where(rcnt > 0, rsum / np.maximum(rcnt, 1), np.nan),
                "cwnd_bytes": _last_per_bin(b, g["cwnd"], n_bins),
                "bytes_in_flight": _last_per_bin(b, g["bytes_in_flight"], n_bins),
                "messages_delivered": total(dmask).astype(np.int64),
                "delivered_bps": total(dmask, nbytes) * 8 / bin_s,
            })
            out.append(frame)
        return pd.concat(out, ignore_index=True)[TIMESERIES_COLUMNS]


def _last_per_bin(b: np.ndarray, col: pd.Series, n_bins: int) -> pd.Series:
    present = col.notna().to_numpy()
    vals = pd.Series(np.nan, index=range(n_bins), dtype="float64")
    if present.any():
        last = pd.Series(col.to_numpy(np.float64, na_value=np.nan)[present]).groupby(
            b[present]).last()
        vals.loc[last.index] = last.to_numpy()
    return vals.ffill().astype("Int64")
