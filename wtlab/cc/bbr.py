"""BBR version 1: ``"bbr"`` as Linux ships it (net/ipv4/tcp_bbr.c), ``"bbr-draft00"`` as
draft-cardwell-iccrg-bbr-congestion-control-00 specifies it.

A model-based, pacing-based controller. It estimates the bottleneck bandwidth
(``btlbw``: windowed maximum of per-packet delivery-rate samples over 10 round
trips) and the round-trip propagation time (``rtprop``: minimum RTT over 10 s),
and sends at ``pacing_gain x btlbw`` with ``cwnd = cwnd_gain x BDP + 3 send
quanta``. States:

* ``startup``: pacing and cwnd gain 2/ln 2 until the bandwidth estimate stops
  growing by 25% for 3 rounds (``filled_pipe``);
* ``drain``: pacing gain ln 2 / 2 until bytes in flight fall to one BDP;
* ``probe_bw``: the 8-phase gain cycle 1.25, 0.75, 1, 1, 1, 1, 1, 1 (each phase
  one ``rtprop`` long; the first phase is chosen at random, never the 0.75
  one; ``seed`` makes it repeatable), cwnd gain 2;
* ``probe_rtt``: when ``rtprop`` was not refreshed for 10 s, cwnd drops to 4
  packets for max(200 ms, one round), then back to probe_bw (or startup).

Delivery rate is sampled per acknowledged packet as
draft-cheng-iccrg-delivery-rate-estimation specifies (send and ack intervals,
application-limited marking). Loss, in both variants (draft-00 section 4.2.3.4,
"Modulating cwnd in Loss Recovery"): cwnd shrinks by the lost bytes, the first
loss of a recovery period saves cwnd and applies packet conservation (cwnd =
in flight + newly acked), and leaving recovery restores the saved cwnd.
Persistent congestion (QUIC's equivalent of an RTO) sets cwnd to the minimum
window; the bandwidth filter is kept, and the saved cwnd is restored when the
first packet sent afterwards is acknowledged, so BBR returns to the path's rate
at once (ns-3's TcpBbr famously collapses there).

``variant="linux"`` (the default, registered as ``"bbr"``) adds what Linux's
tcp_bbr.c does beyond draft-00 (kernel 5.1+, unchanged through 6.x; each item
is described from the kernel's public source and commit messages, not copied):

* **Packet conservation for a full round** (``bbr_set_cwnd_to_recover_or_restore``):
  entering recovery also starts a new packet-timed round, so conservation lasts
  until a packet sent after recovery began is acknowledged (one full round trip).
  Draft-00 ends it "after one round-trip", which wtlab's draft-00 variant reads as
  the end of the round in progress (0 to 1 round trip, half on average).
* **ACK-aggregation allowance** (``extra_acked``; commit 78dc70ebaa38, "tcp_bbr:
  adapt cwnd based on ack aggregation estimation", 2019): per ACK, the data
  acknowledged beyond ``btlbw x`` the time since the current aggregation epoch began
  (the epoch restarts whenever acknowledgements fall behind that rate); its
  maximum over an approximate 10-round window (two 5-round slots) is added to the
  target cwnd once the pipe is full, capped by cwnd and by ``btlbw x 100 ms``.
* **A 1% pacing margin** (``bbr_pacing_margin_percent``): every pacing rate is 1%
  below ``gain x btlbw``, so an estimate a little high (the max filter keeps the
  best of noisy samples) does not build a standing queue.
* **Two more packets of quantization budget** while probing (cycle phase 0, gain
  1.25), so the probe can raise in-flight above a small BDP.

Deviation, on purpose: ``rtprop`` is refreshed by a sample strictly below it
(by more than 1 us) or after expiry; the draft and Linux write ``<=``, under which
an emulated path with perfectly constant delay (where every sample equals the
minimum, unlike any real path) would never enter probe_rtt.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from wtlab.cc.base import Controller, PacketInfo, register
from wtlab.cc.rtt import RttStats
from wtlab.errors import ConfigError

BBR_HIGH_GAIN = 2 / math.log(2)  # 2.885: doubles the sending rate every round
BBR_DRAIN_GAIN = 1 / BBR_HIGH_GAIN
PACING_GAIN_CYCLE = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
BTLBW_FILTER_ROUNDS = 10
RTPROP_FILTER_S = 10.0
PROBE_RTT_DURATION_S = 0.2
MIN_PIPE_CWND_PACKETS = 4
FULL_BW_THRESH = 1.25
FULL_BW_COUNT = 3
# RTT samples are compared at Linux's resolution (whole microseconds): a "lower" sample
# that differs only by float rounding must not postpone ProbeRTT.
RTT_RESOLUTION_S = 1e-6

#: BBRv1 variants: what each switches on (see the module docstring)
VARIANTS = ("linux", "draft00")
# Linux's tcp_bbr.c constants (as documented there)
LINUX_PACING_MARGIN = 0.01  # bbr_pacing_margin_percent
EXTRA_ACKED_SLOT_ROUNDS = 5  # bbr_extra_acked_win_rtts: two slots, a 5-10 round max
EXTRA_ACKED_MAX_S = 0.1  # bbr_extra_acked_max_us: the allowance is at most btlbw x 100 ms
EXTRA_ACKED_RESET_PACKETS = 1 << 20  # bbr_ack_epoch_acked_reset_thresh (packets)
PROBE_QUANTUM_PACKETS = 2  # bbr_quantization_budget: +2 packets in gain-cycle phase 0


class WindowedMax:
    """Kathleen Nichols' windowed max filter (as Linux's lib/minmax.c): O(1), 3 samples."""

    __slots__ = ("window", "s")

    def __init__(self, window: float) -> None:
        self.window = window
        self.s = [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)]  # (time, value), best first

    def reset(self, t: float, value: float) -> float:
        self.s = [(t, value), (t, value), (t, value)]
        return value

    def get(self) -> float:
        return self.s[0][1]

    def update(self, t: float, value: float) -> float:
        s = self.s
        if value >= s[0][1] or t - s[2][0] > self.window:
            return self.reset(t, value)
        if value >= s[1][1]:
            s[1] = s[2] = (t, value)
        elif value >= s[2][1]:
            s[2] = (t, value)
        # Age out the best samples as the window slides past them.
        dt = t - s[0][0]
        if dt > self.window:
            s[0], s[1], s[2] = s[1], s[2], (t, value)
            if t - s[0][0] > self.window:
                s[0], s[1] = s[1], s[2]
        elif s[1][0] == s[0][0] and dt > self.window / 4:
            s[1] = s[2] = (t, value)
        elif s[2][0] == s[1][0] and dt > self.window / 2:
            s[2] = (t, value)
        return s[0][1]


class BBR(Controller):
    """BBRv1. Readable model: ``btlbw_bps``, ``rtprop_s``, ``pacing_gain``, ``cwnd_gain``,
    ``cycle_index``, ``round_count``, ``filled_pipe``, ``extra_acked``,
    ``delivery_rate_bps()``.

    ``variant``: ``"linux"`` (default) or ``"draft00"``; ``ack_aggregation`` and
    ``pacing_margin`` override that variant's choice for one piece (e.g.
    ``create("bbr", ack_aggregation=False)`` to see what the allowance does)."""

    name = "bbr"
    RECOVERY_STATE = None  # BBR names its own states; recovery only modulates cwnd
    DEFAULT_VARIANT = "linux"

    def __init__(self, *, seed: int | None = 0, variant: str | None = None,
                 ack_aggregation: bool | None = None, pacing_margin: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        variant = self.DEFAULT_VARIANT if variant is None else variant
        if variant not in VARIANTS:
            raise ConfigError(f"BBR variant={variant!r}: use one of {', '.join(VARIANTS)} "
                              "('linux' is tcp_bbr.c's behaviour, 'draft00' the draft's)")
        if ack_aggregation is not None and not isinstance(ack_aggregation, bool):
            raise ConfigError(f"ack_aggregation={ack_aggregation!r} must be True or False")
        if pacing_margin is not None and (isinstance(pacing_margin, bool) or not isinstance(
                pacing_margin, int | float) or not 0 <= pacing_margin < 0.5):
            raise ConfigError(f"pacing_margin={pacing_margin!r} must be a fraction in [0, 0.5) "
                              "(Linux: 0.01)")
        self.variant = variant
        linux = variant == "linux"
        # each Linux addition can be switched on its own (ack_aggregation=, pacing_margin=)
        self.pacing_margin = float(pacing_margin if pacing_margin is not None
                                   else LINUX_PACING_MARGIN if linux else 0.0)
        self.ack_aggregation = linux if ack_aggregation is None else ack_aggregation
        self.recovery_round_restart = linux
        self.probe_quantum_bytes = PROBE_QUANTUM_PACKETS * self.max_datagram_size if linux else 0
        # ACK-aggregation estimate (Linux): two max slots of EXTRA_ACKED_SLOT_ROUNDS rounds
        self.extra_acked = 0  # bytes: max of the slots (what the allowance is made of)
        self._extra_slots = [0, 0]
        self._extra_slot = 0
        self._extra_slot_rounds = 0
        self._aggr_epoch_start = 0.0
        self._aggr_epoch_acked = 0
        self._rng = random.Random(seed)
        self.initial_cwnd = self.cwnd
        self.min_pipe_cwnd = MIN_PIPE_CWND_PACKETS * self.max_datagram_size
        # delivery-rate estimation (draft-cheng), bytes and seconds
        self.delivered = 0
        self.delivered_time = 0.0
        self.first_sent_time = 0.0
        self.app_limited_until = 0  # C.app_limited: delivered mark, 0 when not app-limited
        self.lost_bytes = 0  # total, for the sample's loss count
        self._sent: dict[int, tuple[int, float, float, bool, int]] = {}
        self.rate_sample_bps = math.nan  # latest valid delivery-rate sample
        self.rs_is_app_limited = False
        self._rs_lost_bytes = 0  # lost since the last ACK frame
        # model
        self.btlbw_filter = WindowedMax(BTLBW_FILTER_ROUNDS)
        self.rtprop_s = math.inf
        self.rtprop_stamp = 0.0
        self.rtprop_expired = False
        self.probe_rtt_done_stamp = 0.0
        self.probe_rtt_round_done = False
        self.packet_conservation = False
        self._conservation_round = 0
        self.prior_cwnd = 0
        self.idle_restart = False
        self.next_round_delivered = 0
        self.round_start = False
        self.round_count = 0
        self.filled_pipe = False
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.cycle_index = 0
        self.cycle_stamp = 0.0
        self.pacing_gain = BBR_HIGH_GAIN
        self.cwnd_gain = BBR_HIGH_GAIN
        self._prior_in_flight = 0
        self._delivered_in_frame = 0
        self._has_bw_sample = False
        self._has_seen_rtt = False
        self._rs: tuple = (-1, 0.0, 0.0, 0.0, False, -1.0)
        self._rs_tx_in_flight = 0
        self._rs_lost = 0
        self._pre_loss_cwnd = self.cwnd
        # Before any RTT sample: high gain x initial window / 1 ms (draft 4.2.1).
        self.pacing_rate_bps = BBR_HIGH_GAIN * self.cwnd * 8 / 0.001 * (1 - self.pacing_margin)
        self.state = "startup"
        self._last_logged = (self.cwnd, self.ssthresh, self.state, self.pacing_rate_bps)

    # ------------------------------------------------------------ model readouts
    @property
    def btlbw_bps(self) -> float:
        """Bottleneck bandwidth estimate, bit/s (0 before the first sample)."""
        return self.btlbw_filter.get() * 8

    def bdp_bytes(self, gain: float = 1.0) -> float:
        if self.rtprop_s == math.inf or not self._has_bw_sample:
            return gain * self.initial_cwnd
        return gain * self.btlbw_filter.get() * self.rtprop_s

    def send_quantum_bytes(self) -> int:
        mds = self.max_datagram_size
        rate = self.pacing_rate_bps or 0.0
        if rate < 1.2e6:
            return mds
        if rate < 24e6:
            return 2 * mds
        return min(int(rate / 8 * 0.001), 65536)

    def inflight_bytes(self, gain: float) -> float:
        """Inflight(gain) of the draft: gain x BDP + 3 send quanta (Linux: + 2 packets in
        the probing phase of the gain cycle)."""
        if self.rtprop_s == math.inf or not self._has_bw_sample:
            return self.initial_cwnd
        return self.bdp_bytes(gain) + self._quantization_budget()

    def _quantization_budget(self) -> int:
        budget = 3 * self.send_quantum_bytes()
        if self.probe_quantum_bytes and self.state == "probe_bw" and self.cycle_index == 0:
            budget += self.probe_quantum_bytes
        return budget

    def aggregation_allowance_bytes(self) -> float:
        """What the ACK-aggregation estimate adds to the target cwnd (0 without it, or
        before the pipe is full): ``extra_acked``, at most ``btlbw x 100 ms``."""
        if not (self.ack_aggregation and self.filled_pipe):
            return 0.0
        return min(self.extra_acked, self.btlbw_filter.get() * EXTRA_ACKED_MAX_S)

    def delivery_rate_bps(self) -> float:
        return self.rate_sample_bps

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap.update(btlbw_bps=self.btlbw_bps, rtprop_s=self.rtprop_s,
                    pacing_gain=self.pacing_gain, cwnd_gain=self.cwnd_gain,
                    cycle_index=self.cycle_index, round_count=self.round_count,
                    filled_pipe=self.filled_pipe, variant=self.variant,
                    extra_acked_bytes=self.extra_acked)
        return snap

    # ------------------------------------------------------- driver entry points
    def on_packet_sent(self, now: float, packet: PacketInfo) -> None:
        if self.bytes_in_flight == 0:
            # Start of a flight: the send and ack intervals start here.
            self.first_sent_time = self.delivered_time = now
            if self.app_limited_until:
                self._on_idle_restart()
        self._sent[packet.packet_number] = (self.delivered, self.delivered_time,
                                            self.first_sent_time, bool(self.app_limited_until),
                                            self.lost_bytes,
                                            self.bytes_in_flight + packet.sent_bytes)
        super().on_packet_sent(now, packet)

    def on_packets_acked(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        # Delivery-rate sampling covers every acked packet, recovery or not.
        sent = self._sent
        prior_delivered = -1
        prior_time = send_elapsed = ack_elapsed = 0.0
        rs_app_limited = False
        rs_rtt = -1.0
        rs_tx_in_flight = 0
        rs_lost_at_send = self.lost_bytes
        self._prior_in_flight = self.bytes_in_flight
        delivered_before = self.delivered
        latest_sent_time = -math.inf
        for packet in packets:
            info = sent.pop(packet.packet_number, None)
            self.delivered += packet.sent_bytes
            self.delivered_time = now
            if info is None:
                continue
            p_delivered, p_delivered_time, p_first_sent, p_app_limited, p_lost, p_tx = info
            if p_delivered >= prior_delivered and packet.sent_time >= latest_sent_time:
                latest_sent_time = packet.sent_time
                prior_delivered = p_delivered
                prior_time = p_delivered_time
                rs_app_limited = p_app_limited
                send_elapsed = packet.sent_time - p_first_sent
                ack_elapsed = now - p_delivered_time
                self.first_sent_time = packet.sent_time
                rs_rtt = now - packet.sent_time
                rs_tx_in_flight = p_tx
                rs_lost_at_send = p_lost
        if self.app_limited_until and self.delivered > self.app_limited_until:
            self.app_limited_until = 0
        self._delivered_in_frame = self.delivered - delivered_before
        self._rs = (prior_delivered, prior_time, send_elapsed, ack_elapsed, rs_app_limited, rs_rtt)
        # For BBRv3's loss-rate checks: inflight when the sample's packet left, and
        # bytes lost since then.
        self._rs_tx_in_flight = rs_tx_in_flight
        self._rs_lost = self.lost_bytes - rs_lost_at_send
        super().on_packets_acked(now, packets, rtt)

    def on_app_limited(self, now: float) -> None:
        super().on_app_limited(now)
        self.app_limited_until = max(self.delivered + self.bytes_in_flight, 1)

    def on_packets_discarded(self, packets: Any) -> None:
        packets = list(packets)
        for packet in packets:
            self._sent.pop(packet.packet_number, None)
        super().on_packets_discarded(packets)

    # ------------------------------------------------------------------ hooks
    def _rate_sample_Bps(self, min_rtt_s: float) -> float:
        """This ACK's delivery-rate sample, bytes/s (-1: no valid sample)."""
        prior_delivered, _prior_time, send_elapsed, ack_elapsed, _app_limited, _rtt = self._rs
        if prior_delivered < 0:
            return -1.0
        interval = max(send_elapsed, ack_elapsed)
        # draft-cheng: an interval shorter than min_rtt gives an inflated sample.
        if interval <= 0 or interval < (min_rtt_s if min_rtt_s != math.inf else 0.0) * 0.999:
            return -1.0
        rate_Bps = (self.delivered - prior_delivered) / interval
        self.rate_sample_bps = rate_Bps * 8
        return rate_Bps

    def on_ack_frame(self, now: float, packets: Sequence[PacketInfo], rtt: RttStats) -> None:
        prior_delivered, _prior_time, send_elapsed, ack_elapsed, app_limited, rs_rtt = self._rs
        rate_Bps = self._rate_sample_Bps(self.rtprop_s)
        self.rs_is_app_limited = app_limited
        lost = self._rs_lost_bytes
        self._rs_lost_bytes = 0
        # BBRUpdateModelAndState
        self._update_round(prior_delivered)
        self._update_btlbw(now, rate_Bps, app_limited)
        if self.ack_aggregation:
            self._update_ack_aggregation(now, prior_delivered, rate_Bps)
        self._check_cycle_phase(now, lost)
        self._check_full_pipe(app_limited)
        self._check_drain(now)
        self._update_rtprop(now, rs_rtt)
        self._check_probe_rtt(now)
        # BBRUpdateControlParameters
        self._set_pacing_rate(rtt)
        self._set_cwnd(lost)
        if self.packet_conservation and self.round_count >= self._conservation_round:
            self.packet_conservation = False

    def on_loss(self, now: float, packets: Sequence[PacketInfo]) -> None:
        self._pre_loss_cwnd = self.cwnd
        lost = 0
        for packet in packets:
            self._sent.pop(packet.packet_number, None)
            lost += packet.sent_bytes
        self.lost_bytes += lost
        self._rs_lost_bytes += lost
        self.cwnd = max(self.cwnd - lost, self.max_datagram_size)

    def on_congestion_event(self, now: float, sent_time: float) -> None:
        # Entering loss recovery: save cwnd, conserve packets for one round.
        self.cwnd, cwnd = self._pre_loss_cwnd, self.cwnd
        self._save_cwnd(in_recovery=False)
        self.cwnd = cwnd
        self.cwnd = max(self.bytes_in_flight + max(self._delivered_in_frame,
                                                   self.max_datagram_size), self.min_cwnd)
        self.packet_conservation = True
        if self.recovery_round_restart:
            # Linux: a new round starts now, so conservation lasts a whole round trip
            self.next_round_delivered = self.delivered
        self._conservation_round = self.round_count + 1

    def on_recovery_exit(self, now: float) -> None:
        self.packet_conservation = False
        self._restore_cwnd()

    def on_persistent_congestion(self, now: float) -> None:
        # QUIC's RTO: keep the model, drop cwnd to the minimum; the recovery period
        # (begun by the losses) ends at the first new ack, which restores cwnd.
        self._save_cwnd(in_recovery=True)
        self.cwnd = self.min_cwnd
        self.packet_conservation = False

    # ------------------------------------------------------------ model pieces
    def _update_round(self, prior_delivered: int) -> None:
        if prior_delivered >= 0 and prior_delivered >= self.next_round_delivered:
            self.next_round_delivered = self.delivered
            self.round_count += 1
            self.round_start = True
        else:
            self.round_start = False

    def _update_btlbw(self, now: float, rate_Bps: float, app_limited: bool) -> None:
        if rate_Bps < 0:
            return
        if rate_Bps >= self.btlbw_filter.get() or not app_limited:
            self.btlbw_filter.update(self.round_count, rate_Bps)
            self._has_bw_sample = True

    def _update_ack_aggregation(self, now: float, prior_delivered: int,
                                rate_Bps: float) -> None:
        """Linux's ACK-aggregation estimate (see the module docstring), in bytes."""
        acked = self._delivered_in_frame
        if acked <= 0 or rate_Bps < 0:
            # no newly acked data, or no valid rate sample (none, or over an interval
            # shorter than min_rtt): Linux skips those ACKs here too
            return
        if self.round_start:
            self._extra_slot_rounds += 1
            if self._extra_slot_rounds >= EXTRA_ACKED_SLOT_ROUNDS:
                self._extra_slot_rounds = 0
                self._extra_slot ^= 1
                self._extra_slots[self._extra_slot] = 0
        expected = self.btlbw_filter.get() * (now - self._aggr_epoch_start)
        if (self._aggr_epoch_acked <= expected or self._aggr_epoch_acked + acked
                >= EXTRA_ACKED_RESET_PACKETS * self.max_datagram_size):
            # acks came no faster than btlbw: a new aggregation epoch starts here
            self._aggr_epoch_acked = 0
            self._aggr_epoch_start = now
            expected = 0.0
        self._aggr_epoch_acked += acked
        extra = min(int(self._aggr_epoch_acked - expected), self.cwnd)
        slots = self._extra_slots
        if extra > slots[self._extra_slot]:
            slots[self._extra_slot] = extra
        self.extra_acked = max(slots)

    def _check_cycle_phase(self, now: float, lost: int) -> None:
        if self.state == "probe_bw" and self._is_next_cycle_phase(now, lost):
            self._advance_cycle_phase(now)

    def _is_next_cycle_phase(self, now: float, lost: int) -> bool:
        is_full_length = (now - self.cycle_stamp) > self.rtprop_s
        gain = self.pacing_gain
        if gain == 1.0:
            return is_full_length
        if gain > 1.0:
            return is_full_length and (lost > 0
                                       or self._prior_in_flight >= self.inflight_bytes(gain))
        return is_full_length or self._prior_in_flight <= self.inflight_bytes(1.0)

    def _advance_cycle_phase(self, now: float) -> None:
        self.cycle_stamp = now
        self.cycle_index = (self.cycle_index + 1) % len(PACING_GAIN_CYCLE)
        self.pacing_gain = PACING_GAIN_CYCLE[self.cycle_index]

    def _check_full_pipe(self, app_limited: bool) -> None:
        if self.filled_pipe or not self.round_start or app_limited:
            return
        bw = self.btlbw_filter.get()
        if bw >= self.full_bw * FULL_BW_THRESH:
            self.full_bw = bw
            self.full_bw_count = 0
            return
        self.full_bw_count += 1
        if self.full_bw_count >= FULL_BW_COUNT:
            self.filled_pipe = True

    def _check_drain(self, now: float) -> None:
        if self.state == "startup" and self.filled_pipe:
            self.state = "drain"
            self.pacing_gain = BBR_DRAIN_GAIN
            self.cwnd_gain = BBR_HIGH_GAIN
        if self.state == "drain" and self.bytes_in_flight <= self.inflight_bytes(1.0):
            self._enter_probe_bw(now)

    def _enter_probe_bw(self, now: float) -> None:
        self.state = "probe_bw"
        self.pacing_gain = 1.0
        self.cwnd_gain = 2.0
        # Start anywhere but in the 0.75 phase (index 1).
        self.cycle_index = len(PACING_GAIN_CYCLE) - 1 - self._rng.randrange(7)
        self._advance_cycle_phase(now)

    def _update_rtprop(self, now: float, rs_rtt: float) -> None:
        self.rtprop_expired = now > self.rtprop_stamp + RTPROP_FILTER_S
        if rs_rtt >= 0 and (rs_rtt < self.rtprop_s - RTT_RESOLUTION_S or self.rtprop_expired):
            self.rtprop_s = rs_rtt
            self.rtprop_stamp = now

    def _check_probe_rtt(self, now: float) -> None:
        if self.state != "probe_rtt" and self.rtprop_expired and not self.idle_restart:
            self.state = "probe_rtt"
            self.pacing_gain = 1.0
            self.cwnd_gain = 1.0
            self._save_cwnd(in_recovery=self._recovering)
            self.probe_rtt_done_stamp = 0.0
        if self.state == "probe_rtt":
            self._handle_probe_rtt(now)
        self.idle_restart = False

    def _handle_probe_rtt(self, now: float) -> None:
        # Samples taken while draining the pipe say nothing about bandwidth.
        self.app_limited_until = max(self.delivered + self.bytes_in_flight, 1)
        if not self.probe_rtt_done_stamp and self.bytes_in_flight <= self.min_pipe_cwnd:
            self.probe_rtt_done_stamp = now + PROBE_RTT_DURATION_S
            self.probe_rtt_round_done = False
            self.next_round_delivered = self.delivered
        elif self.probe_rtt_done_stamp:
            if self.round_start:
                self.probe_rtt_round_done = True
            if self.probe_rtt_round_done and now > self.probe_rtt_done_stamp:
                self.rtprop_stamp = now
                self._restore_cwnd()
                if self.filled_pipe:
                    self._enter_probe_bw(now)
                else:
                    self.state = "startup"
                    self.pacing_gain = self.cwnd_gain = BBR_HIGH_GAIN

    def _on_idle_restart(self) -> None:
        self.idle_restart = True
        if self.ack_aggregation:  # Linux restarts the aggregation epoch after idle
            self._aggr_epoch_start = self.first_sent_time
            self._aggr_epoch_acked = 0
        if self.state == "probe_bw" and self._has_bw_sample:
            self.pacing_rate_bps = self.btlbw_filter.get() * 8 * (1 - self.pacing_margin)

    def _set_pacing_rate(self, rtt: RttStats) -> None:
        if not self._has_seen_rtt and rtt.has_sample and rtt.smoothed_rtt > 0:
            # First RTT sample: re-init from it, as Linux does (the 1 ms guess is gone).
            self._has_seen_rtt = True
            self.pacing_rate_bps = (BBR_HIGH_GAIN * self.cwnd * 8 / rtt.smoothed_rtt
                                    * (1 - self.pacing_margin))
        if not self._has_bw_sample:
            return
        rate = self.pacing_gain * self.btlbw_filter.get() * 8 * (1 - self.pacing_margin)
        if self.filled_pipe or rate > (self.pacing_rate_bps or 0.0):
            self.pacing_rate_bps = rate

    def _save_cwnd(self, *, in_recovery: bool) -> None:
        if not in_recovery and self.state != "probe_rtt":
            self.prior_cwnd = self.cwnd
        else:
            self.prior_cwnd = max(self.prior_cwnd, self.cwnd)

    def _restore_cwnd(self) -> None:
        self.cwnd = max(self.cwnd, self.prior_cwnd)

    def _set_cwnd(self, lost: int) -> None:
        delivered = self._delivered_in_frame
        if self.ack_aggregation and self.rtprop_s != math.inf and self._has_bw_sample:
            # Linux: target = gain x BDP + the aggregation allowance + quantization budget
            target = (self.bdp_bytes(self.cwnd_gain) + self.aggregation_allowance_bytes()
                      + self._quantization_budget())
        else:
            target = self.inflight_bytes(self.cwnd_gain)
        cwnd = self.cwnd
        if self.packet_conservation:
            cwnd = max(cwnd, self.bytes_in_flight + delivered)
        else:
            if self.filled_pipe:
                cwnd = min(cwnd + delivered, target)
            elif cwnd < target or self.delivered < self.initial_cwnd:
                cwnd = cwnd + delivered
        cwnd = max(int(cwnd), self.min_pipe_cwnd)
        if self.state == "probe_rtt":
            cwnd = min(cwnd, self.min_pipe_cwnd)
        self.cwnd = cwnd


class BBRDraft00(BBR):
    """BBRv1 exactly as draft-cardwell-iccrg-bbr-congestion-control-00 specifies it
    (``BBR(variant="draft00")``): no ACK-aggregation allowance, no pacing margin,
    conservation until the end of the round in progress. For teaching the difference."""

    name = "bbr-draft00"
    DEFAULT_VARIANT = "draft00"


register("bbr", BBR)
register("bbr-draft00", BBRDraft00)
