"""Experiments, comparisons, analytic references, replay and sweeps.

Figures (goodput, utilisation, mean cwnd, ...) come from :mod:`wtlab.trace.metrics`.
"""

from wtlab.lab.experiment import (
    Comparison,
    Experiment,
    FlowSpec,
    Result,
    Stepper,
    compare,
)
from wtlab.net.schedule import PathChange, PathSchedule

__all__ = ["Comparison", "Experiment", "FlowSpec", "PathChange", "PathSchedule", "Result",
           "Stepper", "compare"]
