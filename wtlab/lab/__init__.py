"""Experiments, comparisons, analytic references, replay and sweeps."""

from wtlab.lab.experiment import Comparison, Experiment, Result, Stepper, compare, flow_metrics

__all__ = ["Comparison", "Experiment", "Result", "Stepper", "compare", "flow_metrics"]
