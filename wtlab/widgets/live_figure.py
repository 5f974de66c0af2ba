"""A FigureWidget of keyed series, updated in place: appends, truncation, one batch per frame.

The traces are made once (from :mod:`wtlab.lab.plots` series specs) and never cleared
while a run goes on: a frame appends the new points of the series that grew (thinned
to a steady density, see :class:`SeriesBuffer`) and sends only those series, together
with any layout change, in one batched ``Plotly.update``. So the browser never shows an
empty figure between frames, and a frame's size is bounded by ``max_points`` per
series whatever the length of the run. (plotly's widget protocol has no "extend
traces" message, so a changed series travels whole; the thinning keeps it small.) The
traces are SVG scatters: with a bounded number of points they redraw faster than WebGL
ones (measured in headless Chromium: about a third less time per update).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from wtlab.lab.plots import add_series
from wtlab.lab.thinning import thin
from wtlab.widgets.frames import AckedFigureWidget, FrameGate

MIN_SPAN_S = 5.0  # the density rule treats shorter runs as this long


class SeriesBuffer:
    """The displayed points of one series (float32, what the browser receives)."""

    __slots__ = ("x", "y")

    def __init__(self) -> None:
        self.x = np.zeros(0, dtype=np.float32)
        self.y = np.zeros(0, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def set(self, x: np.ndarray, y: np.ndarray) -> None:
        """Replace the points with ``(x, y)`` as given (stored as float32, not thinned)."""
        self.x = np.asarray(x, dtype=np.float32)
        self.y = np.asarray(y, dtype=np.float32)

    def append(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        """Add a chunk, thinned to at most ``budget`` points (min/max per bin)."""
        if not len(x):
            return
        x, y = thin(np.asarray(x, dtype=float), np.asarray(y, dtype=float), max(4, budget))
        self.x = np.concatenate((self.x, np.asarray(x, dtype=np.float32)))
        self.y = np.concatenate((self.y, np.asarray(y, dtype=np.float32)))

    def truncate(self, t: float) -> bool:
        """Drop the points after ``t``; True if any were dropped."""
        keep = int(np.searchsorted(self.x, np.float32(t), side="right"))
        if keep < len(self.x):
            self.x, self.y = self.x[:keep], self.y[:keep]
            return True
        return False

    def rethin(self, max_points: int) -> None:
        """Thin the points held to about ``max_points`` (min/max per bin, order kept)."""
        x, y = thin(self.x.astype(float), self.y.astype(float), max_points)
        self.set(x, y)


class LiveFigure:
    """``widget`` (a FigureWidget) with one trace per series spec (``key`` -> trace)."""

    def __init__(self, layout: go.Figure, panels: Sequence[str], *, max_points: int = 1500,
                 height: int | None = None) -> None:
        self.widget = AckedFigureWidget(layout)
        if height:
            self.widget.layout.height = height
        self.panels = list(panels)
        self.max_points = max_points
        self.index: dict[Any, int] = {}
        self.buffers: dict[Any, SeriesBuffer] = {}
        self.dirty: set[Any] = set()
        self.gate = FrameGate(self.widget)
        self.points_sent = 0  # points in the last frame (both axes count once)

    def ensure(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """Add the traces of specs not in the figure yet (once; their data starts empty)."""
        new = [s for s in specs if s["key"] not in self.index]
        if not new:
            return
        first = len(self.widget.data)
        add_series(self.widget, new, self.panels, gl=False)
        for i, s in enumerate(new):
            self.index[s["key"]] = first + i
            if s["key"][0] != "phase":
                self.buffers[s["key"]] = SeriesBuffer()

    def clear(self) -> None:
        """Every series empty (a new run); traces stay."""
        for key, buf in self.buffers.items():
            if len(buf):
                buf.set([], [])
                self.dirty.add(key)

    def append(self, key: Any, x: np.ndarray, y: np.ndarray, *, span_s: float,
               chunk_s: float) -> None:
        """Append a chunk covering ``chunk_s`` of a run shown over ``span_s``: thinned to
        ``max_points`` per ``span_s``, re-thinned to half when the series outgrows it."""
        buf = self.buffers.get(key)
        if buf is None or not len(x):
            return
        density = self.max_points / max(span_s, MIN_SPAN_S)
        buf.append(x, y, int(2 * density * max(chunk_s, 1e-3)) + 8)
        if len(buf) > self.max_points:
            buf.rethin(self.max_points // 2)
        self.dirty.add(key)

    def set(self, key: Any, x: np.ndarray, y: np.ndarray) -> None:
        """Replace series ``key``'s points with ``(x, y)``, thinned to ``max_points``; it is
        sent at the next :meth:`push` only if the points changed (unknown keys: ignored)."""
        buf = self.buffers.get(key)
        if buf is None:
            return
        if len(x) > self.max_points:
            x, y = thin(np.asarray(x, dtype=float), np.asarray(y, dtype=float), self.max_points)
        if len(x) == len(buf) and np.array_equal(np.asarray(x, dtype=np.float32), buf.x) and (
                np.array_equal(np.asarray(y, dtype=np.float32), buf.y, equal_nan=True)):
            return
        buf.set(x, y)
        self.dirty.add(key)

    def truncate(self, t: float, keys: Iterable[Any] | None = None) -> None:
        """Drop the points after ``t`` (x-axis units, seconds for time series) from the
        series ``keys`` (default: all); those that lost points are sent at the next
        :meth:`push`."""
        for key in keys if keys is not None else list(self.buffers):
            buf = self.buffers.get(key)
            if buf is not None and buf.truncate(t):
                self.dirty.add(key)

    def points(self) -> int:
        """Points held over every series (what the figure shows once pushed)."""
        return sum(len(b) for b in self.buffers.values())

    def push(self, layout: Mapping[str, Any] | None = None) -> int:
        """Send the changed series and ``layout`` (nested, as ``Layout.update`` takes it:
        ``{"shapes": [...], "yaxis2": {"range": [0, 12]}}``) in one batched update;
        returns the points sent."""
        if not self.dirty and not layout:
            return 0
        sent = 0
        data = self.widget.data
        with self.widget.batch_update():
            for key in self.dirty:
                buf = self.buffers[key]
                trace = data[self.index[key]]
                trace.x, trace.y = buf.x, buf.y
                sent += len(buf)
            if layout:
                layout = dict(layout)
                shapes = layout.pop("shapes", None)
                if shapes is not None:  # replaced whole: no per-element paths beside it
                    self.widget.layout.shapes = shapes
                if layout:
                    self.widget.layout.update(layout)
        self.dirty.clear()
        self.points_sent = sent
        self.gate.sent()
        return sent
