"""DCTCP, Data Center TCP, as RFC 8257 specifies it (Alizadeh et al., SIGCOMM 2010), for QUIC.

The sender marks its packets ECT(0) and estimates the fraction of them a queue marks:

* Per observation window (one RTT: it ends when a packet sent after the window
  began is acknowledged, RFC 8257 section 3.3 steps 1-7), the fraction of
  acknowledged bytes that were CE-marked, ``M``, updates
  ``alpha = (1 - g) alpha + g M`` with ``g = 1/16``; alpha starts at 1 (section 4.2:
  the first reduction is a halving).
* A CE increase reported in an ACK frame reduces the window at most once per RTT
  (section 3.3 steps 8-11): ``cwnd = cwnd (1 - alpha / 2)``, ``ssthresh = cwnd``;
  state ``"cwr"`` until a packet sent after the reduction is acknowledged (as RFC
  9002's recovery period: no growth for packets sent before it).
* Growth, loss and persistent congestion are Reno's (RFC 9002, section 3.4 of RFC
  8257: a loss halves the window).
* Pacing: the driver's cwnd/srtt pacer (RFC 9002 7.7), or none with ``paced=False``
  (``pacing_rate_bps = inf``: the window alone clocks packets out, as DCTCP runs in
  Linux without a pacing qdisc).

QUIC gives what TCP needed the receiver's state machine for: an ACK_ECN frame
counts CE packets exactly, so the marked bytes of a frame are its newly acknowledged
ECT bytes x (CE increase / newly acknowledged ECT packets), capped at all of them.
If ECN validation fails (the path bleaches the field), no feedback comes and DCTCP
is Reno. ``alpha`` and ``marked_fraction`` (the last window's M) are readable.

Notebook-sized example (the sawtooth Alizadeh et al. analyse: a step-marking queue
with threshold K keeps the queue near K)::

    from wtlab.model import run
    from wtlab.net.aqm import StepMark
    r = run(dict(rate_bps="100mbit", rtt_s="1ms", buffer="400p",
                 aqm=StepMark(threshold_packets=20)), cc="dctcp", duration_s=2)
    r.trace().query("kind == 'cwnd_changed'").plot(x="time_s", y="cwnd")
"""

from __future__ import annotations

import math
from typing import Any

from wtlab.cc.base import PacketInfo, register
from wtlab.cc.reno import Reno
from wtlab.cc.rtt import RttStats

DCTCP_G = 1.0 / 16.0  # RFC 8257 section 4.2 (Linux dctcp_shift_g = 4)


class DCTCP(Reno):
    """RFC 8257 DCTCP. ``state``: slow_start, congestion_avoidance, cwr, recovery."""

    name = "dctcp"
    ECN_CODEPOINT = "ect0"

    def __init__(self, *, g: float = DCTCP_G, alpha: float = 1.0, paced: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.paced = bool(paced)
        if not paced:
            self.pacing_rate_bps = math.inf
        self.g = float(g)
        self.alpha = float(alpha)
        self.marked_fraction = 0.0
        self._acked_bytes = 0.0  # in the current observation window
        self._marked_bytes = 0.0
        self._sent_pn = -1  # largest packet number sent
        self._acked_pn = -1  # largest packet number acknowledged
        self._window_end = -1  # the window ends when a packet above this is acked
        self._ecn_reduction = False

    def on_packet_sent(self, now: float, packet: PacketInfo) -> None:
        if packet.packet_number > self._sent_pn:
            self._sent_pn = packet.packet_number
        super().on_packet_sent(now, packet)

    def on_ack(self, now: float, packet: PacketInfo, rtt: RttStats) -> None:
        if packet.packet_number > self._acked_pn:
            self._acked_pn = packet.packet_number
        super().on_ack(now, packet, rtt)

    def on_ecn(self, now: float, acked_ect: int, acked_bytes: int, ce_increase: int,
               sent_time: float) -> None:
        marked = 0.0
        if ce_increase > 0 and acked_ect > 0:
            marked = acked_bytes * min(1.0, ce_increase / acked_ect)
        self._acked_bytes += acked_bytes
        self._marked_bytes += marked
        if self._acked_pn > self._window_end:
            # end of the observation window (about one RTT): update alpha
            if self._acked_bytes > 0:
                self.marked_fraction = self._marked_bytes / self._acked_bytes
                self.alpha = (1.0 - self.g) * self.alpha + self.g * self.marked_fraction
            self._acked_bytes = self._marked_bytes = 0.0
            self._window_end = self._sent_pn
        if ce_increase > 0 and not self.in_recovery(sent_time):
            self._ecn_reduction = True
            try:
                self._begin_recovery(now, sent_time)
            finally:
                self._ecn_reduction = False
            self.state = "cwr"

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        if not self._ecn_reduction:
            super().on_congestion_event(now, sent_time)  # a loss: halve, as Reno
            return
        self.cwnd = max(int(self.cwnd * (1.0 - self.alpha / 2.0)), self.min_cwnd)
        self.ssthresh = self.cwnd
        self._ca_acked_bytes = 0

    def on_recovery_exit(self, now: float) -> None:
        if self.state == "cwr":
            self.state = "recovery"
        super().on_recovery_exit(now)

    def snapshot(self) -> dict[str, Any]:
        d = super().snapshot()
        d["alpha"] = self.alpha
        return d


register("dctcp", DCTCP)
