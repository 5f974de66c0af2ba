"""NewReno as RFC 9002 section 7 specifies it (sans-IO, bytes and seconds).

* Slow start: cwnd grows by the bytes of every acknowledged packet while
  ``cwnd < ssthresh`` (7.3.1).
* Congestion avoidance: cwnd grows by one ``max_datagram_size`` per cwnd of
  acknowledged bytes (7.3.3), counted exactly with a byte stash.
* Recovery: the first loss of a recovery period halves cwnd
  (``kLossReductionFactor`` = 0.5, floor ``kMinimumWindow``) and sets
  ``ssthresh``; losses and acks of packets sent before the period began change
  nothing (7.3.2). The base class keeps the period.
* Application limited (7.8): while the driver reports the window under-used
  (``on_app_limited``) and until a packet fills it again, cwnd does not grow.
* Persistent congestion: cwnd collapses to the minimum window, ssthresh is kept
  (7.6.2), so the sender slow-starts back up to it.
"""

from __future__ import annotations

from wtlab.cc.base import Controller, PacketInfo, register
from wtlab.cc.rtt import RttStats


class Reno(Controller):
    """RFC 9002 NewReno. ``state`` is slow_start, congestion_avoidance or recovery."""

    name = "reno"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._ca_acked_bytes = 0  # bytes acked in congestion avoidance, not yet turned into cwnd

    def on_ack(self, now: float, packet: PacketInfo, rtt: RttStats) -> None:
        if self.app_limited:
            return  # 7.8: an under-used window is not grown
        ssthresh = self.ssthresh
        if ssthresh is None or self.cwnd < ssthresh:
            self.cwnd += packet.sent_bytes
            if ssthresh is not None and self.cwnd >= ssthresh:
                self.state = "congestion_avoidance"
            return
        self.state = "congestion_avoidance"
        self._ca_acked_bytes += packet.sent_bytes
        if self._ca_acked_bytes >= self.cwnd:
            self._ca_acked_bytes -= self.cwnd
            self.cwnd += self.max_datagram_size

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        self.ssthresh = self.cwnd // 2  # kLossReductionFactor = 0.5
        self.cwnd = max(self.ssthresh, self.min_cwnd)
        self._ca_acked_bytes = 0


register("reno", Reno)
