"""qlog out: a trace as qlog JSON or JSON-SEQ, streamed, in two flavours.

What a user may rely on:

* ``flavour="ietf"`` (default) follows draft-ietf-quic-qlog-main-schema-14 (``file_schema``,
  ``serialization_format``, traces with ``event_schemas``, ``time`` in ms with
  ``reference_time {"clock_type": "monotonic", "epoch": "unknown"}``) and the event
  definitions of draft-ietf-quic-qlog-quic-events-13, field for field:
  ``quic:packet_sent``/``packet_received`` (``header.packet_type``,
  ``header.packet_number``, ``raw.length``), ``quic:packets_acked``
  (``packet_number_space``, ``packet_numbers``), ``quic:packet_lost`` (``header``,
  ``trigger``), ``quic:recovery_metrics_updated`` (RTTs in ms, ``congestion_window``,
  ``bytes_in_flight``, ``ssthresh``, integer ``pacing_rate`` in bit/s),
  ``quic:congestion_state_updated`` (``new``), ``quic:timer_updated`` (PTO expiry),
  ``quic:stream_state_updated`` (``stream_id``, ``new``, ``stream_side``),
  ``quic:stream_data_moved``/``datagram_data_moved`` (``from``, ``to``, ``raw.length``).
* ``flavour="legacy"`` writes qlog 0.3 as qvis reads it: ``qlog_version``/``qlog_format``
  first, ``transport:``/``recovery:`` names, ``recovery:metrics_updated`` with
  ``congestion_window`` and an integer ``pacing_rate``, ``recovery:packet_lost`` with a
  ``header``, ``transport:data_moved`` with ``length``.
* Packet types and number spaces are the ones the trace records: an imported packet
  keeps its ``packet_type``; an ``ack_received`` row's ``epoch`` types the packet that
  carried its ACK frame; a packet of wtlab's own recorder (which does not log the space
  of a sent packet) is typed by the ACK frame that acknowledged it (Initial, Handshake)
  and is 1RTT otherwise.
* Kinds qlog has no event for are ``wtlab:<kind>`` events (declared under
  ``urn:wtlab:qlog:events:wtlab``). Every event carries a ``wtlab`` member (an event-level
  custom field, main schema Section 6) with what the standard fields cannot say, so a
  file read back with :func:`wtlab.trace.qlog.read_qlog` gives the same rows, value for
  value.
* ``.sqlog`` (or ``seq=True``) is JSON-SEQ (RFC 7464): one header record, then one
  record per event in row order; several flows are told apart by ``group_id``. JSON
  writes one trace per flow (``common_fields.group_id``), each in row order.
* Streaming: events are encoded column-wise in chunks of ``CHUNK_ROWS`` rows and
  written as they are made; memory does not grow with the trace (a Recorder is decoded
  chunk by chunk). Writes are atomic and follow the umask (:mod:`wtlab.trace.files`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from wtlab.errors import ConfigError
from wtlab.trace import qlog_schema as Q
from wtlab.trace import schema
from wtlab.trace.files import atomic_open

CHUNK_ROWS = 65_536
_J = pc.binary_join_element_wise
_EMPTY = pa.scalar("", pa.string())


def _s(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.string())


def _join(*parts: Any) -> pa.Array:
    """Element-wise concatenation; a null part counts as empty."""
    return _J(*parts, _EMPTY, null_handling="replace")








def _jstr(text: str) -> str:
    return json.dumps(text)  # ASCII-only JSON string literal


# ================================================================ the trace, chunk by chunk
class _Columns:
    """One chunk of a trace as numpy arrays (from a DataFrame, or straight from a
    Recorder's packed records, without building a DataFrame)."""

    __slots__ = ("n", "t", "flow", "nbytes", "kind_codes", "kind_cats", "state_codes",
                 "state_cats", "ints", "f32", "extra")

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> _Columns:
        c = cls()
        c.n = len(df)
        kind = df["kind"]
        if not isinstance(kind.dtype, pd.CategoricalDtype):
            kind = kind.astype("category")
        c.kind_cats = [str(x) for x in kind.cat.categories]
        c.kind_codes = kind.cat.codes.to_numpy().astype(np.int64)
        c.t = df["time_s"].to_numpy(np.float64)
        c.flow = df["flow"].to_numpy(np.int64)
        c.nbytes = df["bytes"].to_numpy(np.int64)
        c.ints = {col: (df[col].to_numpy(np.int64, na_value=0), df[col].notna().to_numpy())
                  for col in schema.INT_COLUMNS}
        c.f32 = {col: df[col].to_numpy(np.float32) for col in schema.FLOAT32_COLUMNS}
        c.state_cats = [str(x) for x in df["state"].cat.categories]
        c.state_codes = df["state"].cat.codes.to_numpy().astype(np.int64)
        c.extra = df["extra"].to_numpy(dtype=object)
        return c

    @classmethod
    def from_records(cls, rec: np.ndarray, kinds: list[str], states: list[str],
                     extra: np.ndarray) -> _Columns:
        c = cls()
        c.n = len(rec)
        c.kind_cats, c.kind_codes = list(kinds), rec["kind"].astype(np.int64)
        c.state_cats, c.state_codes = list(states), rec["state"].astype(np.int64)
        c.t = rec["time_s"].astype(np.float64)
        c.flow = rec["flow"].astype(np.int64)
        c.nbytes = rec["bytes"].astype(np.int64)
        c.ints = {}
        for col, sentinel in (("pn", schema.NO_PN), ("stream_id", schema.NO_STREAM),
                              ("payload_bytes", schema.NO_BYTES_U32),
                              ("cwnd", schema.NO_BYTES_U32),
                              ("bytes_in_flight", schema.NO_BYTES_U32),
                              ("ssthresh", schema.NO_BYTES_U32)):
            v = rec[col]
            valid = v != sentinel
            c.ints[col] = (np.where(valid, v, 0).astype(np.int64), valid)
        c.f32 = {col: rec[col].astype(np.float32) for col in schema.FLOAT32_COLUMNS}
        c.extra = extra
        return c

    def select(self, mask: np.ndarray) -> _Columns:
        c = _Columns()
        c.n = int(mask.sum())
        c.kind_cats, c.state_cats = self.kind_cats, self.state_cats
        for name in ("t", "flow", "nbytes", "kind_codes", "state_codes", "extra"):
            setattr(c, name, getattr(self, name)[mask])
        c.ints = {k: (v[mask], ok[mask]) for k, (v, ok) in self.ints.items()}
        c.f32 = {k: v[mask] for k, v in self.f32.items()}
        return c


class _Source:
    """Rows of a Recorder or a DataFrame, decoded ``CHUNK_ROWS`` at a time."""

    def __init__(self, trace: Any) -> None:
        if hasattr(trace, "to_pandas") and hasattr(trace, "meta") and hasattr(
                trace, "records"):
            self.rec, self.df = trace, None
            self.meta = dict(trace.meta)
            self.n = len(trace)
        elif isinstance(trace, pd.DataFrame):
            self.rec, self.df = None, trace
            self.meta = dict(trace.attrs.get("meta") or {})
            self.n = len(trace)
        else:
            raise ConfigError(f"expected a wtlab Recorder or a trace DataFrame, got "
                              f"{type(trace).__name__}")

    def _packed(self) -> list[bytes] | None:
        """The Recorder's packed record chunks, if it exposes them."""
        chunks = getattr(self.rec, "_chunks", None)
        buf = getattr(self.rec, "_buf", None)
        if chunks is None or buf is None or not all(
                hasattr(self.rec, a) for a in ("_kinds", "_states", "_extra")):
            return None
        return [*chunks, bytes(buf)]

    def _record_chunks(self, packed: list[bytes]) -> Iterator[_Columns]:
        step = CHUNK_ROWS * schema.RECORD.size
        extras, first = self.rec._extra, 0

        def build(raw: Any) -> _Columns:
            nonlocal first
            recs = np.frombuffer(raw, dtype=schema.RECORD_DTYPE)
            n = len(recs)
            extra = np.full(n, None, dtype=object)
            if extras:
                for i in range(first, first + n):
                    e = extras.get(i)
                    if e is not None:
                        extra[i - first] = e
            first += n
            return _Columns.from_records(recs, self.rec._kinds, self.rec._states, extra)

        carry = b""
        for chunk in packed:  # slices of the recorder's own chunks; a carry across them
            mv = memoryview(chunk)
            pos = 0
            if carry:
                pos = min(len(mv), step - len(carry))
                carry += bytes(mv[:pos])
                if len(carry) < step:
                    continue
                yield build(carry)
                carry = b""
            while len(mv) - pos >= step:
                yield build(mv[pos:pos + step])
                pos += step
            carry = bytes(mv[pos:])
        if carry:
            yield build(carry)

    def chunks(self) -> Iterator[_Columns]:
        packed = self._packed() if self.rec is not None else None
        if packed is not None:  # straight from the packed records: no DataFrame
            yield from self._record_chunks(packed)
            return
        for start in range(0, self.n, CHUNK_ROWS):
            stop = min(self.n, start + CHUNK_ROWS)
            if self.rec is not None:
                part = self.rec.to_pandas(start, stop)
            else:
                try:
                    part = schema.conform(self.df.iloc[start:stop])
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"the trace does not fit the trace schema ({exc})") \
                        from None
            yield _Columns.from_frame(part)

    def flows(self) -> list[int]:
        if self.df is not None:
            if not len(self.df):
                return [0]
            return sorted(int(f) for f in pd.unique(self.df["flow"].to_numpy()))
        seen: set[int] = set()
        chunks = getattr(self.rec, "_chunks", None)
        buf = getattr(self.rec, "_buf", None)
        if chunks is not None and buf is not None:  # the packed records, without decoding
            for chunk in (*chunks, bytes(buf)):
                recs = np.frombuffer(chunk, dtype=schema.RECORD_DTYPE)
                seen.update(int(f) for f in np.unique(recs["flow"]))
        else:
            for part in self.chunks():
                seen.update(int(f) for f in np.unique(part.flow))
        return sorted(seen) or [0]

    def early_spaces(self) -> dict[tuple[int, int], str]:
        """(flow, pn) -> "initial"/"handshake" for packets that an ACK frame received in
        that space acknowledged (wtlab's recorder logs the space of ACKs, not of sends)."""
        if self.df is not None:
            df = self.df
            if "extra" not in df.columns or "kind" not in df.columns:
                return {}
            extra = df["extra"]
            mask = (df["kind"].astype(object) == "ack_received").to_numpy() & \
                extra.notna().to_numpy()
            rows = [(int(f), e) for f, e in zip(df["flow"][mask], extra[mask], strict=True)]
        else:
            extras = getattr(self.rec, "_extra", {})
            hits = [i for i, e in extras.items() if '"epoch": "initial"' in e
                    or '"epoch": "handshake"' in e]
            rows = []
            for i in hits:
                row = self.rec.to_pandas(i, i + 1)
                if str(row["kind"].iloc[0]) == "ack_received":
                    rows.append((int(row["flow"].iloc[0]), extras[i]))
        out: dict[tuple[int, int], str] = {}
        for flow, text in rows:
            d = _loads_obj(text)
            if d is None or d.get("epoch") not in ("initial", "handshake"):
                continue
            for r in d.get("ranges") or []:
                if isinstance(r, list) and r and all(type(x) is int for x in r) and \
                        r[-1] - r[0] < 4096:
                    for pn in range(r[0], r[-1] + 1):
                        out.setdefault((flow, pn), d["epoch"])
        return out


def _loads_obj(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        d = json.loads(text)
    except ValueError:
        return None
    return d if isinstance(d, dict) else None


# ================================================================ what an extra text says
class _ExtraInfo:
    """What the qlog data can say from one row's ``extra`` JSON text (parsed once per
    distinct text): the packet type, a packet's frames, a loss trigger, an ACK frame."""

    __slots__ = ("literal", "ptype", "space", "frames", "trigger", "ack", "ecn_state")

    def __init__(self, text: str, legacy: bool) -> None:
        self.literal = json.dumps(text)  # the verbatim text, for the wtlab member
        d = _loads_obj(text) or {}
        header = d.get("header") if isinstance(d.get("header"), Mapping) else {}
        ptype = header.get("packet_type", d.get("packet_type", d.get("type")))
        if not isinstance(ptype, str) and isinstance(d.get("epoch"), str):
            ptype = Q.TYPE_OF_SPACE.get(d["epoch"])
        ptype = ptype if isinstance(ptype, str) and ptype else None
        # as a JSON literal; a type the draft does not name is "unknown" (Section 9.6)
        self.ptype = _jstr(Q.CANONICAL_TYPES.get(ptype.lower(), "unknown")) if ptype else None
        space = d.get("packet_number_space", d.get("packet_num_space", d.get("space")))
        space = Q.SPACE_ALIASES.get(space.lower()) if isinstance(space, str) else None
        if space is None and ptype:
            space = Q.SPACE_OF_TYPE.get(ptype.lower())
        self.space = space
        frames = d.get("frames")
        self.frames = json.dumps([_ack_numbers(f) for f in frames], separators=(",", ":"),
                                 default=str) if isinstance(frames, list) else None
        trig = d.get("trigger")
        self.trigger = _jstr(trig if legacy else Q.LOSS_TRIGGERS.get(trig, trig)) \
            if isinstance(trig, str) else None
        self.ack = _ack_frame(d)
        # an ecn_validation row: the draft's ecn_state_updated {old, new}
        states = [f'"{k}":{_jstr(d[k])}' for k in ("old", "new") if isinstance(d.get(k), str)]
        self.ecn_state = ",".join(states) if states else None


def _ack_numbers(frame: Any) -> Any:
    """An imported ACK frame with its numbers as numbers (quic-go once wrote them as text);
    other frames as they were."""
    if not (isinstance(frame, dict) and frame.get("frame_type") == "ack"):
        return frame
    out = dict(frame)
    try:
        if "acked_ranges" in out:
            out["acked_ranges"] = [[int(x) for x in r] for r in out["acked_ranges"]]
        if "ack_delay" in out:
            out["ack_delay"] = float(out["ack_delay"])
    except (TypeError, ValueError):
        return frame
    return out


def _ack_frame(d: Mapping[str, Any]) -> str | None:
    """The ACK frame an ``ack_received`` row's extra describes (wtlab.cc.aioquic writes
    ``ranges``, ``ack_delay_s``, ``epoch``), as JSON text."""
    ranges = d.get("ranges")
    if not (isinstance(ranges, list) and all(
            isinstance(r, list) and r and all(type(x) is int for x in r) for r in ranges)):
        return None
    frame: dict[str, Any] = {"frame_type": "ack"}
    delay = d.get("ack_delay_s")
    if isinstance(delay, (int, float)) and not isinstance(delay, bool) and \
            math.isfinite(delay):
        frame["ack_delay"] = delay * 1000.0
    frame["acked_ranges"] = ranges
    return json.dumps([frame], separators=(",", ":"))


# ================================================================ one chunk -> event texts
class _Encoder:
    """Turns trace chunks into qlog event JSON texts, column-wise: rows are grouped by
    shape (kind and which values they hold) and each group is one Arrow string join."""

    def __init__(self, flavour: str, vantage: str, seq_groups: bool,
                 early: Mapping[tuple[int, int], str]) -> None:
        self.legacy = flavour == "legacy"
        self.vantage = vantage
        self.seq_groups = seq_groups
        self.early = early
        self._extra_cache: dict[str, _ExtraInfo] = {}

    def _infos(self, uniques: Any) -> list[_ExtraInfo]:
        out = []
        for u in uniques:
            info = self._extra_cache.get(u)
            if info is None:
                if len(self._extra_cache) > 100_000:
                    self._extra_cache.clear()
                info = self._extra_cache[u] = _ExtraInfo(u, self.legacy)
            out.append(info)
        return out

    def encode(self, cols: _Columns, prefix: str = "", suffix: str = "") -> pa.Array:
        """One JSON text per row, each between ``prefix`` and ``suffix``."""
        n = cols.n
        c = _Chunk(cols, self)
        self._affix = (prefix, suffix)
        key = (c.codes.astype(np.int64) << 32) | c.bits
        order = np.argsort(key, kind="stable")
        sk = key[order]
        bounds = np.flatnonzero(np.diff(sk)) + 1
        pieces = []
        for idx in np.split(order, bounds):
            k = int(key[idx[0]])
            pieces.append(_join(*self._template(c, k >> 32, k & 0xFFFFFFFF, idx)))
        out = pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.arange(n, dtype=np.int64)
        return out.take(pa.array(inv))

    def _template(self, c: _Chunk, code: int, bits: int, idx: np.ndarray) -> list[Any]:
        """The pieces of one group's events: text constants and value arrays, in order."""
        legacy = self.legacy
        kind = c.cats[code]
        has = lambda b: bool(bits & (1 << b))  # noqa: E731
        std_name = Q.EVENT_NAMES.get(kind)
        std = std_name is not None
        if kind in Q.STREAM_STATE_KINDS and not has(_B_SID):
            std = False  # stream_id is required: a wtlab:<kind> event instead
        metric = std and kind in Q.METRIC_KINDS
        m_used: set[str] = set()
        if metric:
            for col, _field, rtt, _integer in Q.METRIC_COLUMNS:
                if _present(col, bits, rtt):
                    m_used.add(col)
            std = bool(m_used)  # a metrics event must hold one metric at least
        name = (std_name[1] if legacy else std_name[0]) if std else f"wtlab:{kind}"
        out: list[Any] = [self._affix[0] + '{"time":', c.time_ms(idx),
                          ',"name":' + _jstr(name) + ',"data":{']
        data: list[list[Any]] = []  # members, each a list of pieces
        used = {"pn": False, "stream_id": False, "bytes": False, "state": False}
        ptype_rows = std and kind in (*Q.PACKET_KINDS, "ack_received")
        if ptype_rows:
            member: list[Any] = ['"header":{"packet_type":', c.ptype(idx)]
            if kind != "ack_received" and has(_B_PN):
                member += [',"packet_number":', c.ints("pn", idx)]
                used["pn"] = True
            data.append(member + ["}"])
            if kind in ("packet_sent", "packet_received"):
                data.append(['"raw":{"length":', c.ints("bytes", idx), "}"])
                used["bytes"] = True
        if std and kind == "packet_acked":
            data.append(['"packet_number_space":', c.space(idx)])
            if has(_B_PN):
                data.append(['"packet_numbers":[', c.ints("pn", idx), "]"])
                used["pn"] = True
        for col, field, rtt, _integer in Q.METRIC_COLUMNS if metric else ():
            if col in m_used:
                data.append([f'"{field}":', c.metric(col, rtt, idx)])
        if std and kind == "state_changed":
            data.append(['"new":', c.state(idx)])
            used["state"] = True
        if std and kind == "pto_expired":
            data.append(['"timer_type":"pto","event_type":"expired"'])
        if std and kind in Q.STREAM_STATE_KINDS:
            data.append(['"stream_id":', c.ints("stream_id", idx)])
            data.append(['"new":' + _jstr(Q.STREAM_STATE[kind])])
            data.append(['"stream_side":', c.side(idx, kind, self.vantage)])
            used["stream_id"] = True
        if std and kind in Q.DATA_MOVED_KINDS:
            if kind.startswith("stream") and has(_B_SID):
                data.append(['"stream_id":', c.ints("stream_id", idx)])
                used["stream_id"] = True
            data.append(['"from":"application","to":"transport"' if kind.endswith("_sent")
                         else '"from":"transport","to":"application"'])
            if legacy:  # 0.3 data_moved does not say stream or datagram: wtlab does
                data.append(['"length":', c.ints("bytes", idx)])
            else:
                data.append(['"raw":{"length":', c.ints("bytes", idx), "}"])
                used["bytes"] = True
        for i, member in enumerate(data):
            out += ([","] if i else []) + member
        if std and kind == "ecn_validation" and has(_B_EXTRA):
            out.append(c.extra_frag("ecn_state", idx))  # the only data members
        if ptype_rows and has(_B_EXTRA):  # optional fragments, each with its comma
            if kind in ("packet_sent", "packet_received"):
                out.append(c.extra_frag("frames", idx))
            elif kind == "ack_received":
                out.append(c.extra_frag("ack", idx))
            else:
                out.append(c.extra_frag("trigger", idx))
        out.append("}")
        if self.seq_groups:
            out += [',"group_id":"', c.ints("flow", idx), '"']
        # the wtlab member: what the standard fields do not say
        wt: list[list[Any]] = []
        if not std or kind in ("cwnd_changed", "rtt_sample", "pacing_changed",
                               "ack_received", "ecn_validation") or (legacy and kind in Q.DATA_MOVED_KINDS):
            if std:
                wt.append(['"kind":' + _jstr(kind)])
        if has(_B_INEXACT):
            wt.append(['"time_s":', c.time_s(idx)])
        for col, b in (("pn", _B_PN), ("stream_id", _B_SID), ("bytes", _B_BYTES)):
            if has(b) and not used[col]:
                wt.append([f'"{col}":', c.ints(col, idx)])
        for col, b in (("cwnd", _B_CWND), ("bytes_in_flight", _B_BIF),
                       ("ssthresh", _B_SSTH)):
            if has(b) and col not in m_used:
                wt.append([f'"{col}":', c.ints(col, idx)])
        if has(_B_PAYLOAD):  # application payload: no qlog field says it (raw has sizes)
            wt.append(['"payload_bytes":', c.ints("payload_bytes", idx)])
        for j, col in enumerate(schema.FLOAT32_COLUMNS):
            if has(_B_F + j) and col not in m_used:
                wt.append([f'"{col}":', c.float32(col, idx, has(_B_INF + j))])
        if has(_B_STATE) and not used["state"]:
            wt.append(['"state":', c.state(idx)])
        if has(_B_EXTRA):
            wt.append(['"extra":', c.extra_frag("literal", idx)])
        out.append(',"wtlab":{')
        for i, member in enumerate(wt):
            out += ([","] if i else []) + member
        out.append("}}" + self._affix[1])
        return _merge_constants(out)


_B_PN, _B_SID, _B_BYTES, _B_CWND, _B_BIF, _B_SSTH = range(6)
_B_F = 6  # 6 bits: float column j holds a value
_B_INF = 12  # 6 bits: ... an infinite one
_B_PACING_INT, _B_STATE, _B_EXTRA, _B_INEXACT = 18, 19, 20, 21
_B_PAYLOAD = 22
_RTT_J = {col: j for j, col in enumerate(schema.FLOAT32_COLUMNS)}


def _present(col: str, bits: int, rtt: bool) -> bool:
    """Can metric column ``col`` be a standard field for rows with ``bits``?"""
    if col in ("cwnd", "bytes_in_flight", "ssthresh"):
        return bool(bits & (1 << {"cwnd": _B_CWND, "bytes_in_flight": _B_BIF,
                                   "ssthresh": _B_SSTH}[col]))
    j = _RTT_J[col]
    finite = bool(bits & (1 << (_B_F + j))) and not bits & (1 << (_B_INF + j))
    if col == "pacing_rate_bps":
        return finite and bool(bits & (1 << _B_PACING_INT))
    return finite


def _merge_constants(pieces: list[Any]) -> list[Any]:
    """Adjacent text constants joined into one scalar (fewer join arguments)."""
    out: list[Any] = []
    for p in pieces:
        if isinstance(p, str):
            if out and isinstance(out[-1], str):
                out[-1] += p
            else:
                out.append(p)
        else:
            out.append(p)
    return [_s(p) if isinstance(p, str) else p for p in out]


class _Chunk:
    """One chunk's columns as numpy arrays, the shape bits of each row, and the value
    texts a group asks for."""

    def __init__(self, cols: _Columns, enc: _Encoder) -> None:
        n = self.n = cols.n
        self.cats = [*cols.kind_cats, ""]
        codes = cols.kind_codes.astype(np.int64)
        codes[codes < 0] = len(self.cats) - 1
        self.codes = codes
        t = cols.t
        if not np.isfinite(t).all():
            raise ConfigError("qlog needs a finite time_s on every row; drop or fix the rows "
                              "with NaN/inf times first")
        self.t = t
        self.t_ms = t * 1000.0
        inexact = (self.t_ms / 1000.0) != t
        self.int_cols: dict[str, np.ndarray] = {"flow": cols.flow, "bytes": cols.nbytes}
        bits = np.zeros(n, dtype=np.int64)

        def setbit(mask: np.ndarray, b: int) -> None:
            nonlocal bits
            bits |= mask.astype(np.int64) << b

        for col, b in (("pn", _B_PN), ("stream_id", _B_SID), ("cwnd", _B_CWND),
                       ("bytes_in_flight", _B_BIF), ("ssthresh", _B_SSTH),
                       ("payload_bytes", _B_PAYLOAD)):
            values, valid = cols.ints[col]
            self.int_cols[col] = values
            setbit(valid, b)
        setbit(self.int_cols["bytes"] != 0, _B_BYTES)
        self.f32: dict[str, np.ndarray] = cols.f32
        for j, col in enumerate(schema.FLOAT32_COLUMNS):
            v = self.f32[col]
            setbit(~np.isnan(v), _B_F + j)
            setbit(np.isinf(v), _B_INF + j)
        p = self.f32["pacing_rate_bps"]
        with np.errstate(invalid="ignore"):
            setbit((p >= 0) & (p == np.floor(p)) & (p < 2.0 ** 63), _B_PACING_INT)
        self.st_cats = list(cols.state_cats)
        st = cols.state_codes.astype(np.int64)
        st[st < 0] = len(self.st_cats)
        self.st_codes = st
        self.st_lits = pa.array([_jstr(x) for x in self.st_cats] + ['""'])
        setbit(np.isin(st, [i for i, x in enumerate(self.st_cats) if x]), _B_STATE)
        ecodes, uniques = pd.factorize(cols.extra, use_na_sentinel=True)
        self.ecodes = ecodes
        self.infos = enc._infos(uniques)
        setbit(ecodes >= 0, _B_EXTRA)
        setbit(inexact, _B_INEXACT)
        self.bits = bits
        self.enc = enc
        self._ptype: tuple[pa.Array, np.ndarray] | None = None
        self._space: tuple[pa.Array, np.ndarray] | None = None

    # -- value texts for the rows ``idx`` of one group
    def time_ms(self, idx: np.ndarray) -> pa.Array:
        return pc.cast(pa.array(self.t_ms[idx]), pa.string())

    def time_s(self, idx: np.ndarray) -> pa.Array:
        return pc.cast(pa.array(self.t[idx]), pa.string())

    def ints(self, col: str, idx: np.ndarray) -> pa.Array:
        return pc.cast(pa.array(self.int_cols[col][idx]), pa.string())

    def float32(self, col: str, idx: np.ndarray, inf: bool) -> pa.Array:
        txt = pc.cast(pa.array(self.f32[col][idx]), pa.string())  # shortest float32 text
        return _J(_s('"'), txt, _s('"'), _EMPTY) if inf else txt

    def metric(self, col: str, rtt: bool, idx: np.ndarray) -> pa.Array:
        if col in self.int_cols:
            return self.ints(col, idx)
        v = self.f32[col][idx]
        if rtt:  # ms from the float32's shortest decimal (0.02 s -> 20, not 19.9999995)
            dec = pc.cast(pc.cast(pa.array(v), pa.string()), pa.float64()).to_numpy()
            ms = dec * 1000.0
            exact = (ms / 1000.0).astype(np.float32) == v
            ms = np.where(exact, ms, v.astype(np.float64) * 1000.0)  # else the exact value
            return pc.cast(pa.array(ms), pa.string())
        return pc.cast(pa.array(v.astype(np.int64)), pa.string())  # pacing: uint64

    def state(self, idx: np.ndarray) -> pa.Array:
        return self.st_lits.take(pa.array(self.st_codes[idx]))

    def extra_frag(self, attr: str, idx: np.ndarray) -> pa.Array:
        prefix = {"frames": ',"frames":', "ack": ',"frames":', "trigger": ',"trigger":',
                  "literal": "", "ecn_state": ""}[attr]
        vals = [None if getattr(i, attr) is None else prefix + getattr(i, attr)
                for i in self.infos]
        return pa.array(vals, pa.string()).take(pa.array(self.ecodes[idx]))

    def side(self, idx: np.ndarray, kind: str, vantage: str) -> pa.Array:
        own = (self.int_cols["stream_id"][idx] & 1) == (1 if vantage == "server" else 0)
        if kind == "stream_reset":
            own[:] = False
        return pa.array(np.where(own, '"sending"', '"receiving"').astype(object),
                        pa.string())

    def _types(self) -> None:
        """Per-row packet type literal and number space: as recorded, else from the
        early ACK frames, else 1RTT / application_data (as codes into literal lists)."""
        pt_lits = ['"1RTT"', '"initial"', '"handshake"']
        sp_lits = ['"application_data"', '"initial"', '"handshake"']
        pt = np.zeros(self.n, dtype=np.int64)
        sp = np.zeros(self.n, dtype=np.int64)
        if self.enc.early:
            flow, pn = self.int_cols["flow"], self.int_cols["pn"]
            pn_ok = (self.bits & (1 << _B_PN)) != 0
            for (f, p), s in self.enc.early.items():
                hit = pn_ok & (flow == f) & (pn == p)
                if hit.any():
                    pt[hit] = sp[hit] = 1 if s == "initial" else 2
        if self.infos:
            pt_of, sp_of = [], []
            for info in self.infos:  # a recorded type wins over an inferred one
                if info.ptype is None:
                    pt_of.append(-1)
                else:
                    pt_of.append(len(pt_lits))
                    pt_lits.append(info.ptype)
                if info.space is None:
                    sp_of.append(-1)
                else:
                    sp_of.append(len(sp_lits))
                    sp_lits.append('"' + info.space + '"')
            has = self.ecodes >= 0
            for codes, of in ((pt, pt_of), (sp, sp_of)):
                got = np.full(self.n, -1, dtype=np.int64)
                got[has] = np.asarray(of, dtype=np.int64)[self.ecodes[has]]
                codes[got >= 0] = got[got >= 0]
        self._ptype = (pa.array(pt_lits, pa.string()), pt)
        self._space = (pa.array(sp_lits, pa.string()), sp)

    def ptype(self, idx: np.ndarray) -> pa.Array:
        if self._ptype is None:
            self._types()
        lits, codes = self._ptype
        return lits.take(pa.array(codes[idx]))

    def space(self, idx: np.ndarray) -> pa.Array:
        if self._space is None:
            self._types()
        lits, codes = self._space
        return lits.take(pa.array(codes[idx]))


# ================================================================ files
def _write_array(fh: IO[bytes], arr: pa.Array, skip: int = 0) -> None:
    """Write the concatenated UTF-8 bytes of a string array (minus ``skip`` leading bytes)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32,
                            count=len(arr) + 1, offset=arr.offset * 4)
    data = arr.buffers()[2]
    lo, hi = int(offsets[0]) + skip, int(offsets[-1])
    fh.write(memoryview(data)[lo:hi])


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str, allow_nan=False).encode()


def _headers(src: _Source, flavour: str, title: str | None, vantage: str, flows: list[int]
             ) -> tuple[str, str, Callable[[int | None], dict[str, Any]]]:
    meta = src.meta
    title = title or f"wtlab trace {meta.get('run_id', '')}".strip()
    desc = json.dumps({k: meta.get(k) for k in ("run_id", "algorithm", "path", "workload",
                                                "seed") if k in meta}, default=str)
    legacy = flavour == "legacy"

    def trace(flow: int | None) -> dict[str, Any]:
        common: dict[str, Any] = ({"time_format": "relative", "reference_time": 0.0}
                                  if legacy else
                                  {"time_format": "relative_to_epoch",
                                   "reference_time": {"clock_type": "monotonic",
                                                      "epoch": "unknown"}})
        if flow is not None:
            common["group_id"] = str(flow)
        out: dict[str, Any] = {"title": title if flow is None or len(flows) == 1
                               else f"{title} flow {flow}",
                               "description": desc,
                               "vantage_point": {"name": "wtlab", "type": vantage},
                               "common_fields": common}
        if not legacy:
            out["event_schemas"] = [Q.QUIC_EVENTS_URI, Q.WTLAB_EVENTS_URI]
        return out

    return title, desc, trace


def write_qlog(trace: Any, path: str | os.PathLike, *, flavour: str = "ietf",
               seq: bool | None = None, title: str | None = None,
               vantage: str = "client") -> Path:
    """Write a trace (Recorder or DataFrame) as qlog JSON, or JSON-SEQ for ``.sqlog`` /
    ``seq=True``; streamed and atomic (see the module docstring)."""
    path = Path(path)
    if seq is None:
        seq = path.suffix.lower() == ".sqlog"
    with atomic_open(path, "wb", suffix=".qlog.tmp") as fh:
        write_qlog_to(trace, fh, flavour=flavour, seq=seq, title=title, vantage=vantage)
    return path


def write_qlog_to(trace: Any, fh: IO[bytes], *, flavour: str = "ietf", seq: bool = False,
                  title: str | None = None, vantage: str = "client") -> None:
    """Stream a trace as qlog into a binary file object (see :func:`write_qlog`)."""
    if flavour not in Q.FLAVOURS:
        raise ConfigError(f"qlog flavour {flavour!r} is not one of {Q.FLAVOURS}")
    if vantage not in ("client", "server", "network", "unknown"):
        raise ConfigError(f"vantage {vantage!r} is not one of client, server, network, "
                          "unknown")
    src = _Source(trace)
    flows = src.flows()
    multi = len(flows) > 1 or flows != [0]
    title, _, trace_hdr = _headers(src, flavour, title, vantage, flows)
    early = src.early_spaces()
    legacy = flavour == "legacy"
    if seq:
        hdr = trace_hdr(None if multi else flows[0])
        if legacy:
            header = {"qlog_version": Q.LEGACY_VERSION, "qlog_format": "JSON-SEQ",
                      "title": title, "trace": hdr}
        else:
            header = {"file_schema": Q.FILE_SCHEMA_SEQUENTIAL,
                      "serialization_format": Q.SERIALIZATION_JSON_SEQ, "title": title,
                      "trace": hdr}
        fh.write(Q.RS.encode() + _dumps(header) + b"\n")
        enc = _Encoder(flavour, vantage, multi, early)
        for part in src.chunks():
            _write_array(fh, enc.encode(part, Q.RS, "\n"))
        return
    if legacy:
        head = {"qlog_version": Q.LEGACY_VERSION, "qlog_format": "JSON", "title": title}
    else:
        head = {"file_schema": Q.FILE_SCHEMA_CONTAINED,
                "serialization_format": Q.SERIALIZATION_JSON, "title": title}
    # one event per line (still one JSON document): greppable, and read column-wise
    fh.write(_dumps(head)[:-1] + b',"traces":[\n')
    enc = _Encoder(flavour, vantage, False, early)
    for i, flow in enumerate(flows):
        hdr = trace_hdr(flow if multi else None)
        fh.write((b",\n" if i else b"") + _dumps(hdr)[:-1] + b',"events":[')
        first = True
        for part in src.chunks():
            if multi:
                part = part.select(part.flow == flow)
                if not part.n:
                    continue
            _write_array(fh, enc.encode(part, ",\n"), skip=1 if first else 0)
            first = False
        fh.write(b"\n]}")
    fh.write(b"\n]}\n")


def to_qlog(trace: Any, *, flavour: str = "ietf", seq: bool = False,
            title: str | None = None, vantage: str = "client") -> list[dict[str, Any]]:
    """The qlog records as Python objects: ``[file]`` for JSON, ``[header, event, ...]``
    for JSON-SEQ (builds everything in memory: for small traces and inspection)."""
    import io

    buf = io.BytesIO()
    write_qlog_to(trace, buf, flavour=flavour, seq=seq, title=title, vantage=vantage)
    text = buf.getvalue().decode("utf-8")
    if seq:
        return [json.loads(r) for r in text.split(Q.RS) if r.strip()]
    return [json.loads(text)]
