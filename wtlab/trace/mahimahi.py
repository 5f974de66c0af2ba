"""Mahimahi link logs (``mm-link --uplink-log=FILE``) into the trace schema, and link views.

A Mahimahi link log has ``#`` header lines (``# base timestamp: T`` among them) and one
event per line, times in integer milliseconds::

    T + SIZE          a packet of SIZE bytes arrived at the link queue
    T # SIZE          a delivery opportunity of SIZE bytes (one line of the link trace)
    T - SIZE DELAY    a packet of SIZE bytes left the link after DELAY ms in the queue
    T d COUNT BYTES   the queue dropped COUNT packets, BYTES bytes in total

Rows (``time_s`` = (T - base timestamp) / 1000, ``flow`` as given):

================  ==========================================================
kind              columns
================  ==========================================================
link_arrival      bytes
link_opportunity  bytes
link_delivery     bytes; ``extra``: ``{"delay_ms": DELAY}``
link_drop         bytes; ``extra``: ``{"packets": COUNT}``
================  ==========================================================

The views :func:`delivered`, :func:`queued`, :func:`drops` and :func:`delays` turn such a
frame into the tables Mahimahi's ``mm-throughput-graph`` / ``mm-delay-graph`` plot.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError, TraceFormatError
from wtlab.trace import schema

KINDS = {"+": "link_arrival", "#": "link_opportunity", "-": "link_delivery", "d": "link_drop"}
_FIELDS = {"+": 1, "#": 1, "-": 2, "d": 2}


def parse_mahimahi(text: str | bytes, *, name: str = "<mahimahi>", flow: int = 0
                   ) -> pd.DataFrame:
    """Parse Mahimahi link-log text into a trace frame (see the module docstring)."""
    if not 0 <= int(flow) <= 0xFFFF:
        raise ConfigError(f"flow={flow} is outside 0..65535")
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TraceFormatError(f"not UTF-8 text ({exc})", path=name) from None
    fast = _parse_fast(text)
    if fast is not None:
        return _frame(*fast, flow=flow, name=name)
    return _parse_checked(text, name, flow)


def _parse_fast(text: str):
    """Vectorised parse of a well-formed log; None if anything looks off (then the
    line-by-line parser finds and reports the problem)."""
    import io

    header: dict[str, str] = {}
    base = None
    body = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
                if key.strip() == "base timestamp":
                    if not value.strip().isdigit() or not value.strip().isascii():
                        return None
                    base = int(value.strip())
        elif line.strip():
            body.append(line)
    if not body:
        empty = np.zeros(0, np.int64)
        return empty, np.zeros(0, object), empty, empty, base, header
    try:
        raw = pd.read_csv(io.StringIO("\n".join(body)), sep=" ", header=None,
                          names=["t", "op", "a", "b"], dtype=str, keep_default_na=False,
                          engine="c")
    except (ValueError, pd.errors.ParserError):
        return None
    if len(raw) != len(body):
        return None
    op = raw["op"].to_numpy(dtype=object)
    needs_b = (op == "-") | (op == "d")
    b_txt = raw["b"]
    if not np.isin(op, list(KINDS)).all() or (b_txt[needs_b] == "").any() or (
            b_txt[~needs_b] != "").any():
        return None
    cols = []
    for txt in (raw["t"], raw["a"], b_txt.where(needs_b, "0")):
        if not (txt.str.fullmatch(r"[0-9]{1,18}")).all():
            return None
        cols.append(txt.astype(np.int64).to_numpy())
    return cols[0], op, cols[1], cols[2], base, header


def _parse_checked(text: str, name: str, flow: int) -> pd.DataFrame:
    base: int | None = None
    header: dict[str, str] = {}
    times: list[int] = []
    ops: list[str] = []
    a_vals: list[int] = []
    b_vals: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            key, sep, value = s[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
            if key.strip() == "base timestamp":
                base = _nonneg(value.strip(), "base timestamp", name, lineno)
            continue
        parts = s.split()
        if len(parts) < 3 or parts[1] not in KINDS:
            raise TraceFormatError(
                f"expected 'TIME +|#|-|d SIZE ...', got {line[:60]!r}", path=name, line=lineno)
        op = parts[1]
        if len(parts) != 2 + _FIELDS[op]:
            raise TraceFormatError(
                f"a '{op}' line has {_FIELDS[op]} number(s) after the sign, got {line[:60]!r}",
                path=name, line=lineno)
        times.append(_nonneg(parts[0], "time", name, lineno))
        ops.append(op)
        a_vals.append(_nonneg(parts[2], "size", name, lineno))
        b_vals.append(_nonneg(parts[3], "value", name, lineno) if len(parts) == 4 else 0)
    return _frame(np.asarray(times, dtype=np.int64), np.asarray(ops, dtype=object),
                  np.asarray(a_vals, dtype=np.int64), np.asarray(b_vals, dtype=np.int64), base,
                  header, flow=flow, name=name)


def _frame(t: np.ndarray, op_arr: np.ndarray, a: np.ndarray, b: np.ndarray, base: int | None,
           header: dict[str, str], *, flow: int, name: str) -> pd.DataFrame:
    if base is None:
        base = int(t.min()) if len(t) else 0
    n = len(t)
    nbytes = np.where(op_arr == "d", b, a) if n else a
    extra = np.full(n, None, dtype=object)
    dep = op_arr == "-"
    drop = op_arr == "d"
    extra[dep] = [f'{{"delay_ms": {d}}}' for d in b[dep]]
    extra[drop] = [f'{{"packets": {c}}}' for c in a[drop]]
    if n and int(nbytes.max()) > (1 << 62):
        raise TraceFormatError("a size is too large", path=name)
    df = pd.DataFrame({
        "time_s": (t - base) / 1000.0,
        "flow": np.full(n, flow, dtype=np.uint16),
        "kind": pd.Categorical.from_codes(
            pd.Categorical(op_arr, categories=list(KINDS)).codes, categories=list(KINDS.values())),
        "bytes": nbytes,
        "extra": pd.Series(extra, dtype=object),
    })
    out = schema.conform(df, copy=False)
    out.attrs["meta"] = {"mahimahi": header, "base_timestamp_ms": base}
    return out


def _nonneg(text: str, what: str, name: str, lineno: int) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise TraceFormatError(f"{what} must be a non-negative integer, got {text[:30]!r}",
                               path=name, line=lineno)
    return int(text)


def read_mahimahi(path: str | os.PathLike, *, flow: int = 0) -> pd.DataFrame:
    """Read a Mahimahi link log file (``mm-link --uplink-log`` / ``--downlink-log``)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TraceFormatError(f"cannot read link log ({exc.strerror})", path=str(p)) from None
    return parse_mahimahi(data, name=str(p), flow=flow)


# ----------------------------------------------------------------------------- views
def _of(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    return df[df["kind"] == kind]


def delivered(df: pd.DataFrame, bin_s: float = 0.5) -> pd.DataFrame:
    """Per time bin: delivered bytes, throughput, link capacity and utilisation.

    Columns: time_s (bin start), delivered_bytes, throughput_bps, capacity_bps (from the
    delivery opportunities), utilization (delivered / capacity; NaN without capacity).
    """
    if not bin_s > 0:
        raise ConfigError(f"bin_s={bin_s} must be > 0")
    end = float(df["time_s"].max()) if len(df) else 0.0
    n_bins = int(np.floor(end / bin_s)) + 1
    edges = np.arange(n_bins + 1) * bin_s

    def binned(kind: str) -> np.ndarray:
        sub = _of(df, kind)
        idx = np.minimum((sub["time_s"].to_numpy() / bin_s).astype(np.int64), n_bins - 1)
        return np.bincount(idx, weights=sub["bytes"].to_numpy(np.float64), minlength=n_bins)

    got = binned("link_delivery")
    cap = binned("link_opportunity")
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(cap > 0, got / cap, np.nan)
    return pd.DataFrame({"time_s": edges[:-1], "delivered_bytes": got.astype(np.int64),
                         "throughput_bps": got * 8 / bin_s, "capacity_bps": cap * 8 / bin_s,
                         "utilization": util})


def queued(df: pd.DataFrame) -> pd.DataFrame:
    """Queue occupancy after each arrival, departure or drop: time_s, queue_bytes, queue_packets.

    Occupancy = arrivals - departures - drops so far (Mahimahi logs a dropped packet's
    arrival too).
    """
    ev = df[df["kind"].isin(["link_arrival", "link_delivery", "link_drop"])]
    kind = ev["kind"].astype(object).to_numpy()
    size = ev["bytes"].to_numpy(np.int64)
    sign = np.where(kind == "link_arrival", 1, -1)
    pkts = np.ones(len(ev), dtype=np.int64)
    drop = kind == "link_drop"
    if drop.any():
        pkts[drop] = _extra_int(ev["extra"][drop], "packets")
    return pd.DataFrame({"time_s": ev["time_s"].to_numpy(),
                         "queue_bytes": np.cumsum(sign * size),
                         "queue_packets": np.cumsum(sign * pkts)})


def drops(df: pd.DataFrame) -> pd.DataFrame:
    """Drop events: time_s, packets, bytes."""
    ev = _of(df, "link_drop")
    return pd.DataFrame({"time_s": ev["time_s"].to_numpy(),
                         "packets": _extra_int(ev["extra"], "packets"),
                         "bytes": ev["bytes"].to_numpy(np.int64)})


def delays(df: pd.DataFrame) -> pd.DataFrame:
    """Delivered packets: time_s, bytes, queue_delay_s (time spent in the link queue)."""
    ev = _of(df, "link_delivery")
    return pd.DataFrame({"time_s": ev["time_s"].to_numpy(),
                         "bytes": ev["bytes"].to_numpy(np.int64),
                         "queue_delay_s": _extra_int(ev["extra"], "delay_ms") / 1000.0})


def _extra_int(extra: pd.Series, key: str) -> np.ndarray:
    text = extra.astype(object).astype(str)
    prefix = f'{{"{key}": '
    if len(text) and text.str.startswith(prefix).all() and text.str.endswith("}").all():
        got = text.str.slice(len(prefix), -1)  # the form this module writes: fast path
        if got.str.fullmatch(r"[0-9]+").all():
            return got.astype(np.int64).to_numpy()
    got = text.str.extract(rf'"{key}": (\d+)')[0]
    return pd.to_numeric(got, errors="coerce").fillna(0).to_numpy(np.int64)
