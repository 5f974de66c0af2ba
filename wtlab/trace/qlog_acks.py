"""Acknowledgements of imported traces: sizes of ``packets_acked`` and ACKs from frames.

* :func:`fill_acked_bytes`: an imported ``packets_acked`` event names packet numbers
  only; its rows take ``bytes`` from the matching ``packet_sent`` (same flow, packet
  number space and number), so goodput counts them.
* :func:`derive_acks`: most stacks log acknowledgements only as ACK frames inside
  ``packet_received``; each packet first acknowledged by such a frame becomes a
  ``packet_acked`` row (time of the received packet, the sent packet's ``bytes``,
  ``extra``: ``{"derived_from": "ack_frame", "space": ...}``). Ranges may be integers or
  strings (I-JSON), ``[n]`` or ``[lo, hi]``, in any order. Multipath ``path_ack`` frames
  acknowledge packets of the path they name; plain ACK frames of a multipath connection
  acknowledge its path 0 (draft-ietf-quic-multipath). Packets already acknowledged by a
  ``packet_acked`` row are not counted twice.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from wtlab.trace import qlog_schema as Q
from wtlab.trace import schema


def _space_of_extra(extra: Any, default: str = "application_data") -> tuple[str, list[Any]]:
    """(packet number space, frames) from an imported packet row's ``extra`` JSON."""
    if not isinstance(extra, str) or not extra.startswith("{"):
        return default, []
    try:
        d = json.loads(extra)
    except ValueError:
        return default, []
    if not isinstance(d, Mapping):
        return default, []
    header = d.get("header") if isinstance(d.get("header"), Mapping) else {}
    ptype = header.get("packet_type", d.get("packet_type", d.get("type")))
    space = Q.SPACE_OF_TYPE.get(ptype.lower()) if isinstance(ptype, str) else None
    if space is None:
        named = d.get("packet_number_space", d.get("packet_num_space", d.get("space")))
        space = Q.SPACE_ALIASES.get(named.lower()) if isinstance(named, str) else None
    frames = d.get("frames")
    return space or default, frames if isinstance(frames, list) else []


def fill_acked_bytes(df: pd.DataFrame, sent_space: Mapping[int, str],
                     acked_space: Mapping[int, str], foreign: Sequence[bool]) -> pd.DataFrame:
    """``bytes`` (and ``payload_bytes``) of imported ``packet_acked`` rows from their
    ``packet_sent`` rows."""
    if not acked_space:
        return df
    sizes: dict[tuple[int, str, int], tuple[int, Any]] = {}
    flows = df["flow"].to_numpy()
    pns = df["pn"]
    nbytes = df["bytes"].to_numpy(copy=True)
    payload = df["payload_bytes"].copy()
    for row, space in sent_space.items():
        if pns.iat[row] is not pd.NA:
            sizes[(int(flows[row]), space, int(pns.iat[row]))] = (int(nbytes[row]),
                                                                  payload.iat[row])
    changed = False
    for row, space in acked_space.items():
        if not foreign[row] or nbytes[row] or pns.iat[row] is pd.NA:
            continue
        size = sizes.get((int(flows[row]), space, int(pns.iat[row])))
        if size is not None:
            nbytes[row], payload.iat[row] = size
            changed = True
    if changed:
        df = df.copy()
        df["bytes"] = nbytes
        df["payload_bytes"] = payload
    return df


def _ack_number(x: Any) -> int | None:
    if type(x) is int:
        return x if x >= 0 else None
    if isinstance(x, str) and x.strip().isdigit():
        return int(x)
    if isinstance(x, float) and x.is_integer() and x >= 0:
        return int(x)
    return None


def _ranges(frame: Mapping[str, Any]) -> list[tuple[int, int]]:
    out = []
    for rng in frame.get("acked_ranges") or []:
        if not isinstance(rng, list) or not 1 <= len(rng) <= 2:
            continue
        nums = [_ack_number(x) for x in rng]
        if None in nums:
            continue
        lo, hi = min(nums), max(nums)  # type: ignore[type-var]
        out.append((lo, hi))
    return out


def _is_ack(frame: Any) -> bool:
    if not isinstance(frame, Mapping):
        return False
    ft = frame.get("frame_type")
    return isinstance(ft, str) and ft.lower() in (
        "ack", "ack_ecn", "path_ack", "path_ack_ecn", "mp_ack", "ack_receive_timestamps",
        "ack_extended") or (isinstance(ft, str) and ft.lower().startswith(
            "ack_receive_timestamps"))


def derive_acks(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``packet_acked`` rows from the ACK frames of imported ``packet_received`` rows
    (see the module docstring). Rows already there are kept; derived rows come right
    after the packet that carried their ACK frame."""
    df = schema.conform(df)
    kinds = df["kind"].astype(object).to_numpy()
    has_pn = df["pn"].notna().to_numpy()
    sent_mask = (kinds == "packet_sent") & has_pn
    recv_mask = kinds == "packet_received"
    if not sent_mask.any() or not recv_mask.any():
        return df
    paths = df["path_id"] if "path_id" in df.columns else None
    # packets already acknowledged: never twice
    done: set[tuple[int, str, int]] = set()
    acked_rows = (kinds == "packet_acked") & has_pn
    for flow, pn, extra in zip(df["flow"][acked_rows], df["pn"][acked_rows],
                               df["extra"][acked_rows], strict=True):
        space, _ = _space_of_extra(extra)
        done.add((int(flow), space, int(pn)))
    sent: dict[tuple[int, str], dict[int, tuple[int, Any]]] = {}
    order: dict[tuple[int, str], list[int]] = {}
    new_rows: list[tuple[int, float, int, int, tuple[int, Any], str]] = []
    rows = np.flatnonzero(sent_mask | recv_mask)
    flows = df["flow"].to_numpy()
    times = df["time_s"].to_numpy()
    pns = df["pn"].to_numpy(np.int64, na_value=-1)
    nbytes = df["bytes"].to_numpy()
    payload = df["payload_bytes"]
    extras = df["extra"].to_numpy()
    for i in rows:
        flow = int(flows[i])
        space, frames = _space_of_extra(extras[i])
        if sent_mask[i]:
            key = (flow, space)
            pn = int(pns[i])
            if (flow, space, pn) in done:
                continue
            table = sent.setdefault(key, {})
            if pn not in table:
                bisect.insort(order.setdefault(key, []), pn)
            table[pn] = (int(nbytes[i]), payload.iat[i])
            continue
        path = None if paths is None or paths.iat[i] is pd.NA else int(paths.iat[i])
        for frame in frames:
            if not _is_ack(frame):
                continue
            target = flow
            if path is not None and space == "application_data":
                named = _ack_number(frame.get("path_id")) if "path" in str(
                    frame.get("frame_type")) else 0
                if named is None:
                    continue
                target = flow - path + named  # flows of one connection: base + path id
                if not 0 <= target <= 0xFFFF:
                    continue
            key = (target, space)
            pending, pns_sorted = sent.get(key), order.get(key)
            if not pending:
                continue
            for lo, hi in _ranges(frame):
                a, b = bisect.bisect_left(pns_sorted, lo), bisect.bisect_right(pns_sorted, hi)
                if a == b:
                    continue
                note = json.dumps({"derived_from": "ack_frame", "space": space})
                for acked in pns_sorted[a:b]:
                    new_rows.append((int(i), float(times[i]), target, acked,
                                     pending.pop(acked), note))
                del pns_sorted[a:b]
    if not new_rows:
        return df
    add = pd.DataFrame({
        "time_s": [r[1] for r in new_rows], "flow": [r[2] for r in new_rows],
        "kind": "packet_acked", "pn": [r[3] for r in new_rows],
        "bytes": [r[4][0] for r in new_rows],
        "payload_bytes": pd.array([r[4][1] for r in new_rows], dtype="Int64"),
        "extra": [r[5] for r in new_rows]})
    if paths is not None:
        base = {int(f): int(f) - int(p) for f, p in zip(df["flow"], paths, strict=True)
                if p is not pd.NA}
        add["path_id"] = pd.array([r[2] - base[r[2]] if r[2] in base else pd.NA
                                   for r in new_rows], dtype="Int64")
    add = schema.conform(add)
    pos = np.asarray([r[0] for r in new_rows], dtype=np.float64) + 0.5
    out = schema.concat([df, add])
    key = np.concatenate([np.arange(len(df), dtype=np.float64), pos])
    out = out.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out
