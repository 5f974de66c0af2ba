"""The trace schema: one row per event, tidy and typed.

Columns (units in the names; integer byte counts; NA where an event has no value):

=================  ===========  ==========================================================
column             dtype        meaning
=================  ===========  ==========================================================
time_s             float64      seconds since the run started (virtual or live clock)
flow               uint16       flow / connection id within the run
kind               category     event kind (``EVENT_KINDS`` plus any imported ones)
pn                 Int64        packet number, or message id for message_* events
stream_id          Int64        QUIC stream id (stream and message events)
bytes              int64        bytes the event concerns (packet size, message size, ...)
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

In memory each event is one packed 64-byte record (see ``RECORD``).
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
# srtt, min_rtt, latest_rtt, rttvar, pacing_rate_bps, delivery_rate_bps
RECORD = struct.Struct("<dBBHqiIIIIffffff")
assert RECORD.size == 64

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
