"""Recorder: append-only, columnar event log; DataFrames on demand.

Each event is packed into one 68-byte record (``wtlab.trace.schema.RECORD``) and
appended to a bytearray; nothing else is allocated per event, so recording does
not change the timing it measures. ``to_pandas()`` builds the tidy table of
DESIGN.md in one vectorised step.

Two ways to write:

* ``rec.event(t, "packet_lost", pn=7, bytes=1200, extra={"trigger": "time"})``:
  friendly, keyword based; use it anywhere that is not per packet.
* ``rec.append(t, kind_code, state_code, flow, pn, stream_id, nbytes, cwnd,
  bytes_in_flight, ssthresh, srtt, min_rtt, latest_rtt, rttvar, pacing_bps,
  delivery_bps[, payload_bytes])``: positional, sentinels already applied (``NO_PN``,
  ``NO_STREAM``, ``NO_BYTES_U32``, NaN); for per-packet hot paths.

Field ranges (the packed record's): ``flow`` 0..65535, ``pn`` int64 (-1 means NA),
``stream_id`` int32 (-1 means NA), ``bytes`` 0..2**32-1, cwnd / bytes_in_flight /
ssthresh 0..2**32-2 (``event()`` clamps larger values to 2**32-2; 2**32-1 means NA),
RTTs and rates float32. ``event()`` checks these and raises ``ConfigError``;
``append()`` trusts its caller (``struct.error`` if a value does not fit).

Reading: ``to_pandas()`` (the tidy table, run metadata in ``df.attrs["meta"]``), the
views ``acks()``, ``losses()``, ``sent()``, ``cwnd()``, ``rtt()``, ``of_kind(...)``,
and ``Recorder.from_pandas(df)`` to turn a table back into a recorder. ``merge()``
joins several runs' traces into one multi-flow table.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import struct
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from wtlab.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
from wtlab.trace import schema
from wtlab.trace.schema import (
    EVENT_KINDS,
    NAN,
    NO_BYTES_U32,
    NO_PN,
    NO_STREAM,
    RECORD,
    RECORD_DTYPE,
    STATE_NAMES,
)

_CHUNK_BYTES = RECORD.size << 14  # freeze the write buffer every 16384 events


def _u32(value: int | None) -> int:
    if value is None:
        return NO_BYTES_U32
    v = int(value)
    return v if 0 <= v < NO_BYTES_U32 else NO_BYTES_U32 - 1 if v > 0 else 0


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("wtlab", "aioquic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    out["python"] = platform.python_version()
    return out


class Recorder:
    """Collects trace events of one run (any number of flows).

    ``t0`` is subtracted from every timestamp, so rows carry seconds since the
    run started. Give it (0.0 in virtual time) to fix the clock's origin; left out,
    the first live driver to use the recorder sets it to its session's start
    (``clock_fixed`` tells which).
    ``meta`` is the run metadata kept with exports: always ``run_id`` (random
    hex unless given), ``created_unix_s``, ``start_time_utc`` (ISO 8601),
    ``versions`` (wtlab, aioquic, python); drivers and users add ``algorithm``,
    ``path``, ``workload``, ``seed``, ``params``... as keyword ``meta`` or later.
    """

    __slots__ = ("_buf", "_chunks", "_n_frozen", "_extra", "_kinds", "_kind_code",
                 "_states", "_state_code", "t0", "clock_fixed", "meta", "_pack")

    def __init__(self, *, t0: float | None = None, meta: Mapping[str, Any] | None = None) -> None:
        self._buf = bytearray()
        self._chunks: list[bytes] = []
        self._n_frozen = 0  # events in self._chunks
        self._extra: dict[int, str] = {}
        self._kinds: list[str] = list(EVENT_KINDS)
        self._kind_code: dict[str, int] = {k: i for i, k in enumerate(self._kinds)}
        self._states: list[str] = list(STATE_NAMES)
        self._state_code: dict[str, int] = {s: i for i, s in enumerate(self._states)}
        self.t0 = 0.0 if t0 is None else float(t0)
        self.clock_fixed = t0 is not None
        now = time.time()
        self.meta: dict[str, Any] = {
            "run_id": uuid.uuid4().hex,
            "created_unix_s": now,
            "start_time_utc": _dt.datetime.fromtimestamp(now, _dt.UTC).isoformat(
                timespec="milliseconds"),
            "versions": _versions(),
        }
        if meta:
            self.meta.update(meta)
        self._pack = RECORD.pack

    # pickling (process pools, Dask): the packer is rebuilt, everything else travels
    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if name != "_pack"}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.clock_fixed = True  # pickles made before clock_fixed existed
        for name, value in state.items():
            setattr(self, name, value)
        self._pack = RECORD.pack

    def describe(self, *, algorithm: str | None = None, path: Any = None,
                 workload: Any = None, seed: int | None = None, **more: Any) -> Recorder:
        """Set run metadata (the named keys plus any others); returns the recorder."""
        for key, value in (("algorithm", algorithm), ("path", path), ("workload", workload),
                           ("seed", seed), *more.items()):
            if value is not None:
                self.meta[key] = value
        return self

    # -- codes -------------------------------------------------------------
    def kind_code(self, name: str) -> int:
        """Code of event kind ``name``; unknown kinds are added (at most 256)."""
        code = self._kind_code.get(name)
        if code is None:
            if len(self._kinds) >= 256:
                raise ConfigError(
                    f"too many distinct event kinds (adding {name!r}); at most 256 per recorder"
                )
            code = len(self._kinds)
            self._kinds.append(name)
            self._kind_code[name] = code
        return code

    def state_code(self, name: str) -> int:
        """Code of controller state ``name``; unknown names are added (at most 256)."""
        code = self._state_code.get(name)
        if code is None:
            if len(self._states) >= 256:
                raise ConfigError(
                    f"too many distinct state names (adding {name!r}); at most 256 per recorder"
                )
            code = len(self._states)
            self._states.append(name)
            self._state_code[name] = code
        return code

    # -- writing -----------------------------------------------------------
    def append(self, t: float, kind: int, state: int, flow: int, pn: int, stream_id: int,
               nbytes: int, cwnd: int, bytes_in_flight: int, ssthresh: int, srtt: float,
               min_rtt: float, latest_rtt: float, rttvar: float, pacing_bps: float,
               delivery_bps: float, payload_bytes: int = NO_BYTES_U32) -> None:
        """Append one event, positional and pre-encoded (the hot path)."""
        buf = self._buf
        buf += self._pack(t - self.t0, kind, state, flow, pn, stream_id, nbytes, cwnd,
                          bytes_in_flight, ssthresh, srtt, min_rtt, latest_rtt, rttvar,
                          pacing_bps, delivery_bps, payload_bytes)
        if len(buf) >= _CHUNK_BYTES:
            self._chunks.append(bytes(buf))
            self._n_frozen += len(buf) // RECORD.size
            self._buf = bytearray()

    def event(self, t: float, kind: str, *, flow: int = 0, pn: int | None = None,
              stream_id: int | None = None, bytes: int = 0, payload_bytes: int | None = None,
              cwnd: int | None = None,
              bytes_in_flight: int | None = None, ssthresh: int | None = None,
              srtt_s: float | None = None, min_rtt_s: float | None = None,
              latest_rtt_s: float | None = None, rttvar_s: float | None = None,
              pacing_rate_bps: float | None = None, delivery_rate_bps: float | None = None,
              state: str | None = None, extra: Mapping[str, Any] | str | None = None) -> None:
        """Append one event by name with keyword fields (None means NA).

        Raises ``ConfigError`` (and appends nothing) if a value does not fit the record.
        """
        row = len(self)
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"event kind must be a non-empty string, got {kind!r}")
        if pn is not None and pn == NO_PN or stream_id is not None and stream_id == NO_STREAM:
            raise ConfigError(f"event {kind!r}: pn and stream_id must be >= 0 (-1 means NA)")
        try:
            self.append(
                t, self.kind_code(kind), self.state_code(state or ""), flow,
                NO_PN if pn is None else int(pn),
                NO_STREAM if stream_id is None else int(stream_id),
                int(bytes), _u32(cwnd), _u32(bytes_in_flight), _u32(ssthresh),
                NAN if srtt_s is None else srtt_s, NAN if min_rtt_s is None else min_rtt_s,
                NAN if latest_rtt_s is None else latest_rtt_s,
                NAN if rttvar_s is None else rttvar_s,
                NAN if pacing_rate_bps is None else pacing_rate_bps,
                NAN if delivery_rate_bps is None else delivery_rate_bps,
                _u32(payload_bytes),
            )
        except (struct.error, TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(
                f"event {kind!r} at t={t!r} does not fit the trace record ({exc}); ranges: "
                "flow 0..65535, pn int64 >= 0, stream_id 0..2**31-1, bytes 0..2**32-1"
            ) from None
        if extra is not None:
            self._extra[row] = _extra_text(extra)

    def set_extra(self, row: int, extra: Mapping[str, Any] | str) -> None:
        """Attach details to an already-appended row (e.g. ``len(rec) - 1``)."""
        n = len(self)
        if row < 0:
            row += n
        if not 0 <= row < n:
            raise ConfigError(f"set_extra: row {row} does not exist (the recorder has {n} "
                              "events); use len(rec) - 1 for the last one")
        self._extra[row] = _extra_text(extra)

    # -- reading -----------------------------------------------------------
    def __len__(self) -> int:
        return self._n_frozen + len(self._buf) // RECORD.size

    def __repr__(self) -> str:
        return (f"<Recorder {len(self)} events, run_id={self.meta.get('run_id')!r}, "
                f"{self.nbytes / 1e6:.1f} MB>")

    @property
    def nbytes(self) -> int:
        """Bytes held by the event records (excluding sparse ``extra`` texts)."""
        return sum(len(c) for c in self._chunks) + len(self._buf)

    @property
    def kinds(self) -> list[str]:
        """The event kind names, by code (the standard ones first, then any added)."""
        return list(self._kinds)

    @property
    def states(self) -> list[str]:
        """State names by code (the ``state`` field of :meth:`records`)."""
        return list(self._states)

    def records(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The raw packed records ``start:stop`` as a numpy structured array (a copy of
        just those: a view that follows a growing run reads only the new ones)."""
        n = len(self)
        stop = n if stop is None else max(0, min(stop, n))
        start = max(0, min(start, stop))
        if start == 0 and stop == n:
            data = b"".join([*self._chunks, bytes(self._buf)])
            return np.frombuffer(data, dtype=RECORD_DTYPE)
        size = RECORD.size
        parts = []
        first = 0  # index of the first event of the current chunk
        for chunk in (*self._chunks, self._buf):
            count = len(chunk) // size
            lo, hi = max(start, first), min(stop, first + count)
            if lo < hi:
                parts.append(bytes(chunk[(lo - first) * size:(hi - first) * size]))
            first += count
            if first >= stop:
                break
        return np.frombuffer(b"".join(parts), dtype=RECORD_DTYPE)

    def to_pandas(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """The tidy event table (see ``wtlab.trace.schema``), one row per event.

        ``start``/``stop`` select rows ``start:stop`` (index from 0) and decode only
        those records: stepping through a long run reads just the new rows.
        ``df.attrs["meta"]`` holds a copy of the run metadata.
        """
        n = len(self)
        stop = n if stop is None else max(0, min(stop, n))
        start = max(0, min(start, stop))
        if start == 0 and stop == n:
            df = records_to_frame(self.records(), self._kinds, self._states, self._extra)
        else:
            extra = self._extra
            tail_extra = {i - start: extra[i] for i in range(start, stop) if i in extra}
            df = records_to_frame(self.records(start, stop), self._kinds, self._states,
                                  tail_extra)
            df.index = range(start, stop)
        df.attrs["meta"] = json.loads(json.dumps(self.meta, default=str))
        return df

    @classmethod
    def from_pandas(cls, df: pd.DataFrame, *, meta: Mapping[str, Any] | None = None
                    ) -> Recorder:
        """A recorder holding the rows of trace table ``df`` (inverse of ``to_pandas``).

        Metadata: ``meta``, else ``df.attrs["meta"]`` (its ``run_id`` is kept). Values
        outside the record's ranges raise ``ConfigError``.
        """
        from wtlab.trace.schema import conform

        df = conform(df)
        base = dict(df.attrs.get("meta") or {}) if meta is None else dict(meta)
        rec = cls(meta=base)
        n = len(df)
        arr = np.zeros(n, dtype=RECORD_DTYPE)
        arr["time_s"] = df["time_s"].to_numpy(np.float64)
        kind = df["kind"].astype(object).where(df["kind"].notna(), "").astype(str)
        state = df["state"].astype(object).where(df["state"].notna(), "").astype(str)
        try:
            arr["kind"] = [rec.kind_code(k) for k in kind] if n else []
            arr["state"] = [rec.state_code(s) for s in state] if n else []
            for col, sentinel, lo, hi in (
                    ("pn", NO_PN, 0, (1 << 63) - 1), ("stream_id", NO_STREAM, 0, (1 << 31) - 1),
                    ("payload_bytes", NO_BYTES_U32, 0, NO_BYTES_U32 - 1),
                    ("cwnd", NO_BYTES_U32, 0, NO_BYTES_U32 - 1),
                    ("bytes_in_flight", NO_BYTES_U32, 0, NO_BYTES_U32 - 1),
                    ("ssthresh", NO_BYTES_U32, 0, NO_BYTES_U32 - 1)):
                s = df[col]
                vals = s.to_numpy(dtype=np.int64, na_value=sentinel)
                present = s.notna().to_numpy()
                if present.any() and ((vals[present] < lo).any() or (vals[present] > hi).any()):
                    raise ConfigError(f"column {col!r} has values outside {lo}..{hi}")
                arr[col] = vals
            for col, lo, hi in (("flow", 0, 0xFFFF), ("bytes", 0, 0xFFFFFFFF)):
                vals = df[col].to_numpy(np.int64)
                if n and (vals.min() < lo or vals.max() > hi):
                    raise ConfigError(f"column {col!r} has values outside {lo}..{hi}")
                arr[col] = vals
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"cannot pack the table into trace records: {exc}") from None
        for col in schema.FLOAT32_COLUMNS:
            arr[col] = df[col].to_numpy(np.float32)
        data = arr.tobytes()
        for start in range(0, len(data), _CHUNK_BYTES):
            chunk = data[start:start + _CHUNK_BYTES]
            if len(chunk) == _CHUNK_BYTES:
                rec._chunks.append(chunk)
                rec._n_frozen += _CHUNK_BYTES // RECORD.size
            else:
                rec._buf = bytearray(chunk)
        extra = df["extra"].to_numpy(dtype=object)
        rec._extra = {i: v for i, v in enumerate(extra) if isinstance(v, str)}
        return rec

    # views ------------------------------------------------------------------
    def of_kind(self, *kinds: str) -> pd.DataFrame:
        """Rows whose kind is one of ``kinds`` (fresh index)."""
        df = self.to_pandas()
        return df[df["kind"].isin(kinds)].reset_index(drop=True)

    def sent(self) -> pd.DataFrame:
        """packet_sent rows."""
        return _view(self.to_pandas(), "packet_sent")

    def acks(self) -> pd.DataFrame:
        """packet_acked rows (one per newly acknowledged packet)."""
        return _view(self.to_pandas(), "packet_acked")

    def losses(self) -> pd.DataFrame:
        """packet_lost rows (``extra`` says the trigger where the driver knows it)."""
        return _view(self.to_pandas(), "packet_lost")

    def cwnd(self) -> pd.DataFrame:
        """Every row that carries a cwnd: time_s, flow, cwnd, ssthresh, bytes_in_flight, state."""
        df = self.to_pandas()
        df = df[df["cwnd"].notna()]
        return df[["time_s", "flow", "cwnd", "ssthresh", "bytes_in_flight", "state"]].reset_index(
            drop=True
        )

    def rtt(self) -> pd.DataFrame:
        """rtt_sample rows: time_s, flow, latest_rtt_s, srtt_s, min_rtt_s, rttvar_s."""
        return _view(self.to_pandas(), "rtt_sample")[
            ["time_s", "flow", "latest_rtt_s", "srtt_s", "min_rtt_s", "rttvar_s"]
        ]


def _extra_text(extra: Mapping[str, Any] | str) -> str:
    return extra if isinstance(extra, str) else json.dumps(extra, default=str)


def merge(traces: Iterable[Any], *, renumber_flows: bool = True,
          labels: Iterable[Any] | None = None, label_column: str = "run") -> pd.DataFrame:
    """Join several traces (Recorders or DataFrames) into one table sorted by time.

    With ``renumber_flows`` each input's flows get new, distinct numbers (input 0's flows
    first), so the flows of separate runs stay apart. ``labels`` (one per input) adds a
    ``label_column`` naming where each row came from. The sort is stable: rows at the
    same time keep input order.
    """
    from wtlab.trace.schema import concat

    frames = []
    offset = 0
    labels = list(labels) if labels is not None else None
    for i, tr in enumerate(traces):
        df = tr.to_pandas() if isinstance(tr, Recorder) else tr.copy()
        if renumber_flows and len(df):
            flows = sorted(int(f) for f in df["flow"].unique())
            mapping = {f: offset + j for j, f in enumerate(flows)}
            if offset + len(flows) > 0xFFFF + 1:
                raise ConfigError("merge: more than 65536 flows in total")
            df["flow"] = df["flow"].map(mapping).astype(np.uint16)
            offset += len(flows)
        if labels is not None:
            if i >= len(labels):
                raise ConfigError("merge: fewer labels than traces")
            df[label_column] = labels[i]
        frames.append(df)
    out = concat(frames)
    if labels is not None:
        out[label_column] = out[label_column].astype("category")
    return out.sort_values("time_s", kind="stable").reset_index(drop=True)


def _view(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    return df[df["kind"] == kind].reset_index(drop=True)


def records_to_frame(rec: np.ndarray, kinds: list[str], states: list[str],
                     extra: Mapping[int, str] | None = None) -> pd.DataFrame:
    """Build the schema DataFrame from packed records and code tables."""
    import pandas as pd  # here, not at import time: controllers and drivers never need it

    n = len(rec)

    def nullable(col: np.ndarray, sentinel: int) -> pd.arrays.IntegerArray:
        values = col.astype(np.int64)
        return pd.arrays.IntegerArray(values, col == sentinel)

    extra_col = np.full(n, None, dtype=object)
    if extra:
        idx = np.fromiter(extra.keys(), dtype=np.int64, count=len(extra))
        vals = list(extra.values())
        keep = idx < n
        extra_col[idx[keep]] = [v for v, k in zip(vals, keep, strict=True) if k]
    data = {
        "time_s": rec["time_s"].astype(np.float64),
        "flow": rec["flow"].astype(np.uint16),
        "kind": pd.Categorical.from_codes(rec["kind"].astype(np.int16), categories=kinds),
        "pn": nullable(rec["pn"], NO_PN),
        "stream_id": nullable(rec["stream_id"], NO_STREAM),
        "bytes": rec["bytes"].astype(np.int64),
        "payload_bytes": nullable(rec["payload_bytes"], NO_BYTES_U32),
        "cwnd": nullable(rec["cwnd"], NO_BYTES_U32),
        "bytes_in_flight": nullable(rec["bytes_in_flight"], NO_BYTES_U32),
        "ssthresh": nullable(rec["ssthresh"], NO_BYTES_U32),
        "srtt_s": rec["srtt_s"].astype(np.float32),
        "min_rtt_s": rec["min_rtt_s"].astype(np.float32),
        "latest_rtt_s": rec["latest_rtt_s"].astype(np.float32),
        "rttvar_s": rec["rttvar_s"].astype(np.float32),
        "pacing_rate_bps": rec["pacing_rate_bps"].astype(np.float32),
        "delivery_rate_bps": rec["delivery_rate_bps"].astype(np.float32),
        "state": pd.Categorical.from_codes(rec["state"].astype(np.int16), categories=states),
        "extra": pd.Series(extra_col, dtype=object),
    }
    return pd.DataFrame(data, columns=list(schema.COLUMNS))


def row_dicts(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a trace table as plain dicts, NA and NaN as None (what a stepper returns)."""
    out = []
    for row in df.to_dict("records"):
        out.append({k: (None if _is_na(v) else v) for k, v in row.items()})
    return out


def _is_na(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN, and pd.NA (whose comparison is itself NA, truthy-ambiguous)
    except TypeError:
        return True
