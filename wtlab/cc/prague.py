"""Prague, the L4S scalable congestion controller (RFC 9331's requirements), for QUIC.

Behaviour of the published TCP Prague reference (the L4S team's Linux module,
``tcp_prague.c``, as of its v0.6), in QUIC terms:

* **L4S identifier** (RFC 9331 section 4.1): packets are ECT(1), so a DualQ AQM
  (RFC 9332) puts them in its low-latency queue.
* **Scalable response** (4.3): alpha, an EWMA (gain ``g = 1/16``) of the fraction of
  packets CE-marked per round (one RTT), starts at 1 and is updated only once a
  CE mark has been seen; a CE increase reduces ``cwnd`` by ``alpha / 2`` at most once
  per round (state ``"cwr"``), as DCTCP. Each CE mark thus costs the same small
  window decrement whatever the rate: the marking frequency per RTT stays about 2.
* **Additive increase with unsaturated marking**: every acknowledged packet that was
  *not* CE-marked grows cwnd by ``ai x MSS x size / cwnd`` (cwnd kept in fractions of
  a byte), also during CWR; slow start grows by the non-marked packets' bytes.
* **RTT independence** (4.3, the reference's default ``RTT_CONTROL_RATE``): after
  ``rtt_transition_rounds`` (500) rounds out of slow start, a flow whose smoothed RTT
  is below ``rtt_target_s`` (25 ms) grows as if its RTT were the target: ``ai =
  (srtt / target)^2`` (so rate grows by 1 MSS / target^2 per second, whatever the
  RTT), alpha is updated and cwnd reduced at most once per target RTT.
* **Loss** (4.2: respond to loss as classic controllers do): halve, RFC 9002's
  recovery period; persistent congestion collapses the window.
* **Pacing** (4.3 "reduce RTT dependence", the reference's pacing): at cwnd / srtt,
  twice that while cwnd < ssthresh / 2 (slow start).

Not implemented: the reference's detection of classic ECN AQMs (off by default
there too), its burst (TSO) sizing, AccECN negotiation (QUIC's ACK_ECN needs none).
If ECN validation fails the controller gets no ECN feedback and behaves as Reno with
Prague's pacing, as the reference falls back to ``prague-reno``.

Notebook-sized example (a DualPI2 bottleneck keeps Prague's queue under a millisecond)::

    from wtlab.model import run
    r = run(dict(rate_bps="20mbit", rtt_s="40ms", buffer_bdp=2, aqm="dualpi2"),
            cc=["prague", "cubic"], flows=2, duration_s=20)
    r.metrics(10, 20)[["cc", "goodput_bps", "queueing_delay_mean_s"]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wtlab.cc.base import Controller, PacketInfo, register
from wtlab.cc.rtt import RttStats

PRAGUE_G = 1.0 / 16.0
RTT_TARGET_S = 0.025
RTT_TRANSITION_ROUNDS = 500


class Prague(Controller):
    """L4S Prague. ``state``: slow_start, congestion_avoidance, cwr, recovery.

    Readouts: ``alpha``, ``ai`` (the additive-increase factor in use), ``rounds``
    (rounds since slow start ended), ``rtt_independent`` (scaling active).
    """

    name = "prague"
    ECN_CODEPOINT = "ect1"

    def __init__(self, *, g: float = PRAGUE_G, rtt_target_s: float = RTT_TARGET_S,
                 rtt_transition_rounds: int = RTT_TRANSITION_ROUNDS,
                 rtt_scaling: bool = True, pacing: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.g = float(g)
        self.rtt_target_s = float(rtt_target_s)
        self.rtt_transition_rounds = int(rtt_transition_rounds)
        self.rtt_scaling = bool(rtt_scaling)
        self.pacing = bool(pacing)
        self.alpha = 1.0
        self.saw_ce = False
        self.ai = 1.0
        self.rounds = 0
        self._cwnd_f = float(self.cwnd)
        self._sent_pn = -1
        self._acked_pn = -1
        self._round_end = -1
        self._round_acked = 0
        self._round_ce = 0
        self._last_alpha_time = -math.inf
        self._last_cwr_time = -math.inf

    # ------------------------------------------------------------------ helpers
    @property
    def rtt_independent(self) -> bool:
        """Whether RTT-independence is active: ``rtt_scaling`` is on, slow start has
        ended and at least ``rtt_transition_rounds`` rounds have passed since."""
        return (self.rtt_scaling and not self._in_slow_start()
                and self.rounds >= self.rtt_transition_rounds)

    def _set_cwnd(self, value: float) -> None:
        if value < self.min_cwnd:
            value = float(self.min_cwnd)
        self._cwnd_f = value
        self.cwnd = int(value)

    def _update_ai(self) -> None:
        rtt = self.rtt
        if (self.rtt_independent and rtt is not None and rtt.has_sample
                and rtt.smoothed_rtt < self.rtt_target_s):
            r = rtt.smoothed_rtt / self.rtt_target_s
            self.ai = r * r
        else:
            self.ai = 1.0

    def _update_pacing(self) -> None:
        rtt = self.rtt
        if not self.pacing or rtt is None or not rtt.has_sample:
            return
        rate = 8.0 * self.cwnd / max(rtt.smoothed_rtt, 1e-6)
        if self.ssthresh is None or self.cwnd < self.ssthresh / 2:
            rate *= 2.0
        self.pacing_rate_bps = rate

    # ------------------------------------------------------------------ hooks
    def on_packet_sent(self, now: float, packet: PacketInfo) -> None:
        if packet.packet_number > self._sent_pn:
            self._sent_pn = packet.packet_number
        super().on_packet_sent(now, packet)

    def on_ack(self, now: float, packet: PacketInfo, rtt: RttStats) -> None:
        if packet.packet_number > self._acked_pn:
            self._acked_pn = packet.packet_number
        self._round_acked += 1
        if self.app_limited:
            return
        if self._in_slow_start():
            self._set_cwnd(self._cwnd_f + packet.sent_bytes)
            self.state = "slow_start"
            return
        mds = self.max_datagram_size
        self._set_cwnd(self._cwnd_f + self.ai * mds * packet.sent_bytes / self._cwnd_f)
        if self.state == "slow_start":
            self.state = "congestion_avoidance"

    def on_ack_frame(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        if self.state == "cwr" and self._acked_pn >= 0 and packets and \
                packets[-1].sent_time > self._last_cwr_time:
            self.state = "congestion_avoidance"  # a packet sent after the reduction came back
        self._update_pacing()

    def on_ecn(self, now: float, acked_ect: int, acked_bytes: int, ce_increase: int,
               sent_time: float) -> None:
        if ce_increase > 0:
            self.saw_ce = True
            self._round_ce += ce_increase
            if acked_ect > 0 and not self.app_limited:
                # unsaturated marking: CE-marked packets do not grow the window
                marked = min(ce_increase, acked_ect)
                size = acked_bytes / acked_ect
                if self._in_slow_start():
                    grown = marked * size
                else:
                    grown = marked * self.ai * self.max_datagram_size * size / self._cwnd_f
                self._set_cwnd(self._cwnd_f - grown)
        indep = self.rtt_independent
        if self._acked_pn > self._round_end and (
                not indep or now - self._last_alpha_time >= self.rtt_target_s):
            if self.saw_ce:
                frac = self._round_ce / max(1, self._round_acked)
                self.alpha = (1.0 - self.g) * self.alpha + self.g * min(1.0, frac)
                self._last_alpha_time = now
            self._round_end = self._sent_pn
            self._round_acked = self._round_ce = 0
            if not self._in_slow_start():
                self.rounds += 1
            self._update_ai()
        if ce_increase > 0 and sent_time > self._last_cwr_time and (
                not indep or now - self._last_cwr_time >= self.rtt_target_s):
            # CWR: a scalable reduction, at most once per round
            self._last_cwr_time = now
            self._set_cwnd(self._cwnd_f * (1.0 - self.alpha / 2.0))
            self.ssthresh = self.cwnd
            self.state = "cwr"
            self._update_ai()
        self._update_pacing()

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        self._set_cwnd(self._cwnd_f / 2.0)
        self.ssthresh = self.cwnd
        self._update_pacing()

    def on_persistent_congestion(self, now: float) -> None:
        super().on_persistent_congestion(now)
        self._cwnd_f = float(self.cwnd)

    def snapshot(self) -> dict[str, Any]:
        d = super().snapshot()
        d.update(alpha=self.alpha, ai=self.ai, rounds=self.rounds)
        return d


register("prague", Prague)
