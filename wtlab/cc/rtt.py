"""RTT estimation as RFC 9002 section 5 specifies (sans-IO)."""

from __future__ import annotations

K_INITIAL_RTT_S = 0.333  # RFC 9002 section 6.2.2
K_GRANULARITY_S = 0.001


class RttStats:
    """latest_rtt, smoothed_rtt, rttvar and min_rtt, updated per RTT sample.

    Every driver keeps one per connection and hands it to the controller with
    each ACK, so controllers see the same numbers whatever runs them.
    """

    __slots__ = ("latest_rtt", "smoothed_rtt", "rttvar", "min_rtt", "has_sample", "min_rtt_time",
                 "sample_count", "adjusted_rtt")

    def __init__(self, initial_rtt_s: float = K_INITIAL_RTT_S) -> None:
        self.latest_rtt = 0.0
        self.smoothed_rtt = initial_rtt_s
        self.rttvar = initial_rtt_s / 2
        self.min_rtt = float("inf")
        self.min_rtt_time = 0.0
        self.has_sample = False
        self.sample_count = 0  # RTT samples taken so far: tells a new sample from a stale one
        #: the latest sample less the peer's ACK delay when RFC 9002 5.3 allows it: the
        #: path's RTT without the receiver's delayed-ACK timer (delay-based controllers)
        self.adjusted_rtt = 0.0

    def update(self, latest_rtt_s: float, ack_delay_s: float = 0.0, now: float = 0.0,
               handshake_confirmed: bool = True, max_ack_delay_s: float = 0.025) -> None:
        """Take one RTT sample (RFC 9002 section 5.3)."""
        self.latest_rtt = latest_rtt_s
        self.sample_count += 1
        if not self.has_sample:
            self.has_sample = True
            self.min_rtt = latest_rtt_s
            self.min_rtt_time = now
            self.smoothed_rtt = latest_rtt_s
            self.rttvar = latest_rtt_s / 2
            self.adjusted_rtt = latest_rtt_s
            return
        if latest_rtt_s < self.min_rtt:
            self.min_rtt = latest_rtt_s
            self.min_rtt_time = now
        if handshake_confirmed:
            ack_delay_s = min(ack_delay_s, max_ack_delay_s)
        adjusted = latest_rtt_s
        if latest_rtt_s >= self.min_rtt + ack_delay_s:
            adjusted = latest_rtt_s - ack_delay_s
        self.adjusted_rtt = adjusted
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.smoothed_rtt - adjusted)
        self.smoothed_rtt = 0.875 * self.smoothed_rtt + 0.125 * adjusted

    def pto_s(self, max_ack_delay_s: float = 0.025) -> float:
        """Probe timeout base (RFC 9002 section 6.2.1), without backoff."""
        return self.smoothed_rtt + max(4 * self.rttvar, K_GRANULARITY_S) + max_ack_delay_s
