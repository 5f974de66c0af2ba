"""Connection statistics in the shape of the W3C WebTransport API's ``getStats()``.

``connection_stats(quic)`` returns the fields of WebTransportConnectionStats in
Python's snake_case (``bytesSent`` -> ``bytes_sent``, ``smoothedRtt`` ->
``smoothed_rtt``, ...). Units: bytes, packets, seconds (the W3C API uses
milliseconds for RTTs: these are seconds, as everywhere in wtlab) and bit/s for
``estimated_send_rate``. The counts come from the connection's
:class:`wtlab.cc.aioquic.ConnectionCounters` (every wtlab connection is attached).

* ``bytes_sent`` / ``packets_sent``: QUIC packets sent, retransmissions included,
  without UDP/IP framing; ``bytes_sent_overhead``: the part of those bytes that is
  not application payload (QUIC and HTTP/3 framing, acks, retransmissions);
* ``bytes_acknowledged``; ``bytes_lost`` / ``packets_lost`` (RFC 9002 declarations,
  PTO-expired packets included);
* ``bytes_received`` / ``packets_received``: UDP datagrams received;
* ``smoothed_rtt``, ``rtt_variation``, ``min_rtt`` (aioquic's estimator);
* ``estimated_send_rate``: the controller's pacing rate, else cwnd / smoothed_rtt;
* ``at_send_capacity``: cwnd is (within one datagram) full;
* ``datagrams``: ``dropped_incoming`` (arrived while the receive queue was full),
  ``expired_incoming`` / ``expired_outgoing`` (0: wtlab sets no datagram
  ``maxAge``), ``lost_outgoing`` (None: aioquic does not report which datagram
  frames were in lost packets, so it is not measured).
"""

from __future__ import annotations

import math
from typing import Any


def connection_stats(quic: Any, *, payload_bytes_sent: int = 0,
                     datagrams_dropped_incoming: int = 0) -> dict[str, Any]:
    """W3C-style statistics of one aioquic connection (see the module docstring)."""
    counters = getattr(quic, "_wtlab_counters", None)
    loss = quic._loss
    cc = loss._cc
    srtt = float(loss._rtt_smoothed) if loss._rtt_initialized else math.nan
    controller = getattr(cc, "controller", None)
    pacing = getattr(controller, "pacing_rate_bps", None)
    cwnd = int(cc.congestion_window)
    if pacing:
        rate = float(pacing)
    elif srtt and srtt == srtt:
        rate = cwnd * 8 / srtt
    else:
        rate = math.nan

    def count(name: str) -> int | None:
        return getattr(counters, name) if counters is not None else None

    bytes_sent = count("bytes_sent")
    return {
        "bytes_sent": bytes_sent,
        "bytes_sent_overhead": (max(0, bytes_sent - payload_bytes_sent)
                                if bytes_sent is not None else None),
        "bytes_acknowledged": count("bytes_acknowledged"),
        "packets_sent": count("packets_sent"),
        "bytes_lost": count("bytes_lost"),
        "packets_lost": count("packets_lost"),
        "bytes_received": count("bytes_received"),
        "packets_received": count("packets_received"),
        "smoothed_rtt": srtt,
        "rtt_variation": float(loss._rtt_variance) if loss._rtt_initialized else math.nan,
        "min_rtt": float(loss._rtt_min) if loss._rtt_initialized else math.nan,
        "estimated_send_rate": rate,
        "at_send_capacity": int(cc.bytes_in_flight) + quic._max_datagram_size >= cwnd,
        "datagrams": {
            "dropped_incoming": int(datagrams_dropped_incoming),
            "expired_incoming": 0,
            "expired_outgoing": 0,
            "lost_outgoing": None,
        },
    }
