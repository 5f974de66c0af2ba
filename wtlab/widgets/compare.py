"""Compare: several controllers on one path, side by side (table, bars, traces), over seeds."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

import wtlab.cc
from wtlab.errors import WtlabError
from wtlab.lab.comparison import Comparison, compare
from wtlab.lab.experiment import Experiment
from wtlab.lab.plots import comparison_figure, display_table, trace_figure
from wtlab.widgets._common import refresh_figure, table_html


class CompareWidget:
    """Pick controllers, a duration and a number of seeds, press Run: a metrics table
    (means and 95 % confidence intervals over the seeds), bar charts with error bars, and
    every controller's window, rate and RTT on shared axes (first seed; same path, same
    seeds for every controller). Save writes the whole comparison to one self-contained
    HTML file."""

    def __init__(self, experiment: Experiment | None = None, *,
                 ccs: tuple[str, ...] = ("reno", "cubic", "bbr"), duration_s: float = 10.0,
                 seeds: int = 1):
        self.experiment = experiment or Experiment()
        names = wtlab.cc.names()
        self.choice = W.SelectMultiple(options=names, value=[c for c in ccs if c in names],
                                       description="controllers", rows=min(6, len(names)))
        self.duration = W.FloatSlider(value=duration_s, min=1, max=120, step=1,
                                      description="duration s")
        self.seeds = W.IntSlider(value=seeds, min=1, max=20, description="seeds",
                                 tooltip="runs per controller, on seeds seed .. seed + n - 1")
        self.run_button = W.Button(description="Run", icon="play")
        self.file = W.Text(value="comparison.html", description="file",
                           style={"description_width": "40px"}, layout=W.Layout(width="260px"))
        self.save_button = W.Button(description="Save HTML", icon="save")
        self.table = W.HTML()
        self.status = W.HTML()
        self.bars = go.FigureWidget(comparison_figure(_empty_table()))
        self.traces = go.FigureWidget(trace_figure(_empty_trace()))
        self.comparison: Comparison | None = None
        self.run_button.on_click(lambda _: self._guard(self.run))
        self.save_button.on_click(lambda _: self._guard(self.save, self.file.value))
        self.widget = W.VBox([W.HBox([self.choice, W.VBox([self.duration, self.seeds,
                                                            self.run_button])]),
                              W.HBox([self.file, self.save_button]), self.status,
                              self.table, self.bars, self.traces])

    def run(self) -> Comparison:
        """Run the comparison with the chosen controllers and duration (the Run button does it);
        updates the table and plots and returns the :class:`~wtlab.lab.experiment.Comparison`.
        """
        self.run_button.disabled = True
        try:
            self.comparison = compare(self.experiment, ccs=list(self.choice.value),
                                      duration_s=self.duration.value, seeds=self.seeds.value)
        finally:
            self.run_button.disabled = False
        table = self.comparison.table
        shown = [c for c in table.columns if not c.endswith("_ci95") or c in (
            "goodput_bps_ci95", "rtt_p95_s_ci95", "loss_rate_ci95", "utilisation_ci95")]
        self.table.value = table_html(display_table(table[shown]))
        refresh_figure(self.bars, self.comparison.figure())
        refresh_figure(self.traces, self.comparison.trace_figure())
        self.status.value = (f"{len(table)} controllers × {self.seeds.value} seed(s)"
                             + (": bars are means, error bars 95 % confidence intervals"
                                if self.seeds.value > 1 else ""))
        return self.comparison

    def save(self, path: str):
        """The whole comparison (table, bars, traces) to one self-contained HTML file."""
        if self.comparison is None:
            self.run()
        out = self.comparison.to_html(path)
        self.status.value = f"saved to {html.escape(str(out))}"
        return out

    def _guard(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except WtlabError as exc:
            self.status.value = f"<b>error:</b> {html.escape(str(exc))}"
            return None

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def _empty_table():
    import pandas as pd

    return pd.DataFrame({"cc": [], "goodput_bps": [], "rtt_p95_s": [], "loss_rate": []})


def _empty_trace():
    from wtlab.trace.recorder import Recorder

    return Recorder().to_pandas()
