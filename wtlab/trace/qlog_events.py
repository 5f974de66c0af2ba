"""What one qlog event says, in the trace's columns (used by :mod:`wtlab.trace.qlog_read`).

* value converters that accept numbers or numeric text (I-JSON uint64) and raise
  :class:`_Bad` with the field's name;
* :func:`_standard`: the rows (kind, columns, data keys consumed) of the events wtlab
  knows, under every spelling the reader accepts (IETF drafts up to -13 and before -12,
  qlog 0.3, draft-00, quic-go, picoquic, mvfst);
* :class:`_Rows`: rows collected column by column, then one typed frame.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from wtlab.trace import qlog_schema as Q
from wtlab.trace import schema

_U32 = 0xFFFFFFFE
_I64 = (1 << 63) - 1
_EPOCH_LIKE_S = 1e8  # times above ~3 years are wall-clock epoch values (aioquic)


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
    "payload_bytes": lambda v, f: _int(v, f, 0, _U32),
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
    if ev == "packet_sent":
        payload = _frames_payload(data.get("frames"))
        if payload is not None:
            cols["payload_bytes"] = payload
    return cols, used


PAYLOAD_FRAMES = frozenset(("stream", "datagram"))


def _frames_payload(frames: Any) -> int | None:
    """STREAM and DATAGRAM data a logged packet carries (its ``payload_bytes``): the sum of
    those frames' ``length``; None when the event lists no frames."""
    if not isinstance(frames, list):
        return None
    total = 0
    for i, frame in enumerate(frames):
        if isinstance(frame, Mapping) and frame.get("frame_type") in PAYLOAD_FRAMES:
            n = frame.get("length", frame.get("raw", {}).get("payload_length")
                          if isinstance(frame.get("raw"), Mapping) else None)
            if n is not None:
                total += _int(n, f"data.frames[{i}].length", 0, _I64)
    return total


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
