"""Generated link traces in Mahimahi format: Poisson, Markov-modulated, cellular-like.

wtlab ships only link traces it makes itself; these generators make them, deterministic
for a seed (numpy's PCG64 through ``numpy.random.default_rng(seed)``, so the same
arguments give the same trace on every machine and in every process):

* :func:`poisson_trace`: delivery opportunities arrive as a Poisson process at a
  constant mean rate (like Pantheon's calibrated "poisson" links): the capacity is
  right on average and bursty from one millisecond to the next.
* :func:`markov_trace`: a Markov-modulated Poisson process with states you name: the
  link dwells in a rate state for an exponentially distributed time, jumps to another
  state, and opportunities arrive as a Poisson process at the current state's rate. A
  state of rate 0 is an outage.
* :func:`cellular_trace`: a ready-made cellular-like process: the log-rate follows a
  mean-reverting random walk redrawn every ``dwell_ms``, with occasional outages. That
  reproduces what makes recorded LTE traces hard for congestion control (the rate
  changes several-fold within seconds, short outages, bursty opportunities) without
  copying any recorded data.

Every trace follows Mahimahi's conventions (:mod:`wtlab.net.traces`): one line per
1500-byte opportunity, a millisecond timestamp each; the opportunities of millisecond
``(k-1, k]`` are stamped ``k``; the last line is the period, ``duration_s`` rounded up
to whole milliseconds (if the process put no opportunity there, one is added, so the
mean capacity is at most one opportunity per period above the process's).
``trace.save(path)`` writes the file; so does the command ``wtlab linktrace``::

    wtlab linktrace poisson 2.6mbit --duration 60s --seed 1 -o poisson.trace
    wtlab linktrace markov 20mbit,5mbit,0 --dwell 2s,2s,0.3s --seed 1 -o lte-like.trace
    wtlab linktrace cellular 8mbit --duration 60s --seed 3 -o cell.trace
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np

from wtlab.errors import ConfigError
from wtlab.net.traces import MahimahiTrace
from wtlab.net.units import format_rate, parse_duration, parse_rate

OPPORTUNITY_BYTES = 1500


def _from_counts(counts: np.ndarray, name: str) -> MahimahiTrace:
    """A trace from opportunities per millisecond (``counts[k]`` in ``(k, k+1]`` ms)."""
    period_ms = len(counts)
    stamps = np.repeat(np.arange(1, period_ms + 1, dtype=np.int64), counts)
    if not len(stamps) or stamps[-1] != period_ms:
        stamps = np.append(stamps, period_ms)  # the last line is the period (Mahimahi)
    return MahimahiTrace(stamps.tolist(), opportunity_bytes=OPPORTUNITY_BYTES, name=name)


def _period_ms(duration_s: float | str) -> int:
    duration = parse_duration(duration_s, "duration_s")
    if duration <= 0:
        raise ConfigError(f"duration_s: {duration_s!r} must be > 0 (e.g. '60s')")
    return max(1, math.ceil(round(duration * 1000, 6)))


def poisson_trace(rate_bps: float | str, *, duration_s: float | str = 60.0,
                  seed: int = 0) -> MahimahiTrace:
    """Opportunities as a Poisson process of mean ``rate_bps`` over ``duration_s``.

    Each millisecond gets a Poisson number of 1500-byte opportunities with mean
    ``rate_bps / 12e6``, independently: the trace's capacity is ``rate_bps`` in
    expectation (its exact mean is ``trace.capacity_bps``). Raises
    :class:`~wtlab.errors.ConfigError` for a rate or duration that is not positive.
    """
    rate = parse_rate(rate_bps, "rate_bps")
    period_ms = _period_ms(duration_s)
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate / (8 * OPPORTUNITY_BYTES * 1000.0), period_ms)
    return _from_counts(counts, f"poisson-{format_rate(rate)}-seed{seed}")


def markov_states(rates_bps: Sequence[float | str], *, mean_dwell_s: float | str |
                 Sequence[float | str] = 1.0, transitions: Sequence[Sequence[float]] |
                 None = None, duration_s: float | str = 60.0, start: int | None = None,
                 seed: int = 0) -> list[tuple[float, float, int]]:
    """The state path of :func:`markov_trace`: ``[(start_s, end_s, state), ...]``.

    Same arguments and the same random draws as :func:`markov_trace` (which calls
    it), so the state path of a trace can be inspected.
    """
    rates = _rates(rates_bps)
    n = len(rates)
    dwell = _per_state(mean_dwell_s, n)
    jumps = _transitions(transitions, n)
    end_s = _period_ms(duration_s) / 1000.0
    rng = np.random.default_rng(seed)
    if start is None:  # the stationary chance of each state: time share ~ visits x dwell
        state = int(rng.choice(n, p=_time_shares(jumps, dwell)))
    elif isinstance(start, int) and 0 <= start < n:
        state = start
    else:
        raise ConfigError(f"start: {start!r} must be a state index in 0..{n - 1} or None")
    path: list[tuple[float, float, int]] = []
    t = 0.0
    while t < end_s:
        stay = rng.exponential(dwell[state])
        path.append((t, min(end_s, t + stay), state))
        t += stay
        state = int(rng.choice(n, p=jumps[state])) if n > 1 else state
    return path


def markov_trace(rates_bps: Sequence[float | str], *, mean_dwell_s: float | str |
                 Sequence[float | str] = 1.0, transitions: Sequence[Sequence[float]] |
                 None = None, duration_s: float | str = 60.0, start: int | None = None,
                 seed: int = 0) -> MahimahiTrace:
    """A Markov-modulated Poisson trace: rate states, exponential dwell times.

    ``rates_bps``: one rate per state (bit/s or ``"20mbit"``; ``0`` is an outage).
    ``mean_dwell_s``: the mean time spent in a state per visit, one value or one per
    state. ``transitions[i][j]``: the chance that state ``i`` jumps to ``j`` when its
    dwell ends (rows sum to 1, zero diagonal); default: any other state alike.
    ``start``: the first state (default: drawn from the chain's stationary time
    shares, so the trace's expected capacity is the time-share-weighted mean rate).
    Within a state, opportunities arrive as a Poisson process at the state's rate; a
    millisecond that straddles a jump gets the time-weighted mean of both rates.

    Raises :class:`~wtlab.errors.ConfigError` naming the argument that is wrong.
    """
    rates = _rates(rates_bps)
    path = markov_states(rates_bps, mean_dwell_s=mean_dwell_s, transitions=transitions,
                        duration_s=duration_s, start=start, seed=seed)
    period_ms = _period_ms(duration_s)
    # expected opportunities up to each state boundary, then at every whole millisecond
    edges = np.array([0.0] + [end for _, end, _ in path]) * 1000.0
    per_ms = np.array([rates[s] for _, _, s in path]) / (8 * OPPORTUNITY_BYTES * 1000.0)
    cumulative = np.concatenate(([0.0], np.cumsum(per_ms * np.diff(edges))))
    at_ms = np.interp(np.arange(period_ms + 1, dtype=float), edges, cumulative)
    # a second generator, so the state path above is the same whatever the rates
    rng = np.random.default_rng([seed, 1])
    counts = rng.poisson(np.maximum(np.diff(at_ms), 0.0))
    label = "-".join(format_rate(r) if r else "0" for r in rates)
    return _from_counts(counts, f"markov-{label}-seed{seed}")


def cellular_trace(mean_rate_bps: float = 8e6, *, duration_s: float = 60.0,
                   variability: float = 0.6, dwell_ms: int = 500, outage_p: float = 0.02,
                   seed: int = 0) -> MahimahiTrace:
    """A ``duration_s`` cellular-like trace whose long-run mean is about ``mean_rate_bps``.

    ``variability`` is the standard deviation of the log-rate random walk per
    ``dwell_ms`` step (0: constant rate); ``outage_p`` the chance that a step is an
    outage (no opportunities). Raises :class:`~wtlab.errors.ConfigError` for values
    out of range.
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


# --- argument checks -------------------------------------------------------------------------

def _rates(rates_bps: Sequence[float | str]) -> list[float]:
    if isinstance(rates_bps, str | bytes) or not isinstance(rates_bps, Sequence) or not rates_bps:
        raise ConfigError(f"rates_bps: {rates_bps!r} must be a list of rates, one per state "
                          "(e.g. ['20mbit', '5mbit', 0])")
    rates = [0.0 if r in (0, "0") else parse_rate(r, "rates_bps") for r in rates_bps]
    if not any(rates):
        raise ConfigError("rates_bps: every state has rate 0; give at least one state a rate")
    return rates


def _per_state(value: object, n: int) -> list[float]:
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) \
        else [value] * n
    if len(values) != n:
        raise ConfigError(f"mean_dwell_s: {len(values)} values for {n} states; give one value "
                          "or one per state")
    out = [parse_duration(v, "mean_dwell_s") for v in values]
    if min(out) <= 0:
        raise ConfigError(f"mean_dwell_s: {value!r}; every mean dwell time must be > 0")
    return out


def _transitions(transitions: Sequence[Sequence[float]] | None, n: int) -> np.ndarray:
    if transitions is None:
        if n == 1:
            return np.ones((1, 1))
        return (np.ones((n, n)) - np.eye(n)) / (n - 1)
    m = np.asarray(transitions, dtype=float)
    if m.shape != (n, n):
        raise ConfigError(f"transitions: shape {m.shape} for {n} states; give an {n} x {n} "
                          "matrix of jump probabilities")
    if (m < 0).any() or not np.allclose(m.sum(axis=1), 1.0):
        raise ConfigError("transitions: every row must hold probabilities (>= 0) summing to 1")
    if n > 1 and np.diag(m).any():
        raise ConfigError("transitions: the diagonal must be 0 (a stay is the dwell time; a "
                          "jump goes to another state)")
    return m


def _time_shares(jumps: np.ndarray, dwell: list[float]) -> np.ndarray:
    """Long-run share of time in each state: the jump chain's stationary law x dwell."""
    n = len(dwell)
    if n == 1:
        return np.ones(1)
    # solve pi (P - I) = 0 with sum(pi) = 1 (least squares: the system is consistent)
    a = np.vstack([(jumps - np.eye(n)).T, np.ones(n)])
    b = np.concatenate([np.zeros(n), [1.0]])
    visits = np.clip(np.linalg.lstsq(a, b, rcond=None)[0], 0.0, None)
    share = visits * np.asarray(dwell)
    return share / share.sum()


def expected_capacity_bps(rates_bps: Sequence[float | str], *, mean_dwell_s: float | str |
                          Sequence[float | str] = 1.0,
                          transitions: Sequence[Sequence[float]] | None = None) -> float:
    """The long-run mean rate of :func:`markov_trace` with these states."""
    rates = _rates(rates_bps)
    shares = _time_shares(_transitions(transitions, len(rates)),
                          _per_state(mean_dwell_s, len(rates)))
    return float(np.dot(shares, rates))


# --- the command -----------------------------------------------------------------------------

def cli_main(argv: list[str]) -> int:
    """``wtlab linktrace {poisson,markov,cellular} RATE[S] -o FILE [options]``."""
    ap = argparse.ArgumentParser(
        prog="wtlab linktrace",
        description="Write a generated Mahimahi link trace (for wtlab relay --trace, "
                    "LinkSpec(trace=...) or Mahimahi's mm-link).")
    ap.add_argument("kind", choices=("poisson", "markov", "cellular"))
    ap.add_argument("rate", help="mean rate ('8mbit'); for markov, one rate per state, "
                    "comma separated ('20mbit,5mbit,0')")
    ap.add_argument("-o", "--out", required=True, help="the trace file to write")
    ap.add_argument("--duration", default="60s", help="the trace's period (default 60s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dwell", default="1s", help="markov: mean dwell per state, one value or "
                    "one per state, comma separated")
    ap.add_argument("--variability", type=float, default=0.6, help="cellular: log-rate step sd")
    ap.add_argument("--outage-p", type=float, default=0.02, help="cellular: outage chance")
    args = ap.parse_args(argv)
    if args.kind == "poisson":
        trace = poisson_trace(args.rate, duration_s=args.duration, seed=args.seed)
    elif args.kind == "markov":
        dwell = args.dwell.split(",")
        trace = markov_trace(args.rate.split(","), duration_s=args.duration, seed=args.seed,
                             mean_dwell_s=dwell if len(dwell) > 1 else dwell[0])
    else:
        trace = cellular_trace(parse_rate(args.rate, "rate"), seed=args.seed,
                               duration_s=parse_duration(args.duration, "--duration"),
                               variability=args.variability, outage_p=args.outage_p)
    trace.save(args.out)
    print(f"{args.out}: {trace!r}")
    return 0
