"""Loss-recovery rules of RFC 9002 that both engines apply the same way (sans-IO).

The fast model (:mod:`wtlab.model.core`) and the aioquic adapter (:mod:`wtlab.cc.aioquic`)
call the same function here, so a persistent-congestion verdict means the same thing in
every engine and its trace row carries the same detail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

#: RFC 9002 section 7.6.1: the span, in PTOs, that makes a run of losses persistent
K_PERSISTENT_CONGESTION_THRESHOLD = 3


def persistent_congestion(lost: Iterable[Any], *, first_sample_s: float, now_pto_s: float,
                          pto_at_send: Callable[[Any], float] | None = None,
                          eligible: Callable[[Any], bool] | None = None) -> str | None:
    """RFC 9002 7.6.2 on ``lost`` (packets with ``packet_number`` and ``sent_time``, in
    packet-number order): is there a contiguous run of lost packets, sent after the first
    RTT sample (``first_sample_s``), whose send times span more than
    :data:`K_PERSISTENT_CONGESTION_THRESHOLD` x the PTO? The PTO is the smaller of now's
    (``now_pto_s``) and the one in force when the run began (``pto_at_send(packet)``,
    default: now's), so a run that began before the RTT estimate grew is judged by the
    estimate it was sent under. ``eligible(packet)`` (default: all) says which packets
    may start or extend the span (ack-eliciting ones); any lost packet keeps the run
    contiguous. Returns the trace row's detail as JSON text
    (``{"span_s": .., "duration_s": ..}``), or None.
    """
    previous = None
    start: float | None = None
    duration = 0.0
    end = None  # set once the run's span exceeds the duration
    for packet in lost:
        if previous is not None and packet.packet_number != previous + 1:
            if end is not None:
                break  # the run that established it ends here
            start = None
        previous = packet.packet_number
        if (eligible is None or eligible(packet)) and packet.sent_time > first_sample_s:
            if start is None:
                start = packet.sent_time
                at_send = pto_at_send(packet) if pto_at_send is not None else math.inf
                duration = K_PERSISTENT_CONGESTION_THRESHOLD * min(now_pto_s, at_send)
            elif packet.sent_time - start > duration:
                end = packet.sent_time
    if end is None or start is None:
        return None
    return f'{{"span_s": {end - start!r}, "duration_s": {duration!r}}}'
