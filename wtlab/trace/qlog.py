"""qlog out and in: traces as qlog JSON / JSON-SEQ, and qlog from other QUIC stacks.

Writing (:func:`write_qlog`, :func:`to_qlog`) has two flavours:

* ``"ietf"`` (default): the current IETF drafts (draft-ietf-quic-qlog-main-schema,
  -quic-events): ``file_schema``/``serialization_format`` header, event names
  ``quic:packet_sent``, ``quic:packet_received``, ``quic:packet_lost``,
  ``quic:packets_acked``, ``quic:recovery_metrics_updated`` (``congestion_window``),
  ``quic:congestion_state_updated``, ``quic:loss_timer_updated``,
  ``quic:stream_state_updated``, ``quic:stream_data_moved``, ``quic:datagram_data_moved``;
  traces declare ``urn:ietf:params:qlog:events:quic-13`` (the draft asks for its number)
  and ``urn:wtlab:qlog:events:wtlab`` for the ``wtlab:*`` events; loss triggers use the
  draft's names (``reordering_threshold``, ``time_threshold``, ``pto_expired``).
* ``"legacy"``: qlog 0.3 as aioquic writes it and qvis reads it (``qlog_version: "0.3"``,
  ``transport:packet_sent``, ``recovery:metrics_updated`` with ``cwnd``,
  ``recovery:packet_lost``, ``recovery:congestion_state_updated``).

A path ending in ``.sqlog`` (or ``seq=True``) writes JSON-SEQ (RFC 7464: each record
starts with the RS byte 0x1E and ends with a newline): one header record, then one
record per event; flows are told apart by ``group_id``. Plain JSON writes one trace per
flow. Times are milliseconds since the run started; RTTs are milliseconds; pacing rates
bit/s. ``ack_received`` rows (the ACK frames a sender got) become ``packet_received``
events carrying that ACK frame, which is where qvis looks for acknowledgements. Kinds
without a standard qlog event become ``wtlab:<kind>`` events. Each event
carries what the standard fields cannot say (``flow`` beyond the trace, controller
state, ...) in a ``wtlab`` member of its ``data``, so a trace written here reads back
row for row, value for value (``read_qlog``). JSON-SEQ keeps the row order; JSON (one
trace per flow) keeps each flow's order and merges the flows by time (rows of different
flows at the same instant in flow order).

Reading (:func:`read_qlog`, :func:`parse_qlog`) accepts:

* qlog 0.3 JSON as aioquic writes it (absolute millisecond times, ``cwnd``);
* draft-00 style traces with ``event_fields`` and event arrays (picoquic; times and
  RTTs in the trace's ``time_units``, e.g. microseconds);
* draft-02 / 0.3 JSON-SEQ (quic-go; ``congestion_window``, relative times);
* current IETF JSON and JSON-SEQ (``quic:`` names), and files written by :func:`write_qlog`.

Times become seconds: a trace's ``time_units`` (default ms) are honoured, delta times
(``relative_to_previous_event``) are summed, and times that look like wall-clock epoch
values (as aioquic writes them) are counted from the first event; relative times are kept.

Known events fill the schema's columns (a ``packets_acked`` event with several packet
numbers gives one row each); the event data the columns do not hold stays in ``extra``
(JSON text). Events the schema does not know are kept as rows whose ``kind`` is the qlog
event name and whose ``extra`` is the event data: nothing is dropped. Malformed input
raises :class:`wtlab.TraceFormatError` naming the file and the line (JSON-SEQ) or record.

Most stacks log acknowledgements only as ACK frames inside ``packet_received``;
:func:`derive_acks` (or ``read_qlog(..., derive_acks=True)``) turns them into
``packet_acked`` rows so :class:`~wtlab.trace.monitor.PerformanceMonitor` works on
imported traces too.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError, TraceFormatError
from wtlab.trace import schema
from wtlab.trace.export import as_frame, atomic_path

RS = "\x1e"
FLAVOURS = ("ietf", "legacy")

# kind -> (ietf name, legacy name); kinds not listed become "wtlab:<kind>".
_NAMES: dict[str, tuple[str, str]] = {
    "packet_sent": ("quic:packet_sent", "transport:packet_sent"),
    "packet_received": ("quic:packet_received", "transport:packet_received"),
    # the ACK frame a sender received: a packet_received carrying it (what qvis reads)
    "ack_received": ("quic:packet_received", "transport:packet_received"),
    "packet_lost": ("quic:packet_lost", "recovery:packet_lost"),
    "packet_acked": ("quic:packets_acked", "wtlab:packet_acked"),
    "metrics_updated": ("quic:recovery_metrics_updated", "recovery:metrics_updated"),
    "cwnd_changed": ("quic:recovery_metrics_updated", "recovery:metrics_updated"),
    "rtt_sample": ("quic:recovery_metrics_updated", "recovery:metrics_updated"),
    "pacing_changed": ("quic:recovery_metrics_updated", "recovery:metrics_updated"),
    "state_changed": ("quic:congestion_state_updated", "recovery:congestion_state_updated"),
    "pto_expired": ("quic:loss_timer_updated", "recovery:loss_timer_updated"),
    "stream_opened": ("quic:stream_state_updated", "transport:stream_state_updated"),
    "stream_closed": ("quic:stream_state_updated", "transport:stream_state_updated"),
    "stream_reset": ("quic:stream_state_updated", "transport:stream_state_updated"),
    "stream_data_sent": ("quic:stream_data_moved", "wtlab:stream_data_sent"),
    "stream_data_received": ("quic:stream_data_moved", "wtlab:stream_data_received"),
    "datagram_sent": ("quic:datagram_data_moved", "wtlab:datagram_sent"),
    "datagram_received": ("quic:datagram_data_moved", "wtlab:datagram_received"),
}
_STREAM_STATE = {"stream_opened": "open", "stream_closed": "closed",
                 "stream_reset": "reset_received"}
# Event schema URIs: the QUIC events draft asks for its draft number while it is a draft;
# wtlab:* events (kinds qlog has no event for) are declared under wtlab's own URI.
QUIC_EVENTS_URI = "urn:ietf:params:qlog:events:quic-13"
WTLAB_EVENTS_URI = "urn:wtlab:qlog:events:wtlab"
# wtlab's loss triggers (wtlab.cc.aioquic) -> the qlog packet_lost trigger names
_IETF_TRIGGER = {"packet_threshold": "reordering_threshold", "pto": "pto_expired"}
# metrics fields: column -> (ietf field, legacy field, scale from column to field)
_METRICS = {
    "cwnd": ("congestion_window", "cwnd", None),
    "bytes_in_flight": ("bytes_in_flight", "bytes_in_flight", None),
    "ssthresh": ("ssthresh", "ssthresh", None),
    "srtt_s": ("smoothed_rtt", "smoothed_rtt", 1000.0),
    "min_rtt_s": ("min_rtt", "min_rtt", 1000.0),
    "latest_rtt_s": ("latest_rtt", "latest_rtt", 1000.0),
    "rttvar_s": ("rtt_variance", "rtt_variance", 1000.0),
    "pacing_rate_bps": ("pacing_rate", "pacing_rate", None),
}
_VALUE_COLS = [c for c in schema.COLUMNS if c not in ("time_s", "kind", "extra")]
# kinds written as (ietf/legacy) metrics_updated events; the reader needs their kind
_METRIC_KINDS = frozenset(("cwnd_changed", "rtt_sample", "pacing_changed", "ack_received"))
_EPOCH_PACKET_TYPE = {"initial": "initial", "handshake": "handshake"}

# --- ECN (issue 18): qlog names for wtlab's ECN rows -------------------------------------
# The sender's validation state is the QUIC events draft's ecn_state_updated (old, new;
# states testing/unknown/capable/failed); the ECN counts an ACK frame carried are that ack
# frame's ect0/ect1/ce fields, in the packet_received that brought it; a queue's CE mark
# (ecn_marked) has no qlog event (a link is not an endpoint) and stays wtlab:ecn_marked.
_NAMES.update({"ecn_validation": ("quic:ecn_state_updated", "recovery:ecn_state_updated"),
               "ecn_counts": ("quic:packet_received", "transport:packet_received")})
_ECN_KINDS = frozenset(("ecn_validation", "ecn_counts"))


def _ecn_data(kind: str, extra: str | None) -> dict[str, Any]:
    try:
        d = json.loads(extra) if extra else {}
    except ValueError:
        d = {}
    if not isinstance(d, Mapping):
        d = {}
    if kind == "ecn_validation":
        out = {k: d[k] for k in ("old", "new") if isinstance(d.get(k), str)}
        if isinstance(d.get("reason"), str) and d["reason"]:
            out["trigger"] = d["reason"]
        return out
    frame: dict[str, Any] = {"frame_type": "ack"}
    for k in ("ect0", "ect1", "ce"):
        if isinstance(d.get(k), int):
            frame[k] = d[k]
    ptype = _EPOCH_PACKET_TYPE.get(d.get("epoch"), "1RTT") if isinstance(
        d.get("epoch"), str) else "1RTT"
    return {"header": {"packet_type": ptype}, "frames": [frame]}
# --- end of ECN ---------------------------------------------------------------------------


# =============================================================================== writing
def _rows(df: pd.DataFrame) -> list[tuple[str, float, int, str | None, dict[str, Any]]]:
    """(kind, time_s, flow, extra, non-NA values) per row, built column-wise (fast)."""
    n = len(df)
    cols: list[tuple[str, list[Any]]] = []
    for col in _VALUE_COLS:
        s = df[col]
        if col in schema.INT_COLUMNS:
            vals = s.astype(object).where(s.notna(), None).tolist()
        elif col in schema.FLOAT32_COLUMNS:
            vals = [None if v != v else ("inf" if v == math.inf else "-inf" if v == -math.inf
                                         else v) for v in s.to_numpy(np.float64).tolist()]
        elif col == "state":
            vals = [v or None for v in s.astype(object).where(s.notna(), "").tolist()]
        else:  # bytes, flow: 0 is the default
            vals = [v or None for v in s.to_numpy(np.int64).tolist()]
        if any(v is not None for v in vals):
            cols.append((col, vals))
    kinds = df["kind"].astype(object).tolist()
    times = df["time_s"].to_numpy(np.float64).tolist()
    flows = df["flow"].to_numpy(np.int64).tolist()
    extras = df["extra"].tolist()
    out = []
    for i in range(n):
        vals = {c: v[i] for c, v in cols if v[i] is not None}
        out.append((str(kinds[i]), times[i], flows[i], extras[i], vals))
    return out


def _ack_frame_packet(extra: str | None) -> dict[str, Any]:
    """qlog packet_received data holding the ACK frame an ``ack_received`` row describes
    (``extra`` as wtlab.cc.aioquic writes it: ranges, ack_delay_s, epoch)."""
    try:
        d = json.loads(extra) if extra else {}
    except ValueError:
        d = {}
    if not isinstance(d, Mapping):
        d = {}
    frame: dict[str, Any] = {"frame_type": "ack"}
    ranges = d.get("ranges")
    if isinstance(ranges, list) and all(
            isinstance(r, list) and r and all(isinstance(x, int) for x in r) for r in ranges):
        frame["acked_ranges"] = ranges
    delay = d.get("ack_delay_s")
    if isinstance(delay, (int, float)) and not isinstance(delay, bool) and math.isfinite(delay):
        frame["ack_delay"] = delay * 1000.0
    ptype = _EPOCH_PACKET_TYPE.get(d.get("epoch"), "1RTT") if isinstance(
        d.get("epoch"), str) else "1RTT"
    return {"header": {"packet_type": ptype}, "frames": [frame]}


def _event(row: tuple[str, float, int, str | None, dict[str, Any]], flavour: str, seq: bool,
           multi_flow: bool) -> dict[str, Any]:
    kind, t, flow, row_extra, vals = row
    legacy = flavour == "legacy"
    names = _NAMES.get(kind)
    name = (names[1] if legacy else names[0]) if names else f"wtlab:{kind}"
    data: dict[str, Any] = {}
    keep = dict(vals)  # columns not (exactly) expressed by standard fields
    ptype = "1RTT"
    if kind in ("packet_sent", "packet_received", "packet_lost"):
        header: dict[str, Any] = {"packet_type": ptype}
        if "pn" in vals:
            header["packet_number"] = keep.pop("pn")
        if legacy and kind == "packet_lost":
            data.update({"type": ptype, **({"packet_number": header["packet_number"]}
                                           if "packet_number" in header else {})})
        else:
            data["header"] = header
        if kind != "packet_lost" and "bytes" in vals:
            data["raw"] = {"length": keep.pop("bytes")}
    elif kind == "ack_received":
        data.update(_ack_frame_packet(row_extra))
    elif kind in _ECN_KINDS:  # ECN (issue 18), see _ecn_data
        data.update(_ecn_data(kind, row_extra))
    elif kind == "packet_acked" and not legacy:
        if "pn" in vals:
            data["packet_numbers"] = [keep.pop("pn")]
        data["packet_number_space"] = "application_data"
    elif names and names[0] == "quic:recovery_metrics_updated":
        for col, (ietf, old, scale) in _METRICS.items():
            if col in vals and not isinstance(vals[col], str):
                data[old if legacy else ietf] = vals[col] * scale if scale else vals[col]
                keep.pop(col)
    elif kind == "state_changed":
        data["new"] = keep.pop("state", "")
    elif kind == "pto_expired":
        data.update({"event_type": "expired", "timer_type": "pto"})
    elif kind in _STREAM_STATE:
        if "stream_id" in vals:
            data["stream_id"] = keep.pop("stream_id")
        data["new"] = _STREAM_STATE[kind]
    elif kind in ("stream_data_sent", "stream_data_received", "datagram_sent",
                  "datagram_received") and not legacy:
        if kind.startswith("stream") and "stream_id" in vals:
            data["stream_id"] = keep.pop("stream_id")
        if "bytes" in vals:
            data["length"] = keep.pop("bytes")
        sent = kind.endswith("_sent")
        data["from"], data["to"] = ("application", "transport") if sent else (
            "transport", "application")
    if kind == "packet_lost" and row_extra is not None:
        try:
            trig = json.loads(row_extra).get("trigger")
        except (ValueError, AttributeError):
            trig = None
        if isinstance(trig, str):
            data["trigger"] = trig if legacy else _IETF_TRIGGER.get(trig, trig)
    # what the standard fields cannot say, for an exact read-back
    t_ms = t * 1000.0
    if t_ms / 1000.0 != t:
        keep["time_s"] = t
    if multi_flow:
        keep.pop("flow", None)  # the trace (JSON) or group_id (JSON-SEQ) says which flow
    if kind in _METRIC_KINDS or kind in _ECN_KINDS:  # the others read back from their name
        keep["kind"] = kind
    if row_extra is not None:
        keep["extra"] = row_extra
    data["wtlab"] = keep  # present (maybe empty) on every event wtlab writes
    ev: dict[str, Any] = {"time": t_ms, "name": name, "data": data}
    if seq and multi_flow:
        ev["group_id"] = str(flow)
    return ev


def to_qlog(trace: Any, *, flavour: str = "ietf", seq: bool = False,
            title: str | None = None, vantage: str = "client") -> list[dict[str, Any]]:
    """The qlog records: ``[file]`` for JSON, ``[header, event, ...]`` for JSON-SEQ."""
    if flavour not in FLAVOURS:
        raise ConfigError(f"qlog flavour {flavour!r} is not one of {FLAVOURS}")
    df, meta = as_frame(trace)
    df = schema.conform(df)
    if len(df) and not np.isfinite(df["time_s"].to_numpy(np.float64)).all():
        raise ConfigError("qlog needs a finite time_s on every row; drop or fix the rows "
                          "with NaN/inf times first")
    flows = sorted({int(f) for f in df["flow"].unique()}) or [0]
    multi = len(flows) > 1 or flows != [0]
    title = title or f"wtlab trace {meta.get('run_id', '')}".strip()
    desc = json.dumps({k: meta.get(k) for k in ("run_id", "algorithm", "path", "workload",
                                                "seed") if k in meta}, default=str)
    legacy = flavour == "legacy"
    records = _rows(df)
    vp = {"name": "wtlab", "type": vantage}
    schemas = [QUIC_EVENTS_URI, WTLAB_EVENTS_URI]

    def common(flow: int | None) -> dict[str, Any]:
        c: dict[str, Any] = {"time_format": "relative"}
        if legacy:
            c["reference_time"] = 0.0
        else:
            c["reference_time"] = {"clock_type": "monotonic", "epoch": "unknown"}
            c["time_format"] = "relative_to_epoch"
        if flow is not None:
            c["group_id"] = str(flow)
        return c

    if seq:
        trace_hdr = {"title": title, "description": desc, "vantage_point": vp,
                     "common_fields": common(None if multi else flows[0])}
        if legacy:
            header = {"qlog_format": "JSON-SEQ", "qlog_version": "0.3", "title": title,
                      "trace": trace_hdr}
        else:
            header = {"file_schema": "urn:ietf:params:qlog:file:sequential",
                      "serialization_format": "application/qlog+json-seq", "title": title,
                      "trace": {**trace_hdr, "event_schemas": schemas}}
        return [header, *(_event(r, flavour, True, multi) for r in records)]
    traces = []
    for flow in flows:
        evs = [_event(r, flavour, False, multi) for r in records if r[2] == flow]
        traces.append({"title": f"{title} flow {flow}", "description": desc,
                       "vantage_point": vp, "common_fields": common(flow), "events": evs})
    if legacy:
        doc = {"qlog_format": "JSON", "qlog_version": "0.3", "title": title,
               "traces": traces}
    else:
        doc = {"file_schema": "urn:ietf:params:qlog:file:contained",
               "serialization_format": "application/qlog+json", "title": title,
               "traces": [{**t, "event_schemas": schemas} for t in traces]}
    return [doc]


def write_qlog(trace: Any, path: str | os.PathLike, *, flavour: str = "ietf",
               seq: bool | None = None, title: str | None = None,
               vantage: str = "client") -> Path:
    """Write a trace as qlog JSON or JSON-SEQ (``.sqlog`` or ``seq=True``), atomically."""
    path = Path(path)
    if seq is None:
        seq = path.suffix == ".sqlog"
    records = to_qlog(trace, flavour=flavour, seq=seq, title=title, vantage=vantage)
    with atomic_path(path, suffix=".qlog.tmp") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        if seq:
            for rec in records:
                fh.write(RS + json.dumps(rec, allow_nan=False, separators=(",", ":")) + "\n")
        else:
            fh.write(json.dumps(records[0], allow_nan=False, separators=(",", ":")))
    return path


# =============================================================================== reading
class _Bad(Exception):
    """Internal: malformed content; turned into TraceFormatError with a location."""


def _num(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _Bad(f"{what} must be a number, got {v!r}")
    try:
        x = float(v)
    except (ValueError, OverflowError):
        raise _Bad(f"{what} must be a number, got {v!r}") from None
    if math.isnan(x):
        raise _Bad(f"{what} is NaN")
    return x


def _int(v: Any, what: str, lo: int = -(1 << 63), hi: int = (1 << 63) - 1) -> int:
    if isinstance(v, bool):
        raise _Bad(f"{what} must be an integer, got {v!r}")
    if isinstance(v, int):
        i = v
    else:
        x = _num(v, what)
        if not math.isfinite(x) or x != math.floor(x):
            raise _Bad(f"{what} must be an integer, got {v!r}")
        i = int(x)
    if not lo <= i <= hi:
        raise _Bad(f"{what}={i} is out of range {lo}..{hi}")
    return i


def _finite(v: Any, what: str) -> float:
    x = _num(v, what)
    if not math.isfinite(x):
        raise _Bad(f"{what} is not finite")
    return x


def _float_or_inf(v: Any, what: str) -> float:
    if v in ("inf", "-inf"):
        return float(v)
    return _num(v, what)


_U32 = 0xFFFFFFFE
_COL_READ = {  # column -> converter for values found in the wtlab member / fields
    "flow": lambda v, w: _int(v, w, 0, 0xFFFF),
    "pn": lambda v, w: _int(v, w),
    "stream_id": lambda v, w: _int(v, w, -(1 << 31), (1 << 31) - 1),
    "bytes": lambda v, w: _int(v, w),
    "payload_bytes": lambda v, w: _int(v, w, 0, _U32),
    "cwnd": lambda v, w: _int(v, w, 0, _U32),
    "bytes_in_flight": lambda v, w: _int(v, w, 0, _U32),
    "ssthresh": lambda v, w: _int(v, w, 0, _U32),
    **{c: _float_or_inf for c in schema.FLOAT32_COLUMNS},
    "time_s": lambda v, w: _finite(v, w),
    "state": lambda v, w: v if isinstance(v, str) else _raise(f"{w} must be text"),
    "kind": lambda v, w: v if isinstance(v, str) and v else _raise(f"{w} must be text"),
    "extra": lambda v, w: v if isinstance(v, str) else _raise(f"{w} must be text"),
}


def _raise(msg: str):
    raise _Bad(msg)


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _standard_rows(name: str, data: Mapping[str, Any], rtt_per_s: float
                   ) -> list[tuple[str, dict[str, Any], set[str]]]:
    """(kind, column values, data keys consumed) rows for a known event, [] if unknown.

    ``rtt_per_s`` is the trace's RTT unit per second (1000 for ms, 1e6 for us).
    """
    ev = name.split(":", 1)[-1] if ":" in name else name
    cat = name.split(":", 1)[0] if ":" in name else ""
    if cat != "wtlab":
        ev, cat = ev.lower(), cat.lower()  # draft-00 wrote TRANSPORT / PACKET_SENT
    if cat == "wtlab":
        return [(ev, {}, set())] if ev else []
    cols: dict[str, Any] = {}
    used: set[str] = set()
    if ev in ("packet_sent", "packet_received", "packet_lost"):
        # the first of these places that holds a value is used (and removed from extra)
        for key in ("header.packet_number", "packet_number"):
            pn = _dotted(data, key)
            if pn is not None:
                cols["pn"] = _int(pn, "packet_number")
                used.add(key)
                break
        for key in ("raw.length", "header.packet_size", "packet_size", "length"):
            size = _dotted(data, key)
            if size is not None:
                cols["bytes"] = _int(size, "packet length")
                used.add(key)
                break
        if ev == "packet_lost" and isinstance(data.get("trigger"), str):
            cols["extra_fields"] = {"trigger": data["trigger"]}
            used.add("trigger")
        return [(ev, cols, used)]
    if ev == "packets_acked":
        pns = data.get("packet_numbers")
        used.update(("packet_numbers", "packet_number_space"))
        if isinstance(pns, list) and pns:
            return [("packet_acked", {"pn": _int(p, "packet_numbers[]")}, set(used))
                    for p in pns]
        return [("packet_acked", {}, used)]
    if ev in ("metrics_updated", "recovery_metrics_updated"):
        for col, (ietf, old, scale) in _METRICS.items():
            for field in (ietf, old):
                if field in data and data[field] is not None:
                    v = data[field]
                    if scale:
                        cols[col] = _num(v, field) / rtt_per_s
                    elif col == "pacing_rate_bps":
                        cols[col] = _num(v, field)
                    else:
                        cols[col] = _COL_READ[col](v, field)
                    used.add(field)
        return [("metrics_updated", cols, used)]
    if ev == "congestion_state_updated":
        new = data.get("new")
        if new is not None:
            if not isinstance(new, str):
                raise _Bad(f"congestion_state_updated.new must be text, got {new!r}")
            cols["state"] = new
            used.add("new")
        return [("state_changed", cols, used)]
    if ev == "loss_timer_updated":
        if data.get("event_type") == "expired" and data.get("timer_type") == "pto":
            return [("pto_expired", cols, {"event_type", "timer_type"})]
        return []
    if ev == "stream_state_updated":
        new = data.get("new")
        kind = {"open": "stream_opened", "opened": "stream_opened", "closed": "stream_closed",
                "reset": "stream_reset", "reset_sent": "stream_reset",
                "reset_received": "stream_reset"}.get(new) if isinstance(new, str) else None
        if kind is None:
            return []
        if data.get("stream_id") is not None:
            cols["stream_id"] = _COL_READ["stream_id"](data["stream_id"], "stream_id")
        return [(kind, cols, {"stream_id", "new"})]
    if ev in ("stream_data_moved", "datagram_data_moved"):
        to = data.get("to")
        if to not in ("transport", "application"):
            return []
        kind = ("stream_data" if ev.startswith("stream") else "datagram") + (
            "_sent" if to == "transport" else "_received")
        if ev.startswith("stream") and data.get("stream_id") is not None:
            cols["stream_id"] = _COL_READ["stream_id"](data["stream_id"], "stream_id")
        if data.get("length") is not None:
            cols["bytes"] = _int(data["length"], "length")
        return [(kind, cols, {"stream_id", "length", "from", "to"})]
    return []


def _dotted(data: Mapping[str, Any], key: str) -> Any:
    return _get(data, *key.split("."))


def _strip_used(data: Mapping[str, Any], used: set[str]) -> dict[str, Any]:
    """``data`` without the consumed keys (``a.b`` removes ``b`` from object ``a``;
    an object left empty goes too) and without the ``wtlab`` member."""
    rest = {k: v for k, v in data.items() if k not in used and k != "wtlab"}
    for key in used:
        if "." not in key:
            continue
        outer, inner = key.split(".", 1)
        obj = rest.get(outer)
        if isinstance(obj, Mapping) and inner in obj:
            obj = {k: v for k, v in obj.items() if k != inner}
            if obj:
                rest[outer] = obj
            else:
                rest.pop(outer)
    return rest


class _Builder:
    """Collects rows as column lists; ``frame()`` conforms them to the schema."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {c: [] for c in schema.COLUMNS}
        self.raw: list[tuple[float, float] | None] = []  # (time in file units, units per s)
        self.current_raw: tuple[float, float] | None = None

    def add(self, time_s: float, kind: str, flow: int, values: Mapping[str, Any],
            extra: str | None) -> None:
        c = self.cols
        c["time_s"].append(time_s)
        cur = self.current_raw
        self.raw.append(cur if cur is not None and time_s == cur[0] / cur[1] else None)
        c["kind"].append(kind)
        c["flow"].append(values.get("flow", flow))
        for col in schema.INT_COLUMNS:
            c[col].append(values.get(col, pd.NA))
        c["bytes"].append(values.get("bytes", 0))
        for col in schema.FLOAT32_COLUMNS:
            c[col].append(values.get(col, math.nan))
        c["state"].append(values.get("state", ""))
        c["extra"].append(extra)

    def rebase(self) -> None:
        """Count epoch-like times from the first event, subtracting in the file's own
        units first (ms since 1970 lose sub-microsecond bits once turned into seconds)."""
        ts = self.cols["time_s"]
        if not ts or min(ts) <= _EPOCH_LIKE_S:
            return
        i0 = min(range(len(ts)), key=ts.__getitem__)
        t0, base = ts[i0], self.raw[i0]
        for i, t in enumerate(ts):
            r = self.raw[i]
            if r is not None and base is not None and r[1] == base[1]:
                ts[i] = (r[0] - base[0]) / r[1]
            else:
                ts[i] = t - t0

    def frame(self) -> pd.DataFrame:
        c = self.cols
        data = {
            "time_s": pd.array(c["time_s"], dtype="float64"),
            "flow": pd.array(c["flow"], dtype="uint16"),
            "kind": pd.Categorical(c["kind"]),
            **{k: pd.array(c[k], dtype="Int64") for k in schema.INT_COLUMNS},
            "bytes": pd.array(c["bytes"], dtype="int64"),
            **{k: pd.array(c[k], dtype="float32") for k in schema.FLOAT32_COLUMNS},
            "state": pd.Categorical(c["state"]),
            "extra": pd.Series(c["extra"], dtype=object),
        }
        return schema.conform(pd.DataFrame(data), copy=False)


def _event_rows(b: _Builder, name: Any, data: Any, t: float, flow: int, per_s: float,
                where: str) -> None:
    if not isinstance(name, str) or not name:
        raise _Bad(f"{where}: event name must be text, got {name!r}")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _Bad(f"{where}: event data must be an object, got {type(data).__name__}")
    if not math.isfinite(t):
        raise _Bad(f"{where}: time is not finite")
    time_s = t / per_s
    b.current_raw = (t, per_s)
    wt = data.get("wtlab")
    if wt is not None and not isinstance(wt, Mapping):
        raise _Bad(f"{where}: data.wtlab must be an object")
    std = _standard_rows(name, data, per_s)
    if not std:  # unknown event: keep it whole
        extra = json.dumps(data, sort_keys=True, default=str) if data else None
        vals: dict[str, Any] = {}
        kind = name
        if wt is not None:
            vals, kind, extra, time_s = _apply_wtlab(wt, vals, kind, extra, time_s, where)
        b.add(time_s, kind, flow, vals, extra)
        return
    for kind, cols, used in std:
        extra_fields = cols.pop("extra_fields", None)
        rest = _strip_used(data, used)
        if extra_fields:
            rest = {**extra_fields, **rest}
        extra = json.dumps(rest, sort_keys=True, default=str) if rest else None
        t = time_s
        if wt is not None:
            cols, kind, extra, t = _apply_wtlab(wt, cols, kind, extra, t, where)
        b.add(t, kind, flow, cols, extra)


def _apply_wtlab(wt: Mapping[str, Any], cols: dict[str, Any], kind: str, extra: str | None,
                 time_s: float, where: str) -> tuple[dict[str, Any], str, str | None, float]:
    cols = dict(cols)
    extra = None  # the wtlab member carries the original extra text, if there was one
    for k, v in wt.items():
        conv = _COL_READ.get(k)
        if conv is None:
            raise _Bad(f"{where}: unknown field {k!r} in data.wtlab")
        val = conv(v, f"data.wtlab.{k}")
        if k == "kind":
            kind = val
        elif k == "extra":
            extra = val
        elif k == "time_s":
            time_s = val
        else:
            cols[k] = val
    return cols, kind, extra, time_s


# Times not declared relative count from the run's first event only if they look like
# wall-clock epoch times (aioquic writes time.time() in ms); anything under ~3 years is
# taken to be relative to the trace's reference already and left alone.
_EPOCH_LIKE_S = 1e8


def _trace_clock(trace: Mapping[str, Any], header: Mapping[str, Any] | None
                 ) -> tuple[float, str, bool]:
    """(time units per second, time format, times are absolute epoch values)."""
    cfg = trace.get("configuration") or (header or {}).get("configuration") or {}
    common = trace.get("common_fields") or {}
    if not isinstance(cfg, Mapping) or not isinstance(common, Mapping):
        raise _Bad("configuration and common_fields must be objects")
    units = cfg.get("time_units", common.get("time_units", "ms"))
    per_s = {"ms": 1e3, "us": 1e6, "ns": 1e9, "s": 1.0}.get(units) if isinstance(
        units, str) else None
    if per_s is None:
        raise _Bad(f"time_units {units!r} is not one of ms, us, ns, s")
    fmt = common.get("time_format", "")
    if not isinstance(fmt, str):
        raise _Bad("time_format must be text")
    ref = common.get("reference_time")
    relative = fmt in ("relative", "relative_to_previous_event", "delta") or (
        fmt == "relative_to_epoch" and isinstance(ref, Mapping)
        and ref.get("epoch") == "unknown")
    return per_s, fmt, not relative


def _flow_of(group: Any, groups: dict[str, int]) -> int:
    key = str(group)
    if key.isdigit() and int(key) <= 0xFFFF:
        return int(key)
    if key not in groups:
        groups[key] = len(groups)
    return groups[key]


def _read_trace_events(b: _Builder, trace: Mapping[str, Any], flow: int,
                       header: Mapping[str, Any] | None, rec_no: int) -> bool:
    per_s, fmt, absolute = _trace_clock(trace, header)
    events = trace.get("events", [])
    if not isinstance(events, list):
        raise _Bad(f"trace {rec_no}: events must be a list")
    fields = trace.get("event_fields")
    groups: dict[str, int] = {}
    prev = [0.0]
    if fields is None:
        for j, ev in enumerate(events):
            _read_event_object(b, ev, flow, per_s, fmt, f"trace {rec_no} event {j}", groups,
                               prev)
        return absolute
    # draft-00: each event is an array laid out by event_fields
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise _Bad(f"trace {rec_no}: event_fields must be a list of names")
    low = [f.lower() for f in fields]
    idx = {n: low.index(n) for n in low}
    t_key = next((k for k in ("relative_time", "time", "delta_time") if k in idx), None)
    name_key = next((k for k in ("event", "event_type") if k in idx), None)
    if t_key is None or name_key is None or "data" not in idx:
        raise _Bad(f"trace {rec_no}: event_fields need a time field, event and data")
    if t_key != "time":
        absolute = False
    for j, ev in enumerate(events):
        where = f"trace {rec_no} event {j}"
        if not isinstance(ev, list) or len(ev) != len(fields):
            raise _Bad(f"{where}: expected an array of {len(fields)} fields")
        t = _num(ev[idx[t_key]], f"{where} time")
        if t_key == "delta_time":
            prev[0] += t
            t = prev[0]
        cat = ev[idx["category"]] if "category" in idx else ""
        name = ev[idx[name_key]]
        if not isinstance(cat, str) or not isinstance(name, str):
            raise _Bad(f"{where}: category and event must be text")
        fl = _flow_of(ev[idx["group_id"]], groups) if "group_id" in idx else flow
        _event_rows(b, f"{cat}:{name}" if cat else name, ev[idx["data"]], t, fl, per_s, where)
    return absolute


def _read_event_object(b: _Builder, ev: Any, flow: int, per_s: float, fmt: str, where: str,
                       groups: dict[str, int], prev: list[float]) -> None:
    if not isinstance(ev, Mapping):
        raise _Bad(f"{where}: an event must be an object")
    t = _num(ev.get("time"), f"{where} time")
    if fmt in ("relative_to_previous_event", "delta"):
        prev[0] += t
        t = prev[0]
    name = ev.get("name")
    if name is None and "category" in ev:
        name = f"{ev.get('category')}:{ev.get('event', ev.get('event_type'))}"
    fl = _flow_of(ev["group_id"], groups) if ev.get("group_id") is not None else flow
    _event_rows(b, name, ev.get("data"), t, fl, per_s, where)


def parse_qlog(text: str | bytes, *, name: str = "<qlog>") -> pd.DataFrame:
    """Parse qlog content (any supported version, JSON or JSON-SEQ) into a trace frame."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TraceFormatError(f"qlog is not UTF-8 text ({exc})", path=name) from None
    stripped = text.lstrip(" \t\r\n\ufeff")
    if not stripped:
        raise TraceFormatError("qlog file is empty", path=name, line=1)
    try:
        if stripped.startswith(RS):
            return _parse_seq(text, name)
        try:
            doc = json.loads(text)
        except ValueError as exc:
            # JSON-SEQ without RS separators (one object per line) is common too
            first = stripped.split("\n", 1)[0]
            try:
                head = json.loads(first)
            except ValueError:
                raise TraceFormatError(f"not JSON ({exc.args[0]})", path=name,
                                       line=getattr(exc, "lineno", None)) from None
            if isinstance(head, Mapping) and ("trace" in head or "qlog_format" in head):
                return _parse_seq(text, name)
            raise TraceFormatError(f"not JSON ({exc.args[0]})", path=name,
                                   line=getattr(exc, "lineno", None)) from None
        return _parse_doc(doc, name)
    except _Bad as exc:
        raise TraceFormatError(str(exc), path=name) from None
    except RecursionError:
        raise TraceFormatError("qlog nesting is too deep", path=name) from None


def _check_header(doc: Mapping[str, Any]) -> dict[str, Any]:
    meta = {k: doc.get(k) for k in ("qlog_version", "qlog_format", "file_schema",
                                    "serialization_format", "title") if k in doc}
    return {"qlog": meta}


def _parse_doc(doc: Any, name: str) -> pd.DataFrame:
    if not isinstance(doc, Mapping):
        raise TraceFormatError("a qlog file must hold a JSON object", path=name, line=1)
    traces = doc.get("traces")
    if traces is None and isinstance(doc.get("trace"), Mapping):
        raise TraceFormatError("this is a JSON-SEQ header without events; JSON-SEQ records "
                               "must each start with the RS byte (0x1E) or be one per line",
                               path=name, line=1)
    if not isinstance(traces, list):
        raise TraceFormatError("qlog JSON needs a 'traces' list", path=name, line=1)
    b = _Builder()
    abs_flags = []
    starts = []
    for i, tr in enumerate(traces):
        if not isinstance(tr, Mapping):
            raise TraceFormatError(f"trace {i} is not an object", path=name, line=1)
        if "error_description" in tr and "events" not in tr:
            continue  # a TraceError entry: nothing to import
        common = tr.get("common_fields")
        flow = i
        if isinstance(common, Mapping) and common.get("group_id") is not None:
            flow = _flow_of(common["group_id"], {})
            if not str(common["group_id"]).isdigit():
                flow = i
        starts.append(len(b.cols["time_s"]))
        try:
            abs_flags.append(_read_trace_events(b, tr, flow, doc, i))
        except _Bad as exc:
            raise TraceFormatError(str(exc), path=name) from None
    if any(abs_flags):
        b.rebase()  # absolute clock -> run start
    df = b.frame()
    if len(traces) > 1 and len(df):
        df = df.sort_values("time_s", kind="stable").reset_index(drop=True)
    df.attrs["meta"] = _check_header(doc)
    return df


def _parse_seq(text: str, name: str) -> pd.DataFrame:
    # Records split on RS if present, else on newlines; line numbers point into the file.
    chunks: list[tuple[int, str]] = []
    if RS in text:
        line = 1
        for part in text.split(RS):
            if part.strip():
                chunks.append((line, part))
            line += part.count("\n")
    else:
        for i, part in enumerate(text.split("\n"), start=1):
            if part.strip():
                chunks.append((i, part))
    header = None
    b = _Builder()
    groups: dict[str, int] = {}
    prev = [0.0]
    per_s, fmt, absolute = 1e3, "", True
    for n, (line, chunk) in enumerate(chunks):
        try:
            rec = json.loads(chunk)
        except ValueError as exc:
            raise TraceFormatError(f"record is not JSON ({exc.args[0]})", path=name,
                                   line=line) from None
        try:
            if n == 0 and isinstance(rec, Mapping) and "time" not in rec and (
                    "trace" in rec or "qlog_format" in rec or "file_schema" in rec):
                header = rec
                trace = rec.get("trace") or {}
                if not isinstance(trace, Mapping):
                    raise _Bad("header 'trace' must be an object")
                per_s, fmt, absolute = _trace_clock(trace, rec)
                common = trace.get("common_fields") or {}
                if isinstance(common, Mapping) and common.get("group_id") is not None:
                    groups[str(common["group_id"])] = 0
                continue
            if header is None:
                raise _Bad("the first JSON-SEQ record must be the qlog header "
                           "(with 'trace' and 'qlog_format' or 'file_schema')")
            _read_event_object(b, rec, 0, per_s, fmt, f"record {n}", groups, prev)
        except _Bad as exc:
            raise TraceFormatError(str(exc), path=name, line=line) from None
    if header is None:
        raise TraceFormatError("no qlog header record", path=name, line=1)
    if absolute:
        b.rebase()
    df = b.frame()
    df.attrs["meta"] = _check_header(header)
    return df


def read_qlog(path: str | os.PathLike, *, derive_acks: bool = False) -> pd.DataFrame:
    """Read a qlog file (JSON or JSON-SEQ, any supported version) into a trace frame.

    ``derive_acks=True`` adds ``packet_acked`` rows from logged ACK frames
    (:func:`derive_acks`).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TraceFormatError(f"cannot read qlog file ({exc.strerror})", path=str(p)) from None
    df = parse_qlog(data, name=str(p))
    return _derive(df) if derive_acks else df


# ============================================================= analysis of imported traces
_SPACES = {"initial": "initial", "handshake": "handshake"}


def _space(extra: Any) -> tuple[str, list[Any]]:
    """(packet number space, frames) from an imported packet row's ``extra`` JSON."""
    if not isinstance(extra, str):
        return "application", []
    try:
        d = json.loads(extra)
    except ValueError:
        return "application", []
    if not isinstance(d, Mapping):
        return "application", []
    ptype = _get(d, "header", "packet_type") or d.get("packet_type") or "1RTT"
    frames = d.get("frames")
    return (_SPACES.get(str(ptype).lower(), "application"),
            frames if isinstance(frames, list) else [])


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    return derive_acks(df)


def derive_acks(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``packet_acked`` rows from the ACK frames of imported ``packet_received`` rows.

    Stacks rarely log acknowledgements as events (aioquic, quic-go and picoquic log the
    ACK frames inside ``packet_received``); this turns each packet first acknowledged by
    such a frame into a ``packet_acked`` row (time of the received packet, the sent
    packet's ``bytes``, ``extra``: ``{"derived_from": "ack_frame", "space": ...}``), per
    flow and packet-number space (initial, handshake, application), so the
    :class:`~wtlab.trace.monitor.PerformanceMonitor` can compute goodput and losses from
    another stack's qlog. Rows already present are kept; the result is sorted by time
    (derived rows right after the packet that carried the ACK).
    """
    import bisect

    df = schema.conform(df)
    kinds = df["kind"].astype(object).to_numpy()
    mask = (kinds == "packet_sent") | (kinds == "packet_received")
    sub = df[mask & df["pn"].notna().to_numpy()]
    sent: dict[tuple[int, str], dict[int, int]] = {}
    order: dict[tuple[int, str], list[int]] = {}
    new_rows: list[tuple[int, float, int, int, int, str]] = []  # (after row, t, flow, pn, ...)
    for idx, kind, t, flow, pn, nbytes, extra in zip(
            sub.index, sub["kind"].astype(object), sub["time_s"], sub["flow"], sub["pn"],
            sub["bytes"], sub["extra"], strict=True):
        space, frames = _space(extra)
        key = (int(flow), space)
        if kind == "packet_sent":
            if int(pn) not in sent.setdefault(key, {}):
                bisect.insort(order.setdefault(key, []), int(pn))
            sent[key][int(pn)] = int(nbytes)
            continue
        pending, pns = sent.get(key), order.get(key)
        if not pending:
            continue
        for frame in frames:
            if not (isinstance(frame, Mapping) and frame.get("frame_type") == "ack"):
                continue
            for rng in frame.get("acked_ranges") or []:
                if not isinstance(rng, list) or not rng or not all(
                        isinstance(x, int) and not isinstance(x, bool) for x in rng):
                    continue
                lo, hi = rng[0], rng[-1]
                i, j = bisect.bisect_left(pns, lo), bisect.bisect_right(pns, hi)
                for acked in pns[i:j]:
                    new_rows.append((idx, float(t), int(flow), acked, pending.pop(acked),
                                     json.dumps({"derived_from": "ack_frame", "space": space})))
                del pns[i:j]
    if not new_rows:
        return df
    add = pd.DataFrame({
        "time_s": [r[1] for r in new_rows], "flow": [r[2] for r in new_rows],
        "kind": "packet_acked", "pn": [r[3] for r in new_rows],
        "bytes": [r[4] for r in new_rows], "extra": [r[5] for r in new_rows]})
    add = schema.conform(add)
    # place each derived row right after the packet that carried its ACK frame
    pos = df.index.get_indexer([r[0] for r in new_rows]).astype(np.float64) + 0.5
    out = schema.concat([df, add])
    key = np.concatenate([np.arange(len(df), dtype=np.float64), pos])
    out = out.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out
