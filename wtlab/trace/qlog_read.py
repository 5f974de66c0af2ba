"""qlog in: qlog files of any QUIC stack into the trace schema.

Accepted (what a user may rely on):

* current IETF qlog, JSON and JSON-SEQ (draft-ietf-quic-qlog-main-schema up to -14,
  quic-events up to -13: ``quic:`` names, ``timer_updated``, ``raw.length``) and the names
  used up to quic-events-12 (``loss_timer_updated``, ``length``);
* qlog 0.3 / draft-02 (``transport:``/``recovery:`` categories) as aioquic and quic-go
  write it, JSON or JSON-SEQ (RS-separated or one record per line), numbers as JSON
  numbers or as strings (I-JSON, e.g. quic-go's ``[["0","12"]]`` ACK ranges);
* draft-00 event arrays laid out by ``event_fields`` (picoquic; times and RTTs in the
  trace's ``time_units``, e.g. microseconds). A ``path_id`` (picoquic multipath) makes
  each path its own flow and fills a ``path_id`` column: paths are never merged;
* mvfst's spellings (``quic:packet_ack`` with ``packet_num``, ``InitialSpace`` ...);
* files wtlab wrote (:mod:`wtlab.trace.qlog_write`): read back row for row.

Times become seconds since the run started: a trace's ``time_units`` are honoured,
delta times summed, epoch-like wall-clock times (aioquic) counted from the first event.
Known events fill the schema's columns; what the columns do not hold stays in ``extra``
as JSON text. Events wtlab does not know are kept whole (``kind`` = the event name,
``extra`` = its data): nothing is dropped. A UTF-8 byte-order mark is accepted.

``packet_acked`` rows of imported ``packets_acked`` events take their ``bytes`` from the
matching ``packet_sent`` (same flow, packet number space and number). By default
(``derive_acks="auto"``) packets first acknowledged by an ACK frame inside
``packet_received`` get a ``packet_acked`` row too (:func:`wtlab.trace.qlog_acks.derive_acks`),
so goodput of an imported trace is what its own ACK frames acknowledge.

Every malformed value raises :class:`QlogValueError` (a :class:`wtlab.TraceFormatError`)
naming the file, the line (JSON-SEQ) or the trace and event index, and the field.
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

from wtlab.errors import TraceFormatError
from wtlab.trace import qlog_acks, schema
from wtlab.trace import qlog_schema as Q

_U32 = 0xFFFFFFFE
_I64 = (1 << 63) - 1
_EPOCH_LIKE_S = 1e8  # times above ~3 years are wall-clock epoch values (aioquic)
_SEQ_BATCH = 20_000  # JSON-SEQ records parsed per call (bounded memory)


class QlogValueError(TraceFormatError):
    """A qlog value is malformed: ``path``, ``line`` (JSON-SEQ), ``event`` (where in the
    file, e.g. ``"trace 0 event 3000"``) and ``field`` (e.g. ``"data.header.packet_number"``)
    say where."""

    def __init__(self, problem: str, *, path: str | None = None, line: int | None = None,
                 event: str | None = None, field: str | None = None) -> None:
        self.event = event
        self.field = field
        self.problem = problem
        where = ", ".join(x for x in (event, f"field {field}" if field else None) if x)
        msg = f"{where}: {problem}" if where else problem
        super().__init__(f"{msg}; fix or remove that value (qlog fields are described in "
                         f"{Q.QUIC_EVENTS_DRAFT})", path=path, line=line)


class _Bad(Exception):
    """Internal: (problem, field); the caller adds file, line and event."""

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.field = problem, field


# ================================================================ values
def _num(v: Any, field: str) -> float:
    if type(v) is float or type(v) is int:
        return float(v)
    if isinstance(v, str):  # I-JSON: uint64 as strings
        try:
            x = float(v)
        except ValueError:
            raise _Bad(f"must be a number, got {v!r}", field) from None
        if math.isnan(x):
            raise _Bad(f"must be a number, got {v!r}", field)
        return x
    raise _Bad(f"must be a number, got {v!r}", field)


def _int(v: Any, field: str, lo: int = -_I64 - 1, hi: int = _I64) -> int:
    if type(v) is int:
        i = v
    elif isinstance(v, str) and v.strip().lstrip("+-").isdigit():
        i = int(v)
    else:
        x = _num(v, field)
        if not math.isfinite(x) or x != math.floor(x):
            raise _Bad(f"must be an integer, got {v!r}", field)
        i = int(x)
    if not lo <= i <= hi:
        raise _Bad(f"{i} is out of range {lo}..{hi}", field)
    return i


def _finite(v: Any, field: str) -> float:
    x = _num(v, field)
    if not math.isfinite(x):
        raise _Bad(f"must be finite, got {v!r}", field)
    return x


def _float_or_inf(v: Any, field: str) -> float:
    if v in ("inf", "-inf"):
        return float(v)
    return _num(v, field)


def _text(v: Any, field: str) -> str:
    if not isinstance(v, str):
        raise _Bad(f"must be text, got {v!r}", field)
    return v


def _name(v: Any, field: str) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad(f"must be a non-empty name, got {v!r}", field)
    return v


# values found in the wtlab member of events wtlab wrote: column -> converter
_WT_COLUMNS = {
    "flow": lambda v, f: _int(v, f, 0, 0xFFFF),
    "pn": lambda v, f: _int(v, f),
    "stream_id": lambda v, f: _int(v, f, -(1 << 31), (1 << 31) - 1),
    "bytes": lambda v, f: _int(v, f),
    "cwnd": lambda v, f: _int(v, f, 0, _U32),
    "bytes_in_flight": lambda v, f: _int(v, f, 0, _U32),
    "ssthresh": lambda v, f: _int(v, f, 0, _U32),
    **{c: _float_or_inf for c in schema.FLOAT32_COLUMNS},
    "time_s": _finite,
    "state": _text,
    "kind": _name,
    "extra": _text,
}


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


# ================================================================ rows
class _Rows:
    """Collects rows column by column; ``frame()`` gives the typed trace frame."""

    def __init__(self) -> None:
        self.time: list[float] = []
        self.raw_time: list[tuple[float, float] | None] = []  # (value in file, units/s)
        self.kind: list[str] = []
        self.flow: list[int] = []
        self.ints: dict[str, list[Any]] = {c: [] for c in schema.INT_COLUMNS}
        self.bytes: list[int] = []
        self.floats: dict[str, list[float]] = {c: [] for c in schema.FLOAT32_COLUMNS}
        self.state: list[str] = []
        self.extra: list[str | None] = []
        self.path_id: list[Any] = []
        self.any_path = False
        self.foreign: list[bool] = []
        self.acked_space: dict[int, str] = {}  # row -> space of an imported packets_acked
        self.sent_space: dict[int, str] = {}  # row -> space of an imported packet_sent

    def add(self, t: float, raw: tuple[float, float] | None, kind: str, flow: int,
            cols: Mapping[str, Any], extra: str | None, path: Any, foreign: bool) -> int:
        self.time.append(t)
        self.raw_time.append(raw)
        self.kind.append(kind)
        self.flow.append(flow)
        for c, lst in self.ints.items():
            lst.append(cols.get(c))
        self.bytes.append(cols.get("bytes", 0))
        for c, lst in self.floats.items():
            lst.append(cols.get(c, math.nan))
        self.state.append(cols.get("state", ""))
        self.extra.append(extra)
        self.path_id.append(path)
        self.foreign.append(foreign)
        return len(self.time) - 1

    def rebase(self, start: int) -> None:
        """Epoch-like times of rows ``start:`` counted from their first event, subtracting
        in the file's own units (ms since 1970 lose bits once turned into seconds)."""
        ts = self.time
        if len(ts) <= start or min(ts[start:]) <= _EPOCH_LIKE_S:
            return
        i0 = min(range(start, len(ts)), key=ts.__getitem__)
        t0, base = ts[i0], self.raw_time[i0]
        for i in range(start, len(ts)):
            r = self.raw_time[i]
            if r is not None and base is not None and r[1] == base[1]:
                ts[i] = (r[0] - base[0]) / r[1]
            else:
                ts[i] = ts[i] - t0

    def frame(self) -> pd.DataFrame:
        def nullable(vals: list[Any]) -> pd.arrays.IntegerArray:
            mask = np.fromiter((v is None for v in vals), bool, len(vals))
            arr = np.fromiter((0 if v is None else v for v in vals), np.int64, len(vals))
            return pd.arrays.IntegerArray(arr, mask)

        data = {
            "time_s": np.asarray(self.time, dtype=np.float64),
            "flow": np.asarray(self.flow, dtype=np.uint16),
            "kind": pd.Categorical(self.kind),
            **{c: nullable(v) for c, v in self.ints.items()},
            "bytes": np.asarray(self.bytes, dtype=np.int64),
            **{c: np.asarray(v, dtype=np.float64).astype(np.float32)
               for c, v in self.floats.items()},
            "state": pd.Categorical(self.state),
            "extra": pd.Series(self.extra, dtype=object),
        }
        df = pd.DataFrame(data)
        if self.any_path:
            df["path_id"] = nullable(self.path_id)
        return schema.conform(df, copy=False)


# ================================================================ events
def _short(name: str) -> tuple[str, str]:
    """(category, event) lower-cased, for matching (draft-00 wrote TRANSPORT / PACKET_SENT)."""
    cat, _, ev = name.rpartition(":")
    ev = ev.lower()
    return cat.lower(), Q.EVENT_ALIASES.get(ev, ev)


def _packet_cols(data: Mapping[str, Any], ev: str) -> tuple[dict[str, Any], set[str]]:
    cols: dict[str, Any] = {}
    used: set[str] = set()
    for key, field in (("header", "packet_number"), (None, "packet_number"),
                       (None, "packet_num")):
        v = _get(data, key, field) if key else data.get(field)
        if v is not None:
            cols["pn"] = _int(v, f"data.{key + '.' if key else ''}{field}", 0, _I64)
            used.add(f"{key}.{field}" if key else field)
            break
    if ev != "packet_lost":
        for key, field in (("raw", "length"), ("header", "packet_size"), (None, "packet_size"),
                           (None, "length")):
            v = _get(data, key, field) if key else data.get(field)
            if v is not None:
                cols["bytes"] = _int(v, f"data.{key + '.' if key else ''}{field}", 0, _I64)
                used.add(f"{key}.{field}" if key else field)
                break
    return cols, used


def _ptype(data: Mapping[str, Any]) -> str | None:
    p = _get(data, "header", "packet_type")
    if p is None:
        p = data.get("packet_type", data.get("type"))
    return p if isinstance(p, str) else None


def _space_name(v: Any) -> str | None:
    return Q.SPACE_ALIASES.get(v.lower()) if isinstance(v, str) else None


def _strip(data: Mapping[str, Any], used: set[str]) -> dict[str, Any]:
    """``data`` without the consumed keys (``a.b`` removes ``b`` from object ``a``; an
    object left empty goes too)."""
    rest = {k: v for k, v in data.items() if k not in used}
    for key in used:
        outer, dot, inner = key.partition(".")
        if not dot:
            continue
        obj = rest.get(outer)
        if isinstance(obj, Mapping) and inner in obj:
            obj = {k: v for k, v in obj.items() if k != inner}
            if obj:
                rest[outer] = obj
            else:
                rest.pop(outer)
    return rest


def _metrics(data: Mapping[str, Any], rtt_per_s: float) -> tuple[dict[str, Any], set[str]]:
    cols: dict[str, Any] = {}
    used: set[str] = set()
    for col, field, rtt, _integer in Q.METRIC_COLUMNS:
        names = [field] + [a for a, f in Q.METRIC_ALIASES.items() if f == field]
        for name in names:
            v = data.get(name)
            if v is None:
                continue
            used.add(name)
            if rtt:
                cols[col] = _num(v, f"data.{name}") / rtt_per_s
            elif col == "pacing_rate_bps":
                cols[col] = _num(v, f"data.{name}")
            else:
                cols[col] = _int(v, f"data.{name}", 0, _U32)
            break
    return cols, used


def _standard(name: str, data: Mapping[str, Any], rtt_per_s: float
              ) -> tuple[list[tuple[str, dict[str, Any], set[str]]], str | None]:
    """([(kind, columns, consumed data keys), ...], packet number space) of a known event;
    ([], None) if wtlab does not know it."""
    if name.startswith("wtlab:"):
        return ([(name[6:], {}, set())] if len(name) > 6 else []), None
    cat, ev = _short(name)
    if ev in ("packet_sent", "packet_received", "packet_lost"):
        cols, used = _packet_cols(data, ev)
        if ev == "packet_lost" and isinstance(data.get("trigger"), str):
            used.add("trigger")
            cols["_trigger"] = data["trigger"]
        pt = _ptype(data)
        return [(ev, cols, used)], Q.SPACE_OF_TYPE.get(pt.lower(), "application_data") \
            if pt else "application_data"
    if ev == "packets_acked":
        space = _space_name(data.get("packet_number_space", data.get("packet_num_space")))
        used = {"packet_numbers", "packet_num"}
        if space in (None, "application_data"):
            used |= {"packet_number_space", "packet_num_space"}
        pns = data.get("packet_numbers")
        if pns is None and data.get("packet_num") is not None:
            pns = [data["packet_num"]]
        if isinstance(pns, list) and pns:
            return [("packet_acked", {"pn": _int(p, f"data.packet_numbers[{i}]", 0, _I64)},
                     used) for i, p in enumerate(pns)], space or "application_data"
        if pns is not None and not isinstance(pns, list):
            raise _Bad(f"must be a list of packet numbers, got {pns!r}", "data.packet_numbers")
        return [("packet_acked", {}, used)], space or "application_data"
    if ev == "recovery_metrics_updated":
        cols, used = _metrics(data, rtt_per_s)
        return [("metrics_updated", cols, used)], None
    if ev == "congestion_state_updated":
        new = data.get("new")
        if new is None:
            return [("state_changed", {}, set())], None
        return [("state_changed", {"state": _text(new, "data.new")}, {"new"})], None
    if ev == "timer_updated":
        if data.get("event_type") == "expired" and data.get("timer_type") == "pto":
            return [("pto_expired", {}, {"event_type", "timer_type"})], None
        return [], None
    if ev == "stream_state_updated":
        new = data.get("new")
        kind = {"open": "stream_opened", "opened": "stream_opened", "closed": "stream_closed",
                "reset": "stream_reset", "reset_sent": "stream_reset",
                "reset_received": "stream_reset"}.get(new) if isinstance(new, str) else None
        if kind is None:
            return [], None
        cols = {}
        if data.get("stream_id") is not None:
            cols["stream_id"] = _int(data["stream_id"], "data.stream_id", 0, (1 << 31) - 1)
        return [(kind, cols, {"stream_id", "new", "stream_side"})], None
    if ev in ("stream_data_moved", "datagram_data_moved", "data_moved"):
        to = data.get("to")
        if to not in ("transport", "application"):
            return [], None
        stream = ev == "stream_data_moved" or (ev == "data_moved"
                                               and data.get("stream_id") is not None)
        if ev == "data_moved" and not stream:
            return [], None  # qlog 0.3 data_moved without a stream: kept whole
        kind = ("stream_data" if stream else "datagram") + (
            "_sent" if to == "transport" else "_received")
        cols = {}
        used = {"from", "to"}
        if stream and data.get("stream_id") is not None:
            cols["stream_id"] = _int(data["stream_id"], "data.stream_id", 0, (1 << 31) - 1)
            used.add("stream_id")
        for key, field in (("raw", "length"), (None, "length")):
            v = _get(data, key, field) if key else data.get(field)
            if v is not None:
                cols["bytes"] = _int(v, f"data.{key + '.' if key else ''}{field}", 0, _I64)
                used.add(f"{key}.{field}" if key else field)
                break
        return [(kind, cols, used)], None
    return [], None


# ================================================================ the reader
class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.rows = _Rows()
        self.flows: dict[tuple[Any, Any], int] = {}  # (connection key, path) -> flow
        self.flow_info: list[dict[str, Any]] = []
        self.wtlab_events = 0

    def flow_of(self, conn: Any, path: Any, digits_ok: bool) -> int:
        key = (conn, path)
        f = self.flows.get(key)
        if f is None:
            if digits_ok and path is None and isinstance(conn, str) and conn.isdigit() and \
                    int(conn) <= 0xFFFF:
                f = int(conn)  # wtlab writes the flow number as the group id
            else:
                used = set(self.flows.values())
                f = 0
                while f in used:
                    f += 1
                if f > 0xFFFF:
                    raise _Bad("more than 65536 connections or paths", "group_id")
            self.flows[key] = f
            self.flow_info.append({"flow": f, "connection": conn, "path_id": path})
        return f

    def event(self, ev: Any, conn: Any, clock: _Clock, path: Any = None) -> None:
        if not isinstance(ev, Mapping):
            raise _Bad(f"an event must be an object, got {type(ev).__name__}")
        t_raw = clock.time(ev.get("time"))
        name = ev.get("name")
        if name is None and "category" in ev:
            name = f"{ev.get('category')}:{ev.get('event', ev.get('event_type'))}"
        if not isinstance(name, str) or not name:
            raise _Bad(f"must be an event name, got {name!r}", "name")
        if ev.get("group_id") is not None:
            conn = str(ev["group_id"])
        if ev.get("path_id") is not None:
            path = _int(ev["path_id"], "path_id", 0, 0xFFFF)
        self.add(name, ev.get("data"), t_raw, clock, conn, path, ev.get("wtlab"))

    def add(self, name: str, data: Any, t_raw: float, clock: _Clock, conn: Any, path: Any,
            wt: Any) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise _Bad(f"must be an object, got {type(data).__name__}", "data")
        if wt is None and isinstance(data.get("wtlab"), Mapping):
            wt = data["wtlab"]  # files of wtlab before 2026-09 kept it inside data
        if wt is not None and not isinstance(wt, Mapping):
            raise _Bad("must be an object", "wtlab")
        time_s = t_raw / clock.per_s
        raw = (t_raw, clock.per_s)
        if path is not None:
            self.rows.any_path = True
        flow = self.flow_of(conn, path, wt is not None)
        std, space = _standard(name, data, clock.rtt_per_s)
        if wt is not None:
            self.wtlab_events += 1
            kind, cols = (std[0][0], std[0][1]) if std else (name, {})
            cols = {k: v for k, v in cols.items() if not k.startswith("_")}
            extra = None
            for k, v in wt.items():
                conv = _WT_COLUMNS.get(k)
                if conv is None:
                    raise _Bad(f"unknown member {k!r}", "wtlab")
                val = conv(v, f"wtlab.{k}")
                if k == "kind":
                    kind = val
                elif k == "extra":
                    extra = val
                elif k == "time_s":
                    time_s, raw = val, None
                elif k == "flow":
                    flow = val
                else:
                    cols[k] = val
            self.rows.add(time_s, raw, kind, flow, cols, extra, path, False)
            return
        if not std:  # unknown: kept whole
            self.rows.add(time_s, raw, name, flow, {}, _dumps(data) if data else None, path,
                          True)
            return
        for kind, cols, used in std:
            rest = _strip(data, used)
            trig = cols.pop("_trigger", None)
            if trig is not None:
                rest = {"trigger": trig, **rest}
            row = self.rows.add(time_s, raw, kind, flow, cols,
                                _dumps(rest) if rest else None, path, True)
            if space is not None:
                if kind == "packet_acked":
                    self.rows.acked_space[row] = space
                elif kind == "packet_sent":
                    self.rows.sent_space[row] = space


class _Clock:
    """A trace's time units and format (draft-00 ``time_units``, delta times)."""

    def __init__(self, trace: Mapping[str, Any], header: Mapping[str, Any] | None) -> None:
        cfg = trace.get("configuration") or (header or {}).get("configuration") or {}
        common = trace.get("common_fields") or {}
        if not isinstance(cfg, Mapping):
            raise _Bad("must be an object", "configuration")
        if not isinstance(common, Mapping):
            raise _Bad("must be an object", "common_fields")
        units = cfg.get("time_units", common.get("time_units", "ms"))
        per_s = {"ms": 1e3, "us": 1e6, "ns": 1e9, "s": 1.0}.get(units) if isinstance(
            units, str) else None
        if per_s is None:
            raise _Bad(f"must be one of ms, us, ns, s, got {units!r}", "time_units")
        fmt = common.get("time_format", "")
        if not isinstance(fmt, str):
            raise _Bad(f"must be text, got {fmt!r}", "common_fields.time_format")
        ref = common.get("reference_time")
        self.per_s = per_s
        self.rtt_per_s = per_s  # draft-00 logged RTTs in the trace's units (picoquic: us)
        self.delta = fmt in ("relative_to_previous_event", "delta")
        self.prev = 0.0
        self.relative = self.delta or fmt == "relative" or (
            fmt == "relative_to_epoch" and isinstance(ref, Mapping)
            and ref.get("epoch") == "unknown")

    def time(self, v: Any) -> float:
        t = _finite(v, "time")
        if self.delta:
            self.prev += t
            return self.prev
        return t


def _decode(text: str | bytes, name: str) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TraceFormatError(f"qlog is not UTF-8 text ({exc}); qlog files are UTF-8 "
                                   "JSON", path=name) from None
    return text[1:] if text.startswith("\ufeff") else text


def _loads(text: str) -> Any:
    # orjson was measured here: 35k vs 28k events/s on this per-event path (median of
    # 3), not worth a dependency; files wtlab wrote take the column-wise path instead
    return json.loads(text)


def parse_qlog(text: str | bytes, *, name: str = "<qlog>",
               derive_acks: bool | str = "auto") -> pd.DataFrame:
    """Parse qlog content (JSON or JSON-SEQ, any supported version) into a trace frame.

    ``derive_acks``: ``"auto"`` (default) adds ``packet_acked`` rows from the ACK frames
    of files that other stacks wrote (never for files wtlab wrote), ``True`` always,
    ``False`` never. ``df.attrs["meta"]["qlog"]`` holds the file's header fields and the
    flows found (connection key, path id).
    """
    fast = _fast_frame(text, derive_acks)
    if fast is not None:
        return fast
    text = _decode(text, name)
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise TraceFormatError("qlog file is empty", path=name, line=1)
    reader = _Reader(name)
    try:
        if stripped.startswith(Q.RS):
            header = _parse_seq(reader, text)
        else:
            try:
                doc = _loads(text)
            except ValueError as exc:
                first = stripped.split("\n", 1)[0]
                try:
                    head = json.loads(first)
                except ValueError:
                    raise TraceFormatError(f"not JSON ({exc.args[0]})", path=name,
                                           line=getattr(exc, "lineno", None)) from None
                if isinstance(head, Mapping) and ("trace" in head or "qlog_format" in head
                                                  or "file_schema" in head):
                    header = _parse_seq(reader, text)
                else:
                    raise TraceFormatError(f"not JSON ({exc.args[0]})", path=name,
                                           line=getattr(exc, "lineno", None)) from None
            else:
                header = _parse_doc(reader, doc)
    except RecursionError:
        raise TraceFormatError("qlog nesting is too deep", path=name) from None
    df = reader.rows.frame()
    df = qlog_acks.fill_acked_bytes(df, reader.rows.sent_space, reader.rows.acked_space,
                                    reader.rows.foreign)
    df.attrs["meta"] = {"qlog": _header_meta(header, reader.flow_info,
                                             reader.wtlab_events > 0)}
    if derive_acks is True or (derive_acks == "auto" and reader.wtlab_events == 0):
        df = qlog_acks.derive_acks(df)
    return df


def _header_meta(header: Mapping[str, Any], flows: list[dict[str, Any]], wtlab: bool
                 ) -> dict[str, Any]:
    meta = {k: header.get(k) for k in ("qlog_version", "qlog_format", "file_schema",
                                       "serialization_format", "title") if k in header}
    meta["flows"] = flows
    meta["written_by_wtlab"] = wtlab
    return json.loads(json.dumps(meta, default=str))


def _fast_frame(text: Any, derive_acks: bool | str) -> pd.DataFrame | None:
    """The frame of a file wtlab wrote, read column-wise; None: use the general reader."""
    fast = _columnar(text)
    if fast is None:
        return None
    df, header = fast
    flows = [{"flow": int(g) if g.isdigit() else i, "connection": g, "path_id": None}
             for i, g in enumerate(header.pop("_flows"))]
    df.attrs["meta"] = {"qlog": _header_meta(header, flows, True)}
    return qlog_acks.derive_acks(df) if derive_acks is True else df


def _columnar(text: Any) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The column-wise reader for files wtlab wrote (None: use the general reader)."""
    from wtlab.trace.qlog_columns import read_wtlab_qlog

    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data[:3] == b"\xef\xbb\xbf":
        data = bytes(data[3:])  # (a copy, for the rare file with a byte-order mark)
    if b'"name":"wtlab"' not in bytes(data[:4096]):
        return None
    return read_wtlab_qlog(data)


def _located(reader: _Reader, exc: _Bad, where: str, line: int | None = None
             ) -> QlogValueError:
    return QlogValueError(exc.problem, path=reader.name, line=line, event=where,
                          field=exc.field)


def _parse_doc(reader: _Reader, doc: Any) -> Mapping[str, Any]:
    name = reader.name
    if not isinstance(doc, Mapping):
        raise TraceFormatError("a qlog file must hold a JSON object", path=name, line=1)
    traces = doc.get("traces")
    if traces is None and isinstance(doc.get("trace"), Mapping):
        raise TraceFormatError("this is a JSON-SEQ header without events; JSON-SEQ records "
                               "must each start with the RS byte (0x1E) or be one per line",
                               path=name, line=1)
    if not isinstance(traces, list):
        raise TraceFormatError("qlog JSON needs a 'traces' list", path=name, line=1)
    absolute = False
    for i, tr in enumerate(traces):
        if not isinstance(tr, Mapping):
            raise QlogValueError("a trace must be an object", path=name, event=f"trace {i}")
        if "error_description" in tr and "events" not in tr:
            continue  # a TraceError entry: nothing to import
        start = len(reader.rows.time)
        try:
            clock = _Clock(tr, doc)
        except _Bad as exc:
            raise _located(reader, exc, f"trace {i}") from None
        common = tr.get("common_fields") or {}
        group = common.get("group_id") if isinstance(common, Mapping) else None
        conn = str(group) if group is not None else f"trace {i}"
        if group is not None and not str(group).isdigit():
            conn = f"trace {i}"  # foreign group ids: a trace is a connection
        events = tr.get("events", [])
        if not isinstance(events, list):
            raise QlogValueError("must be a list", path=name, event=f"trace {i}",
                                 field="events")
        fields = tr.get("event_fields")
        if fields is None:
            j = -1
            try:
                for j, ev in enumerate(events):  # noqa: B007 - j locates errors
                    reader.event(ev, conn, clock)
            except _Bad as exc:
                raise _located(reader, exc, f"trace {i} event {j}") from None
        else:
            _read_arrays(reader, tr, fields, events, i, conn, clock)
        absolute |= not clock.relative
        del start
    if absolute:
        reader.rows.rebase(0)  # one origin for all traces: their alignment is kept
    if len(traces) > 1:
        _sort_rows(reader.rows)
    return doc


def _read_arrays(reader: _Reader, tr: Mapping[str, Any], fields: Any, events: list[Any],
                 i: int, conn: str, clock: _Clock) -> None:
    """draft-00: each event is an array laid out by ``event_fields``."""
    name = reader.name
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise QlogValueError("must be a list of names", path=name, event=f"trace {i}",
                             field="event_fields")
    low = [f.lower() for f in fields]
    idx = {n: low.index(n) for n in low}
    t_key = next((k for k in ("relative_time", "time", "delta_time") if k in idx), None)
    name_key = next((k for k in ("event", "event_type") if k in idx), None)
    if t_key is None or name_key is None or "data" not in idx:
        raise QlogValueError("needs a time field, event and data", path=name,
                             event=f"trace {i}", field="event_fields")
    if t_key == "delta_time":
        clock.delta = True
    if t_key != "time":
        clock.relative = True
    cat_i = idx.get("category")
    path_i = idx.get("path_id")
    group_i = idx.get("group_id")
    t_i, n_i, d_i = idx[t_key], idx[name_key], idx["data"]
    width = len(fields)
    j = -1
    try:
        for j, ev in enumerate(events):  # noqa: B007 - j locates errors
            if not isinstance(ev, list) or len(ev) != width:
                raise _Bad(f"must be an array of {width} fields")
            t_raw = clock.time(ev[t_i])
            cat = ev[cat_i] if cat_i is not None else ""
            ename = ev[n_i]
            if not isinstance(cat, str) or not isinstance(ename, str):
                raise _Bad("category and event must be text", "event")
            path = _int(ev[path_i], "path_id", 0, 0xFFFF) if path_i is not None else None
            c = str(ev[group_i]) if group_i is not None and ev[group_i] is not None else conn
            reader.add(f"{cat}:{ename}" if cat else ename, ev[d_i], t_raw, clock, c, path,
                       None)
    except _Bad as exc:
        raise _located(reader, exc, f"trace {i} event {j}") from None


def _sort_rows(rows: _Rows) -> None:
    """Several traces in one file: rows merged by time (stable: a trace's own order)."""
    order = np.argsort(np.asarray(rows.time, dtype=np.float64), kind="stable")
    if (order == np.arange(len(order))).all():
        return
    perm = order.tolist()
    inv = {old: new for new, old in enumerate(perm)}
    for attr in ("time", "raw_time", "kind", "flow", "bytes", "state", "extra", "path_id",
                 "foreign"):
        lst = getattr(rows, attr)
        setattr(rows, attr, [lst[k] for k in perm])
    for c in list(rows.ints):
        rows.ints[c] = [rows.ints[c][k] for k in perm]
    for c in list(rows.floats):
        rows.floats[c] = [rows.floats[c][k] for k in perm]
    rows.acked_space = {inv[k]: v for k, v in rows.acked_space.items()}
    rows.sent_space = {inv[k]: v for k, v in rows.sent_space.items()}


def _seq_records(text: str) -> list[tuple[int, str]]:
    """(line, record text) of a JSON-SEQ file: split on RS, or one record per line."""
    out: list[tuple[int, str]] = []
    if Q.RS in text:
        line = 1
        for part in text.split(Q.RS):
            if part.strip():
                out.append((line, part))
            line += part.count("\n")
    else:
        for i, part in enumerate(text.split("\n"), start=1):
            if part.strip():
                out.append((i, part))
    return out


def _parse_seq(reader: _Reader, text: str) -> Mapping[str, Any]:
    name = reader.name
    records = _seq_records(text)
    if not records:
        raise TraceFormatError("no qlog header record", path=name, line=1)
    line, first = records[0]
    try:
        header = json.loads(first)
    except ValueError as exc:
        raise TraceFormatError(f"record is not JSON ({exc.args[0]})", path=name,
                               line=line) from None
    if not (isinstance(header, Mapping) and "time" not in header and (
            "trace" in header or "qlog_format" in header or "file_schema" in header)):
        raise TraceFormatError("the first JSON-SEQ record must be the qlog header "
                               "(with 'trace' and 'qlog_format' or 'file_schema')",
                               path=name, line=line)
    trace = header.get("trace") or {}
    try:
        if not isinstance(trace, Mapping):
            raise _Bad("must be an object", "trace")
        clock = _Clock(trace, header)
    except _Bad as exc:
        raise _located(reader, exc, "header", line) from None
    common = trace.get("common_fields") or {}
    group = common.get("group_id") if isinstance(common, Mapping) else None
    conn = str(group) if group is not None else "trace 0"
    for b in range(1, len(records), _SEQ_BATCH):
        batch = records[b:b + _SEQ_BATCH]
        try:  # one parse per batch; a bad record is then found record by record
            events = _loads("[" + ",".join(r for _, r in batch) + "]")
        except ValueError:
            events = None
        for k, (line, rec) in enumerate(batch):
            if events is not None:
                ev = events[k]
            else:
                try:
                    ev = json.loads(rec)
                except ValueError as exc:
                    raise TraceFormatError(f"record is not JSON ({exc.args[0]})", path=name,
                                           line=line) from None
            try:
                reader.event(ev, conn, clock)
            except _Bad as exc:
                raise _located(reader, exc, f"record {b + k}", line) from None
    if not clock.relative:
        reader.rows.rebase(0)
    return header


def read_qlog(path: str | os.PathLike, *, derive_acks: bool | str = "auto") -> pd.DataFrame:
    """Read a qlog file (JSON or JSON-SEQ, any supported version) into a trace frame; see
    :func:`parse_qlog` for ``derive_acks``."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > (1 << 20):  # large files: read in place, no copy (wtlab's own)
                import mmap

                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    fast = _fast_frame(mm, derive_acks)
                    if fast is not None:
                        return fast
            data = p.read_bytes()
    except OSError as exc:
        raise TraceFormatError(f"cannot read qlog file ({exc.strerror})", path=str(p)) from None
    return parse_qlog(data, name=str(p), derive_acks=derive_acks)
