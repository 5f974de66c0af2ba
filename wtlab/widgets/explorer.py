"""Explorer: pick a controller, move the path sliders, Step / Play / Reset, watch the window.

The widget is a view over a :class:`wtlab.lab.Stepper`; it holds no protocol logic.
Play runs as an asyncio task on the kernel's loop (it never blocks the kernel) and
redraws once per tick in one batched figure update.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

import wtlab.cc
from wtlab.lab.experiment import Experiment, Stepper
from wtlab.lab.plots import trace_figure
from wtlab.widgets._common import refresh_figure, row_html

TICK_S = 0.25  # wall seconds between redraws while playing


class Explorer:
    """``Explorer(experiment)`` then display it (``explorer`` as the last line of a cell).

    Controls: controller dropdown (every registered class, user ones included), rate,
    RTT, loss and buffer sliders (changing one resets the run on the new path),
    Step (one event), Step to loss, Play/Pause with a speed in simulated seconds per
    wall second, Reset. ``step()``, ``play()``, ``pause()``, ``reset()`` do the same
    from code.
    """

    def __init__(self, experiment: Experiment | None = None, *, rate_mbps: float = 10.0,
                 rtt_ms: float = 50.0, loss_pct: float = 0.0, buffer_bdp: float = 1.0) -> None:
        base = experiment or Experiment()
        p = base.path if isinstance(base.path, dict) else {}
        self._base = base
        self.algorithm = W.Dropdown(options=wtlab.cc.names(), value=_cc_name(base.cc),
                                    description="controller")
        # Values go onto each slider's grid first: a browser snaps off-grid values and
        # echoes them back, which would silently change the path and reset the run.
        self.rate = W.FloatSlider(value=_on_grid(p.get("rate_bps", rate_mbps * 1e6) / 1e6, 0.01),
                                  min=0.1, max=1000, step=0.01, description="rate Mbit/s")
        self.rtt = W.FloatSlider(value=_on_grid(p.get("rtt_s", rtt_ms / 1e3) * 1e3, 0.1),
                                 min=1, max=1000, step=0.1, description="RTT ms")
        self.loss = W.FloatSlider(value=_on_grid(100 * float(p.get("loss", loss_pct / 100) or 0),
                                                 0.01), min=0, max=20, step=0.01,
                                  description="loss %")
        self.buffer = W.FloatSlider(value=_on_grid(p.get("buffer_bdp", buffer_bdp), 0.01),
                                    min=0.05, max=16, step=0.01, description="buffer ×BDP")
        self.speed = W.FloatLogSlider(value=1.0, base=10, min=-2, max=1.5, step=0.1,
                                      description="sim s / s")
        self.step_button = W.Button(description="Step", icon="step-forward")
        self.loss_button = W.Button(description="Step to loss", icon="bolt")
        self.play_button = W.ToggleButton(description="Play", icon="play")
        self.reset_button = W.Button(description="Reset", icon="undo")
        self.status = W.HTML()
        self.event = W.HTML(row_html(None, title="current event"))
        self.figure = go.FigureWidget(trace_figure(_empty_frame()))
        self.figure.layout.height = 620
        self.step_button.on_click(lambda _: self.step())
        self.loss_button.on_click(lambda _: self.step(kinds="packet_lost"))
        self.reset_button.on_click(lambda _: self.reset())
        self.play_button.observe(self._on_play, names="value")
        for w in (self.algorithm, self.rate, self.rtt, self.loss, self.buffer):
            w.observe(lambda _change: self.reset(), names="value")
        self._task: asyncio.Task | None = None
        self.stepper: Stepper = None  # type: ignore[assignment]
        self.widget = W.VBox([
            W.HBox([self.algorithm, self.rate, self.rtt]),
            W.HBox([self.loss, self.buffer, self.speed]),
            W.HBox([self.step_button, self.loss_button, self.play_button, self.reset_button,
                    self.status]),
            self.event, self.figure,
        ])
        self.reset()

    # ------------------------------------------------------------ model of the view
    def experiment(self) -> Experiment:
        """The experiment the sliders describe now."""
        path = {"rate_bps": self.rate.value * 1e6, "rtt_s": self.rtt.value / 1e3,
                "loss": self.loss.value / 100 or None, "buffer_bdp": self.buffer.value}
        return self._base.replace(cc=self.algorithm.value, path=path, flows=1)

    def reset(self) -> None:
        """Start the run again from the sliders' values."""
        self.pause()
        if self.stepper is not None:
            self.stepper.close()
        self.stepper = self.experiment().stepper()
        self.event.value = row_html(None, title="current event")
        self.redraw()

    def step(self, kinds: Any = None) -> dict | None:
        """Step to the next event (of ``kinds``, if given), show it and redraw; returns the row (or
        ``None``).
        """
        row = self.stepper.step(kinds=kinds, max_time_s=self.stepper.now + 60.0)
        self.event.value = row_html(row, title="current event")
        self.redraw()
        return row

    def advance(self, dt_s: float) -> int:
        """Advance the run by ``dt_s`` virtual seconds and redraw; returns the number of rows added.
        """
        n = self.stepper.advance(dt_s)
        self.redraw()
        return n

    def redraw(self) -> None:
        """Redraw the figure and the status line from the run so far."""
        s = self.stepper
        df = s.trace()
        refresh_figure(self.figure, trace_figure(df, labels=s.experiment.labels,
                                                 bdp_bytes=s.path.bdp_bytes))
        cc = s.controllers[0]
        self.status.value = (f"t = {s.now:.3f} s · {len(df)} events · cwnd {cc.cwnd / 1e3:.1f} KB"
                             f" · state {cc.state}")

    # ----------------------------------------------------------------- playing
    def _on_play(self, change: dict) -> None:
        if change["new"]:
            self.play()
        else:
            self.pause()

    def play(self) -> asyncio.Task:
        """Start playing on the running event loop (the kernel's); returns the task."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_event_loop().create_task(self._play_loop())
        self.play_button.description, self.play_button.icon = "Pause", "pause"
        return self._task

    def pause(self) -> None:
        """Stop playing."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        if self.play_button.value:
            self.play_button.value = False
        self.play_button.description, self.play_button.icon = "Play", "play"

    async def _play_loop(self, max_ticks: int = 100_000) -> None:
        for _ in range(max_ticks):  # bounded: a forgotten Play stops by itself
            self.advance(self.speed.value * TICK_S)
            await asyncio.sleep(TICK_S)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def _on_grid(value: float, step: float) -> float:
    return round(round(value / step) * step, 10)


def _cc_name(cc: Any) -> str:
    return cc if isinstance(cc, str) else getattr(cc, "name", "cubic")


def _empty_frame():
    from wtlab.trace.recorder import Recorder

    return Recorder().to_pandas()
