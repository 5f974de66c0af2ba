"""Experiments, comparisons, analytic references, replay and sweeps.

Figures (goodput, utilisation, mean cwnd, ...) come from :mod:`wtlab.trace.metrics`.
"""

from wtlab.lab.experiment import Comparison, Experiment, Result, Stepper, compare

__all__ = ["Comparison", "Experiment", "Result", "Stepper", "compare"]
