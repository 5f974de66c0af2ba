"""One-way delay estimate at a receiver, for enforcing message lifetimes without shared clocks.

A partially reliable message carries, in every copy the sender transmits, the sender's clock
at transmission (``tx_s``), the lifetime left at that moment (``budget_s``) and the sender's
RTT hint (its min_rtt, or its initial RTT before any sample). The receiver must decide, on
its own clock, until when the message is still worth delivering: ``arrival + budget - owd``.

The one-way delay is not observable without synchronised clocks, so we estimate it as LEDBAT
(RFC 6817) does for its queueing delay: ``arrival - tx`` equals ``owd + clock_offset``; its
minimum over the run is ``base_owd + clock_offset``, so the excess of a packet over that
minimum is its extra delay (queueing, reordering, jitter) exactly, whatever the offset. The
base one-way delay is taken as half the sender's RTT hint (symmetric base path; an RTT
includes ack processing, so min_rtt / 2 is an upper bound of the base in that case).

So ``owd = rtt_hint / 2 + (arrival - tx) - min(arrival - tx)``. The estimate is exact on a
symmetric path whatever the queueing, reordering or clock offset; on an asymmetric path it is
off by half the asymmetry (even a symmetric link is slightly asymmetric: a data packet takes
longer to serialise than the ACK that comes back). Deadlines therefore keep a safety margin,
:func:`deadline_margin_s`: 1 ms plus 2% of the lifetime. Clock drift over a run is ignored
(ppm, irrelevant at seconds).
"""

from __future__ import annotations


def deadline_margin_s(lifetime_s: float) -> float:
    """How much earlier than the estimated deadline a receiver stops delivering."""
    return 0.001 + 0.02 * lifetime_s


class OneWayDelay:
    """Receiver-side one-way delay estimator (see module docstring)."""

    __slots__ = ("min_offset_s", "samples")

    def __init__(self) -> None:
        self.min_offset_s = float("inf")
        self.samples = 0

    def observe(self, tx_s: float, arrival_s: float, rtt_hint_s: float) -> float:
        """Take one packet's timing; returns its estimated one-way delay, seconds."""
        offset = arrival_s - tx_s
        if offset < self.min_offset_s:
            self.min_offset_s = offset
        self.samples += 1
        return rtt_hint_s / 2 + (offset - self.min_offset_s)

    def local_deadline(self, tx_s: float, arrival_s: float, budget_s: float,
                       rtt_hint_s: float) -> float:
        """Receiver-clock time after which the message must not be delivered."""
        return (arrival_s + budget_s - self.observe(tx_s, arrival_s, rtt_hint_s)
                - deadline_margin_s(budget_s))
