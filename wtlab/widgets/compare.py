"""Compare: several controllers on one path, side by side (table, bars, traces)."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

import wtlab.cc
from wtlab.lab.experiment import Comparison, Experiment, compare
from wtlab.lab.plots import comparison_figure, display_table, trace_figure
from wtlab.widgets._common import refresh_figure, table_html


class CompareWidget:
    """Pick controllers and a duration, press Run: a metrics table, bar charts, and
    every controller's window over time on shared axes (same path, same seed)."""

    def __init__(self, experiment: Experiment | None = None, *,
                 ccs: tuple[str, ...] = ("reno", "cubic", "bbr"), duration_s: float = 10.0):
        self.experiment = experiment or Experiment()
        names = wtlab.cc.names()
        self.choice = W.SelectMultiple(options=names, value=[c for c in ccs if c in names],
                                       description="controllers", rows=min(6, len(names)))
        self.duration = W.FloatSlider(value=duration_s, min=1, max=120, step=1,
                                      description="duration s")
        self.run_button = W.Button(description="Run", icon="play")
        self.table = W.HTML()
        self.bars = go.FigureWidget(comparison_figure(_empty_table()))
        self.traces = go.FigureWidget(trace_figure(_empty_trace()))
        self.comparison: Comparison | None = None
        self.run_button.on_click(lambda _: self.run())
        self.widget = W.VBox([W.HBox([self.choice, W.VBox([self.duration, self.run_button])]),
                              self.table, self.bars, self.traces])

    def run(self) -> Comparison:
        """Run the comparison with the chosen controllers and duration (the Run button does it);
        updates the table and plots and returns the :class:`~wtlab.lab.experiment.Comparison`.
        """
        self.run_button.disabled = True
        try:
            self.comparison = compare(self.experiment, ccs=list(self.choice.value),
                                      duration_s=self.duration.value)
        finally:
            self.run_button.disabled = False
        self.table.value = table_html(display_table(self.comparison.table))
        refresh_figure(self.bars, self.comparison.figure())
        refresh_figure(self.traces, self.comparison.trace_figure())
        return self.comparison

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def _empty_table():
    import pandas as pd

    return pd.DataFrame({"cc": [], "goodput_bps": [], "rtt_p95_s": [], "loss_rate": []})


def _empty_trace():
    from wtlab.trace.recorder import Recorder

    return Recorder().to_pandas()
