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
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import TraceFormatError
from wtlab.trace import qlog_acks
from wtlab.trace import qlog_schema as Q
from wtlab.trace.qlog_events import (
    _WT_COLUMNS,
    _Bad,
    _dumps,
    _finite,
    _int,
    _Rows,
    _standard,
    _strip,
)

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
