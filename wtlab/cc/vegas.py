"""TCP Vegas (Brakmo and Peterson, IEEE JSAC 13(8), 1995), for QUIC.

Vegas keeps a few packets queued at the bottleneck and no more. Once per RTT (an
epoch ends when a packet sent after it began is acknowledged) it compares the rate
it expects, ``cwnd / base_rtt``, with the rate it gets, ``cwnd / rtt``, where
``base_rtt`` is the smallest RTT seen and ``rtt`` the smallest sample of the epoch
(the minimum filters out delayed-ACK noise, as Linux's tcp_vegas does); samples are
RFC 9002's adjusted RTT (less the peer's ACK delay). Their
difference times ``base_rtt`` is the number of its packets in the queue::

    diff = cwnd_packets x (rtt - base_rtt) / rtt

* congestion avoidance: ``diff < alpha`` (2): +1 packet; ``diff > beta`` (4): -1
  packet; otherwise unchanged: the queue holds between alpha and beta packets;
* slow start (RFC 9002's growth): ends once ``diff > gamma`` (1 packet), cwnd then
  set to what the expected rate needs plus one packet (the paper's modified slow
  start leaves it at that point too);
* loss: Reno's halving (RFC 9002's recovery period).

``diff`` (the last epoch's estimate, packets) and ``base_rtt_s`` are readable.

Notebook-sized example::

    from wtlab.model import run
    r = run(dict(rate_bps="10mbit", rtt_s="40ms", buffer_bdp=2), cc="vegas", duration_s=10)
    r.metrics(5, 10)[["goodput_bps", "queueing_delay_mean_s"]]   # about 3 packets queued
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wtlab.cc.base import PacketInfo, register
from wtlab.cc.reno import Reno
from wtlab.cc.rtt import RttStats

VEGAS_ALPHA = 2
VEGAS_BETA = 4
VEGAS_GAMMA = 1


class Vegas(Reno):
    """Vegas. ``alpha``, ``beta``, ``gamma`` in packets (Linux's defaults 2, 4, 1)."""

    name = "vegas"

    def __init__(self, *, alpha: float = VEGAS_ALPHA, beta: float = VEGAS_BETA,
                 gamma: float = VEGAS_GAMMA, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.diff = math.nan
        self.base_rtt_s = math.inf
        self._epoch_min_rtt = math.inf
        self._sent_pn = -1
        self._acked_pn = -1
        self._epoch_end = -1

    def on_packet_sent(self, now: float, packet: PacketInfo) -> None:
        if packet.packet_number > self._sent_pn:
            self._sent_pn = packet.packet_number
        super().on_packet_sent(now, packet)

    def on_ack(self, now: float, packet: PacketInfo, rtt: RttStats) -> None:
        if packet.packet_number > self._acked_pn:
            self._acked_pn = packet.packet_number
        if self._in_slow_start() and not self.app_limited:
            super().on_ack(now, packet, rtt)  # RFC 9002 slow start
        # congestion avoidance: the window moves once per epoch (on_ack_frame)

    def on_ack_frame(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        if not rtt.has_sample:
            return
        sample = rtt.adjusted_rtt
        if sample < self.base_rtt_s:
            self.base_rtt_s = sample
        if sample < self._epoch_min_rtt:
            self._epoch_min_rtt = sample
        if self._acked_pn <= self._epoch_end:
            return
        # end of an epoch (one RTT)
        self._epoch_end = self._sent_pn
        epoch_rtt = self._epoch_min_rtt
        self._epoch_min_rtt = math.inf
        if self.state == "recovery" or epoch_rtt == math.inf or self.app_limited:
            return
        mds = self.max_datagram_size
        cwnd_pkts = self.cwnd / mds
        base = self.base_rtt_s
        self.diff = diff = cwnd_pkts * (epoch_rtt - base) / epoch_rtt
        if self._in_slow_start():
            if diff > self.gamma:
                target = cwnd_pkts * base / epoch_rtt
                self.cwnd = max(min(self.cwnd, int((target + 1) * mds)), self.min_cwnd)
                self.ssthresh = self.cwnd
                self.state = "congestion_avoidance"
            return
        self.state = "congestion_avoidance"
        if diff > self.beta:
            self.cwnd = max(self.cwnd - mds, self.min_cwnd)
        elif diff < self.alpha:
            self.cwnd += mds
        self.ssthresh = self.cwnd


register("vegas", Vegas)
