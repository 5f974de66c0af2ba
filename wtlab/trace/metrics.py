"""Every figure wtlab reports about a run, computed in one place, from trace rows.

A run's numbers mean the same whichever door they come through: ``Experiment.run``,
``compare``, ``wtlab.net.emulate``, ``wtlab.model.run``, a sweep, the widgets, the demo
report and the datasets all call :func:`flow_metrics` and :func:`run_metrics` on the
run's trace (rows as :mod:`wtlab.trace.schema` defines them). Units are in the names:
``_bps`` bit/s, ``_s`` seconds, ``_bytes`` bytes; fractions have no unit.

Every figure is taken over a window ``[from_s, to_s]`` of the run (both ends
included; default: the whole run, from 0 to ``to_s``, the run's duration when the
caller knows it, else the last row's time). :data:`FLOW_METRICS` and
:data:`RUN_METRICS` list every column with its unit and meaning; the documentation and
dataset cards are generated from them.

Bases, stated once:

* **goodput** is application payload: the STREAM and DATAGRAM bytes
  (``payload_bytes``) of packets acknowledged in the window, per second of the window.
  ``goodput_packet_bps`` counts whole QUIC packets instead, ``wire_bps`` adds the 28
  bytes of IPv4 and UDP headers each packet carries on the link.
* **utilisation** is what the link carried for the flow: ``wire_bps`` over the
  bottleneck's capacity in the same window (1.0: the link was busy with this flow's
  delivered packets all the time).
* **means of a window (cwnd, bytes in flight)** are time-weighted: a value holds from
  its row until the next row that carries one; the window's part before the flow's
  first such row is left out.
* **RTT** figures are over ``rtt_sample`` rows (``latest_rtt_s``); queueing delay is
  their mean minus the path's propagation RTT (``base_rtt_s``; if not given, the
  flow's smallest RTT sample in the whole trace).
* **loss_rate** is packets declared lost over packets sent in the window (NaN when
  nothing was sent).
* The reference packet size for analytic overlays (Mathis, RFC 9438's response,
  BDP in packets) is ``payload_per_packet_bytes``: the payload of the largest packet
  acknowledged, the MSS in goodput's own unit (1163-1165 bytes for QUIC's 1200-byte
  packets, ~1437 for 1472-byte ones; TCP's is 1448 on a 1500-byte MTU). A packet is
  **short** when it carries data but is under 90% of the flow's largest packet sent
  in the window (``short_packet_share``).

Runs that deliver nothing (too short, a blackout) give NaN figures and a ``note``
saying why, never a missing column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

IP_UDP_OVERHEAD_BYTES = 28  # IPv4 (20) + UDP (8) header bytes around each QUIC packet


@dataclass(frozen=True)
class Metric:
    """One reported figure: its column name, unit and meaning."""

    name: str
    unit: str
    meaning: str


#: the per-flow figures (``metrics()``): one column each
FLOW_METRICS: tuple[Metric, ...] = (
    Metric("flow", "", "flow id within the run"),
    Metric("cc", "", "the flow's congestion controller (its label)"),
    Metric("goodput_bps", "bit/s", "application payload (STREAM and DATAGRAM data) of the "
           "packets acknowledged in the window, x 8 / window length"),
    Metric("goodput_packet_bps", "bit/s", "whole QUIC packets (header, frames, AEAD tag) "
           "acknowledged in the window, x 8 / window length"),
    Metric("wire_bps", "bit/s", "goodput_packet_bps plus 28 bytes of IPv4/UDP headers per "
           "acknowledged packet: what the link carried for the flow"),
    Metric("utilisation", "", "wire_bps / the bottleneck's capacity over the window"),
    Metric("mean_cwnd_bytes", "bytes", "time-weighted mean congestion window over the window"),
    Metric("mean_bytes_in_flight_bytes", "bytes",
           "time-weighted mean of bytes in flight over the window"),
    Metric("rtt_mean_s", "s", "mean of the RTT samples in the window"),
    Metric("rtt_p50_s", "s", "median RTT sample in the window"),
    Metric("rtt_p95_s", "s", "95th percentile of the RTT samples in the window"),
    Metric("rtt_min_s", "s", "smallest RTT sample in the window"),
    Metric("queueing_delay_mean_s", "s", "rtt_mean_s minus the path's propagation RTT "
           "(or, when the path is not known, the flow's smallest RTT sample)"),
    Metric("packets_sent", "packets", "packets sent in the window"),
    Metric("packets_acked", "packets", "packets acknowledged in the window"),
    Metric("packets_lost", "packets", "packets declared lost in the window (their frames "
           "are retransmitted in new packets); includes those a PTO declared lost"),
    Metric("loss_rate", "", "packets_lost / packets_sent (NaN when nothing was sent)"),
    Metric("pto_count", "", "probe timeouts that fired in the window"),
    Metric("payload_per_packet_bytes", "bytes", "payload of the largest packet acknowledged "
           "in the window: the MSS in goodput's unit, used by analytic overlays"),
    Metric("mean_packet_bytes", "bytes", "mean size of the packets sent in the window"),
    Metric("short_packet_share", "", "of the packets sent in the window that carry "
           "application data, the share under 90% of the flow's largest packet sent in it "
           "(a window-filling sender's runts; NaN when no such packet was sent)"),
    Metric("note", "", "empty, or why the figures are NaN (e.g. nothing was delivered)"),
)

#: flow columns added when the run carried messages (``message_*`` rows; pn = message id;
#: see :func:`message_table`), over the messages first sent in the window
MESSAGE_METRICS: tuple[Metric, ...] = (
    Metric("messages_sent", "messages", "messages handed to the transport"),
    Metric("messages_delivered", "messages", "of those, delivered (or acknowledged to the "
           "sender when the receiver's rows are not in the trace)"),
    Metric("messages_expired", "messages", "of those, expired (partial reliability)"),
    Metric("messages_dropped", "messages", "of those, dropped (unreliable, or given up)"),
    Metric("messages_retransmitted", "", "message retransmissions"),
    Metric("message_latency_mean_s", "s", "mean time from a message's first send to its "
           "delivery (or acknowledgement)"),
    Metric("message_latency_p50_s", "s", "median message latency"),
    Metric("message_latency_p95_s", "s", "95th percentile of message latency"),
    Metric("message_latency_p99_s", "s", "99th percentile of message latency"),
    Metric("message_latency_max_s", "s", "largest message latency"),
)

#: flow columns added when the run used ECN (``ecn_counts``/``ecn_marked``/``ecn_validation``
#: rows, issue 18), over the window
ECN_METRICS: tuple[Metric, ...] = (
    Metric("ce_marks", "packets", "new CE marks the sender learned from validated ACK_ECN "
           "counts (sum of the ecn_counts rows' ce_increase)"),
    Metric("ect_packets_acked", "packets", "ECN-capable packets the sender saw acknowledged "
           "with valid ECN counts (sum of the ecn_counts rows' acked_ect)"),
    Metric("mark_rate", "", "ce_marks / ect_packets_acked: the fraction of the flow's "
           "ECN-capable packets a queue marked (NaN when none were acknowledged)"),
    Metric("link_marks", "packets", "ecn_marked rows of the flow: marks the engine's links "
           "applied (virtual network, relay, model; 0 on a live path without a relay)"),
    Metric("ecn_state", "", "the sender's last ECN validation state (RFC 9000 13.4.2: "
           "testing, unknown, capable, failed), empty if the trace has none"),
)

#: per-flow counters the performance monitor adds to :data:`FLOW_METRICS`
DETAIL_METRICS: tuple[Metric, ...] = (
    Metric("start_s", "s", "the flow's first row"),
    Metric("end_s", "s", "the flow's last row"),
    Metric("bytes_sent", "bytes", "sizes of the packets sent in the window"),
    Metric("bytes_acked", "bytes", "sizes of the packets acknowledged in the window"),
    Metric("bytes_lost", "bytes", "sizes of the packets declared lost in the window"),
    Metric("packets_received", "packets", "packet_received rows (imported traces)"),
    Metric("bytes_received", "bytes", "sizes of the packets received"),
    Metric("rtt_samples", "", "RTT samples in the window"),
    Metric("rtt_p99_s", "s", "99th percentile of the RTT samples"),
    Metric("jitter_s", "s", "mean absolute difference of consecutive RTT samples"),
    Metric("cwnd_min_bytes", "bytes", "smallest congestion window in the window"),
    Metric("cwnd_max_bytes", "bytes", "largest congestion window in the window"),
    Metric("cwnd_last_bytes", "bytes", "the congestion window at the window's end"),
)

#: the run-level figures (``summary()``)
RUN_METRICS: tuple[Metric, ...] = (
    Metric("goodput_bps", "bit/s", "sum of the flows' goodput_bps"),
    Metric("goodput_packet_bps", "bit/s", "sum of the flows' goodput_packet_bps"),
    Metric("wire_bps", "bit/s", "sum of the flows' wire_bps"),
    Metric("utilisation", "", "sum of the flows' wire_bps / capacity"),
    Metric("rtt_p95_s", "s", "95th percentile of every flow's RTT samples in the window"),
    Metric("queueing_delay_mean_s", "s", "mean RTT of every flow's samples minus the "
           "propagation RTT"),
    Metric("loss_rate", "", "all packets declared lost / all packets sent in the window"),
    Metric("payload_per_packet_bytes", "bytes", "the largest of the flows' "
           "payload_per_packet_bytes: the payload a full packet carries in this run"),
    Metric("jain_index", "", "Jain's fairness index of the flows' goodput_bps (only with "
           "two flows or more)"),
    Metric("capacity_bps", "bit/s", "the bottleneck's capacity over the window"),
    Metric("flows", "", "number of flows"),
)

METRICS: tuple[Metric, ...] = (FLOW_METRICS + MESSAGE_METRICS + ECN_METRICS + DETAIL_METRICS
                               + RUN_METRICS)


def _labels(column: pd.Series) -> np.ndarray:
    """A kind/state column as an array of str, decoded once per category (not per row)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = np.asarray([str(c) for c in column.cat.categories] + [""], dtype=object)
        codes = column.cat.codes.to_numpy()
        return cats[np.where(codes < 0, len(cats) - 1, codes)]
    return column.astype(str).to_numpy()


def time_weighted_mean(times: np.ndarray, values: np.ndarray, from_s: float,
                       to_s: float) -> float:
    """Mean of a step function (``values[i]`` holds from ``times[i]`` to the next time)
    over ``[from_s, to_s]``, leaving out the part before ``times[0]``; NaN if empty."""
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    if len(times) == 0 or to_s <= from_s:
        return math.nan
    start = max(from_s, float(times[0]))
    if start >= to_s:
        return math.nan
    first = int(np.searchsorted(times, start, side="right")) - 1  # value in force at start
    stop = int(np.searchsorted(times, to_s, side="left"))  # changes strictly before to_s
    ts = np.concatenate(([start], times[first + 1:stop], [to_s]))
    vs = values[first:stop]
    return float(np.dot(np.diff(ts), vs) / (to_s - start))


def jain_index(values: Any) -> float:
    """Jain's fairness index (sum x)^2 / (n sum x^2); NaN for fewer than two values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan
    den = len(x) * float(np.dot(x, x))
    return float(x.sum() ** 2 / den) if den > 0 else math.nan


def _window(trace: pd.DataFrame, from_s: float | None, to_s: float | None
            ) -> tuple[float, float]:
    lo = 0.0 if from_s is None else float(from_s)
    if to_s is None:
        hi = float(trace["time_s"].max()) if len(trace) else lo
    else:
        hi = float(to_s)
    return lo, hi


def flow_metrics(trace: pd.DataFrame, *, from_s: float | None = None,
                 to_s: float | None = None, capacity_bps: float | None = None,
                 base_rtt_s: float | Mapping[int, float] | None = None,
                 labels: Mapping[int, str] | None = None) -> pd.DataFrame:
    """One row per flow with every figure of :data:`FLOW_METRICS` over ``[from_s, to_s]``.

    ``base_rtt_s``: the propagation RTT, one for every flow or a mapping flow -> RTT
    (flows with different RTTs sharing a bottleneck).

    Flows are those with a ``packet_sent`` row, plus every flow named in ``labels``
    (a flow that sent nothing gets NaN figures and a ``note``).
    """
    from wtlab.errors import ConfigError

    lo, hi = _window(trace, from_s, to_s)
    if to_s is not None and from_s is not None and not hi > lo:
        raise ConfigError(f"window [{from_s}, {to_s}] is empty; need to_s > from_s")
    span = hi - lo
    t = trace["time_s"].to_numpy(dtype=float)
    kind = _labels(trace["kind"])
    flow = trace["flow"].to_numpy().astype(np.int64)
    nbytes = trace["bytes"].to_numpy(dtype=float)
    payload = trace["payload_bytes"].to_numpy(dtype=float, na_value=np.nan)
    cwnd = trace["cwnd"].to_numpy(dtype=float, na_value=np.nan)
    bif = trace["bytes_in_flight"].to_numpy(dtype=float, na_value=np.nan)
    rtt = trace["latest_rtt_s"].to_numpy(dtype=float)
    sent_mask = kind == "packet_sent"
    flows = set(np.unique(flow[sent_mask]).tolist())
    flows |= {int(f) for f in (labels or {})}
    in_win = (t >= lo) & (t <= hi)
    rows = []
    for f in sorted(flows):
        mine = flow == f
        win = mine & in_win
        sent = win & sent_mask
        acked = win & (kind == "packet_acked")
        lost = win & (kind == "packet_lost")
        samples = rtt[win & (kind == "rtt_sample")]
        samples = samples[~np.isnan(samples)]
        n_sent, n_acked, n_lost = int(sent.sum()), int(acked.sum()), int(lost.sum())
        data_sizes = nbytes[sent & (payload > 0)]  # NaN payloads (unknown) compare False
        acked_bytes = float(nbytes[acked].sum())
        acked_payload = payload[acked]
        known = n_acked > 0 and not np.isnan(acked_payload).all()
        delivered = float(np.nansum(acked_payload)) if known else math.nan
        per_s = 8.0 / span if span > 0 else math.nan
        if n_acked == 0 or delivered == 0:  # nothing delivered: no rate to speak of
            goodput = packet_rate = wire = math.nan
        else:
            goodput = delivered * per_s  # NaN where the trace does not know payloads
            packet_rate = acked_bytes * per_s
            wire = (acked_bytes + IP_UDP_OVERHEAD_BYTES * n_acked) * per_s
        has_cwnd = mine & ~np.isnan(cwnd)
        has_bif = mine & ~np.isnan(bif)
        all_samples = rtt[mine & (kind == "rtt_sample")]
        all_samples = all_samples[~np.isnan(all_samples)]
        given = base_rtt_s.get(int(f)) if isinstance(base_rtt_s, Mapping) else base_rtt_s
        base = given if given is not None else (
            float(all_samples.min()) if len(all_samples) else math.nan)
        rtt_mean = float(samples.mean()) if len(samples) else math.nan
        row = {
            "flow": int(f),
            "cc": (labels or {}).get(int(f), f"flow {f}"),
            "goodput_bps": goodput,
            "goodput_packet_bps": packet_rate,
            "wire_bps": wire,
            "utilisation": wire / capacity_bps if capacity_bps else math.nan,
            "mean_cwnd_bytes": time_weighted_mean(t[has_cwnd], cwnd[has_cwnd], lo, hi),
            "mean_bytes_in_flight_bytes": time_weighted_mean(t[has_bif], bif[has_bif], lo, hi),
            "rtt_mean_s": rtt_mean,
            "rtt_p50_s": float(np.percentile(samples, 50)) if len(samples) else math.nan,
            "rtt_p95_s": float(np.percentile(samples, 95)) if len(samples) else math.nan,
            "rtt_min_s": float(samples.min()) if len(samples) else math.nan,
            "queueing_delay_mean_s": max(0.0, rtt_mean - base) if rtt_mean == rtt_mean
            and base == base else math.nan,
            "packets_sent": n_sent,
            "packets_acked": n_acked,
            "packets_lost": n_lost,
            "loss_rate": n_lost / n_sent if n_sent else math.nan,
            "pto_count": int((win & (kind == "pto_expired")).sum()),
            "payload_per_packet_bytes": float(np.nanmax(acked_payload)) if known and delivered
            else math.nan,
            "mean_packet_bytes": float(nbytes[sent].mean()) if n_sent else math.nan,
            "short_packet_share": float((data_sizes < 0.9 * data_sizes.max()).mean())
            if len(data_sizes) else math.nan,
            "note": _note(n_sent, n_acked, known, delivered, lo, hi),
        }
        rows.append(row)
    out = pd.DataFrame(rows, columns=[m.name for m in FLOW_METRICS])
    if len(out) and ((kind == "message_sent") | (kind == "message_delivered")).any():
        msgs = message_table(trace)
        msgs = msgs[(msgs["sent_s"] >= lo) & (msgs["sent_s"] <= hi)]
        extra = [message_stats(msgs[msgs["flow"] == f]) for f in out["flow"]]
        out = pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1)
    ecn_kinds = (kind == "ecn_counts") | (kind == "ecn_marked") | (kind == "ecn_validation")
    if len(out) and ecn_kinds.any():
        extra = [ecn_stats(trace, int(f), lo, hi) for f in out["flow"]]
        out = pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1)
    return out


def ecn_stats(trace: pd.DataFrame, flow: int, from_s: float, to_s: float) -> dict[str, Any]:
    """The :data:`ECN_METRICS` of one flow over ``[from_s, to_s]``."""
    import json

    rows = trace[(trace["flow"] == flow) & (trace["time_s"] >= from_s)
                 & (trace["time_s"] <= to_s)]
    kind = rows["kind"].astype(str)
    ce = acked = 0
    for extra in rows.loc[kind == "ecn_counts", "extra"]:
        if extra:
            d = json.loads(extra) if isinstance(extra, str) else extra
            ce += int(d.get("ce_increase", 0))
            acked += int(d.get("acked_ect", 0))
    state = ""
    mine = trace[(trace["flow"] == flow) & (trace["time_s"] <= to_s)]
    val = mine.loc[mine["kind"].astype(str) == "ecn_validation", "extra"]
    if len(val):
        last = val.iloc[-1]
        d = json.loads(last) if isinstance(last, str) else (last or {})
        state = str(d.get("new", ""))
    return {"ce_marks": ce, "ect_packets_acked": acked,
            "mark_rate": ce / acked if acked else math.nan,
            "link_marks": int((kind == "ecn_marked").sum()), "ecn_state": state}


def flow_detail(trace: pd.DataFrame, flow: int, from_s: float, to_s: float
                ) -> dict[str, Any]:
    """The :data:`DETAIL_METRICS` of one flow over ``[from_s, to_s]``."""
    g = trace[trace["flow"] == flow]
    t = g["time_s"].to_numpy(dtype=float)
    g = g[(t >= from_s) & (t <= to_s)]
    k = g["kind"].astype(str).to_numpy()
    nbytes = g["bytes"].to_numpy(dtype=float)
    rtt = g["latest_rtt_s"].to_numpy(dtype=float)[k == "rtt_sample"]
    rtt = rtt[~np.isnan(rtt)]
    cw = g["cwnd"].to_numpy(dtype=float, na_value=np.nan)
    cw = cw[~np.isnan(cw)]
    nan = math.nan
    return {
        "start_s": float(t.min()) if len(t) else nan,
        "end_s": float(t.max()) if len(t) else nan,
        "bytes_sent": int(nbytes[k == "packet_sent"].sum()),
        "bytes_acked": int(nbytes[k == "packet_acked"].sum()),
        "bytes_lost": int(nbytes[k == "packet_lost"].sum()),
        "packets_received": int((k == "packet_received").sum()),
        "bytes_received": int(nbytes[k == "packet_received"].sum()),
        "rtt_samples": len(rtt),
        "rtt_p99_s": float(np.percentile(rtt, 99)) if len(rtt) else nan,
        "jitter_s": float(np.abs(np.diff(rtt)).mean()) if len(rtt) > 1 else nan,
        "cwnd_min_bytes": float(cw.min()) if len(cw) else nan,
        "cwnd_max_bytes": float(cw.max()) if len(cw) else nan,
        "cwnd_last_bytes": float(cw[-1]) if len(cw) else nan,
    }


def _note(n_sent: int, n_acked: int, known: bool, delivered: float, lo: float,
          hi: float) -> str:
    where = f"in [{lo:g}, {hi:g}] s"
    if n_sent == 0:
        return (f"the flow sent no packet {where}: the run ended before its connection was "
                "set up, or the window lies outside the flow's life")
    if n_acked == 0 or delivered == 0:
        return (f"no application data was acknowledged {where}: the run is shorter than "
                "the connection set-up and the first round trips (about 4 RTTs), or the "
                "path delivered nothing (an outage)")
    if not known:
        return ("the trace does not say how much of each packet was payload (payload_bytes "
                "is NA): goodput_bps is NaN, goodput_packet_bps counts whole packets")
    return ""


def run_metrics(trace: pd.DataFrame, flows: pd.DataFrame | None = None, *,
                from_s: float | None = None, to_s: float | None = None,
                capacity_bps: float | None = None,
                base_rtt_s: float | Mapping[int, float] | None = None,
                labels: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Run-level figures (:data:`RUN_METRICS`) over ``[from_s, to_s]``.

    ``flows``: the :func:`flow_metrics` table of the same window, if already computed.
    ``jain_index`` is present only when the run has two flows or more.
    """
    if flows is None:
        flows = flow_metrics(trace, from_s=from_s, to_s=to_s, capacity_bps=capacity_bps,
                             base_rtt_s=base_rtt_s, labels=labels)
    lo, hi = _window(trace, from_s, to_s)
    kind = trace["kind"].astype(str).to_numpy()
    t = trace["time_s"].to_numpy(dtype=float)
    win = (t >= lo) & (t <= hi) & (kind == "rtt_sample")
    samples = trace["latest_rtt_s"].to_numpy(dtype=float)[win]
    queueing = None
    if isinstance(base_rtt_s, Mapping):  # per-flow propagation RTTs: subtract each its own
        flow_of = trace["flow"].to_numpy().astype(np.int64)[win]
        bases = np.array([base_rtt_s.get(int(f), np.nan) for f in flow_of], dtype=float)
        queueing = samples - bases
        queueing = queueing[~np.isnan(queueing)]
    samples = samples[~np.isnan(samples)]
    sent = int(flows["packets_sent"].sum()) if len(flows) else 0
    wire = float(flows["wire_bps"].sum(min_count=1)) if len(flows) else math.nan
    if queueing is None:
        if base_rtt_s is None and len(samples):
            base_rtt_s = float(samples.min())
        queueing = samples - base_rtt_s if base_rtt_s is not None else np.array([])
    out: dict[str, Any] = {
        "goodput_bps": float(flows["goodput_bps"].sum(min_count=1)) if len(flows) else math.nan,
        "goodput_packet_bps": float(flows["goodput_packet_bps"].sum(min_count=1))
        if len(flows) else math.nan,
        "wire_bps": wire,
        "utilisation": wire / capacity_bps if capacity_bps else math.nan,
        "rtt_p95_s": float(np.percentile(samples, 95)) if len(samples) else math.nan,
        "queueing_delay_mean_s": max(0.0, float(queueing.mean())) if len(queueing)
        else math.nan,
        "loss_rate": float(flows["packets_lost"].sum()) / sent if sent else math.nan,
        "payload_per_packet_bytes": float(flows["payload_per_packet_bytes"].max())
        if len(flows) and flows["payload_per_packet_bytes"].notna().any() else math.nan,
        "capacity_bps": float(capacity_bps) if capacity_bps else math.nan,
        "flows": len(flows),
    }
    if len(flows) >= 2:
        out["jain_index"] = jain_index(flows["goodput_bps"].to_numpy(dtype=float))
    notes = [n for n in flows["note"] if n] if len(flows) else ["the run has no flow"]
    out["note"] = "; ".join(dict.fromkeys(notes))
    return out


# ------------------------------------------------------------------ messages
MESSAGE_OUTCOMES = {"message_delivered": "delivered", "message_expired": "expired",
                    "message_dropped": "dropped"}
MESSAGE_COLUMNS = ["flow", "stream_id", "message_id", "bytes", "sent_s", "acked_s", "done_s",
                   "outcome", "latency_s", "retransmissions"]


def message_table(trace: pd.DataFrame, *, match_flows: bool = True) -> pd.DataFrame:
    """One row per message (``message_*`` rows joined on flow, stream_id and pn = message id).

    ``outcome``: delivered / expired / dropped (the first end row), else acked, pending
    (sent, no news) or received (the receiving end's rows only). ``latency_s``: delivery
    (or, without a delivery row, the sender's ack) minus the first send.
    ``match_flows=False`` joins across flows (sender and receiver recorded under
    different flow numbers).
    """
    kind = trace["kind"].astype(str)
    m = trace[kind.str.startswith("message_")].copy()
    m["kind"] = kind[m.index]
    keys = ["flow", "stream_id", "pn"] if match_flows else ["stream_id", "pn"]
    if not len(m):
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in MESSAGE_COLUMNS})

    def first(k: str, name: str) -> pd.DataFrame:
        sub = m[m["kind"] == k]
        return (sub.groupby(keys, dropna=False, sort=False)
                .agg(**{name: ("time_s", "min"), f"{name}_bytes": ("bytes", "max")})
                .reset_index())

    sent = first("message_sent", "sent_s")
    acked = first("message_acked", "acked_s")
    ends = m[m["kind"].isin(list(MESSAGE_OUTCOMES))]
    done = (ends.sort_values("time_s", kind="stable").groupby(keys, dropna=False, sort=False)
            .agg(done_s=("time_s", "first"), end_kind=("kind", "first"),
                 done_bytes=("bytes", "max")).reset_index())
    retx = (m[m["kind"] == "message_retransmitted"].groupby(keys, dropna=False, sort=False)
            .size().rename("retransmissions").reset_index())
    out = sent.merge(acked, on=keys, how="outer").merge(done, on=keys, how="outer")
    out = out.merge(retx, on=keys, how="left")
    out["retransmissions"] = out["retransmissions"].fillna(0).astype(np.int64)
    if not match_flows:
        flows = m.groupby(keys, dropna=False, sort=False)["flow"].min().reset_index()
        out = out.merge(flows, on=keys, how="left")
    outcome = np.where(out["end_kind"].notna(), out["end_kind"].map(MESSAGE_OUTCOMES),
                       np.where(out["acked_s"].notna(), "acked",
                                np.where(out["sent_s"].notna(), "pending", "received")))
    out["outcome"] = outcome
    finish = out["done_s"].where(out["end_kind"] == "message_delivered", out["acked_s"])
    out["latency_s"] = finish - out["sent_s"]
    out["bytes"] = out[["sent_s_bytes", "acked_s_bytes", "done_bytes"]].max(axis=1)
    out = out.rename(columns={"pn": "message_id"})
    out["bytes"] = out["bytes"].fillna(0).astype(np.int64)
    out["outcome"] = out["outcome"].astype("category")
    return out[MESSAGE_COLUMNS].sort_values(["flow", "sent_s", "done_s"], kind="stable",
                                            na_position="last").reset_index(drop=True)


def message_stats(msgs: pd.DataFrame) -> dict[str, Any]:
    """Counts and latency percentiles of a :func:`message_table` (or a part of one)."""
    lat = msgs["latency_s"].to_numpy(np.float64) if len(msgs) else np.array([])
    lat = lat[~np.isnan(lat)]
    oc = msgs["outcome"].astype(str) if len(msgs) else pd.Series([], dtype=str)

    def q(x: float) -> float:
        return float(np.percentile(lat, x)) if len(lat) else math.nan

    return {
        "messages_sent": int(msgs["sent_s"].notna().sum()) if len(msgs) else 0,
        "messages_delivered": int((oc == "delivered").sum() + (oc == "acked").sum()),
        "messages_expired": int((oc == "expired").sum()),
        "messages_dropped": int((oc == "dropped").sum()),
        "messages_retransmitted": int(msgs["retransmissions"].sum()) if len(msgs) else 0,
        "message_latency_mean_s": float(lat.mean()) if len(lat) else math.nan,
        "message_latency_p50_s": q(50), "message_latency_p95_s": q(95),
        "message_latency_p99_s": q(99),
        "message_latency_max_s": float(lat.max()) if len(lat) else math.nan,
    }


# ------------------------------------------------------------------ over time
TIMESERIES_COLUMNS = ["flow", "time_s", "sent_bps", "goodput_bps", "lost_bytes",
                      "packets_lost", "rtt_mean_s", "cwnd_bytes", "bytes_in_flight",
                      "messages_delivered", "delivered_bps"]


def timeseries(trace: pd.DataFrame, bin_s: float) -> pd.DataFrame:
    """One row per (flow, ``bin_s`` bin from 0 to the last event); rates as defined above.

    ``sent_bps``: bytes of packets sent in the bin; ``goodput_bps``: payload of packets
    acknowledged in the bin (goodput's definition, per bin); ``rtt_mean_s``: the bin's
    RTT samples; ``cwnd_bytes`` / ``bytes_in_flight``: the last value known at the bin's
    end; ``delivered_bps``: bytes of messages delivered in the bin.
    """
    from wtlab.errors import ConfigError

    if not (isinstance(bin_s, (int, float)) and bin_s > 0):
        raise ConfigError(f"bin_s={bin_s!r} must be a positive number of seconds")
    if not len(trace):
        return pd.DataFrame(columns=TIMESERIES_COLUMNS)
    end = float(trace["time_s"].max())
    n_bins = int(np.floor(max(end, 0.0) / bin_s)) + 1
    out = []
    for f, g in trace.groupby("flow", sort=True, observed=True):
        b = np.clip((g["time_s"].to_numpy() / bin_s).astype(np.int64), 0, n_bins - 1)
        k = g["kind"].astype(str).to_numpy()
        nbytes = g["bytes"].to_numpy(np.float64)
        payload = g["payload_bytes"].to_numpy(np.float64, na_value=np.nan)

        def total(mask: np.ndarray, weights: np.ndarray | None = None,
                  b: np.ndarray = b) -> np.ndarray:
            return np.bincount(b[mask], weights=None if weights is None else weights[mask],
                               minlength=n_bins)

        lost = k == "packet_lost"
        rtt = g["latest_rtt_s"].to_numpy(np.float64)
        rmask = (k == "rtt_sample") & ~np.isnan(rtt)
        rsum, rcnt = total(rmask, np.nan_to_num(rtt)), total(rmask)
        dmask = k == "message_delivered"
        acked = k == "packet_acked"
        out.append(pd.DataFrame({
            "flow": int(f), "time_s": np.arange(n_bins) * bin_s,
            "sent_bps": total(k == "packet_sent", nbytes) * 8 / bin_s,
            "goodput_bps": total(acked & ~np.isnan(payload), payload) * 8 / bin_s,
            "lost_bytes": total(lost, nbytes).astype(np.int64),
            "packets_lost": total(lost).astype(np.int64),
            "rtt_mean_s": np.where(rcnt > 0, rsum / np.maximum(rcnt, 1), np.nan),
            "cwnd_bytes": _last_per_bin(b, g["cwnd"], n_bins),
            "bytes_in_flight": _last_per_bin(b, g["bytes_in_flight"], n_bins),
            "messages_delivered": total(dmask).astype(np.int64),
            "delivered_bps": total(dmask, nbytes) * 8 / bin_s,
        }))
    return pd.concat(out, ignore_index=True)[TIMESERIES_COLUMNS]


def _last_per_bin(b: np.ndarray, col: pd.Series, n_bins: int) -> pd.Series:
    present = col.notna().to_numpy()
    vals = pd.Series(np.nan, index=range(n_bins), dtype="float64")
    if present.any():
        last = pd.Series(col.to_numpy(np.float64, na_value=np.nan)[present]).groupby(
            b[present]).last()
        vals.loc[last.index] = last.to_numpy()
    return vals.ffill().astype("Int64")


# ------------------------------------------------------------------ rates and fairness over time
#: columns of :func:`rate_over_time` (one row per flow and bin)
RATE_OVER_TIME: tuple[Metric, ...] = (
    Metric("time_s", "s", "start of the bin"),
    Metric("flow", "", "flow id"),
    Metric("goodput_bps", "bit/s", "payload of the flow's packets acknowledged in the bin x 8 "
           "/ bin_s: the delivery rate a receiver sees, for every controller"),
    Metric("sent_bps", "bit/s", "bytes of the flow's packets sent in the bin x 8 / bin_s"),
)
#: columns of :func:`jain_over_time` (one row per bin)
JAIN_OVER_TIME: tuple[Metric, ...] = (
    Metric("time_s", "s", "start of the bin"),
    Metric("jain_index", "", "Jain's index of the goodput_bps of the flows that sent in the "
           "bin (NaN with fewer than two)"),
    Metric("flows", "", "flows that sent in the bin"),
)


def rate_over_time(trace: pd.DataFrame, bin_s: float, *, from_s: float = 0.0,
                   to_s: float | None = None) -> pd.DataFrame:
    """Per-flow goodput and send rate in bins of ``bin_s`` (:data:`RATE_OVER_TIME`).

    Bins start at multiples of ``bin_s``; only whole bins inside ``[from_s, to_s)`` are
    returned (``to_s`` default: the last row's time), so a caller that feeds a growing
    trace slice by slice gets each bin once, complete. Flows: those with a
    ``packet_sent`` row in the slice.
    """
    from wtlab.errors import ConfigError

    if not (isinstance(bin_s, (int, float)) and bin_s > 0):
        raise ConfigError(f"bin_s={bin_s!r} must be a positive number of seconds")
    cols = [m.name for m in RATE_OVER_TIME]
    if not len(trace):
        return pd.DataFrame({c: pd.Series([], dtype=float) for c in cols})
    t = trace["time_s"].to_numpy(dtype=float)
    end = float(t.max()) if to_s is None else float(to_s)
    first = int(math.ceil(from_s / bin_s - 1e-9))
    last = int(math.floor(end / bin_s + 1e-9))  # bins [k, k+1) with (k+1) * bin_s <= end
    if last <= first:
        return pd.DataFrame({c: pd.Series([], dtype=float) for c in cols})
    kind = _labels(trace["kind"])
    flow = trace["flow"].to_numpy().astype(np.int64)
    b = np.floor(t / bin_s + 1e-9).astype(np.int64)
    inside = (b >= first) & (b < last)
    sent = kind == "packet_sent"
    acked = kind == "packet_acked"
    payload = trace["payload_bytes"].to_numpy(dtype=float, na_value=np.nan)
    payload = np.where(np.isnan(payload), 0.0, payload)
    nbytes = trace["bytes"].to_numpy(dtype=float)
    n = last - first
    out = []
    for f in sorted(np.unique(flow[sent]).tolist()):
        mine = inside & (flow == f)
        idx_a, idx_s = b[mine & acked] - first, b[mine & sent] - first
        good = np.bincount(idx_a, weights=payload[mine & acked], minlength=n) * 8 / bin_s
        snd = np.bincount(idx_s, weights=nbytes[mine & sent], minlength=n) * 8 / bin_s
        out.append(pd.DataFrame({"time_s": (first + np.arange(n)) * bin_s, "flow": f,
                                 "goodput_bps": good, "sent_bps": snd}))
    if not out:
        return pd.DataFrame({c: pd.Series([], dtype=float) for c in cols})
    return pd.concat(out, ignore_index=True)[cols]


def jain_over_time(rates: pd.DataFrame) -> pd.DataFrame:
    """Jain's index per bin over the flows that sent in it (:data:`JAIN_OVER_TIME`), from
    a :func:`rate_over_time` table."""
    cols = [m.name for m in JAIN_OVER_TIME]
    if not len(rates):
        return pd.DataFrame({c: pd.Series([], dtype=float) for c in cols})
    active = rates[rates["sent_bps"] > 0]
    by_bin = dict(tuple(active.groupby("time_s", sort=False)["goodput_bps"]))
    rows = []
    for t in np.unique(rates["time_s"].to_numpy(dtype=float)):
        a = by_bin.get(t)
        a = a.to_numpy(dtype=float) if a is not None else np.array([])
        rows.append({"time_s": float(t), "jain_index": jain_index(a), "flows": len(a)})
    return pd.DataFrame(rows, columns=cols)


# ------------------------------------------------------------------ controller phases
#: columns of :func:`phases` (one row per flow and contiguous controller state)
PHASES: tuple[Metric, ...] = (
    Metric("flow", "", "flow id"),
    Metric("state", "", "the controller's state name (slow_start, recovery, startup, ...)"),
    Metric("start_s", "s", "first row in that state"),
    Metric("end_s", "s", "first row in the next state (or the window's end)"),
)


def phases(trace: pd.DataFrame, *, to_s: float | None = None) -> pd.DataFrame:
    """Contiguous intervals each flow's controller spent in one state (:data:`PHASES`),
    from the rows that carry a state (the after-event state of the row contract)."""
    cols = [m.name for m in PHASES]
    if not len(trace):
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    state = _labels(trace["state"])
    has = state != ""
    t = trace["time_s"].to_numpy(dtype=float)
    flow = trace["flow"].to_numpy().astype(np.int64)
    end_all = float(t.max()) if to_s is None else float(to_s)
    rows = []
    for f in sorted(np.unique(flow[has]).tolist()):
        m = has & (flow == f)
        ts, ss = t[m], state[m]
        change = np.flatnonzero(np.concatenate(([True], ss[1:] != ss[:-1])))
        starts = ts[change]
        ends = np.concatenate((starts[1:], [max(end_all, float(starts[-1]))]))
        for s0, e0, name in zip(starts, ends, ss[change], strict=True):
            rows.append({"flow": f, "state": str(name), "start_s": float(s0), "end_s": float(e0)})
    return pd.DataFrame(rows, columns=cols)


# ------------------------------------------------------------------ time-sequence graph
#: columns of :func:`sequence_table` (one row per packet event or PTO)
SEQUENCE: tuple[Metric, ...] = (
    Metric("time_s", "s", "when it happened"),
    Metric("flow", "", "flow id"),
    Metric("event", "", "sent (new data), retransmitted (data declared lost, sent again), "
           "acked, lost, pto (a probe timeout fired; offset_bytes NaN)"),
    Metric("pn", "", "packet number"),
    Metric("offset_bytes", "bytes", "the flow's payload offset of the packet's first byte: "
           "its payload bytes in send order, lost bytes resent first, lowest first"),
    Metric("length_bytes", "bytes", "payload bytes the packet carries"),
)
SEQUENCE_EVENTS = ("sent", "retransmitted", "acked", "lost", "pto")


class SequenceBuilder:
    """Builds :func:`sequence_table` rows incrementally (feed rows in time order).

    The offset model is wtlab's senders' own rule (the fast model, and aioquic's stream
    sender): data declared lost is sent again before new data, lowest offset first; so
    a packet's payload is placed at the lowest lost range still unsent, else at the end
    of the new data. For a single bulk stream this is its stream offset; for a trace with
    several streams (or frames the trace does not describe) it is the flow's payload in
    send order. Packets without payload_bytes count their whole size.
    """

    def __init__(self) -> None:
        self._flows: dict[int, dict[str, Any]] = {}

    def _flow(self, f: int) -> dict[str, Any]:
        st = self._flows.get(f)
        if st is None:
            st = self._flows[f] = {"next": 0.0, "pending": [], "packets": {}}
        return st

    def feed(self, trace: pd.DataFrame) -> pd.DataFrame:
        """The sequence rows of these trace rows (which follow those fed before)."""
        cols = [m.name for m in SEQUENCE]
        kind = _labels(trace["kind"])
        keep = np.isin(kind, ("packet_sent", "packet_acked", "packet_lost", "pto_expired"))
        if not keep.any():
            return pd.DataFrame({c: pd.Series([], dtype=float) for c in cols}).astype(
                {"event": object})
        sub = trace[keep]
        t = sub["time_s"].to_numpy(dtype=float)
        fl = sub["flow"].to_numpy().astype(np.int64)
        pn = sub["pn"].to_numpy(dtype=float, na_value=np.nan)
        payload = sub["payload_bytes"].to_numpy(dtype=float, na_value=np.nan)
        size = sub["bytes"].to_numpy(dtype=float)
        out_t, out_f, out_e, out_pn, out_o, out_l = [], [], [], [], [], []
        for i, k in enumerate(kind[keep]):
            st = self._flow(int(fl[i]))
            packets = st["packets"]
            p = pn[i]
            if k == "packet_sent":
                length = payload[i] if payload[i] == payload[i] else size[i]
                pending = st["pending"]
                if pending and length > 0:
                    o, n = pending[0]
                    event = "retransmitted"
                    if length >= n:
                        pending.pop(0)
                        length = n
                    else:
                        pending[0] = (o + length, n - length)
                else:
                    o, event = st["next"], "sent"
                    st["next"] += length
                packets[p] = (o, length)
            elif k == "pto_expired":
                o, length, event = math.nan, 0.0, "pto"
            else:
                o, length = packets.get(p, (math.nan, 0.0))
                if k == "packet_lost":
                    event = "lost"
                    if length > 0 and o == o:
                        pending = st["pending"]
                        pending.append((o, length))
                        pending.sort()
                else:
                    event = "acked"
                packets.pop(p, None)
            out_t.append(t[i])
            out_f.append(int(fl[i]))
            out_e.append(event)
            out_pn.append(p)
            out_o.append(o)
            out_l.append(length)
        return pd.DataFrame({"time_s": out_t, "flow": out_f, "event": out_e, "pn": out_pn,
                             "offset_bytes": out_o, "length_bytes": out_l}, columns=cols)


def sequence_table(trace: pd.DataFrame) -> pd.DataFrame:
    """The time-sequence graph's rows (:data:`SEQUENCE`): every packet sent (new data or
    a retransmission), acknowledged or declared lost, and every PTO, with the payload
    offset it carries (see :class:`SequenceBuilder` for the offset model)."""
    return SequenceBuilder().feed(trace)


# ------------------------------------------------------------------ repetitions (seeds)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_975(dof: int) -> float:
    """Student's t 97.5 % quantile (two-sided 95 %) for ``dof`` degrees of freedom: a
    table to 30, then the Cornish-Fisher expansion (error below 1e-4)."""
    if dof < 1:
        return math.nan
    if dof <= len(_T975):
        return _T975[dof - 1]
    z = 1.959964
    return (z + (z ** 3 + z) / (4 * dof) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * dof ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * dof ** 3))


def mean_ci95(values: Any) -> tuple[float, float]:
    """(mean, half-width of the 95 % confidence interval of the mean, Student's t) of the
    non-NaN values; the half-width is NaN with fewer than two values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if not len(x):
        return math.nan, math.nan
    if len(x) < 2:
        return float(x[0]), math.nan
    return float(x.mean()), float(t_975(len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


#: columns of :func:`seed_summary` (one row per group; ``<figure>``: each numeric column)
SEED_SUMMARY: tuple[Metric, ...] = (
    Metric("<figure>", "as the figure", "mean over the seeds' runs"),
    Metric("<figure>_ci95", "as the figure", "half-width of the 95 % confidence interval of "
           "that mean (Student's t, seeds - 1 degrees of freedom); NaN with one seed"),
    Metric("seeds", "", "runs averaged (one per seed)"),
)


def seed_summary(runs: pd.DataFrame, *, by: str = "cc") -> pd.DataFrame:
    """One row per ``by`` group of per-seed rows (:data:`SEED_SUMMARY`): every numeric
    column's mean and its ``_ci95`` half-width; groups in order of first appearance."""
    numeric = [c for c in runs.columns if c not in (by, "seed")
               and pd.api.types.is_numeric_dtype(runs[c]) and not pd.api.types.is_bool_dtype(runs[c])]
    rows = []
    for key, g in runs.groupby(by, sort=False):
        row: dict[str, Any] = {by: key}
        for c in numeric:
            row[c], row[f"{c}_ci95"] = mean_ci95(g[c].to_numpy(dtype=float))
        row["seeds"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows)
