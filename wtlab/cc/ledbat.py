"""LEDBAT, Low Extra Delay Background Transport (RFC 6817), for QUIC: a scavenger.

LEDBAT fills the bottleneck while nobody else wants it and yields when someone does:
it steers the queueing delay it adds towards ``TARGET`` (100 ms, the RFC's maximum)
and backs off as soon as the delay exceeds it, which a loss-based flow filling the
buffer makes it do. Section 2.4 of RFC 6817, per ACK frame:

* ``current_delay``: the smallest of the last ``CURRENT_FILTER`` (4) delay samples;
  ``base_delay``: the smallest over ``BASE_HISTORY`` (10) one-minute buckets;
  ``queuing_delay = current_delay - base_delay``;
* ``off_target = (TARGET - queuing_delay) / TARGET`` and
  ``cwnd += GAIN x off_target x bytes_newly_acked x MSS / cwnd`` (``GAIN`` = 1: at most
  one MSS per RTT up, proportionally down above target);
* ``cwnd <= flight size + ALLOWED_INCREASE x MSS`` and ``cwnd >= MIN_CWND x MSS`` (2);
* a loss halves cwnd, once per RTT (RFC 9002's recovery period).

Delay samples are RTT samples (RFC 9002's adjusted RTT, less the peer's ACK delay)
here, not one-way delays: QUIC carries no sender
timestamps, and over a path whose reverse direction carries only ACKs the queueing
part is the same. Start-up: RFC 6817 leaves it open; wtlab slow-starts (RFC 9002's
growth) until the queueing delay reaches half the target or a loss, as LEDBAT++
(draft-irtf-iccrg-ledbat-plus-plus) does; ``slow_start=False`` starts in
congestion avoidance from the initial window.

Readouts: ``queuing_delay_s``, ``base_delay_s``, ``off_target``.

Notebook-sized example (LEDBAT alone, then yielding to CUBIC)::

    from wtlab.model import run
    path = dict(rate_bps="10mbit", rtt_s="40ms", buffer_bdp=5)
    alone = run(path, cc="ledbat", duration_s=20)
    shared = run(path, cc=["ledbat", "cubic"], duration_s=20, start_times_s=[0, 5])
    shared.metrics(10, 20)[["cc", "goodput_bps"]]   # LEDBAT well under 10 %
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from wtlab.cc.base import Controller, PacketInfo, register
from wtlab.cc.rtt import RttStats

TARGET_S = 0.100
GAIN = 1.0
ALLOWED_INCREASE = 1
MIN_CWND = 2
CURRENT_FILTER = 4
BASE_HISTORY = 10
BASE_BUCKET_S = 60.0


class Ledbat(Controller):
    """RFC 6817 LEDBAT (``target_s`` 100 ms, ``gain`` 1)."""

    name = "ledbat"

    def __init__(self, *, target_s: float = TARGET_S, gain: float = GAIN,
                 slow_start: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("minimum_window_packets", MIN_CWND)
        super().__init__(**kwargs)
        self.target_s = float(target_s)
        self.gain = float(gain)
        self.queuing_delay_s = 0.0
        self.base_delay_s = math.inf
        self.off_target = 1.0
        self._cwnd_f = float(self.cwnd)
        self._current: deque[float] = deque(maxlen=CURRENT_FILTER)
        self._base: deque[list[float]] = deque(maxlen=BASE_HISTORY)  # [bucket start, min]
        self._ss_done = False
        if not slow_start:
            self._end_slow_start()
            self.state = "congestion_avoidance"

    def _delay_sample(self, now: float, delay: float) -> None:
        self._current.append(delay)
        base = self._base
        if not base or now - base[-1][0] >= BASE_BUCKET_S:
            base.append([now, delay])
        elif delay < base[-1][1]:
            base[-1][1] = delay
        self.base_delay_s = min(b[1] for b in base)
        self.queuing_delay_s = max(0.0, min(self._current) - self.base_delay_s)

    def on_ack(self, now: float, packet: PacketInfo, rtt: RttStats) -> None:
        pass  # the window moves once per ACK frame (on_ack_frame)

    def on_ack_frame(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        if not rtt.has_sample or not packets:
            return
        self._delay_sample(now, rtt.adjusted_rtt)
        if self.recovery_start_time is not None and packets[-1].sent_time <= \
                self.recovery_start_time:
            return  # packets sent before the loss: no growth (RFC 9002 7.3.2)
        if self.app_limited:
            return
        mds = self.max_datagram_size
        acked = sum(p.sent_bytes for p in packets)
        if not self._ss_done and self.queuing_delay_s >= self.target_s / 2.0:
            self._end_slow_start()
        if not self._ss_done:
            self._cwnd_f += acked
        else:
            self.off_target = (self.target_s - self.queuing_delay_s) / self.target_s
            self._cwnd_f += self.gain * self.off_target * acked * mds / self._cwnd_f
        cap = self.bytes_in_flight + acked + ALLOWED_INCREASE * mds
        if self._cwnd_f > cap:
            self._cwnd_f = float(cap)
        if self._cwnd_f < self.min_cwnd:
            self._cwnd_f = float(self.min_cwnd)
        self.cwnd = int(self._cwnd_f)

    def _end_slow_start(self) -> None:
        self._ss_done = True
        self.ssthresh = self.cwnd
        if self.state == "slow_start":
            self.state = "congestion_avoidance"

    def _in_slow_start(self) -> bool:
        return not self._ss_done

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        self._ss_done = True
        self._cwnd_f = max(self._cwnd_f / 2.0, float(self.min_cwnd))
        self.cwnd = int(self._cwnd_f)
        self.ssthresh = self.cwnd

    def on_recovery_exit(self, now: float) -> None:
        if self.state == "recovery":
            self.state = "congestion_avoidance"


    def on_persistent_congestion(self, now: float) -> None:
        super().on_persistent_congestion(now)
        self._cwnd_f = float(self.cwnd)


register("ledbat", Ledbat)
