"""Reading qlog that wtlab wrote, column-wise (Arrow's JSON reader, no per-event Python).

:func:`read_wtlab_qlog` returns the same frame as the general reader
(:mod:`wtlab.trace.qlog_read`) for files :mod:`wtlab.trace.qlog_write` made, or ``None``
when a file is not one of them or holds anything this path does not handle (values
out of range, ``"inf"``, imported ACK frames of other shapes, ...): the general reader
then reads it and reports any error with its location. The layout it relies on is the
writer's: JSON-SEQ with one record per line, or JSON with one event per line.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from wtlab.trace import qlog_schema as Q
from wtlab.trace import schema

_I = pa.int64()
_F = pa.float64()
_S = pa.string()
# Types of the fields used. Only the float fields are given to Arrow's reader (a value
# like 50 ms is written "50"); the rest is inferred, which is several times faster than
# an explicit schema full of absent fields, and checked against this table after.
_TYPES: dict[str, pa.DataType] = {
    "time": _F, "name": _S, "group_id": _S,
    "data.header.packet_number": _I, "data.raw.length": _I, "data.length": _I,
    "data.packet_numbers": pa.list_(_I), "data.stream_id": _I,
    "data.min_rtt": _F, "data.smoothed_rtt": _F, "data.latest_rtt": _F,
    "data.rtt_variance": _F, "data.congestion_window": _I, "data.bytes_in_flight": _I,
    "data.ssthresh": _I, "data.pacing_rate": _I, "data.new": _S, "data.to": _S,
    "data.timer_type": _S, "data.event_type": _S,
    "wtlab.kind": _S, "wtlab.time_s": _F, "wtlab.pn": _I, "wtlab.stream_id": _I,
    "wtlab.bytes": _I, "wtlab.payload_bytes": _I, "wtlab.cwnd": _I, "wtlab.bytes_in_flight": _I, "wtlab.ssthresh": _I,
    **{f"wtlab.{c}": _F for c in schema.FLOAT32_COLUMNS},
    "wtlab.state": _S, "wtlab.extra": _S,
}
_FLOATS = pa.schema([
    ("time", _F),
    ("data", pa.struct([(k[5:], _F) for k, t in _TYPES.items()
                        if k.startswith("data.") and t == _F])),
    ("wtlab", pa.struct([(k[6:], _F) for k, t in _TYPES.items()
                         if k.startswith("wtlab.") and t == _F]))])
_U32 = 0xFFFFFFFE
_STREAM_NEW = {"open": "stream_opened", "opened": "stream_opened",
               "closed": "stream_closed", "reset": "stream_reset",
               "reset_sent": "stream_reset", "reset_received": "stream_reset"}


class _NotMine(Exception):
    """This file is not for the column-wise path."""


def _is_wtlab_trace(trace: Any) -> bool:
    vp = trace.get("vantage_point") if isinstance(trace, dict) else None
    return isinstance(vp, dict) and vp.get("name") == "wtlab"


class _Lines(io.RawIOBase):
    """The events of a region of a file as lines Arrow's JSON reader takes, made on the
    fly (no copy of the file): JSON-SEQ's RS bytes dropped, or the commas that end the
    event lines of a JSON file."""

    def __init__(self, view: memoryview, drop: bytes) -> None:
        self.view, self.pos, self.drop = view, 0, drop
        self.held = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        want = len(buf)
        out = b""
        while not out and (self.pos < len(self.view) or self.held):
            raw = self.held + bytes(self.view[self.pos:self.pos + want])
            self.pos += want
            self.held = b""
            if self.drop == b"\x1e":
                out = raw.replace(b"\x1e", b"")
            else:  # '},\n{' -> '}\n{'; a trailing ',' waits for the next read
                if raw.endswith(b",") and self.pos < len(self.view):
                    raw, self.held = raw[:-1], b","
                out = raw.replace(b",\n", b"\n")
        n = min(len(out), want)
        buf[:n] = out[:n]
        if n < len(out):  # cannot happen (never longer than asked), kept for safety
            self.held = out[n:] + self.held
        return n


def read_wtlab_qlog(data: Any) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """(frame, header) of a qlog file wtlab wrote, or None (see the module docstring)."""
    try:
        if data[:1] == Q.RS.encode():
            return _seq(data)
        if data[:1] == b"{":
            return _contained(data)
    except (_NotMine, pa.ArrowException, ValueError, KeyError, IndexError, TypeError):
        return None
    return None


def _seq(data: bytes) -> tuple[pd.DataFrame, dict[str, Any]]:
    end = data.find(b"\n")
    if end < 0:
        raise _NotMine
    header = json.loads(data[1:end])
    trace = header.get("trace") if isinstance(header, dict) else None
    if not _is_wtlab_trace(trace):
        raise _NotMine
    common = trace.get("common_fields") or {}
    group = common.get("group_id")
    flows_seen: list[str] = []
    df = _events(_Lines(memoryview(data)[end + 1:], b"\x1e"), None if group is None
                 else str(group), flows_seen)
    return df, {**header, "_flows": flows_seen or ["trace 0"]}


def _contained(data: bytes) -> tuple[pd.DataFrame, dict[str, Any]]:
    first = data.find(b"\n")
    if not data[:first].endswith(b',"traces":['):
        raise _NotMine
    header = json.loads(data[:first - len(b',"traces":[')] + b"}")
    pos = first + 1
    frames: list[pd.DataFrame] = []
    flows_seen: list[str] = []
    while True:
        line_end = data.find(b"\n", pos)
        line = data[pos:line_end]
        if not line.endswith(b',"events":['):
            raise _NotMine
        trace = json.loads(line[:-len(b',"events":[')] + b"}")
        if not _is_wtlab_trace(trace):
            raise _NotMine
        group = (trace.get("common_fields") or {}).get("group_id")
        stop = data.find(b"\n]}", line_end)
        if stop < 0:
            raise _NotMine
        block = _Lines(memoryview(data)[line_end + 1:stop], b",")
        conn = str(group) if group is not None else f"trace {len(frames)}"
        frames.append(_events(block, conn, flows_seen))
        if data[stop + 3:stop + 5] == b",\n":
            pos = stop + 5
        elif data[stop + 3:stop + 6] == b"\n]}":
            break
        else:
            raise _NotMine
    df = frames[0] if len(frames) == 1 else schema.concat(frames)
    if len(frames) > 1:
        df = df.iloc[np.argsort(df["time_s"].to_numpy(), kind="stable")].reset_index(
            drop=True)
    return df, {**header, "_flows": flows_seen}


def _col(table: pa.Table, path: str) -> pa.Array:
    """Column ``a.b.c`` of the events (all null if no event has it), of the type
    :data:`_TYPES` names, else :class:`_NotMine`."""
    want = _TYPES[path]
    head, *rest = path.split(".")
    if head not in table.column_names:
        return pa.nulls(table.num_rows, want)
    col = table.column(head)
    arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    for part in rest:
        if not pa.types.is_struct(arr.type) or arr.type.get_field_index(part) < 0:
            return pa.nulls(table.num_rows, want)
        arr = pc.struct_field(arr, part)
    if arr.type != want:
        if pa.types.is_null(arr.type):
            return pa.nulls(table.num_rows, want)
        raise _NotMine
    return arr


def _events(block: _Lines, conn: str | None, flows_seen: list[str]) -> pd.DataFrame:
    """Rows of one trace (``conn``: its group id) or of a JSON-SEQ body (``conn`` None:
    per-event ``group_id``)."""
    if b"{" not in bytes(block.view[:64]):
        if bytes(block.view).strip():
            raise _NotMine
        return schema.empty_frame()
    table = pa_json.read_json(
        io.BufferedReader(block, 1 << 22),
        read_options=pa_json.ReadOptions(block_size=1 << 22),
        parse_options=pa_json.ParseOptions(explicit_schema=_FLOATS,
                                           unexpected_field_behavior="infer"))
    table = table.combine_chunks()
    n = table.num_rows
    if "wtlab" not in table.column_names or table.column("wtlab").null_count:
        raise _NotMine  # every event wtlab writes has its wtlab member
    name = _col(table, "name")
    if name.null_count:
        raise _NotMine
    # -- kind: from the name (and data.new / data.to), the wtlab member's kind wins
    enc = pc.dictionary_encode(name)
    base: list[str | None] = []
    for nm in enc.dictionary.to_pylist():
        base.append(_base_kind(nm))
    codes = enc.indices.to_numpy(zero_copy_only=False)
    kind = pa.array(base, _S).take(enc.indices)
    per_row = np.flatnonzero(kind.is_null().to_numpy(zero_copy_only=False))
    if len(per_row):  # kinds the data says: stream states, data moved (few rows)
        names = enc.dictionary.to_pylist()
        new = _col(table, "data.new").take(per_row).to_pylist()
        to = _col(table, "data.to").take(per_row).to_pylist()
        sid_ok = _col(table, "data.stream_id").take(per_row).is_valid().to_pylist()
        fixed = []
        for k, i in enumerate(per_row):
            nm = names[codes[i]]
            short = nm.rpartition(":")[2]
            got = None
            if short == "stream_state_updated":
                got = _STREAM_NEW.get(new[k])
            elif to[k] in ("transport", "application"):
                stream = short == "stream_data_moved" or (short == "data_moved" and sid_ok[k])
                if short == "data_moved" and not stream:
                    got = nm
                else:
                    got = ("stream_data" if stream else "datagram") + (
                        "_sent" if to[k] == "transport" else "_received")
            if got is None:
                raise _NotMine
            fixed.append(got)
        mask = np.zeros(n, bool)
        mask[per_row] = True
        kind = pc.replace_with_mask(kind, pa.array(mask), pa.array(fixed, _S))
    kind = pc.coalesce(_col(table, "wtlab.kind"), kind)
    timers = np.isin(codes, [i for i, b in enumerate(base) if b == "pto_expired"])
    if timers.any():
        et = _col(table, "data.event_type").to_numpy(zero_copy_only=False)[timers]
        tt = _col(table, "data.timer_type").to_numpy(zero_copy_only=False)[timers]
        if not ((et == "expired") & (tt == "pto")).all():
            raise _NotMine
    lists = _col(table, "data.packet_numbers")
    if lists.null_count < n and not (pc.list_value_length(lists).fill_null(1).to_numpy(
            zero_copy_only=False) == 1).all():
        raise _NotMine
    # -- columns: the wtlab member first, then the standard field that says it
    t = _col(table, "time")
    if t.null_count:
        raise _NotMine
    time_s = pc.coalesce(_col(table, "wtlab.time_s"), pc.divide(t, 1000.0))
    pn = pc.coalesce(_col(table, "wtlab.pn"), _col(table, "data.header.packet_number"),
                     pc.list_element(lists, 0))
    sid = pc.coalesce(_col(table, "wtlab.stream_id"), _col(table, "data.stream_id"))
    nbytes = pc.coalesce(_col(table, "wtlab.bytes"), _col(table, "data.raw.length"),
                         _col(table, "data.length"), pa.scalar(0, _I))
    is_metric = np.isin(codes, [i for i, b in enumerate(base) if b == "metrics_updated"])
    is_state = np.isin(codes, [i for i, b in enumerate(base) if b == "state_changed"])

    def only(arr: pa.Array, mask: np.ndarray) -> pa.Array:
        return pc.if_else(pa.array(mask), arr, pa.scalar(None, arr.type))

    cols: dict[str, Any] = {"time_s": time_s.to_numpy(zero_copy_only=False)}
    ints = {"pn": pn, "stream_id": sid, "payload_bytes": _col(table, "wtlab.payload_bytes")}
    for col, field in (("cwnd", "congestion_window"), ("bytes_in_flight", "bytes_in_flight"),
                       ("ssthresh", "ssthresh")):
        ints[col] = pc.coalesce(_col(table, f"wtlab.{col}"),
                                only(_col(table, f"data.{field}"), is_metric))
    for col, arr in ints.items():
        lo, hi = (0, _U32) if col in ("cwnd", "bytes_in_flight", "ssthresh",
                                      "payload_bytes") else (
            (-(1 << 31), (1 << 31) - 1) if col == "stream_id" else (-(1 << 63), (1 << 63) - 1))
        if arr.null_count < n:
            mn, mx = pc.min_max(arr).values()
            if mn.as_py() < lo or mx.as_py() > hi:
                raise _NotMine
        cols[col] = pd.Int64Dtype().__from_arrow__(arr)
    cols["bytes"] = nbytes.to_numpy(zero_copy_only=False).astype(np.int64)
    for col, field, rtt, _ in Q.METRIC_COLUMNS:
        if col in schema.FLOAT32_COLUMNS:
            std = only(_col(table, f"data.{field}"), is_metric)
            std = pc.cast(std, _F, safe=False)  # pacing: integers from float32, exact
            std = pc.divide(std, 1000.0) if rtt else std
            cols[col] = pc.coalesce(_col(table, f"wtlab.{col}"), std)
    cols["delivery_rate_bps"] = _col(table, "wtlab.delivery_rate_bps")
    for col in schema.FLOAT32_COLUMNS:
        cols[col] = cols[col].to_numpy(zero_copy_only=False).astype(np.float64).astype(
            np.float32)
    state = pc.coalesce(_col(table, "wtlab.state"), only(_col(table, "data.new"), is_state),
                        pa.scalar("", _S))
    # -- flows
    if conn is None:
        groups = _col(table, "group_id")
        gvals = pc.dictionary_encode(groups.fill_null("trace 0"))
        gnames = gvals.dictionary.to_pylist()
        gflow = []
        for g in gnames:
            if not (g.isdigit() and int(g) <= 0xFFFF):
                raise _NotMine
            gflow.append(int(g))
        order = np.unique(gvals.indices.to_numpy(zero_copy_only=False), return_index=True)[1]
        firsts = np.sort(order)
        idx = gvals.indices.to_numpy(zero_copy_only=False)
        for i in firsts:
            flows_seen.append(gnames[idx[i]])
        flow = np.asarray(gflow, dtype=np.int64)[idx]
    else:
        if not conn.isdigit() and not conn.startswith("trace "):
            raise _NotMine
        flow = np.full(n, int(conn) if conn.isdigit() else len(flows_seen), dtype=np.int64)
        flows_seen.append(conn)
    if flow.max(initial=0) > 0xFFFF:
        raise _NotMine
    frame = pd.DataFrame({
        "time_s": cols["time_s"], "flow": flow.astype(np.uint16),
        "kind": _categorical(kind), "pn": cols["pn"], "stream_id": cols["stream_id"],
        "bytes": cols["bytes"], "payload_bytes": cols["payload_bytes"], "cwnd": cols["cwnd"],
        "bytes_in_flight": cols["bytes_in_flight"], "ssthresh": cols["ssthresh"],
        **{c: cols[c] for c in schema.FLOAT32_COLUMNS},
        "state": _categorical(state),
        "extra": pd.Series(_col(table, "wtlab.extra").to_numpy(zero_copy_only=False),
                           dtype=object)})
    # built with the schema's dtypes already (conform would walk extra row by row)
    assert list(frame.columns) == list(schema.COLUMNS)
    return frame


def _categorical(arr: pa.Array) -> pd.Categorical:
    enc = pc.dictionary_encode(arr)
    return pd.Categorical.from_codes(enc.indices.to_numpy(zero_copy_only=False),
                                     categories=enc.dictionary.to_pylist())


def _base_kind(name: str) -> str | None:
    """The kind an event name says on its own; None where the data says it; raises
    :class:`_NotMine` for names the general reader keeps as unknown events."""
    if name.startswith("wtlab:") and len(name) > 6:
        return name[6:]
    cat, _, ev = name.rpartition(":")
    ev = Q.EVENT_ALIASES.get(ev, ev)
    kinds = {"packet_sent": "packet_sent", "packet_received": "packet_received",
             "packet_lost": "packet_lost", "packets_acked": "packet_acked",
             "recovery_metrics_updated": "metrics_updated",
             "congestion_state_updated": "state_changed", "timer_updated": "pto_expired",
             "ecn_state_updated": "ecn_validation"}
    if ev in kinds:
        return kinds[ev]
    if ev in ("stream_state_updated", "stream_data_moved", "datagram_data_moved",
              "data_moved"):
        return None
    raise _NotMine
