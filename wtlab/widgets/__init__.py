"""Notebook widgets (ipywidgets + plotly FigureWidget): views over runs and traces.

Importing this package imports ipywidgets and plotly; ``import wtlab`` does not.
"""

from wtlab.widgets.compare import CompareWidget
from wtlab.widgets.explorer import Explorer
from wtlab.widgets.live import LiveWidget
from wtlab.widgets.replay import ReplayWidget

__all__ = ["CompareWidget", "Explorer", "LiveWidget", "ReplayWidget"]
