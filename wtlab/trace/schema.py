"""The trace schema: one row per event, tidy and typed, with one meaning per row kind.

Columns (units in the names; integer byte counts; NA where an event has no value):

=================  ===========  ==========================================================
column             dtype        meaning
=================  ===========  ==========================================================
time_s             float64      seconds since the run started (virtual or live clock)
flow               uint16       flow / connection id within the run
kind               category     event kind (``EVENT_KINDS`` plus any imported ones)
pn                 Int64        packet number, or message id for message_* events
stream_id          Int64        QUIC stream id (stream and message events)
bytes              int64        bytes the event concerns (see the row contract below)
payload_bytes      Int64        application payload among ``bytes`` (packet and ACK rows;
                                NA where the source does not say, e.g. some imported qlog)
cwnd               Int64        congestion window after the event, bytes
bytes_in_flight    Int64        bytes in flight after the event
ssthresh           Int64        slow-start threshold after the event, bytes (NA: infinite)
srtt_s             float32      smoothed RTT, seconds
min_rtt_s          float32      minimum RTT, seconds
latest_rtt_s       float32      latest RTT sample, seconds
rttvar_s           float32      RTT variation, seconds
pacing_rate_bps    float32      pacing rate, bit/s (NaN: not pacing)
delivery_rate_bps  float32      latest delivery-rate sample / estimate, bit/s
state              category     controller state name after the event
extra              object       JSON text with event details the columns do not hold, or None
=================  ===========  ==========================================================

The row contract
----------------

Every engine (live aioquic, the emulator's aioquic, the fast model) writes these rows
with these meanings, so rows of one kind can be compared across engines
(``tests/trace/test_row_contract.py`` checks it on one scenario run by both):

* **State columns are after the event.** ``cwnd``, ``bytes_in_flight``, ``ssthresh``,
  ``state``, ``pacing_rate_bps`` and ``delivery_rate_bps`` are the controller's values
  once the event has been handled; the RTT columns hold the RTT estimator after any
  sample the event carried. A stepped controller therefore shows what its last row
  shows (rows written at one instant show each event's own after-state; the controller
  object has handled the whole instant).
* ``packet_sent``: one per QUIC packet; ``bytes`` = the packet's size (the UDP payload:
  QUIC header, frames and AEAD tag); ``payload_bytes`` = STREAM and DATAGRAM frame data
  it carries (the application's bytes, plus a few bytes of HTTP/3 and WebTransport
  framing per stream); ``bytes_in_flight`` includes the packet.
* ``packet_acked``: one per newly acknowledged in-flight packet, in packet-number order,
  after the controller grew (or kept) its window for it; ``bytes``/``payload_bytes`` as
  the packet was sent.
* ``packet_lost``: one per packet declared lost, after the controller's response to the
  loss (a reduction shows at once); ``extra`` = ``{"trigger": "packet_threshold" |
  "time_threshold" | "pto"}``, passed by the driver with the packets (RFC 9002's
  names; a PTO is not a congestion signal).
* ``ack_received``: one per ACK frame that acknowledged something new, written after
  the frame was handled (its RTT sample, its packets, any loss it revealed); ``pn`` =
  largest acknowledged; ``bytes``/``payload_bytes`` = sums over the packets it newly
  acknowledged; ``extra`` (emulator and live) = ``{"ranges": ..., "ack_delay_s": ..,
  "epoch": ..}``.
* ``rtt_sample``: one per RTT sample; ``latest_rtt_s`` is the sample.
* ``cwnd_changed`` / ``state_changed`` / ``pacing_changed``: written when the value
  changed, after the event that changed it; ``bytes`` = 0.
* ``pto_expired`` (``extra``: ``pto_count``), ``persistent_congestion``, ``app_limited``.
* ``link_drop`` / ``link_delivery`` (virtual network): ``bytes`` = the datagram's size.
* ``ecn_marked``: a queue set CE on a packet (virtual network, relay and model write it
  like ``link_drop``); ``pn`` = the packet number where the engine knows it (the model),
  else NA; ``extra``: ``{"dir": .., "queue": "L" | "C" (DualQ), "codepoint": ..}``.
* ``ecn_counts``: one per ACK frame whose ECN counts the sender validated, after the
  controller's response (a CE increase is a congestion signal); ``pn`` = largest
  acknowledged; ``bytes`` = newly acknowledged bytes of ECT-marked packets; ``extra``:
  ``{"ect0": .., "ect1": .., "ce": .., "ce_increase": .., "acked_ect": .., "epoch": ..}``.
* ``ecn_validation``: the sender's ECN state changed (RFC 9000 13.4.2: ``testing``,
  ``unknown``, ``capable``, ``failed``); ``extra``: ``{"old": .., "new": .., "reason": ..}``.
* ``path_changed`` (both engines): one row per applied step of a path schedule
  (:mod:`wtlab.net.schedule`), at the step's time; ``flow`` 0 (a path event concerns
  every flow), ``bytes`` 0, no controller state; ``extra`` = ``{"source": "schedule" |
  "explorer", "at_s": .., "changes": {"rate_bps": ..}, "path": {"capacity_bps": ..,
  "rtt_s": .., "loss": .., "buffer_bytes": ..}}`` (the change, and the path after it).
* ``message_*`` (reliability channels): ``pn`` = message id, ``bytes`` = message size.

Figures computed from rows (goodput, utilisation, mean cwnd, ...) live in one place,
:mod:`wtlab.trace.metrics`.

In memory each event is one packed 68-byte record (see ``RECORD``).
"""

from __future__ import annotations

import struct

import numpy as np

# Standard event kinds; their codes are fixed (index in this tuple).
EVENT_KINDS: tuple[str, ...] = (
    "packet_sent",
    "packet_acked",
    "packet_lost",
    "packet_received",
    "ack_received",
    "cwnd_changed",
    "rtt_sample",
    "state_changed",
    "pacing_changed",
    "persistent_congestion",
    "pto_expired",
    "stream_opened",
    "stream_closed",
    "stream_reset",
    "stream_data_sent",
    "stream_data_received",
    "datagram_sent",
    "datagram_received",
    "message_sent",
    "message_retransmitted",
    "message_acked",
    "message_delivered",
    "message_expired",
    "message_dropped",
    "session_opened",
    "session_closed",
    "link_drop",
    "link_delivery",
    "app_limited",
    "bandwidth_sample",
    "metrics_updated",
    # ECN (issue 18): a queue set CE on a packet (written by the link's engine, like
    # link_drop; pn = packet number where the engine knows it); the sender learned new ECN
    # counts from an ACK_ECN frame (extra: counts and the CE increase); the sender's ECN
    # validation state changed (RFC 9000 13.4.2; extra: old, new, reason)
    "ecn_marked",
    "ecn_counts",
    "ecn_validation",
    "path_changed",
)
KIND_CODE: dict[str, int] = {name: i for i, name in enumerate(EVENT_KINDS)}

# Module constants for hot paths: K_PACKET_SENT, K_PACKET_ACKED, ...
for _i, _name in enumerate(EVENT_KINDS):
    globals()["K_" + _name.upper()] = _i
del _i, _name

NO_PN = -1  # sentinel for "no packet number"
NO_STREAM = -1  # sentinel for "no stream"
NO_BYTES_U32 = 0xFFFFFFFF  # sentinel for NA in cwnd / bytes_in_flight / ssthresh
NAN = float("nan")

# t, kind, state, flow, pn, stream_id, bytes, cwnd, bytes_in_flight, ssthresh,
# srtt, min_rtt, latest_rtt, rttvar, pacing_rate_bps, delivery_rate_bps, payload_bytes
RECORD = struct.Struct("<dBBHqiIIIIffffffI")
assert RECORD.size == 68

RECORD_DTYPE = np.dtype(
    [
        ("time_s", "<f8"),
        ("kind", "u1"),
        ("state", "u1"),
        ("flow", "<u2"),
        ("pn", "<i8"),
        ("stream_id", "<i4"),
        ("bytes", "<u4"),
        ("cwnd", "<u4"),
        ("bytes_in_flight", "<u4"),
        ("ssthresh", "<u4"),
        ("srtt_s", "<f4"),
        ("min_rtt_s", "<f4"),
        ("latest_rtt_s", "<f4"),
        ("rttvar_s", "<f4"),
        ("pacing_rate_bps", "<f4"),
        ("delivery_rate_bps", "<f4"),
        ("payload_bytes", "<u4"),
    ]
)
assert RECORD_DTYPE.itemsize == RECORD.size

COLUMNS: tuple[str, ...] = (
    "time_s",
    "flow",
    "kind",
    "pn",
    "stream_id",
    "bytes",
    "payload_bytes",
    "cwnd",
    "bytes_in_flight",
    "ssthresh",
    "srtt_s",
    "min_rtt_s",
    "latest_rtt_s",
    "rttvar_s",
    "pacing_rate_bps",
    "delivery_rate_bps",
    "state",
    "extra",
)

# Controller state names used by the built-in controllers (others are added on use).
STATE_NAMES: tuple[str, ...] = (
    "",
    "slow_start",
    "congestion_avoidance",
    "recovery",
    "startup",
    "drain",
    "probe_bw",
    "probe_rtt",
    "application_limited",
)

# column -> (unit, meaning): what dataset cards and the docs print (the docstring above
# is the contract in prose)
COLUMN_DOCS: dict[str, tuple[str, str]] = {
    "time_s": ("s", "time since the run started (virtual or live clock)"),
    "flow": ("", "flow / connection number within the run"),
    "kind": ("", "event kind (packet_sent, packet_acked, packet_lost, cwnd_changed, ...)"),
    "pn": ("", "packet number, or message id for message_* events"),
    "stream_id": ("", "QUIC stream id of stream and message events"),
    "bytes": ("bytes", "bytes the event concerns (packet size, message size, ...)"),
    "payload_bytes": ("bytes", "application payload among bytes (packet and ACK rows; null "
                      "where the source does not say)"),
    "cwnd": ("bytes", "congestion window after the event"),
    "bytes_in_flight": ("bytes", "bytes in flight after the event"),
    "ssthresh": ("bytes", "slow-start threshold after the event (null: infinite)"),
    "srtt_s": ("s", "smoothed RTT"),
    "min_rtt_s": ("s", "minimum RTT"),
    "latest_rtt_s": ("s", "latest RTT sample"),
    "rttvar_s": ("s", "RTT variation"),
    "pacing_rate_bps": ("bit/s", "pacing rate (null: not pacing)"),
    "delivery_rate_bps": ("bit/s", "latest delivery-rate sample or estimate"),
    "state": ("", "controller state after the event"),
    "extra": ("", "JSON text with event details the columns do not hold, or null"),
    "run_id": ("", "16 hex digits of SHA-256 over the run's parameters (datasets)"),
}

# Column dtypes of the tidy table (pandas dtype names); ``conform`` enforces them.
DTYPES: dict[str, str] = {
    "time_s": "float64",
    "flow": "uint16",
    "kind": "category",
    "pn": "Int64",
    "stream_id": "Int64",
    "bytes": "int64",
    "payload_bytes": "Int64",
    "cwnd": "Int64",
    "bytes_in_flight": "Int64",
    "ssthresh": "Int64",
    "srtt_s": "float32",
    "min_rtt_s": "float32",
    "latest_rtt_s": "float32",
    "rttvar_s": "float32",
    "pacing_rate_bps": "float32",
    "delivery_rate_bps": "float32",
    "state": "category",
    "extra": "object",
}
INT_COLUMNS = ("pn", "stream_id", "payload_bytes", "cwnd", "bytes_in_flight", "ssthresh")
FLOAT32_COLUMNS = ("srtt_s", "min_rtt_s", "latest_rtt_s", "rttvar_s", "pacing_rate_bps",
                   "delivery_rate_bps")
SCHEMA_VERSION = 2  # 2: payload_bytes; the row contract of the module docstring


def empty_frame():
    """An empty DataFrame with the schema's columns and dtypes."""
    import pandas as pd

    return conform(pd.DataFrame({c: [] for c in COLUMNS}))


def conform(df, *, copy: bool = True):
    """Return ``df`` with the schema's columns (in order, first) and dtypes.

    Missing schema columns are added as NA (``bytes``: 0, ``flow``: 0, ``state``: "").
    Columns beyond the schema (e.g. dataset partition columns, ``run_id``) are kept,
    after the schema columns. ``extra`` holds ``str`` or ``None`` (never NaN). Raises
    ``ValueError`` if a column cannot be converted; callers turn that into their own
    error with context.
    """
    import numpy as np
    import pandas as pd

    out = df.copy() if copy else df
    n = len(out)
    for col in COLUMNS:
        if col not in out.columns:
            if col in ("bytes", "flow"):
                out[col] = np.zeros(n, dtype=DTYPES[col])
            elif col == "state":
                out[col] = pd.Categorical([""] * n)
            elif col == "kind":
                out[col] = pd.Categorical([None] * n, categories=[])
            elif col == "extra":
                out[col] = pd.Series([None] * n, dtype=object, index=out.index)
            else:
                out[col] = pd.Series([pd.NA if col in INT_COLUMNS else np.nan] * n,
                                     index=out.index, dtype=DTYPES[col])
    for col in INT_COLUMNS:
        if str(out[col].dtype) != "Int64":
            out[col] = _to_nullable_int(out[col])
    for col in FLOAT32_COLUMNS:
        if out[col].dtype != np.float32:
            out[col] = pd.to_numeric(out[col], errors="raise").astype(np.float64).astype(
                np.float32)
    if out["time_s"].dtype != np.float64:
        out["time_s"] = pd.to_numeric(out["time_s"], errors="raise").astype(np.float64)
    for col in ("flow", "bytes"):
        if out[col].dtype != np.dtype(DTYPES[col]):
            out[col] = pd.to_numeric(out[col], errors="raise").fillna(0).astype(DTYPES[col])
    for col in ("kind", "state"):
        s = out[col]
        if not isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
            if col == "state":
                s = s.where(s.notna(), "")
            s = s.astype(str).where(s.notna(), None) if col == "kind" else s.astype(str)
            out[col] = pd.Categorical(s)
    extra = out["extra"]
    if extra.dtype != object or extra.isna().any():
        vals = extra.astype(object)
        out["extra"] = pd.Series([v if isinstance(v, str) else None for v in vals],
                                 index=out.index, dtype=object)
    rest = [c for c in out.columns if c not in DTYPES]
    return out[list(COLUMNS) + rest]


def _to_nullable_int(s):
    import numpy as np
    import pandas as pd

    if s.dtype == object or str(s.dtype) in ("str", "string"):
        s = pd.to_numeric(s, errors="raise")
    if s.dtype.kind == "f":
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isnan(vals) & (vals != np.floor(vals))
        if bad.any():
            raise ValueError(f"column {s.name!r} holds non-integer values")
    return s.astype("Int64")


def concat(frames):
    """Concatenate trace frames, keeping ``kind``/``state`` categorical (categories united)."""
    import pandas as pd

    frames = [conform(f, copy=False) for f in frames]
    if not frames:
        return empty_frame()
    cats = {}
    for col in ("kind", "state"):
        seen: dict[str, None] = {}
        for f in frames:
            for c in f[col].cat.categories:
                seen.setdefault(c, None)
        cats[col] = list(seen)
    fixed = []
    for f in frames:
        f = f.copy()
        for col, categories in cats.items():
            f[col] = f[col].cat.set_categories(categories)
        fixed.append(f)
    out = pd.concat(fixed, ignore_index=True)
    return conform(out, copy=False)
