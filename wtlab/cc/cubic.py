"""CUBIC as RFC 9438 specifies it, with HyStart++ (RFC 9406) as an option.

Window (in segments of ``max_datagram_size``) in congestion avoidance, ``t``
seconds after the epoch began (the first ack of the congestion-avoidance stage)::

    W_cubic(t) = C (t - K)^3 + W_max,  K = cbrt((W_max - cwnd_epoch) / C)

with ``C = 0.4`` and ``beta = 0.7``. Per acknowledged packet:

* Reno-friendly region (4.3): ``W_est`` grows by ``alpha_cubic`` segments per
  cwnd acked (``alpha_cubic = 3 (1 - beta) / (1 + beta)``, and 1 once W_est
  reaches ``cwnd_prior``); while ``W_cubic(t) < W_est`` cwnd is set to W_est.
* Concave (cwnd < W_max) and convex regions (4.4, 4.5): cwnd grows by
  ``(target - cwnd) / cwnd`` per segment acked, where ``target`` is
  ``W_cubic(t + srtt)`` clamped to ``[cwnd, 1.5 cwnd]`` (4.2).
* Congestion event (4.6): ``ssthresh = cwnd * beta`` (the RFC allows cwnd in
  place of flight size; QUIC stacks and RFC 9002 use cwnd), with fast
  convergence (4.7): a loss below the previous W_max sets
  ``W_max = cwnd (1 + beta) / 2``.
* Slow start is RFC 9002's; with ``hystart=True`` HyStart++ watches each
  round's minimum RTT and moves to Conservative Slow Start (state
  ``"conservative_slow_start"``, growth / 4) when it rises by
  ``clamp(min_rtt / 8, 4 ms, 16 ms)``, and to congestion avoidance after 5 CSS
  rounds (constants of RFC 9406 section 4.3).

``region`` tells which of "slow_start", "reno_friendly", "concave" or
"convex" the last ack was handled in; ``w_cubic_bytes(t)`` evaluates W_cubic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from wtlab.cc.base import Controller, PacketInfo, register
from wtlab.cc.rtt import RttStats

K_CUBIC_C = 0.4
K_CUBIC_BETA = 0.7
K_CUBIC_ALPHA = 3 * (1 - K_CUBIC_BETA) / (1 + K_CUBIC_BETA)

# RFC 9406 section 4.3
HS_MIN_RTT_THRESH_S = 0.004
HS_MAX_RTT_THRESH_S = 0.016
HS_MIN_RTT_DIVISOR = 8
HS_N_RTT_SAMPLE = 8
HS_CSS_GROWTH_DIVISOR = 4
HS_CSS_ROUNDS = 5


class Cubic(Controller):
    """RFC 9438 CUBIC. Options: ``fast_convergence`` (default on), ``hystart`` (default off)."""

    name = "cubic"

    def __init__(self, *, fast_convergence: bool = True, hystart: bool = False,
                 c: float = K_CUBIC_C, beta: float = K_CUBIC_BETA, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fast_convergence = fast_convergence
        self.hystart = hystart
        self.c = c
        self.beta = beta
        self.alpha_cubic = 3 * (1 - beta) / (1 + beta)
        self.w_max: float | None = None  # bytes
        self.k_s = 0.0
        self.t_epoch: float | None = None  # None: the next CA ack starts an epoch
        self.cwnd_epoch = 0
        self.w_est = 0.0  # bytes
        self.cwnd_prior = 0
        self.region = "slow_start"
        self._frac = 0.0  # fractional bytes of cwnd growth not yet applied
        # HyStart++ (RFC 9406)
        self._largest_sent_pn = -1
        self._hs_window_end = -1
        self._hs_last_round_min = math.inf
        self._hs_cur_round_min = math.inf
        self._hs_samples = 0
        self._hs_seen_sample = 0
        self._css = False
        self._css_baseline = math.inf
        self._css_rounds = 0

    def w_cubic_bytes(self, t_s: float) -> float:
        """W_cubic(t) in bytes, ``t_s`` seconds after the epoch began."""
        mds = self.max_datagram_size
        w_max = self.w_max if self.w_max is not None else float(self.cwnd)
        return (self.c * (t_s - self.k_s) ** 3 + w_max / mds) * mds

    # ------------------------------------------------------------------ hooks
    def on_packet_sent(self, now: float, packet: PacketInfo) -> None:
        self._largest_sent_pn = packet.packet_number
        super().on_packet_sent(now, packet)

    def _start_epoch(self, now: float) -> None:
        mds = self.max_datagram_size
        self.t_epoch = now
        self.cwnd_epoch = self.cwnd
        self.w_est = float(self.cwnd)
        if self.w_max is None or self.w_max < self.cwnd:
            # Slow start ended without loss (HyStart++), or cwnd already above W_max.
            self.w_max = float(self.cwnd)
            self.k_s = 0.0
        else:
            self.k_s = ((self.w_max - self.cwnd_epoch) / mds / self.c) ** (1 / 3)
        if not self.cwnd_prior:
            self.cwnd_prior = self.cwnd
        self._frac = 0.0

    def on_ack(self, now: float, packet: PacketInfo, rtt: RttStats) -> None:
        if self.app_limited:
            return  # RFC 9002 7.8 / RFC 9438 5.8: do not grow an under-used window
        ssthresh = self.ssthresh
        acked = packet.sent_bytes
        cwnd = self.cwnd
        if ssthresh is None or cwnd < ssthresh:
            self.region = "slow_start"
            if self._css:
                self._frac += acked / HS_CSS_GROWTH_DIVISOR
                whole = int(self._frac)
                self._frac -= whole
                self.cwnd = cwnd + whole
            else:
                self.cwnd = cwnd + acked
            if ssthresh is not None and self.cwnd >= ssthresh:
                self.state = "congestion_avoidance"
            return
        self.state = "congestion_avoidance"
        if self.t_epoch is None:
            self._start_epoch(now)
        mds = self.max_datagram_size
        t = now - self.t_epoch
        alpha = 1.0 if self.w_est >= self.cwnd_prior else self.alpha_cubic
        self.w_est += alpha * mds * acked / cwnd
        c, k, w_max_seg = self.c, self.k_s, self.w_max / mds
        if (c * (t - k) ** 3 + w_max_seg) * mds < self.w_est:
            self.region = "reno_friendly"
            self.cwnd = int(self.w_est)
            self._frac = 0.0
            return
        srtt = rtt.smoothed_rtt
        target = (c * (t + srtt - k) ** 3 + w_max_seg) * mds
        if target < cwnd:
            target = cwnd
        elif target > 1.5 * cwnd:
            target = 1.5 * cwnd
        self.region = "concave" if cwnd < self.w_max else "convex"
        self._frac += (target - cwnd) * acked / cwnd
        whole = int(self._frac)
        self._frac -= whole
        self.cwnd = cwnd + whole

    def on_ack_frame(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        if not self.hystart or self.ssthresh is not None or not packets:
            return
        # RFC 9406 4.2, once per ACK frame during the initial slow start.
        if packets[-1].packet_number >= self._hs_window_end:
            # A round ended: the packet that was last sent when it began is acked.
            self._hs_last_round_min = self._hs_cur_round_min
            self._hs_cur_round_min = math.inf
            self._hs_samples = 0
            self._hs_window_end = self._largest_sent_pn
            if self._css:
                self._css_rounds += 1
                if self._css_rounds >= HS_CSS_ROUNDS:
                    self._css = False
                    self.ssthresh = self.cwnd
                    self.state = "congestion_avoidance"
                    return
        if rtt.sample_count == self._hs_seen_sample:
            return  # no new RTT sample in this frame
        self._hs_seen_sample = rtt.sample_count
        if rtt.latest_rtt < self._hs_cur_round_min:
            self._hs_cur_round_min = rtt.latest_rtt
        self._hs_samples += 1
        if self._hs_samples < HS_N_RTT_SAMPLE:
            return
        cur, last = self._hs_cur_round_min, self._hs_last_round_min
        if not self._css:
            if cur != math.inf and last != math.inf:
                thresh = min(max(last / HS_MIN_RTT_DIVISOR, HS_MIN_RTT_THRESH_S),
                             HS_MAX_RTT_THRESH_S)
                if cur >= last + thresh:
                    self._css = True
                    self._css_baseline = cur
                    self._css_rounds = 0
                    self.state = "conservative_slow_start"
        elif cur < self._css_baseline:
            # The RTT rise was spurious: back to slow start.
            self._css = False
            self._css_baseline = math.inf
            self.state = "slow_start"

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        cwnd = self.cwnd
        if self.fast_convergence and self.w_max is not None and cwnd < self.w_max:
            self.w_max = cwnd * (1 + self.beta) / 2
        else:
            self.w_max = float(cwnd)
        self.cwnd_prior = cwnd
        self.ssthresh = max(int(cwnd * self.beta), self.min_cwnd)
        self.cwnd = self.ssthresh
        self.t_epoch = None
        self._css = False
        self._frac = 0.0

    def on_persistent_congestion(self, now: float) -> None:
        super().on_persistent_congestion(now)
        self.t_epoch = None
        self._frac = 0.0
        self.region = "slow_start"


register("cubic", Cubic)
