"""Cellular-like link traces, generated (wtlab ships only traces it makes itself).

A Markov-modulated Poisson process: the link's rate moves between a few levels
(a random walk in log-rate, redrawn every ``dwell_ms``), and delivery
opportunities arrive as a Poisson process at the current rate. That reproduces
what makes recorded LTE traces hard for congestion control (the rate changes
several-fold within seconds, short outages, bursty opportunities) without
copying any recorded data. Deterministic for a seed.
"""

from __future__ import annotations

import math

import numpy as np

from wtlab.errors import ConfigError
from wtlab.net.traces import MahimahiTrace

OPPORTUNITY_BYTES = 1500


def cellular_trace(mean_rate_bps: float = 8e6, *, duration_s: float = 60.0,
                   variability: float = 0.6, dwell_ms: int = 500, outage_p: float = 0.02,
                   seed: int = 0) -> MahimahiTrace:
    """A ``duration_s`` Mahimahi trace whose long-run mean is about ``mean_rate_bps``.

    ``variability`` is the standard deviation of the log-rate random walk per
    ``dwell_ms`` step (0: constant rate); ``outage_p`` the chance that a step is an
    outage (no opportunities).
    """
    if not (mean_rate_bps > 0 and duration_s > 0 and dwell_ms > 0):
        raise ConfigError("cellular_trace needs mean_rate_bps > 0, duration_s > 0, dwell_ms > 0")
    if not 0 <= outage_p < 1 or variability < 0:
        raise ConfigError("cellular_trace needs 0 <= outage_p < 1 and variability >= 0")
    rng = np.random.default_rng(seed)
    steps = max(1, math.ceil(duration_s * 1000 / dwell_ms))
    log_rate = np.empty(steps)
    x = 0.0
    for i in range(steps):  # mean-reverting walk so the rate neither drifts off nor sticks
        x = 0.7 * x + rng.normal(0.0, variability)
        log_rate[i] = x
    rates = np.exp(log_rate)
    rates *= mean_rate_bps / rates.mean()
    rates[rng.random(steps) < outage_p] = 0.0
    stamps: list[int] = []
    for i, rate in enumerate(rates):
        per_ms = rate / (8 * OPPORTUNITY_BYTES) / 1000.0
        start = i * dwell_ms
        counts = rng.poisson(per_ms, dwell_ms)
        for ms in np.nonzero(counts)[0]:
            stamps.extend([start + int(ms) + 1] * int(counts[ms]))
    period_ms = steps * dwell_ms
    if not stamps or stamps[-1] != period_ms:
        stamps.append(period_ms)  # the last line is the period (Mahimahi's convention)
    return MahimahiTrace(stamps, opportunity_bytes=OPPORTUNITY_BYTES,
                         name=f"cellular-{mean_rate_bps / 1e6:g}mbps-seed{seed}")
