"""BBR version 3, after draft-ietf-ccwg-bbr (the IETF CCWG draft; constants of -05).

What differs from BBRv1 (``wtlab.cc.bbr``), in the draft's terms:

* Startup paces at 4 ln 2 = 2.77 with cwnd gain 2 and also ends on excessive
  loss (> 2% of the data in flight, >= 6 losses, a full round in recovery);
  Drain paces at 0.5.
* ProbeBW is four phases instead of an 8-phase cycle: ``probe_bw_down``
  (pacing 0.9, until in-flight is at most one BDP and below the headroom),
  ``probe_bw_cruise`` (1.0), ``probe_bw_refill`` (1.0 for one round),
  ``probe_bw_up`` (1.25, cwnd gain 2.25, until the bandwidth stops growing or
  loss is too high). The time between probes is 2-3 s (random) or as many
  rounds as Reno would take to grow by a BDP, whichever comes first.
* Two-sided model: ``max_bw`` (max over the last 2 ProbeBW cycles),
  ``bw_shortterm``/``inflight_shortterm`` (cut by beta = 0.7 in rounds with
  loss while not probing), ``inflight_longterm`` (the in-flight level at which
  loss exceeded 2% when probing; probed upward, with 15% headroom in cruise).
  ``bw = min(max_bw, bw_shortterm)``; pacing is ``gain x bw`` less a 1% margin.
* ProbeRTT every 5 s (if min RTT did not fall), holding cwnd at half a BDP for
  200 ms and one round; ``min_rtt`` itself is a 10 s min filter.
* Cwnd adds ACK aggregation (``extra_acked``, max over 10 rounds).

Loss recovery as draft-ietf-ccwg-bbr section 5.6.4.4 specifies it: entering fast
recovery only saves cwnd (``BBROnEnterFastRecovery``), loss acts through the model
(the long- and short-term bounds above, per lost packet and once per round), and
leaving recovery restores the saved cwnd, bounded by the model. BBRv1's packet
conservation and its per-loss cwnd cut are not part of v3 (the draft dropped them;
wtlab's BBR3 inherited them until issue 19). Persistent congestion (QUIC's RTO) sets
cwnd to the minimum window, and the saved cwnd comes back when recovery ends, so a
timeout does not collapse the rate. ACK aggregation: ``extra_acked`` as the draft's
BBRUpdateACKAggregation (a 1-round max in Startup, 10 rounds after), added to the
cwnd target before the quantization budget, with no cap (Linux's v1 caps it at
``btlbw x 100 ms``). The delivery-rate sampler is shared with BBRv1. Not
implemented: spurious-loss undo.

ECN (``ecn=True`` or ``"bbr3+ecn"``; off by default, as in Linux), after the draft's
use of ECN and the Linux BBRv3 reference: CE marks are not a loss-like congestion
event; while ECN is *eligible* (the min RTT is at most ``ecn_max_rtt_s``, 5 ms: the
reference trusts shallow-threshold marking only in data centres; ``None`` trusts it
everywhere) a rate sample whose CE fraction exceeds ``ECN_THRESH`` (50 %) means
in-flight is too high, as loss above 2 % does (probing stops, ``inflight_longterm`` is
set); ``ecn_alpha``, the per-round CE fraction's EWMA (gain 1/16), cuts
``inflight_shortterm`` to ``(1 - alpha / 3)`` of itself in each round with marks while
not probing; Startup ends after two rounds whose CE fraction exceeds the threshold.
Readouts: ``ecn_eligible``, ``ecn_alpha``, ``ecn_reactions``. Example (a data-centre path
whose switch marks above 10 packets: BBRv3 holds the queue near the threshold, no loss)::

    from wtlab.model import run
    from wtlab.net.aqm import StepMark
    r = run(dict(rate_bps="50mbit", rtt_s="4ms", buffer="60p",
                 aqm=StepMark(threshold_packets=10)), cc="bbr3+ecn", duration_s=5)
    r.metrics(2, 5)[["goodput_bps", "queueing_delay_mean_s", "ce_marks", "packets_lost"]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wtlab.cc.base import PacketInfo, register
from wtlab.cc.bbr import BBR, RTT_RESOLUTION_S, WindowedMax
from wtlab.cc.rtt import RttStats

STARTUP_PACING_GAIN = 4 * math.log(2)  # 2.77
STARTUP_CWND_GAIN = 2.0
DRAIN_PACING_GAIN = 0.5  # draft-05 (draft-04 and Linux: 0.35)
DEFAULT_CWND_GAIN = 2.0
PROBE_BW_DOWN_PACING_GAIN = 0.9
PROBE_BW_UP_PACING_GAIN = 1.25
PROBE_BW_UP_CWND_GAIN = 2.25
PROBE_RTT_CWND_GAIN = 0.5
LOSS_THRESH = 0.02
BETA = 0.7
HEADROOM = 0.15
PACING_MARGIN = 0.01
FULL_BW_THRESH = 1.25
FULL_BW_COUNT = 3
STARTUP_FULL_LOSS_COUNT = 6
MIN_RTT_FILTER_S = 10.0
PROBE_RTT_INTERVAL_S = 5.0
PROBE_RTT_DURATION_S = 0.2
EXTRA_ACKED_FILTER_ROUNDS = 10
MAX_PROBE_WAIT_ROUNDS = 63
# ECN (the Linux BBRv3 reference's defaults; see the module docstring)
ECN_THRESH = 0.5
ECN_FACTOR = 1.0 / 3.0
ECN_ALPHA_GAIN = 1.0 / 16.0
FULL_ECN_COUNT = 2
ECN_MAX_RTT_S = 0.005

INF = math.inf
PROBE_BW_STATES = ("probe_bw_down", "probe_bw_cruise", "probe_bw_refill", "probe_bw_up")


class BBR3(BBR):
    """BBRv3. Model readouts: ``max_bw_bps``, ``bw_bps``, ``min_rtt_s``,
    ``inflight_longterm``, ``inflight_shortterm``, ``bw_shortterm_bps``."""

    name = "bbr3"

    def __init__(self, *, seed: int | None = 0, ecn_max_rtt_s: float | None = ECN_MAX_RTT_S,
                 **kwargs: Any) -> None:
        # BBRv1's Linux additions (wtlab.cc.bbr VARIANTS) are not BBRv3's: it has its own
        # ACK-aggregation estimate and pacing margin, as draft-ietf-ccwg-bbr specifies.
        super().__init__(seed=seed, variant="draft00", **kwargs)
        self.ecn_max_rtt_s = ecn_max_rtt_s
        self._ecn_init()
        mds = self.max_datagram_size
        self.bw_hi = [0.0, 0.0]  # max_bw filter: this cycle and the previous one (bytes/s)
        self.bw_shortterm = INF
        self.bw_latest = 0.0
        self.inflight_longterm = INF
        self.inflight_shortterm = INF
        self.inflight_latest = 0
        self.min_rtt_s = INF
        self.min_rtt_stamp = 0.0
        self.probe_rtt_min_delay = INF
        self.probe_rtt_min_stamp = 0.0
        self.probe_rtt_expired = False
        self.loss_round_delivered = 0
        self.loss_round_start = False
        self.loss_in_round = False
        self.loss_events_in_round = 0
        self.full_bw_now = False
        self.full_bw_reached = False
        self.ack_phase = "init"
        self.bw_probe_wait_s = 2.0
        self.rounds_since_bw_probe = 0
        self.bw_probe_up_rounds = 0
        self.bw_probe_up_acks = 0
        self.probe_up_cnt = INF
        self.bw_probe_samples = False
        self.prev_probe_too_high = False
        self.cwnd_limited = False
        self.extra_acked = 0.0
        self._extra_acked_filter = WindowedMax(EXTRA_ACKED_FILTER_ROUNDS)
        self._extra_acked_start = 0.0
        self._extra_acked_delivered = 0
        self._recovery_round = 0
        self._drain_start_round = 0
        self.min_pipe_cwnd = 4 * mds
        self.pacing_gain = STARTUP_PACING_GAIN
        self.cwnd_gain = STARTUP_CWND_GAIN
        self.pacing_rate_bps = STARTUP_PACING_GAIN * self.cwnd * 8 / 0.001
        self.state = "startup"
        self._last_logged = (self.cwnd, self.ssthresh, self.state, self.pacing_rate_bps)

    # ------------------------------------------------------------------ model
    @property
    def max_bw(self) -> float:
        """The windowed maximum delivery rate, bytes per second."""
        return max(self.bw_hi)

    @property
    def bw(self) -> float:
        """The bandwidth the model uses, bytes per second: the lesser of :attr:`max_bw` and the
        short-term bound.
        """
        return min(self.max_bw, self.bw_shortterm)

    @property
    def max_bw_bps(self) -> float:
        """:attr:`max_bw` in bit/s."""
        return self.max_bw * 8

    @property
    def bw_bps(self) -> float:
        """:attr:`bw` in bit/s."""
        return self.bw * 8

    @property
    def btlbw_bps(self) -> float:  # the name BBRv1 users read
        return self.bw * 8

    @property
    def bw_shortterm_bps(self) -> float:
        """The short-term bandwidth bound (``bw_shortterm``, lowered by loss), bit/s."""
        return self.bw_shortterm * 8

    def bdp_bytes(self, gain: float = 1.0, bw: float | None = None) -> float:
        """The estimated bandwidth-delay product times ``gain`` (with bandwidth ``bw`` if given,
        else :attr:`bw`), bytes; the initial window until there is a bandwidth sample and an RTT.
        """
        if self.min_rtt_s == INF or not self._has_bw_sample:
            return gain * self.initial_cwnd
        return gain * (self.bw if bw is None else bw) * self.min_rtt_s

    def inflight_bytes(self, gain: float, bw: float | None = None) -> float:
        """Inflight(bw, gain): gain x BDP plus the quantization budget."""
        return self._quantization_budget(self.bdp_bytes(gain, bw))

    def _quantization_budget(self, inflight: float) -> float:
        inflight = max(inflight, 3 * self.send_quantum_bytes(), self.min_pipe_cwnd)
        if self.state == "probe_bw_up":
            inflight += 2 * self.max_datagram_size
        return inflight

    def _inflight_with_headroom(self) -> float:
        if self.inflight_longterm == INF:
            return INF
        headroom = max(self.max_datagram_size, HEADROOM * self.inflight_longterm)
        return max(self.inflight_longterm - headroom, self.min_pipe_cwnd)

    def _target_inflight(self) -> float:
        return min(self.bdp_bytes(), self.cwnd)

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap.update(max_bw_bps=self.max_bw_bps, bw_bps=self.bw_bps, min_rtt_s=self.min_rtt_s,
                    inflight_longterm=self.inflight_longterm,
                    inflight_shortterm=self.inflight_shortterm,
                    bw_shortterm_bps=self.bw_shortterm_bps, full_bw_reached=self.full_bw_reached,
                    ecn_alpha=self.ecn_alpha)
        for key in ("btlbw_bps", "rtprop_s", "cycle_index", "filled_pipe"):
            snap.pop(key, None)
        return snap

    # ------------------------------------------------------- driver entry points
    def on_packet_sent(self, now: float, packet: PacketInfo) -> None:
        super().on_packet_sent(now, packet)
        if self.bytes_in_flight + self.max_datagram_size > self.cwnd:
            self.cwnd_limited = True

    # ------------------------------------------------------------------ hooks
    def on_ack_frame(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        prior_delivered, _t, _se, _ae, app_limited, rs_rtt = self._rs
        rate = self._rate_sample_Bps(self.min_rtt_s)
        self.rs_is_app_limited = app_limited
        delivered = self.delivered - prior_delivered if prior_delivered >= 0 else 0
        newly_acked = self._delivered_in_frame
        inflight = self.bytes_in_flight
        # UpdateModelAndState
        self._update_latest_delivery_signals(rate, delivered, prior_delivered)
        self._update_congestion_signals(now, rate, app_limited, prior_delivered)
        self._update_ack_aggregation(now, newly_acked)
        self._check_full_bw_reached(rate, app_limited)
        self._check_startup_done()
        self._check_drain_done(now, inflight)
        self._update_probe_bw_cycle_phase(now, rate, app_limited, inflight, newly_acked)
        self._update_min_rtt(now, rs_rtt)
        self._check_probe_rtt(now, inflight, delivered)
        if self.loss_round_start:  # AdvanceLatestDeliverySignals
            self.bw_latest = max(rate, 0.0)
            self.inflight_latest = delivered
        # UpdateControlParameters
        self._set_pacing_rate(rtt)
        self._set_cwnd_v3(newly_acked)

    def on_loss(self, now: float, packets: Sequence[PacketInfo]) -> None:
        # draft 5.5.10: each lost packet updates the model; cwnd itself is not cut here
        lost = 0
        for packet in packets:
            info = self._sent.pop(packet.packet_number, None)
            lost += packet.sent_bytes
            self.lost_bytes += packet.sent_bytes
            self._handle_lost_packet(now, packet, info)
        self._rs_lost_bytes += lost

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        # BBROnEnterFastRecovery: save cwnd (and, for an undo wtlab does not do, the model)
        self._save_cwnd(in_recovery=False)
        self._recovery_round = self.round_count

    # ------------------------------------------------------------ rounds, bw
    def _start_round(self) -> None:
        self.next_round_delivered = self.delivered

    def _update_round(self, prior_delivered: int) -> None:
        if prior_delivered >= 0 and prior_delivered >= self.next_round_delivered:
            self._start_round()
            self.round_count += 1
            self.rounds_since_bw_probe += 1
            self.round_start = True
            self.cwnd_limited = False
            self.loss_events_in_round = 0
        else:
            self.round_start = False

    def _update_latest_delivery_signals(self, rate: float, delivered: int,
                                        prior_delivered: int) -> None:
        self.loss_round_start = False
        self.bw_latest = max(self.bw_latest, rate)
        self.inflight_latest = max(self.inflight_latest, delivered)
        if prior_delivered >= 0 and prior_delivered >= self.loss_round_delivered:
            self.loss_round_delivered = self.delivered
            self.loss_round_start = True

    def _update_congestion_signals(self, now: float, rate: float, app_limited: bool,
                                   prior_delivered: int) -> None:
        self._update_round(prior_delivered)
        if rate >= 0 and (rate >= self.max_bw or not app_limited):
            self.bw_hi[1] = max(self.bw_hi[1], rate)
            self._has_bw_sample = True
        if not self.loss_round_start:
            return
        if self.state not in ("startup", "probe_bw_refill", "probe_bw_up") and self.loss_in_round:
            # AdaptLowerBoundsFromCongestion: cut the short-term model by beta.
            if self.bw_shortterm == INF:
                self.bw_shortterm = self.max_bw
            if self.inflight_shortterm == INF:
                self.inflight_shortterm = self.cwnd
            self.bw_shortterm = max(self.bw_latest, BETA * self.bw_shortterm)
            self.inflight_shortterm = max(self.inflight_latest, BETA * self.inflight_shortterm)
        self.loss_in_round = False

    def _advance_max_bw_filter(self) -> None:
        self.bw_hi[0] = self.bw_hi[1]
        self.bw_hi[1] = 0.0

    def _update_ack_aggregation(self, now: float, newly_acked: int) -> None:
        interval = now - self._extra_acked_start
        expected = self.bw * interval if self._has_bw_sample else 0.0
        if self._extra_acked_delivered <= expected:
            self._extra_acked_delivered = 0
            self._extra_acked_start = now
            expected = 0.0
        self._extra_acked_delivered += newly_acked
        extra = min(self._extra_acked_delivered - expected, self.cwnd)
        window = EXTRA_ACKED_FILTER_ROUNDS if self.full_bw_reached else 1
        self._extra_acked_filter.window = window
        self.extra_acked = self._extra_acked_filter.update(self.round_count, max(extra, 0.0))

    # ------------------------------------------------------- startup, drain
    def _reset_full_bw(self) -> None:
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.full_bw_now = False

    def _check_full_bw_reached(self, rate: float, app_limited: bool) -> None:
        if self.full_bw_now or not self.round_start or app_limited or rate < 0:
            return
        if rate >= self.full_bw * FULL_BW_THRESH:
            self._reset_full_bw()
            self.full_bw = rate
            return
        self.full_bw_count += 1
        self.full_bw_now = self.full_bw_count >= FULL_BW_COUNT
        if self.full_bw_now:
            self.full_bw_reached = True
            self.filled_pipe = True

    def _check_startup_done(self) -> None:
        if self.state == "startup" and self.full_bw_reached:
            self.state = "drain"
            self.pacing_gain = DRAIN_PACING_GAIN
            self.cwnd_gain = STARTUP_CWND_GAIN
            self._drain_start_round = self.round_count

    def _check_drain_done(self, now: float, inflight: int) -> None:
        if self.state == "drain" and (inflight <= self.inflight_bytes(1.0, self.max_bw)
                                      or self.round_count > self._drain_start_round + 3):
            self._start_probe_bw_down(now)

    # --------------------------------------------------------------- ProbeBW
    def _pick_probe_wait(self) -> None:
        self.rounds_since_bw_probe = self._rng.randrange(2)
        self.bw_probe_wait_s = 2.0 + self._rng.random()

    def _start_probe_bw_down(self, now: float) -> None:
        self.bw_latest = 0.0
        self.inflight_latest = 0
        self.loss_in_round = False
        self.probe_up_cnt = INF
        self._pick_probe_wait()
        self.cycle_stamp = now
        self.ack_phase = "probe_stopping"
        self._start_round()
        self.state = "probe_bw_down"
        self.pacing_gain = PROBE_BW_DOWN_PACING_GAIN
        self.cwnd_gain = DEFAULT_CWND_GAIN

    def _start_probe_bw_cruise(self) -> None:
        self.state = "probe_bw_cruise"
        self.pacing_gain = 1.0
        self.cwnd_gain = DEFAULT_CWND_GAIN

    def _start_probe_bw_refill(self) -> None:
        self.bw_shortterm = INF
        self.inflight_shortterm = INF
        self.bw_probe_up_rounds = 0
        self.bw_probe_up_acks = 0
        self.ack_phase = "refilling"
        self._start_round()
        self.state = "probe_bw_refill"
        self.pacing_gain = 1.0
        self.cwnd_gain = DEFAULT_CWND_GAIN

    def _start_probe_bw_up(self, rate: float) -> None:
        self.ack_phase = "probe_starting"
        self._start_round()
        self._reset_full_bw()
        self.full_bw = max(rate, 0.0)
        self.state = "probe_bw_up"
        self.pacing_gain = PROBE_BW_UP_PACING_GAIN
        self.cwnd_gain = PROBE_BW_UP_CWND_GAIN
        self._raise_inflight_longterm_slope()

    def _update_probe_bw_cycle_phase(self, now: float, rate: float, app_limited: bool,
                                     inflight: int, newly_acked: int) -> None:
        if not self.full_bw_reached:
            return
        self._adapt_longterm_model(app_limited, newly_acked)
        state = self.state
        if state not in PROBE_BW_STATES:
            return
        if state == "probe_bw_down":
            if self._is_time_to_probe_bw(now):
                return
            if self._is_time_to_cruise(inflight):
                self._start_probe_bw_cruise()
        elif state == "probe_bw_cruise":
            self._is_time_to_probe_bw(now)
        elif state == "probe_bw_refill":
            if self.round_start:  # one round at bw refilled the pipe: probe
                self.bw_probe_samples = True
                self._start_probe_bw_up(rate)
        elif state == "probe_bw_up" and self._is_time_to_go_down(rate):
            self.prev_probe_too_high = False
            self._start_probe_bw_down(now)

    def _is_time_to_probe_bw(self, now: float) -> bool:
        reno_rounds = min(self._target_inflight() / self.max_datagram_size,
                          MAX_PROBE_WAIT_ROUNDS)
        if now - self.cycle_stamp > self.bw_probe_wait_s or \
                self.rounds_since_bw_probe >= reno_rounds:
            self._start_probe_bw_refill()
            return True
        return False

    def _is_time_to_cruise(self, inflight: int) -> bool:
        if inflight > self._inflight_with_headroom():
            return False
        return inflight <= self.inflight_bytes(1.0, self.max_bw)

    def _is_time_to_go_down(self, rate: float) -> bool:
        if self.cwnd_limited and self.cwnd >= self.inflight_longterm:
            # Held back by inflight_longterm, not by the path: restart the estimator.
            self._reset_full_bw()
            self.full_bw = max(rate, 0.0)
        elif self.full_bw_now:
            return True
        return False

    def _raise_inflight_longterm_slope(self) -> None:
        growth = 1 << min(self.bw_probe_up_rounds, 30)
        self.bw_probe_up_rounds = min(self.bw_probe_up_rounds + 1, 30)
        self.probe_up_cnt = max(self.cwnd / growth, self.max_datagram_size)

    def _probe_inflight_longterm_upward(self, newly_acked: int) -> None:
        if not self.cwnd_limited or self.cwnd < self.inflight_longterm:
            return
        self.bw_probe_up_acks += newly_acked
        if self.bw_probe_up_acks >= self.probe_up_cnt:
            delta = int(self.bw_probe_up_acks // self.probe_up_cnt)
            self.bw_probe_up_acks -= delta * self.probe_up_cnt
            self.inflight_longterm += delta * self.max_datagram_size
        if self.round_start:
            self._raise_inflight_longterm_slope()

    def _adapt_longterm_model(self, app_limited: bool, newly_acked: int) -> None:
        if self.ack_phase == "probe_starting" and self.round_start:
            self.ack_phase = "probe_feedback"
        if self.ack_phase == "probe_stopping" and self.round_start:
            self.bw_probe_samples = False
            self.ack_phase = "init"
            if self.state in PROBE_BW_STATES and not app_limited:
                self._advance_max_bw_filter()
        if self._rs_lost > LOSS_THRESH * self._rs_tx_in_flight:
            return  # inflight too high: handled per lost packet
        if self.inflight_longterm == INF:
            return
        if self._rs_tx_in_flight > self.inflight_longterm:
            self.inflight_longterm = self._rs_tx_in_flight
        if self.state == "probe_bw_up":
            self._probe_inflight_longterm_upward(newly_acked)

    # ------------------------------------------------------------------ loss
    def _handle_lost_packet(self, now: float, packet: PacketInfo, info: tuple | None) -> None:
        if not self.loss_in_round:
            self.loss_round_delivered = self.delivered
        self.loss_in_round = True
        self.loss_events_in_round += 1
        if info is None:
            return
        _d, _dt, _fs, p_app_limited, p_lost, p_tx = info
        lost_since = self.lost_bytes - p_lost
        too_high = lost_since > LOSS_THRESH * p_tx
        if self.state == "startup":
            # Startup exits on high loss: a full round in recovery, >= 6 losses, > 2%.
            if (too_high and self._recovering and self.round_count > self._recovery_round
                    and self.loss_events_in_round >= STARTUP_FULL_LOSS_COUNT):
                self.full_bw_reached = self.filled_pipe = True
                self.inflight_longterm = max(self.bdp_bytes(), self.inflight_latest)
                self._check_startup_done()
            return
        if not self.bw_probe_samples or not too_high:
            return
        # InflightAtLoss: the in-flight level at which loss crossed LOSS_THRESH.
        size = packet.sent_bytes
        inflight_prev = p_tx - size
        lost_prev = lost_since - size
        lost_prefix = max((LOSS_THRESH * inflight_prev - lost_prev) / (1 - LOSS_THRESH), 0.0)
        inflight_at_loss = inflight_prev + lost_prefix
        self.prev_probe_too_high = True
        self.bw_probe_samples = False  # react once per probe
        if not p_app_limited:
            self.inflight_longterm = max(inflight_at_loss, BETA * self._target_inflight())
        if self.state == "probe_bw_up":
            self._start_probe_bw_down(now)

    # -------------------------------------------------------------- min RTT
    def _update_min_rtt(self, now: float, rs_rtt: float) -> None:
        self.probe_rtt_expired = now > self.probe_rtt_min_stamp + PROBE_RTT_INTERVAL_S
        # Strictly below (as Linux): a constant-delay emulated path still probes.
        if rs_rtt >= 0 and (rs_rtt < self.probe_rtt_min_delay - RTT_RESOLUTION_S
                            or self.probe_rtt_expired):
            self.probe_rtt_min_delay = rs_rtt
            self.probe_rtt_min_stamp = now
        min_rtt_expired = now > self.min_rtt_stamp + MIN_RTT_FILTER_S
        if self.probe_rtt_min_delay < self.min_rtt_s - RTT_RESOLUTION_S or min_rtt_expired:
            self.min_rtt_s = self.probe_rtt_min_delay
            self.min_rtt_stamp = self.probe_rtt_min_stamp
        self.rtprop_s = self.min_rtt_s  # the BBRv1 name, for shared helpers

    def _probe_rtt_cwnd(self) -> float:
        return max(self.bdp_bytes(PROBE_RTT_CWND_GAIN), self.min_pipe_cwnd)

    def _check_probe_rtt(self, now: float, inflight: int, delivered: int) -> None:
        if self.state != "probe_rtt" and self.probe_rtt_expired and not self.idle_restart:
            self._save_cwnd(in_recovery=self._recovering)
            self.state = "probe_rtt"
            self.pacing_gain = 1.0
            self.cwnd_gain = PROBE_RTT_CWND_GAIN
            self.probe_rtt_done_stamp = 0.0
            self.ack_phase = "probe_stopping"
            self._start_round()
        if self.state == "probe_rtt":
            self.app_limited_until = max(self.delivered + self.bytes_in_flight, 1)
            if not self.probe_rtt_done_stamp and inflight <= self._probe_rtt_cwnd():
                self.probe_rtt_done_stamp = now + PROBE_RTT_DURATION_S
                self.probe_rtt_round_done = False
                self._start_round()
            elif self.probe_rtt_done_stamp:
                if self.round_start:
                    self.probe_rtt_round_done = True
                if self.probe_rtt_round_done and now > self.probe_rtt_done_stamp:
                    self.probe_rtt_min_stamp = now
                    self._restore_cwnd()
                    self.bw_shortterm = INF
                    self.inflight_shortterm = INF
                    if self.full_bw_reached:
                        self._start_probe_bw_down(now)
                        self._start_probe_bw_cruise()
                    else:
                        self.state = "startup"
                        self.pacing_gain = STARTUP_PACING_GAIN
                        self.cwnd_gain = STARTUP_CWND_GAIN
        if delivered > 0:
            self.idle_restart = False

    def _on_idle_restart(self) -> None:
        self.idle_restart = True
        if self.state in PROBE_BW_STATES and self._has_bw_sample:
            self.pacing_rate_bps = self.bw * 8 * (1 - PACING_MARGIN)

    # ------------------------------------------------------------- controls
    def _set_pacing_rate(self, rtt: RttStats) -> None:
        if not self._has_seen_rtt and rtt.has_sample and rtt.smoothed_rtt > 0:
            self._has_seen_rtt = True
            self.pacing_rate_bps = STARTUP_PACING_GAIN * self.cwnd * 8 / rtt.smoothed_rtt
        if not self._has_bw_sample:
            return
        rate = self.pacing_gain * self.bw * 8 * (1 - PACING_MARGIN)
        if self.full_bw_reached or rate > (self.pacing_rate_bps or 0.0):
            self.pacing_rate_bps = rate

    def _set_cwnd_v3(self, newly_acked: int) -> None:
        max_inflight = self._quantization_budget(self.bdp_bytes(self.cwnd_gain)
                                                 + self.extra_acked)
        cwnd = self.cwnd
        if self.full_bw_reached:
            cwnd = min(cwnd + newly_acked, max_inflight)
        elif cwnd < max_inflight or self.delivered < self.initial_cwnd:
            cwnd += newly_acked
        cwnd = max(cwnd, self.min_pipe_cwnd)
        if self.state == "probe_rtt":
            cwnd = min(cwnd, self._probe_rtt_cwnd())
        # BoundCwndForModel
        cap = INF
        if self.state in PROBE_BW_STATES and self.state != "probe_bw_cruise":
            cap = self.inflight_longterm
        elif self.state in ("probe_rtt", "probe_bw_cruise"):
            cap = self._inflight_with_headroom()
        cap = max(min(cap, self.inflight_shortterm), self.min_pipe_cwnd)
        self.cwnd = int(min(cwnd, cap))

    # ------------------------------------------------------------------ ECN
    def _ecn_init(self) -> None:
        self.ecn_alpha = 1.0
        self._ecn_round_ect = 0
        self._ecn_round_ce = 0
        self._ecn_high_rounds = 0
        self.ecn_reactions = 0  # model changes CE marks caused (readout)

    @property
    def ecn_eligible(self) -> bool:
        """ECN signals are used: the sender marks and the min RTT is small enough."""
        return bool(self.ecn_codepoint) and (
            self.ecn_max_rtt_s is None or self.min_rtt_s <= self.ecn_max_rtt_s)

    def on_ecn(self, now: float, acked_ect: int, acked_bytes: int, ce_increase: int,
               sent_time: float) -> None:
        # not the classic once-per-recovery reduction: BBR's model takes the marks
        if self.round_start and self._ecn_round_ect:
            self._ecn_end_round()
        self._ecn_round_ect += acked_ect
        self._ecn_round_ce += ce_increase
        if not (self.ecn_eligible and ce_increase and acked_ect):
            return
        if ce_increase > ECN_THRESH * acked_ect and self.bw_probe_samples \
                and self.state != "startup":
            # IsInflightTooHigh (CE ratio): probing found the limit
            self.ecn_reactions += 1
            self.prev_probe_too_high = True
            self.bw_probe_samples = False
            if not self.rs_is_app_limited:
                self.inflight_longterm = max(self._rs_tx_in_flight,
                                             BETA * self._target_inflight())
            if self.state == "probe_bw_up":
                self._start_probe_bw_down(now)

    def _ecn_end_round(self) -> None:
        ratio = self._ecn_round_ce / self._ecn_round_ect
        self.ecn_alpha = (1.0 - ECN_ALPHA_GAIN) * self.ecn_alpha + ECN_ALPHA_GAIN * ratio
        ce = self._ecn_round_ce
        self._ecn_round_ect = self._ecn_round_ce = 0
        if not self.ecn_eligible or not ce:
            self._ecn_high_rounds = 0
            return
        if self.state == "startup":
            self._ecn_high_rounds = self._ecn_high_rounds + 1 if ratio > ECN_THRESH else 0
            if self._ecn_high_rounds >= FULL_ECN_COUNT:
                self.ecn_reactions += 1
                self.full_bw_reached = self.filled_pipe = True
                self.inflight_longterm = max(self.bdp_bytes(), self.inflight_latest)
                self._check_startup_done()
            return
        if self.state in ("probe_bw_refill", "probe_bw_up"):
            return  # probing: the long-term model reacts, not the short-term one
        if self.inflight_shortterm == INF:
            self.inflight_shortterm = self.cwnd
        self.ecn_reactions += 1
        self.inflight_shortterm = max(self.min_pipe_cwnd, self.inflight_shortterm
                                      * (1.0 - ECN_FACTOR * self.ecn_alpha))


register("bbr3", BBR3)
