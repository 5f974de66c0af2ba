"""Back-pressure from the browser, and the speed a player really achieves.

A :class:`FrameGate` watches one :class:`AckedFigureWidget`. plotly's front end, after it
applied an update (``Plotly.update``, which draws synchronously for these figures),
reports the trace state back to the kernel tagged with the update's edit id; the gate
records that acknowledgement. A player awaits :meth:`FrameGate.ready` before it sends
the next frame, so at most one frame is ever in flight: the browser is never fed
faster than it draws (what left the figure blank and made Pause lag by seconds when
every tick was sent regardless), and the kernel stays free to handle Pause at once.

With no view on the page (``_view_count`` 0: a notebook run by nbclient, a test, a
closed tab) nothing will acknowledge, so the gate does not wait; a view that stops
answering (a hidden tab) releases the gate after ``timeout_s`` (the frame budget).

:class:`SpeedMeter` measures the simulated seconds per wall second actually achieved
over the last few seconds of wall time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import plotly.graph_objects as go
from plotly.basewidget import BaseFigureWidget
from traitlets import observe

_PLOTLY_DELTAS = BaseFigureWidget.__dict__["_handler_js2py_traceDeltas"].func


class AckedFigureWidget(go.FigureWidget):
    """AckedFigureWidget(data=None, layout=None, frames=None, skip_invalid=False, **kwargs)

    A plotly FigureWidget that tells listeners when the browser has applied an edit.

    plotly's own handler of the browser's report can raise (plotly 6-7 evaluate
    ``if not value`` on numpy arrays when a report carries array defaults back), and a
    raising handler silences every observer after it. Here the report reaches the
    listeners first, then plotly's bookkeeping runs; if it fails, the edit is still
    marked done, as plotly would have.
    """

    @observe("_js2py_traceDeltas")
    def _handler_js2py_traceDeltas(self, change: dict) -> None:
        msg = change.get("new")
        if msg:
            for listener in getattr(self, "_ack_listeners", ()):
                listener(msg.get("trace_edit_id"))
        try:
            _PLOTLY_DELTAS(self, change)
        except (ValueError, TypeError):
            self._trace_edit_in_process = False
            self._js2py_traceDeltas = None

    def on_acknowledged(self, listener: Any) -> None:
        """Call ``listener(edit_id)`` whenever the browser reports an applied edit."""
        if not hasattr(self, "_ack_listeners"):
            self._ack_listeners = []
        self._ack_listeners.append(listener)


class FrameGate:
    """Waits until the browser has drawn the last update of ``figure`` (see module doc)."""

    def __init__(self, figure: AckedFigureWidget) -> None:
        self.figure = figure
        self.acked_id = 0
        self.sent_id = 0
        self.frames_drawn = 0
        self.round_trips_s: deque[float] = deque(maxlen=50)
        self._sent_at = 0.0
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        figure.on_acknowledged(self._on_ack)

    def _on_ack(self, edit: Any) -> None:
        if isinstance(edit, int) and edit > self.acked_id:
            self.acked_id = edit
            self.frames_drawn += 1
            if edit >= self.sent_id and self._sent_at:
                self.round_trips_s.append(time.perf_counter() - self._sent_at)
            event, loop = self._event, self._loop
            if event is not None and loop is not None and self.acked_id >= self.sent_id:
                # the kernel may handle widget messages on another thread than the one
                # the player awaits on (ipykernel 7): wake that loop thread-safely
                loop.call_soon_threadsafe(event.set)

    def sent(self) -> None:
        """Call right after a batched figure update: the frame now in flight."""
        self.sent_id = int(getattr(self.figure, "_last_trace_edit_id", 0) or 0)
        self._sent_at = time.perf_counter()

    @property
    def has_view(self) -> bool:
        """Whether a browser shows the figure (ipywidgets counts the views)."""
        return bool(getattr(self.figure, "_view_count", 0))

    @property
    def in_flight(self) -> bool:
        """Whether a frame was sent and a view on the page has not acknowledged it yet
        (always False without a view)."""
        return self.has_view and self.acked_id < self.sent_id

    async def ready(self, timeout_s: float = 1.0) -> bool:
        """Until the last frame was drawn (True) or ``timeout_s`` passed (False)."""
        if not self.in_flight:
            return True
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        if not self.in_flight:  # acknowledged meanwhile
            return True
        try:
            await asyncio.wait_for(self._event.wait(), timeout=timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._event = None


class SpeedMeter:
    """Simulated seconds per wall second over the last ``window_s`` wall seconds."""

    def __init__(self, window_s: float = 3.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float, float]] = deque()  # (wall, sim_dt, wall_dt)

    def reset(self) -> None:
        """Forget every sample (a player calls it when playing starts)."""
        self._samples.clear()

    def add(self, sim_dt_s: float, wall_dt_s: float) -> None:
        """Record one frame: ``sim_dt_s`` simulated seconds advanced in ``wall_dt_s`` wall
        seconds; samples older than ``window_s`` wall seconds are dropped."""
        now = time.perf_counter()
        self._samples.append((now, sim_dt_s, wall_dt_s))
        while self._samples and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    @property
    def sim_per_wall(self) -> float:
        """Simulated seconds per wall second over the window (0 with no samples)."""
        wall = sum(s[2] for s in self._samples)
        return sum(s[1] for s in self._samples) / wall if wall > 0 else 0.0

    @property
    def frames_per_s(self) -> float:
        """Frames per wall second over the window (0 with no samples)."""
        wall = sum(s[2] for s in self._samples)
        return len(self._samples) / wall if wall > 0 else 0.0
