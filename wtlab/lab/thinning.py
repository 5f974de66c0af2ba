"""Thinning long series for display: min/max per bin keeps every peak and trough."""

from __future__ import annotations

import numpy as np

MAX_POINTS = 4000  # per series, after thinning


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Reduce (x, y) to at most ~max_points keeping each bin's min and max (order kept)."""
    n = len(x)
    if n <= max_points:
        return x, y
    bins = max(1, max_points // 2)
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    lo, hi = edges[:-1], edges[1:]
    lo, hi = lo[hi > lo], hi[hi > lo]
    # Vectorised over bins (a Python loop per bin cost ~20 ms per series): per-bin minima
    # and maxima by reduceat, then the first index in each bin that reaches them. NaN
    # counts as +inf for the minimum and -inf for the maximum; ties keep the first
    # index, as np.argmin/np.argmax on each bin would.
    yv = np.asarray(y, dtype=float)[lo[0]:hi[-1]]
    vmax = yv
    if not np.isfinite(yv).all():  # the slow path only where NaN or inf occur
        yv = np.nan_to_num(yv, nan=np.inf)  # +-inf become +-max float, NaN stays +inf
        vmax = np.where(np.isinf(yv), -np.inf, yv)
    starts, lengths = lo - lo[0], hi - lo

    def first_reaching(v: np.ndarray, extreme: np.ndarray) -> np.ndarray:
        hits = np.flatnonzero(v == np.repeat(extreme, lengths))  # each bin has >= 1 hit
        return lo[0] + hits[np.searchsorted(hits, starts)]

    i_min = first_reaching(yv, np.minimum.reduceat(yv, starts))
    i_max = first_reaching(vmax, np.maximum.reduceat(vmax, starts))
    first, second = np.minimum(i_min, i_max), np.maximum(i_min, i_max)
    pairs = np.stack([first, second], axis=1)
    keep = np.ones(pairs.shape, dtype=bool)
    keep[:, 1] = second != first
    out = pairs[keep]
    return np.asarray(x)[out], np.asarray(y)[out]
