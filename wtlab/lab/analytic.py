"""Analytic reference models drawn as overlays and used as fidelity checks.

All functions are pure; units are in the names.
"""

from __future__ import annotations

import math

import numpy as np

CUBIC_C = 0.4
CUBIC_BETA = 0.7


def bdp_bytes(rate_bps: float, rtt_s: float) -> float:
    """Bandwidth-delay product in bytes."""
    return rate_bps * rtt_s / 8.0


def mathis_goodput_bps(mss_bytes: float, rtt_s: float, loss_p: float) -> float:
    """Mathis et al. (1997): Reno throughput ~ (MSS/RTT) * sqrt(3/2) / sqrt(p), in bit/s.

    1.22 = sqrt(3/2), periodic-loss model with one loss per window of 1/p packets.
    """
    if loss_p <= 0:
        return math.inf
    return 8.0 * mss_bytes / rtt_s * math.sqrt(1.5) / math.sqrt(loss_p)


def cubic_average_window_packets(rtt_s: float, loss_p: float) -> float:
    """RFC 9438 section 5.1: CUBIC's average window 1.054 * RTT^0.75 / p^0.75 (packets)."""
    if loss_p <= 0:
        return math.inf
    return 1.054 * rtt_s**0.75 / loss_p**0.75


def reno_average_window_packets(loss_p: float) -> float:
    """Reno's average window 1.2247 / sqrt(p) (packets); CUBIC is Reno-friendly below it."""
    return math.sqrt(1.5) / math.sqrt(loss_p) if loss_p > 0 else math.inf


def cubic_response_window_packets(rtt_s: float, loss_p: float) -> float:
    """CUBIC's expected window: the larger of its cubic and Reno-friendly regions (RFC 9438 5.1)."""
    return max(cubic_average_window_packets(rtt_s, loss_p), reno_average_window_packets(loss_p))


def cubic_k_s(w_max: float, beta: float = CUBIC_BETA, c: float = CUBIC_C) -> float:
    """K = cbrt(W_max (1 - beta) / C): seconds until the window returns to W_max."""
    return (w_max * (1 - beta) / c) ** (1.0 / 3.0)


def cubic_window(t_s: np.ndarray | float, w_max: float, beta: float = CUBIC_BETA,
                 c: float = CUBIC_C) -> np.ndarray | float:
    """W(t) = C (t - K)^3 + W_max (RFC 9438 eq. 1), t seconds after the reduction."""
    k = cubic_k_s(w_max, beta, c)
    return c * (np.asarray(t_s) - k) ** 3 + w_max


def reference_rates_bps(mss_bytes: float, rtt_s: float, loss_p: float) -> dict[str, float]:
    """Analytic goodputs for a path with random loss ``loss_p``, in the unit of ``mss_bytes``.

    ``mathis_bps`` (Reno) and ``cubic_response_bps`` (RFC 9438's average window x MSS per
    RTT). Give the MSS of the goodput they sit next to (payload per packet for
    ``goodput_bps``: ``metrics()["payload_per_packet_bytes"]``), so both count alike.
    """
    return {"mathis_bps": mathis_goodput_bps(mss_bytes, rtt_s, loss_p),
            "cubic_response_bps": cubic_response_window_packets(rtt_s, loss_p) * mss_bytes * 8
            / rtt_s if loss_p > 0 else math.inf}


def restart_goodput_bps(rate_bps: float, rtt_s: float, *, window_s: float = 1.0,
                        initial_window_packets: float = 2.0, ssthresh_packets: float,
                        payload_bytes: float, wire_bytes: float) -> float:
    """Goodput of the first ``window_s`` after a timeout restart, in bit/s of payload.

    What TCP does after an RTO (RFC 5681: cwnd from the loss window, slow start to
    ssthresh, then one packet more per round trip) and QUIC after persistent congestion
    (RFC 9002 7.6.2: cwnd from the minimum window, 2 packets). Round by round: a round
    sends ``cwnd`` packets and lasts the path's RTT, or the time the bottleneck needs for
    them if longer (then a queue forms and the rate is the link's); the window grows by
    what the round acknowledged. The window starts at the restart's first packet, so
    what is acknowledged in it was sent in its first ``window_s - rtt_s``. ``wire_bytes``
    is a packet's size on the bottleneck (with IP/UDP headers), ``payload_bytes`` what
    it carries. Assumes no loss during the restart and a buffer that holds the window.
    """
    t = 0.0
    end = window_s - rtt_s  # sent after this, acknowledged after the window
    cwnd = float(initial_window_packets)
    sent = 0.0
    while t < end:
        round_s = max(rtt_s, cwnd * wire_bytes * 8.0 / rate_bps)
        sent += cwnd * min(1.0, (end - t) / round_s)  # the last round counts in part
        t += round_s
        cwnd = min(2 * cwnd, ssthresh_packets) if cwnd < ssthresh_packets else cwnd + 1
    return sent * payload_bytes * 8.0 / window_s


def dctcp_alpha(w_star_packets: float) -> float:
    """DCTCP's steady-state alpha on a step-marking queue (Alizadeh et al., SIGCOMM 2010,
    section 3.3, eq. 7): the root of ``alpha^2 (1 - alpha/4) = (2W* + 1) / (W* + 1)^2``
    (about ``sqrt(2 / W*)``), where ``W* = (C x RTT + K) / N`` packets per flow."""
    w = float(w_star_packets)
    target = (2 * w + 1) / (w + 1) ** 2
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if mid * mid * (1 - mid / 4) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def dctcp_sawtooth(bdp_packets: float, k_packets: float, flows: int = 1) -> dict[str, float]:
    """Alizadeh et al.'s predictions for ``flows`` synchronized DCTCP flows on a queue that
    marks above ``k_packets``: ``alpha``, the per-flow window amplitude ``d_packets`` =
    (W* + 1) alpha / 2, the queue's amplitude ``a_packets`` = N D and its range
    ``q_max_packets`` = K + N, ``q_min_packets`` = q_max - A."""
    w_star = (bdp_packets + k_packets) / flows
    alpha = dctcp_alpha(w_star)
    d = (w_star + 1) * alpha / 2
    q_max = k_packets + flows
    return {"w_star_packets": w_star, "alpha": alpha, "d_packets": d,
            "a_packets": flows * d, "q_max_packets": q_max, "q_min_packets": q_max - flows * d}


def dctcp_alpha_at_cut(cycle_rtts: float, marked_fraction: float = 1.0,
                       g: float = 1 / 16) -> float:
    """DCTCP's alpha when it cuts, with alpha the EWMA RFC 8257 keeps (gain ``g``, one
    update per window) rather than the constant Alizadeh et al.'s analysis assumes.

    In a sawtooth of ``cycle_rtts`` windows, one window is marked (a ``marked_fraction``
    of its packets) and the others are not; alpha rises after the marked window and decays
    by ``1 - g`` per window until the next cut, which uses it at its trough:
    ``g F (1-g)^(n-1) / (1 - (1-g)^n)``. The cut's size, and so the window's amplitude,
    is this over eq. 7's alpha times :func:`dctcp_sawtooth`'s ``d_packets``.
    """
    n, decay = float(cycle_rtts), 1.0 - g
    return g * marked_fraction * decay ** (n - 1) / (1.0 - decay ** n)
