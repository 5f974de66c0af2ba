"""Comparisons: several controllers on one path, each over one or several seeds.

>>> from wtlab.lab import Experiment, compare
>>> exp = Experiment(path=dict(rate_bps=10e6, rtt_s=0.05, loss=0.01), seed=1)
>>> cmp = compare(exp, ccs=["reno", "bbr"], duration_s=5, seeds=5)   # doctest: +SKIP
>>> cmp.table[["cc", "goodput_bps", "goodput_bps_ci95", "seeds"]]  # doctest: +SKIP
>>> cmp.figure()                     # bars with 95 % error bars       # doctest: +SKIP
>>> cmp.to_html("comparison.html")   # one self-contained file       # doctest: +SKIP

With ``seeds=N`` each controller runs on seeds ``experiment.seed .. experiment.seed +
N - 1`` (the same N paths for every controller); ``table`` holds, per controller, the
mean of every figure and its ``_ci95`` (:func:`wtlab.trace.metrics.seed_summary`),
``runs`` one row per (controller, seed).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError
from wtlab.lab import analytic
from wtlab.lab.experiment import Experiment, Result, _cc_label
from wtlab.trace import metrics as M


@dataclasses.dataclass
class Comparison:
    """Several controllers on one path: ``table`` (one row per cc), ``results``, figures.

    ``results[cc]`` is the run on the experiment's own seed; ``runs`` (one row per cc
    and seed) and ``all_results[(cc, seed)]`` hold every repetition. ``trace()`` joins
    the runs' traces (first seed) with a ``cc`` column; ``metrics()`` joins their
    per-flow tables (``run`` names the run); ``summary()`` is ``table``.
    """

    table: pd.DataFrame
    results: dict[str, Result]
    runs: pd.DataFrame | None = None
    all_results: dict[tuple[str, int], Result] | None = None

    def trace(self) -> pd.DataFrame:
        """Every controller's trace (the experiment's own seed) in one frame, with a
        categorical ``cc`` column in the order of ``results``."""
        from wtlab.trace.schema import concat

        frames = []
        for name, r in self.results.items():
            t = r.trace().copy()
            t["cc"] = name
            frames.append(t)
        out = concat(frames)
        out["cc"] = pd.Categorical(out["cc"], categories=list(self.results))
        return out

    def metrics(self, from_s: float | None = None, to_s: float | None = None) -> pd.DataFrame:
        """Every controller's per-flow table (:meth:`Result.metrics
        <wtlab.lab.experiment.Result.metrics>`, the experiment's own seed) over
        ``[from_s, to_s]`` (seconds), stacked, with ``run`` naming the controller."""
        frames = []
        for name, r in self.results.items():
            m = r.metrics(from_s, to_s)
            m["run"] = name
            frames.append(m)
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """The comparison's :attr:`table` (one row per controller)."""
        return self.table

    def figure(self, **kwargs: Any):
        """Bars per figure, with 95 % error bars when the comparison has several seeds."""
        from wtlab.lab.plots import comparison_figure

        return comparison_figure(self.table, **kwargs)

    def trace_figure(self, **kwargs: Any):
        """Every controller's window, rate (with the capacity) and RTT on shared axes, in
        each algorithm's colour (``ALGORITHM_COLOURS``, the palette of
        :mod:`wtlab.lab.style`)."""
        from wtlab.lab.plots import trace_figure

        frames = []
        labels = {}
        for i, (name, r) in enumerate(self.results.items()):
            t = r.trace().copy()
            t["flow"] = (t["flow"].astype(np.int64) + 100 * i).astype(np.uint16)
            frames.append(t)
            for f, lab in r.experiment.labels.items():
                labels[f + 100 * i] = f"{name}" if len(r.experiment.labels) == 1 else lab
        first = next(iter(self.results.values()))
        kwargs.setdefault("capacity", first.path.capacity_steps())
        return trace_figure(pd.concat(frames, ignore_index=True), labels=labels,
                            bdp_bytes=first.path.bdp_bytes, **kwargs)

    def to_html(self, path: str, *, title: str | None = None) -> FsPath:
        """One self-contained HTML file (plotly.js inline, no network needed): the table,
        the bar chart and the traces figure; written atomically."""
        from wtlab.lab.export import html_document
        from wtlab.lab.plots import display_table

        first = next(iter(self.results.values()))
        seeds = int(self.table["seeds"].max()) if "seeds" in self.table else 1
        heading = title or (f"{', '.join(self.results)} on "
                            f"{html.escape(repr(first.path))}, {seeds} seed(s)")
        table = display_table(self.table).to_html(index=False, border=0,
                                                  float_format=lambda v: f"{v:.4g}")
        return html_document(path, heading, [("table", table), ("figure", self.figure()),
                                             ("figure", self.trace_figure())])


def compare(experiment: Experiment, ccs: Sequence[Any] = ("reno", "cubic", "bbr"), *,
            duration_s: float = 10.0, seeds: int = 1) -> Comparison:
    """Run ``experiment`` once per controller in ``ccs`` on identical paths (same seed),
    or ``seeds`` times each on seeds ``experiment.seed ..`` ``+ seeds - 1``.

    ``table``: one row per controller with :meth:`Result.summary`'s figures (means over
    the seeds, each with its ``_ci95`` half-width and ``seeds``),
    ``payload_per_packet_bytes`` and, on a lossy path, the analytic references at that
    packet size, the unit of ``goodput_bps`` (``mathis_bps``, ``cubic_response_bps``;
    :func:`wtlab.lab.analytic.reference_rates_bps`).
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds={seeds!r} must be a whole number of runs >= 1")
    results: dict[str, Result] = {}
    every: dict[tuple[str, int], Result] = {}
    rows = []
    n_flows = experiment.flows if isinstance(experiment.flows, int) else len(experiment.flows)
    for c in ccs:
        name = _cc_label(c)
        for k in range(seeds):
            seed = experiment.seed + k
            r = experiment.replace(cc=c, flows=n_flows, seed=seed).run(duration_s)
            every[(name, seed)] = r
            if k == 0:
                results[name] = r
            flows = r.metrics()
            row = {"cc": name, "seed": seed, **r.summary()}
            row["payload_per_packet_bytes"] = float(flows["payload_per_packet_bytes"].max())
            rows.append(row)
    runs = pd.DataFrame(rows)
    if seeds == 1:
        table = runs.drop(columns=["seed"])
    else:
        table = M.seed_summary(runs.drop(columns=["note"], errors="ignore"), by="cc")
        notes = runs.groupby("cc", sort=False)["note"].agg(
            lambda s: "; ".join(dict.fromkeys(n for n in s if n)))
        table["note"] = table["cc"].map(notes)
    p = next(iter(results.values())).path
    p_loss = getattr(p.down_spec.loss, "p", None)
    if p_loss:
        mss = table["payload_per_packet_bytes"].max()
        if mss == mss:
            for k, v in analytic.reference_rates_bps(mss, p.rtt_s, p_loss).items():
                table[k] = v
    return Comparison(table=table, results=results, runs=runs, all_results=every)
