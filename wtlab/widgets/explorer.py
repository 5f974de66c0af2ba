"""Explorer: a whole congestion-control lesson in one widget.

Pick 1-4 flows (controller, start time, extra RTT), set the path (log-scale rate and
RTT sliders with presets, loss, buffer), then Step, Step to loss, Step to a state
change, Play at a chosen speed, or go back (◀ to the previous event, loss or state
change; or drag the timeline). Move a path slider during a run and the path changes at
the cursor's simulated time (a ``path_changed`` row): the run goes on, it is not
restarted. Save the state to a small JSON file that reopens the same view; export the
figure (PNG, SVG, PDF, HTML).

The widget is a view: the run is a :class:`wtlab.lab.timeline.Timeline` (cursor, steps
both ways, path changes, saved state), the figures a
:class:`wtlab.widgets.run_view.RunView`; no protocol or model logic lives here.

Play never blocks the kernel: it is a task on the kernel's loop that sends a frame only
once the browser has drawn the previous one (:class:`wtlab.widgets.frames.FrameGate`),
advances the simulation by the wall time that frame took times the speed (within a
compute budget, so a slow machine shows the speed it really achieves, not a backlog),
and draws incrementally. Pause and Step take effect at the next frame boundary.
"""

from __future__ import annotations

import asyncio
import html
import json
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as W

from wtlab.errors import ConfigError, WtlabError
from wtlab.lab.experiment import Experiment
from wtlab.lab.timeline import Timeline
from wtlab.widgets._common import row_html
from wtlab.widgets.controls import LABEL_STYLE, FlowsEditor, PathSlider
from wtlab.widgets.frames import SpeedMeter
from wtlab.widgets.run_view import RunView

STATE_KIND = "wtlab.explorer"
FRAME_TARGET_S = 1 / 15  # at most ~15 frames per second (the browser draws them all)
FRAME_TIMEOUT_S = 1.0  # a view that does not acknowledge a frame releases the player
COMPUTE_BUDGET_S = 0.08  # simulation time per frame is cut to fit this (wall)
MAX_FRAME_WALL_S = 0.5  # a stall (a long cell elsewhere) does not become a jump
MAX_PLAY_WALL_S = 3600.0  # a forgotten Play stops by itself
STATUS_EVERY_S = 0.25  # status line and timeline slider while playing


class Explorer:
    """``Explorer(experiment)`` then display it (``explorer`` as the last line of a cell).

    From code, what the buttons do: ``step(kinds=None)``, ``back(kinds=None)``,
    ``seek(t_s)``, ``play()`` / ``pause()``, ``advance(dt_s)``, ``reset()``,
    ``set_path(rate_bps=..)`` (a slider move), ``set_flows([...])``, ``save(path)`` /
    ``Explorer.load(path)``, ``export(path)``. ``timeline`` is the run (its ``stepper``
    and ``experiment``, whose ``schedule`` holds every path change made).
    """

    def __init__(self, experiment: Experiment | None = None, *, rate_mbps: float = 10.0,
                 rtt_ms: float = 50.0, loss_pct: float = 0.0, buffer_bdp: float = 1.0,
                 height: int = 760) -> None:
        base = experiment or Experiment()
        p = dict(base.path) if isinstance(base.path, dict) else {}
        p.setdefault("rate_bps", rate_mbps * 1e6)
        p.setdefault("rtt_s", rtt_ms / 1e3)
        p.setdefault("loss", loss_pct / 100 or None)
        p.setdefault("buffer_bdp", buffer_bdp)
        self._base = base.replace(path=p)
        self.height = height
        # ----- controls
        self.flows = FlowsEditor([f.to_dict() for f in self._base.flow_specs()],
                                 on_change=self._on_flows)
        self.algorithm = self.flows.rows[0]["cc"]  # flow 0's controller
        self.rate_slider = PathSlider("rate_bps", "rate Mbit/s", p["rate_bps"] / 1e6,
                                      lo=0.1, hi=1000, log=True, step=0.01,
                                      presets=(1, 10, 100), on_change=self._on_path)
        self.rtt_slider = PathSlider("rtt_s", "RTT ms", float(p["rtt_s"]) * 1e3, lo=1, hi=1000,
                                     log=True, step=0.01, presets=(10, 50, 200),
                                     on_change=self._on_path)
        self.loss_slider = PathSlider("loss", "loss %", 100 * float(p.get("loss") or 0.0),
                                      lo=0.0, hi=10.0, log=False, step=0.01, presets=(0, 1),
                                      fmt=".2f", on_change=self._on_path)
        buf = p.get("buffer_bdp") or 1.0
        self.buffer_slider = PathSlider("buffer_bdp", "buffer ×BDP", float(buf), lo=0.05, hi=16,
                                        log=True, step=0.01, presets=(0.25, 1, 4),
                                        on_change=self._on_path)
        self.rate, self.rtt = self.rate_slider.slider, self.rtt_slider.slider
        self.loss, self.buffer = self.loss_slider.slider, self.buffer_slider.slider
        self.speed = W.FloatLogSlider(value=1.0, base=10, min=-2, max=1.5, step=0.05,
                                      description="speed ×", readout_format=".2g",
                                      style=LABEL_STYLE, layout=W.Layout(width="300px"))
        self.speed_readout = W.HTML(layout=W.Layout(width="230px"))

        def button(text: str, icon: str, tip: str) -> W.Button:
            return W.Button(description=text, icon=icon, tooltip=tip,
                            layout=W.Layout(width="auto"))

        self.back_state_button = button("◀ state", "", "back to the previous state change")
        self.back_loss_button = button("◀ loss", "", "back to the previous loss")
        self.back_button = button("◀", "", "back one event")
        self.step_button = button("Step", "step-forward", "one event forward")
        self.loss_button = button("Step to loss", "bolt", "forward to the next loss")
        self.state_button = button("Step to state", "", "forward to the next state change")
        self.play_button = W.ToggleButton(description="Play", icon="play",
                                          layout=W.Layout(width="auto"))
        self.reset_button = button("Reset", "undo", "a fresh run from t = 0")
        self.scrubber = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.001,
                                      description="time s", readout_format=".3f",
                                      continuous_update=False, style=LABEL_STYLE,
                                      layout=W.Layout(width="760px"))
        self.status = W.HTML()
        self.event = W.HTML(row_html(None, title="current event"))
        self.file = W.Text(value="explorer.json", description="file",
                           style={"description_width": "40px"}, layout=W.Layout(width="300px"))
        self.save_button = button("Save", "save", "save the view to the file (JSON)")
        self.load_button = button("Load", "folder-open", "reopen a saved view")
        self.export_format = W.Dropdown(options=["png", "svg", "pdf", "html"], value="png",
                                        layout=W.Layout(width="80px"))
        self.export_button = button("Export figure", "image", "the figure shown, to a file")
        self.step_button.on_click(lambda _: self._guard(self.step))
        self.loss_button.on_click(lambda _: self._guard(self.step, "packet_lost"))
        self.state_button.on_click(lambda _: self._guard(self.step, "state_changed"))
        self.back_button.on_click(lambda _: self._guard(self.back))
        self.back_loss_button.on_click(lambda _: self._guard(self.back, "packet_lost"))
        self.back_state_button.on_click(lambda _: self._guard(self.back, "state_changed"))
        self.reset_button.on_click(lambda _: self._guard(self.reset))
        self.play_button.observe(self._on_play, names="value")
        self.scrubber.observe(self._on_scrub, names="value")
        self.save_button.on_click(lambda _: self._guard(self.save, self.file.value))
        self.load_button.on_click(lambda _: self._guard(self._load_here, self.file.value))
        self.export_button.on_click(lambda _: self._guard(self._export_clicked))
        # ----- the run and its view
        self._home_thread = threading.get_ident()
        self._home_loop = _loop_or_none()
        self._task: asyncio.Task | None = None
        self._playing = False
        self._scrub_setting = False
        self._scrub_set = 0.0
        self._status_at = 0.0
        self.meter = SpeedMeter()
        self.frames = 0
        self.timeline = Timeline(self.experiment())
        self.view = RunView(self.timeline, height=height)
        self.figure = self.view.trace.widget
        self.tabs = W.Tab(children=[self.view.trace.widget, self.view.sequence.widget])
        self.tabs.set_title(0, "time series")
        self.tabs.set_title(1, "sequence graph")
        self.tabs.observe(self._on_tab, names="selected_index")
        self.widget = W.VBox([
            self.flows.widget,
            W.HBox([self.rate_slider.widget, self.rtt_slider.widget]),
            W.HBox([self.loss_slider.widget, self.buffer_slider.widget]),
            W.HBox([self.back_state_button, self.back_loss_button, self.back_button,
                    self.step_button, self.loss_button, self.state_button, self.play_button,
                    self.reset_button]),
            W.HBox([self.speed, self.speed_readout, self.scrubber]),
            self.status, self.event, self.tabs,
            W.HBox([self.file, self.save_button, self.load_button, self.export_format,
                    self.export_button]),
        ])
        self._redraw()

    # ------------------------------------------------------------ model of the view
    @property
    def stepper(self):
        """The run in progress (the timeline's :class:`wtlab.lab.experiment.Stepper`),
        replaced when the run restarts or branches."""
        return self.timeline.stepper

    def experiment(self) -> Experiment:
        """The experiment the controls describe (path and flows as set; the schedule of
        the run so far is the timeline's ``experiment.schedule``)."""
        path = dict(self._base.path)
        path.update(rate_bps=self.rate_slider.value * 1e6, rtt_s=self.rtt_slider.value / 1e3,
                    loss=self.loss_slider.value / 100 or None,
                    buffer_bdp=self.buffer_slider.value)
        specs = self.flows.specs()
        flows: Any = specs if len(specs) > 1 or specs[0]["start_s"] or specs[0][
            "extra_rtt_s"] else 1
        return self._base.replace(cc=specs[0]["cc"], flows=flows, path=path, schedule=None)

    # ------------------------------------------------------------ actions
    def reset(self) -> None:
        """A fresh run of the experiment the controls describe, from t = 0."""
        self.pause()
        self.timeline.reset(self.experiment())
        self.view.attach(self.timeline)
        self._swap_figures()
        self.event.value = row_html(None, title="current event")
        self._redraw()

    def step(self, kinds: Any = None) -> dict | None:
        """One event forward (of ``kinds``); the row is shown as the current event."""
        self.pause()
        row = self.timeline.step(kinds=kinds)
        self._show_row(row)
        self._redraw()
        return row

    def back(self, kinds: Any = None) -> dict | None:
        """One event back (of ``kinds``): the cursor and the figure as they were then."""
        self.pause()
        row = self.timeline.back(kinds=kinds)
        if row is not None:
            self._show_row(row)
            self._redraw()
        return row

    def seek(self, t_s: float) -> dict | None:
        """The cursor to time ``t_s`` (the timeline slider)."""
        self.pause()
        row = self.timeline.seek(t_s)
        self._show_row(row)
        self._redraw()
        return row

    def advance(self, dt_s: float) -> int:
        """Move the cursor ``dt_s`` seconds of virtual time forward (running the engine
        past the recorded end) and redraw; returns how many rows the cursor passed."""
        n = self.timeline.advance(dt_s)
        self._redraw()
        return n

    def set_path(self, **changes: Any) -> dict:
        """What moving a path slider does: at t = 0 a new run on the new path; later, the
        path changes at the cursor (``rate_bps``, ``rtt_s``, ``loss``, ``buffer_bdp``)."""
        for name, value in changes.items():
            slider = self._slider(name)
            slider.set(value * (1e-6 if name == "rate_bps" else 1e3 if name == "rtt_s"
                                else 100 if name == "loss" else 1.0))
        return self._apply_path(changes)

    def set_flows(self, flows: list[dict[str, Any]]) -> None:
        """What the flows editor does (``[{"cc": "bbr", "start_s": 0, "extra_rtt_s": 0}]``)."""
        self.flows.set_specs(flows)
        self._on_flows()

    # ------------------------------------------------------------ reactions
    def _slider(self, name: str) -> PathSlider:
        return {"rate_bps": self.rate_slider, "rtt_s": self.rtt_slider,
                "loss": self.loss_slider, "buffer_bdp": self.buffer_slider}[name]

    def _on_path(self, name: str, value: float) -> None:
        scale = {"rate_bps": 1e6, "rtt_s": 1e-3, "loss": 1e-2, "buffer_bdp": 1.0}[name]
        self._guard(self._apply_path, {name: value * scale})

    def _apply_path(self, changes: dict[str, Any]) -> dict:
        tl = self.timeline
        if tl.cursor < 0 and tl.now_s == 0:  # nothing has happened yet: a new base path
            self.reset()
            return {}
        before = tl.stepper
        extra = tl.change_path(source="explorer", **{k: (v if v is not None else 0.0)
                                                     for k, v in changes.items()})
        if tl.stepper is not before:  # a change in the past: the run branched there
            self.view.attach(tl)
            self._swap_figures()
        self._show_row(tl.row())
        self._redraw()
        return extra

    def _on_flows(self) -> None:
        self._guard(self._apply_flows)

    def _apply_flows(self) -> None:
        tl = self.timeline
        old = tl.experiment.flow_specs()
        new = self.flows.specs()
        t = tl.time_s
        keeps_history = (t > 0 and len(new) > len(old) and all(
            a.to_dict() == b for a, b in zip(old, new[:len(old)], strict=False)))
        if not keeps_history:
            self.reset()
            return
        # added flows start at the cursor at the earliest: the past stays as it was
        for spec in new[len(old):]:
            spec["start_s"] = max(spec["start_s"], t)
        self.flows.set_specs(new)
        self.pause()
        exp = tl.experiment.replace(flows=new, cc=new[0]["cc"])
        tl._rebuild(exp, t)
        tl.to_end()
        self.view.attach(tl)
        self._swap_figures()
        self._redraw()

    def _swap_figures(self) -> None:
        children = [self.view.trace.widget, self.view.sequence.widget]
        if list(self.tabs.children) != children:
            self.tabs.children = children
            self.tabs.set_title(0, "time series")
            self.tabs.set_title(1, "sequence graph")
        self.figure = self.view.trace.widget

    def _on_tab(self, change: dict) -> None:
        self._guard(self._show_tab, change["new"])

    def _show_tab(self, index: int | None) -> None:
        self.view.sequence_visible = index == 1
        if self.view.sequence_visible:
            self.view.show_sequence()

    def _on_scrub(self, change: dict) -> None:
        new = float(change["new"])
        if self._scrub_setting or abs(new - self._scrub_set) < self.scrubber.step / 2:
            return  # set from here, or the browser echoing it
        self._guard(self.seek, new)

    def _show_row(self, row: dict | None) -> None:
        self.event.value = row_html(row, title="current event")

    def _redraw(self, *, push: bool = True) -> None:
        """The figures and the status line at the cursor (``push=False``: prepared, sent
        by the next ``view.push()``)."""
        tl = self.timeline
        self.view.update(tl.cursor, tl.time_s)
        if push:
            self.view.push()
        if self._playing and not push:
            # while playing, the status line and the timeline follow a few times a second
            # (each is a message and a page reflow; the figure is what must keep up)
            wall = time.perf_counter()
            if wall - self._status_at < STATUS_EVERY_S:
                return
            self._status_at = wall
        n = tl.cursor + 1
        total = len(tl)
        controllers = tl.stepper.controllers
        cwnd, state = tl.cursor_state(0)
        if cwnd is None and tl.at_end:
            cwnd, state = controllers[0].cwnd, controllers[0].state
        where = (f" (computed to {tl.now_s:.3f} s: {total:,} events)"
                 if tl.now_s > tl.time_s + 1e-9 else "")
        self.status.value = (
            f"t = {tl.time_s:.3f} s · {n} events{where}"
            + (f" · cwnd {cwnd / 1e3:.1f} KB" if cwnd is not None else "")
            + f" · state {html.escape(str(state))}"
            + (f" · {len(controllers)} flows" if len(controllers) > 1 else "")
            + (" · <b>playing</b>" if self._playing else ""))
        self._scrub_setting = True
        try:
            self.scrubber.max = max(1.0, round(tl.now_s + 0.0005, 3))
            self._scrub_set = min(round(tl.time_s, 3), self.scrubber.max)
            self.scrubber.value = self._scrub_set
        finally:
            self._scrub_setting = False

    # ------------------------------------------------------------ playing
    def _on_play(self, change: dict) -> None:
        self._guard(self.play if change["new"] else self.pause)

    def play(self) -> asyncio.Task:
        """Start playing on the running event loop (the kernel's); returns the task."""
        if self._task is None or self._task.done():
            self._playing = True
            self.meter.reset()
            self._task = _loop().create_task(self._play_loop())
        if not self.play_button.value:
            self.play_button.value = True
        self.play_button.description, self.play_button.icon = "Pause", "pause"
        return self._task

    def pause(self) -> None:
        """Stop playing now (at the frame boundary the player is at)."""
        was = self._playing
        self._playing = False
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        if self.play_button.value:
            self.play_button.value = False
        self.play_button.description, self.play_button.icon = "Play", "play"
        if was:
            self._redraw()
            self.speed_readout.value = (f"paused · last {self.meter.sim_per_wall:.2f} sim-s/s, "
                                        f"{self.meter.frames_per_s:.0f} frames/s")

    async def _play_loop(self, max_frames: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        gate = self.view.trace.gate
        started = last = loop.time()
        frames = 0
        self.view.playing = True
        try:
            while self._playing and loop.time() - started < MAX_PLAY_WALL_S:
                if max_frames is not None and frames >= max_frames:
                    break
                # the next frame is computed while the browser draws the previous one ...
                now = loop.time()
                wall_dt = min(now - last, MAX_FRAME_WALL_S) if frames else FRAME_TARGET_S
                last = now
                want = self.speed.value * wall_dt
                t0 = time.perf_counter()
                done = 0.0
                while done < want - 1e-12:  # within the compute budget
                    piece = min(want - done, max(want / 4, 1e-3))
                    self.timeline.advance(piece)
                    done += piece
                    if time.perf_counter() - t0 > COMPUTE_BUDGET_S:
                        break
                self._redraw(push=False)
                await gate.ready(FRAME_TIMEOUT_S)  # ... and sent once it has drawn it
                if not self._playing:
                    break
                self.view.push()
                frames += 1
                self.frames += 1
                self.meter.add(done, wall_dt)
                if frames % 4 == 1:
                    self.speed_readout.value = (
                        f"{self.meter.sim_per_wall:.2f} sim-s/s achieved, "
                        f"{self.meter.frames_per_s:.0f} frames/s")
                spent = loop.time() - now
                await asyncio.sleep(max(0.0, FRAME_TARGET_S - spent))
        finally:
            self.view.playing = False
            if max_frames is not None:
                self._playing = False

    # ------------------------------------------------------------ saving and export
    def state(self) -> dict[str, Any]:
        """The view as JSON-ready data: the run (experiment with its path schedule, seed,
        how far it ran, the cursor) and the view's settings."""
        return {"kind": STATE_KIND, "version": 1, "timeline": self.timeline.state(),
                "view": {"speed": self.speed.value, "tab": self.tabs.selected_index or 0,
                         "flows": self.flows.specs()}}

    def save(self, path: str) -> Path:
        """Write :meth:`state` to ``path`` (JSON, atomically)."""
        from wtlab.lab.export import write_atomic

        out = write_atomic(Path(path).expanduser(),
                           (json.dumps(self.state(), indent=1) + "\n").encode())
        self.status.value = f"saved to {html.escape(str(out))}"
        return out

    @classmethod
    def load(cls, path: str, **kwargs: Any) -> Explorer:
        """An Explorer showing the saved view (same spec, schedule, seed and cursor)."""
        state = _read_state(path)
        tl = Timeline.from_state(state["timeline"])
        ex = cls(tl.experiment.replace(schedule=None), **kwargs)
        ex._adopt(tl, state)
        return ex

    def _load_here(self, path: str) -> None:
        state = _read_state(path)
        self._adopt(Timeline.from_state(state["timeline"]), state)

    def _adopt(self, tl: Timeline, state: dict[str, Any]) -> None:
        self.pause()
        exp = tl.experiment
        p = dict(exp.path or {})
        self._base = exp.replace(schedule=None)
        for change in exp.schedule or ():  # the sliders show the path as last changed
            for name in ("rate_bps", "rtt_s", "loss", "buffer_bdp"):
                if getattr(change, name) is not None:
                    p[name] = getattr(change, name)
        for name, value in (("rate_bps", p.get("rate_bps")), ("rtt_s", p.get("rtt_s")),
                            ("loss", p.get("loss") or 0.0), ("buffer_bdp", p.get("buffer_bdp"))):
            if value is not None:
                self._slider(name).set(float(value) * (1e-6 if name == "rate_bps" else 1e3
                                                       if name == "rtt_s" else 100
                                                       if name == "loss" else 1.0))
        self.flows.set_specs([f.to_dict() for f in exp.flow_specs()])
        self.timeline.stepper.close()
        self.timeline = tl
        self.view.attach(tl)
        self._swap_figures()
        view = state.get("view") or {}
        if "speed" in view:
            self.speed.value = float(view["speed"])
        self.tabs.selected_index = int(view.get("tab", 0) or 0)
        self._show_row(tl.row())
        self._redraw()

    def export(self, path: str, *, format: str | None = None) -> Path:
        """The figure shown (time series or sequence graph) to ``path`` (.png .svg .pdf
        .html; see :func:`wtlab.lab.export.save_figure`)."""
        import plotly.graph_objects as go

        from wtlab.lab.export import save_figure

        fig = self.view.sequence.widget if self.tabs.selected_index == 1 else self.figure
        return save_figure(go.Figure(fig), path, format=format)

    def _export_clicked(self) -> asyncio.Future:
        """The Export button: the browser-based export runs in a worker thread."""
        import plotly.graph_objects as go

        from wtlab.lab.export import save_figure

        fmt = self.export_format.value
        target = Path(self.file.value).expanduser().with_suffix(f".{fmt}")
        fig = go.Figure(self.view.sequence.widget if self.tabs.selected_index == 1
                        else self.figure)
        self.status.value = f"exporting {html.escape(str(target))}…"

        async def run() -> None:
            try:
                out = await _loop().run_in_executor(None, save_figure, fig, target)
                self.status.value = f"figure written to {html.escape(str(out))}"
            except WtlabError as exc:
                self.status.value = f"<b>export failed:</b> {html.escape(str(exc))}"

        return _loop().create_task(run())

    # ------------------------------------------------------------ helpers
    def _guard(self, fn: Any, *args: Any) -> Any:
        """A control's action: run on the kernel's main thread (ipykernel 7 may deliver
        widget messages on a subshell thread; the player runs on the main loop), wtlab
        errors to the status line, not a traceback."""
        home = self._home_loop
        if threading.get_ident() != self._home_thread and home is not None and home.is_running():
            self._home_loop.call_soon_threadsafe(lambda: self._guard(fn, *args))
            return None
        try:
            return fn(*args)
        except WtlabError as exc:
            self.status.value = f"<b>error:</b> {html.escape(str(exc))}"
            return None

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def _read_state(path: str) -> dict[str, Any]:
    try:
        state = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path!r} ({exc.strerror}); give a file saved by "
                          "Explorer.save") from None
    except ValueError:
        raise ConfigError(f"{path!r} is not JSON; give a file saved by Explorer.save") from None
    if not isinstance(state, dict) or state.get("kind") != STATE_KIND:
        raise ConfigError(f"{path!r} is not a saved Explorer view")
    return state


def _loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()


def _loop_or_none() -> asyncio.AbstractEventLoop | None:
    """The loop the kernel runs cells on (None outside one: then nothing is marshalled)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            return None
