"""A small packet-level path for driving controllers in tests (sans-IO, virtual time).

One sender with a wtlab controller, a bottleneck of ``rate_bps`` with a drop-tail
buffer, a fixed propagation RTT, one ACK frame per delivered packet, RFC 9002
loss detection (packet threshold 3, time threshold 9/8 RTT), PTO probes and
persistent congestion. The sender always has data (bulk). With ``ack_aggregate_s``
the ACKs are held and released together on a ``ack_aggregate_s`` grid (as a Wi-Fi or
cellular link, or a receiver's GRO, releases them), one ACK frame per release.
Only for tests: the project's full emulator lives in wtlab.net / wtlab.model.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

from wtlab.cc import Packet, RttStats

K_PACKET_THRESHOLD = 3
K_TIME_THRESHOLD = 9 / 8
K_PERSISTENT_CONGESTION_THRESHOLD = 3


class PathSim:
    def __init__(self, cc, *, rate_bps: float, rtt_s: float, buffer_bytes: int | None = None,
                 size: int = 1200, drop: Callable[[int, float], bool] | None = None,
                 on_frame: Callable[[PathSim], None] | None = None, start_s: float = 0.0,
                 ack_aggregate_s: float = 0.0) -> None:
        self.cc = cc
        self.ack_aggregate_s = ack_aggregate_s
        self.rate_bps = rate_bps
        self.rtt_s = rtt_s
        self.buffer_bytes = buffer_bytes
        self.size = size
        self.drop = drop  # drop(pn, now) -> True to drop the packet at the bottleneck
        self.on_frame = on_frame
        self.rtt = RttStats()
        self.now = start_s
        self.next_pn = 0
        self.link_free_at = start_s
        self.next_send_at = start_s
        self.in_flight: dict[int, Packet] = {}
        self.events: list[tuple[float, int, int]] = []  # (ack arrival, seq, pn)
        self.seq = 0
        self.largest_acked = -1
        self.pto_count = 0
        self.last_sent_time = start_s
        self.delivered_bytes = 0
        self.acked_log: list[tuple[float, int]] = []  # (time, cumulative bytes acked)
        self.pto_fired = 0
        self.persistent_congestion = 0
        self.first_rtt_sample_time: float | None = None

    # ---------------------------------------------------------------- sending
    def _send(self, probe: bool = False) -> None:
        pn = self.next_pn
        self.next_pn += 1
        pkt = Packet(pn, self.size, self.now)
        self.in_flight[pn] = pkt
        self.last_sent_time = self.now
        self.cc.on_packet_sent(self.now, pkt)
        rate = self.cc.pacing_rate_bps
        if rate:
            self.next_send_at = max(self.next_send_at, self.now) + self.size * 8 / rate
        queue_bytes = max(0.0, self.link_free_at - self.now) * self.rate_bps / 8
        if self.drop is not None and self.drop(pn, self.now):
            return
        if self.buffer_bytes is not None and queue_bytes + self.size > self.buffer_bytes:
            return
        self.link_free_at = max(self.now, self.link_free_at) + self.size * 8 / self.rate_bps
        self.seq += 1
        at = self.link_free_at + self.rtt_s
        if self.ack_aggregate_s:
            at = math.ceil(at / self.ack_aggregate_s) * self.ack_aggregate_s
        heapq.heappush(self.events, (at, self.seq, pn))

    def _try_send(self) -> None:
        cc = self.cc
        while cc.bytes_in_flight + self.size <= cc.cwnd and self.now >= self.next_send_at - 1e-12:
            self._send()

    # ------------------------------------------------------------------ acking
    def _on_ack(self, pns: list[int]) -> None:
        pkts = [p for p in map(self.in_flight.pop, pns, [None] * len(pns)) if p is not None]
        if not pkts:
            return  # already declared lost (spurious loss)
        now = self.now
        pkt = pkts[-1]
        pn = pkt.packet_number
        self.largest_acked = max(self.largest_acked, pn)
        if pn == self.largest_acked:
            self.rtt.update(now - pkt.sent_time, 0.0, now)
            if self.first_rtt_sample_time is None:
                self.first_rtt_sample_time = now
        self.delivered_bytes += sum(p.sent_bytes for p in pkts)
        self.acked_log.append((now, self.delivered_bytes))
        self.cc.on_packets_acked(now, pkts, self.rtt)
        self.pto_count = 0
        self._detect_loss()
        if self.on_frame is not None:
            self.on_frame(self)

    def _detect_loss(self) -> None:
        rtt = self.rtt
        loss_delay = K_TIME_THRESHOLD * max(rtt.latest_rtt, rtt.smoothed_rtt)
        lost = [p for pn, p in self.in_flight.items() if pn < self.largest_acked and (
            pn <= self.largest_acked - K_PACKET_THRESHOLD or p.sent_time <= self.now - loss_delay)]
        if not lost:
            return
        for p in lost:
            del self.in_flight[p.packet_number]
        self.cc.on_packets_lost(self.now, lost)
        # RFC 9002 7.6.2: lost packets spanning 3 PTOs, none acked in between.
        duration = rtt.pto_s(0.0) * K_PERSISTENT_CONGESTION_THRESHOLD
        first = self.first_rtt_sample_time or 0.0
        span = [p.sent_time for p in lost if p.sent_time > first]
        contiguous = lost[-1].packet_number - lost[0].packet_number + 1 == len(lost)
        if span and contiguous and max(span) - min(span) > duration:
            self.persistent_congestion += 1
            self.cc.on_persistent_congestion_detected(self.now)

    def _pto_at(self) -> float | None:
        if not self.in_flight:
            return None
        return self.last_sent_time + self.rtt.pto_s(0.0) * (2 ** self.pto_count)

    # -------------------------------------------------------------------- run
    def run(self, until_s: float, max_events: int = 2_000_000) -> None:
        for _ in range(max_events):
            self._try_send()
            candidates = []
            if self.events:
                candidates.append(self.events[0][0])
            pto = self._pto_at()
            if pto is not None:
                candidates.append(pto)
            cc = self.cc
            if cc.bytes_in_flight + self.size <= cc.cwnd and self.next_send_at > self.now:
                candidates.append(self.next_send_at)
            if not candidates:
                raise AssertionError("simulation has nothing to do")
            t = min(candidates)
            if t > until_s:
                self.now = until_s
                return
            self.now = max(self.now, t)
            if self.events and self.events[0][0] <= self.now:
                _, _, pn = heapq.heappop(self.events)
                pns = [pn]
                while self.ack_aggregate_s and self.events and self.events[0][0] <= self.now:
                    pns.append(heapq.heappop(self.events)[2])  # one frame per release
                self._on_ack(sorted(pns))
            elif pto is not None and pto <= self.now:
                self.pto_count += 1
                self.pto_fired += 1
                cc.on_pto_expired(self.now, self.pto_count)
                self._send(probe=True)
        raise AssertionError("max_events reached")

    def goodput_bps(self, t0: float, t1: float) -> float:
        """Acked bytes between t0 and t1, as bit/s."""
        start = next((b for t, b in self.acked_log if t >= t0), None)
        end = next((b for t, b in reversed(self.acked_log) if t <= t1), None)
        if start is None or end is None:
            return 0.0
        return (end - start) * 8 / (t1 - t0)
