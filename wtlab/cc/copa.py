"""Copa (Arun and Balakrishnan, "Copa: Practical Delay-Based Congestion Control for the
Internet", NSDI 2018), for QUIC.

Copa aims at the target rate ``lambda_t = 1 / (delta x d_q)`` packets per second, where
``d_q = RTT_standing - RTT_min`` is the queueing delay it measures; at that rate the
flow keeps ``lambda_t x d_q = 1/delta`` packets in the queue (2 for the default
``delta = 0.5``). Section 2 of the paper, as implemented here:

* ``RTT_min``: the smallest RTT over the last 10 s; ``RTT_standing``: the smallest
  over the last srtt / 2 (a standing queue, not a burst's); RTT samples are RFC 9002's
  adjusted RTT (less the peer's ACK delay, ``RttStats.adjusted_rtt``): with QUIC's
  delayed ACKs a raw sample carries up to a millisecond of timer, which would cap the
  target rate near 1 / (delta x 1 ms);
* per acknowledged packet, with the current rate ``lambda = cwnd / RTT_standing``:
  ``cwnd += v / (delta x cwnd)`` (packets) if ``lambda <= lambda_t``, else ``cwnd -=
  v / (delta x cwnd)``;
* velocity ``v``: once per window the direction of cwnd is compared with the previous
  window's; after three windows in the same direction ``v`` doubles each window, and
  falls back to 1 when the direction changes, or as soon as an ACK asks for the
  other direction (as mvfst's and TQUIC's implementations do: a v doubled for one
  direction would overshoot in the other);
* slow start: cwnd doubles per RTT (one packet per packet acknowledged) until the
  current rate first exceeds the target;
* pacing at ``2 x cwnd / RTT_standing``;
* **competitive mode** (section 2.3): a Copa flow alone sees its queue nearly empty
  (an RTT sample's queueing delay below 10 % of the largest of the last four RTTs) at
  least once every five RTTs; when that stops happening a buffer-filling flow shares the bottleneck,
  and Copa varies ``1/delta`` by AIMD: +1 per RTT, halved on a loss (delta never above
  the default 0.5). When the queue empties again, delta returns to the default.
* losses: Copa's window does not react to a loss (it is delay-based), except that a
  loss ends slow start and, in competitive mode, halves ``1/delta``; persistent
  congestion collapses the window as RFC 9002 says.

Readouts: ``delta``, ``velocity``, ``mode`` ("default" / "competitive"), ``d_q_s``.
``state`` is slow_start, then congestion_avoidance in the default mode and competitive
in the competitive mode, so each switch is a ``state_changed`` row in the trace.

Notebook-sized example::

    from wtlab.model import run
    r = run(dict(rate_bps="10mbit", rtt_s="40ms", buffer_bdp=2), cc="copa", duration_s=10)
    r.metrics(5, 10)[["goodput_bps", "queueing_delay_mean_s"]]   # about 2 packets queued
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from wtlab.cc.base import Controller, PacketInfo, register
from wtlab.cc.rtt import K_GRANULARITY_S, RttStats

COPA_DELTA = 0.5
RTT_MIN_WINDOW_S = 10.0
NEARLY_EMPTY_FRACTION = 0.1
EMPTY_CHECK_RTTS = 5
MAX_QUEUE_RTTS = 4


class Copa(Controller):
    """Copa (NSDI 2018). ``delta`` 0.5 by default; ``competitive=False`` turns the
    competitive mode off."""

    name = "copa"
    RECOVERY_STATE = None

    def __init__(self, *, delta: float = COPA_DELTA, competitive: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_delta = float(delta)
        self.delta = float(delta)
        self.competitive = bool(competitive)
        self.mode = "default"
        self.velocity = 1.0
        self.d_q_s = 0.0
        self._cwnd_pkts = self.cwnd / self.max_datagram_size
        self._min_q: deque[tuple[float, float]] = deque()  # for RTT_min (10 s)
        self._standing_q: deque[tuple[float, float]] = deque()  # for RTT_standing (srtt/2)
        self._rtt_min = math.inf
        self._direction = 0  # +1 increasing, -1 decreasing (last window)
        self._same_dir = 0
        self._window_start_cwnd = self._cwnd_pkts
        self._sent_pn = -1
        self._acked_pn = -1
        self._window_end = -1
        self._last_empty = 0.0
        self._dq_hist: deque[tuple[float, float]] = deque()  # (time, rtt): max, 4 RTTs
        self._last_delta_step = 0.0

    # ------------------------------------------------------------------ RTT filters
    @staticmethod
    def _windowed_min(q: deque, now: float, rtt: float, horizon: float) -> float:
        """Sliding-window minimum (a monotonic deque of (time, rtt))."""
        while q and q[-1][1] >= rtt:
            q.pop()
        q.append((now, rtt))
        while q[0][0] < horizon:
            q.popleft()
        return q[0][1]

    # ------------------------------------------------------------------ hooks
    def on_packet_sent(self, now: float, packet: PacketInfo) -> None:
        if packet.packet_number > self._sent_pn:
            self._sent_pn = packet.packet_number
        super().on_packet_sent(now, packet)

    def on_ack(self, now: float, packet: PacketInfo, rtt: RttStats) -> None:
        if packet.packet_number > self._acked_pn:
            self._acked_pn = packet.packet_number

    def on_ack_frame(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        if not rtt.has_sample or not packets:
            return
        srtt = rtt.smoothed_rtt
        sample = rtt.adjusted_rtt
        self._rtt_min = self._windowed_min(self._min_q, now, sample, now - RTT_MIN_WINDOW_S)
        standing = self._windowed_min(self._standing_q, now, sample, now - srtt / 2.0)
        d_q = standing - self._rtt_min
        if d_q < 0.0:
            d_q = 0.0
        self.d_q_s = d_q
        self._track_queue(now, d_q, sample, srtt)
        mds = self.max_datagram_size
        acked_pkts = sum(p.sent_bytes for p in packets) / mds
        w = self._cwnd_pkts
        # target rate 1/(delta d_q) vs current rate w/standing (packets per second)
        above = d_q > 0.0 and w / standing > 1.0 / (self.delta * d_q)
        if self.state == "slow_start":
            if above:
                self.state = self._mode_state()
            elif not self.app_limited:
                w += acked_pkts
        if self.state != "slow_start":
            if self.velocity > 1.0 and (1 if not above else -1) != self._direction:
                # the target flipped while v was built up for the other direction:
                # start again at 1 (else a doubled v overshoots the target)
                self.velocity = 1.0
                self._same_dir = 0
            step = acked_pkts * self.velocity / (self.delta * w)
            if above:
                w -= step
            elif not self.app_limited:
                w += step
        min_w = self.min_cwnd / mds
        self._cwnd_pkts = w if w > min_w else min_w
        self.cwnd = int(self._cwnd_pkts * mds)
        if self._acked_pn > self._window_end:
            self._end_window(now)
        self.pacing_rate_bps = 2.0 * self.cwnd * 8.0 / max(standing, 1e-6)

    def _end_window(self, now: float) -> None:
        """Once per window: velocity (and, in competitive mode, delta's AIMD)."""
        self._window_end = self._sent_pn
        w = self._cwnd_pkts
        direction = 1 if w > self._window_start_cwnd else -1
        self._window_start_cwnd = w
        if direction == self._direction:
            self._same_dir += 1
            if self._same_dir >= 3:
                self.velocity = min(self.velocity * 2.0, 1e6)
        else:
            self._same_dir = 0
            self.velocity = 1.0
        self._direction = direction
        if self.mode == "competitive":
            inv = 1.0 / self.delta + 1.0
            self.delta = min(self.default_delta, 1.0 / inv)

    def _track_queue(self, now: float, d_q: float, sample: float, srtt: float) -> None:
        """Competitive-mode detection (section 2.3): the queue is "nearly empty" when an
        RTT sample's queueing delay (sample minus RTT_min) is under 10 % of the largest
        of the last four RTTs; a flow that has not seen that for five RTTs shares the
        bottleneck with a buffer-filler."""
        hist = self._dq_hist
        while hist and hist[-1][1] <= sample:
            hist.pop()
        hist.append((now, sample))
        horizon = now - MAX_QUEUE_RTTS * srtt
        while hist[0][0] < horizon:
            hist.popleft()
        d_max = hist[0][1] - self._rtt_min
        threshold = NEARLY_EMPTY_FRACTION * d_max
        if threshold < K_GRANULARITY_S:
            threshold = K_GRANULARITY_S  # QUIC's RTT samples are no finer (RFC 9002 5.3)
        if sample - self._rtt_min <= threshold or d_max <= 0.0:
            self._last_empty = now
            if self.mode == "competitive":
                self.mode = "default"
                self.delta = self.default_delta
                if self.state != "slow_start":
                    self.state = self._mode_state()
        elif self.competitive and now - self._last_empty > EMPTY_CHECK_RTTS * srtt:
            if self.mode == "default":
                self.mode = "competitive"
                if self.state != "slow_start":
                    self.state = self._mode_state()

    def _mode_state(self) -> str:
        """The state after slow start: the mode, as the trace shows it."""
        return "competitive" if self.mode == "competitive" else "congestion_avoidance"

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        if self.state == "slow_start":
            self.state = self._mode_state()
        if self.mode == "competitive":
            self.delta = min(self.default_delta, 2.0 * self.delta)  # 1/delta halved

    def on_persistent_congestion(self, now: float) -> None:
        super().on_persistent_congestion(now)
        self._cwnd_pkts = self.cwnd / self.max_datagram_size
        self.velocity = 1.0

    def snapshot(self) -> dict[str, Any]:
        d = super().snapshot()
        d.update(delta=self.delta, velocity=self.velocity, mode=self.mode, d_q_s=self.d_q_s)
        return d


register("copa", Copa)
