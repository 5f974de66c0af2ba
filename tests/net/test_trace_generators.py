"""Generated link traces: Mahimahi-valid, seeded, with the statistics they promise."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from wtlab import ConfigError
from wtlab.cli import main as wtlab_main
from wtlab.net import Link, MahimahiTrace, cellular_trace, markov_trace, poisson_trace
from wtlab.net.cellular import expected_capacity_bps, markov_states


def _counts_per_ms(trace: MahimahiTrace) -> np.ndarray:
    return np.bincount(np.asarray(trace.timestamps_ms), minlength=trace.period_ms + 1)[1:]


@pytest.mark.parametrize("make", [
    lambda seed: poisson_trace("2.6mbit", duration_s=20, seed=seed),
    lambda seed: markov_trace(["20mbit", "5mbit", 0], mean_dwell_s=[1, 1, 0.2], duration_s=20,
                              seed=seed),
    lambda seed: cellular_trace(8e6, duration_s=20, seed=seed),
], ids=["poisson", "markov", "cellular"])
def test_same_seed_same_trace_other_seed_other_trace(make, tmp_path):
    a, b, c = make(1), make(1), make(2)
    assert a == b and a != c
    assert a.period_ms == 20_000 and a.timestamps_ms[-1] == a.period_ms
    assert list(a.timestamps_ms) == sorted(a.timestamps_ms)
    # the file is a Mahimahi trace that loads back equal
    a.save(tmp_path / "t.trace")
    assert MahimahiTrace.load(tmp_path / "t.trace") == a


def test_same_seed_same_trace_in_another_process():
    code = ("from wtlab.net import markov_trace as m; import hashlib; print(hashlib.sha256("
            "repr(m([9e6, 1e6, 0], seed=5).timestamps_ms).encode()).hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    import hashlib

    here = hashlib.sha256(repr(markov_trace([9e6, 1e6, 0], seed=5).timestamps_ms).encode())
    assert other == here.hexdigest()


def test_poisson_trace_has_poisson_counts_at_the_mean_rate():
    trace = poisson_trace(6e6, duration_s=200, seed=3)  # 0.5 opportunities per ms
    counts = _counts_per_ms(trace)
    assert trace.capacity_bps == pytest.approx(6e6, rel=0.01)
    # Poisson: variance equals mean (index of dispersion 1); a constant link has 0
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.03)
    # gaps between busy milliseconds are geometric: P(empty ms) = exp(-0.5)
    assert (counts == 0).mean() == pytest.approx(np.exp(-0.5), abs=0.01)


def test_markov_trace_spends_the_stationary_time_share_in_each_state():
    rates = [12e6, 3e6, 0]
    dwell = [0.2, 0.1, 0.05]
    jumps = [[0, 0.9, 0.1], [0.8, 0, 0.2], [0.5, 0.5, 0]]
    want = expected_capacity_bps(rates, mean_dwell_s=dwell, transitions=jumps)
    path = markov_states(rates, mean_dwell_s=dwell, transitions=jumps, duration_s=400, seed=2)
    time_in = np.zeros(3)
    for start, end, state in path:
        time_in[state] += end - start
    assert time_in.sum() == pytest.approx(400)
    assert float(np.dot(time_in / 400, rates)) == pytest.approx(want, rel=0.03)
    trace = markov_trace(rates, mean_dwell_s=dwell, transitions=jumps, duration_s=400, seed=2)
    assert trace.capacity_bps == pytest.approx(want, rel=0.03)
    # no opportunity falls in a whole millisecond of outage (state 2)
    counts = _counts_per_ms(trace)
    for start, end, state in path:
        if state == 2 and end - start > 0.003:
            first, last = int(np.ceil(start * 1000)) + 1, int(end * 1000) - 1
            assert counts[first:last].sum() == 0
    # dwell times are exponential: their spread matches their mean (cv ~ 1)
    stays = np.array([e - s for s, e, st in path[:-1] if st == 0])
    assert stays.mean() == pytest.approx(0.2, rel=0.1)
    assert stays.std() / stays.mean() == pytest.approx(1.0, abs=0.1)


def test_a_single_state_markov_trace_is_a_poisson_trace():
    trace = markov_trace(["6mbit"], duration_s=100, seed=4)
    counts = _counts_per_ms(trace)
    assert trace.capacity_bps == pytest.approx(6e6, rel=0.02)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.05)


def test_cellular_trace_swings_and_has_outages():
    trace = cellular_trace(8e6, duration_s=60, seed=3)
    per_500ms = _counts_per_ms(trace)[: 120 * 500].reshape(120, 500).sum(axis=1)
    rates = per_500ms * 1500 * 8 / 0.5
    assert trace.capacity_bps == pytest.approx(8e6, rel=0.15)
    assert rates.max() > 3 * np.median(rates)  # several-fold swings
    assert (rates == 0).any()  # an outage


@pytest.mark.parametrize("call, needle", [
    (lambda: poisson_trace(0), "rate_bps"),
    (lambda: poisson_trace("1mbit", duration_s=0), "duration_s"),
    (lambda: markov_trace([0, 0]), "rate 0"),
    (lambda: markov_trace("10mbit"), "list of rates"),
    (lambda: markov_trace([1e6, 2e6], mean_dwell_s=[1, 2, 3]), "mean_dwell_s"),
    (lambda: markov_trace([1e6, 2e6], mean_dwell_s=0), "mean_dwell_s"),
    (lambda: markov_trace([1e6, 2e6], transitions=[[0, 1]]), "transitions"),
    (lambda: markov_trace([1e6, 2e6], transitions=[[0.5, 0.5], [1, 0]]), "diagonal"),
    (lambda: markov_trace([1e6, 2e6], transitions=[[0, 0.5], [1, 0]]), "sum"),
    (lambda: markov_trace([1e6, 2e6], start=2), "start"),
    (lambda: cellular_trace(-1), "mean_rate_bps"),
])
def test_bad_arguments_raise_config_error(call, needle):
    with pytest.raises(ConfigError, match=needle):
        call()


def test_command_writes_a_trace_a_link_can_use(tmp_path, capsys):
    out = tmp_path / "lte-like.trace"
    assert wtlab_main(["linktrace", "markov", "20mbit,5mbit,0", "--dwell", "1s,1s,0.2s",
                       "--duration", "10s", "--seed", "7", "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    trace = MahimahiTrace.load(out)
    assert trace == markov_trace(["20mbit", "5mbit", 0], mean_dwell_s=["1s", "1s", "0.2s"],
                                 duration_s=10, seed=7)
    link = Link(trace=out, delay_s=0.01, seed=1)
    assert link.capacity_bps == pytest.approx(trace.capacity_bps)
    assert wtlab_main(["linktrace", "poisson", "fast", "-o", str(out)]) == 2
    assert "rate" in capsys.readouterr().err
