"""Replay: load a recorded trace, scrub through time, rerun it with other controllers.

::

    from wtlab.widgets import ReplayWidget
    w = ReplayWidget(recorder)               # or a DataFrame, "run.parquet", "run.qlog",
    w                                        # "trace.csv", or a dataset folder
    w.set_window(1.0, 2.5)                   # what the time slider does
    w.next_event("packet_lost")              # move the cursor to the next loss
    await w.rerun("bbr")                     # the Rerun button: replay against the recorded
    await w.rerun("reno")                    # server; each rerun adds an overlay

What a user may rely on:

* The trace is read once; each series is kept as sorted arrays and a window move slices
  and thins them into the existing figure traces (:mod:`wtlab.widgets.trace_view`), so a
  1,000,000-event trace stays responsive (``python -m benchmarks.widgets`` measures it).
  Two tabs: the time series (window, delivery rate of every controller, pacing, RTT)
  and the time-sequence graph (payload offset against time: sends, retransmissions,
  acks, losses, PTOs).
* The cursor is the window's right edge; the "current event" row is the last event at or
  before it. ``next_event``/``prev_event`` move the cursor one event (of a kind, if given)
  and keep the window's width.
* Rerun calls :func:`wtlab.lab.replay.replay` (derived path, recorded server behaviour,
  virtual time) in a worker thread, so the kernel stays responsive. Every rerun is kept
  as an overlay over the recording (each algorithm in its colour; a replay of the
  recorded algorithm in a shade of it) until Clear; a rerun neither moves the window nor
  the cursor (the slider's range grows if a replay runs longer). A table compares the
  recording with every replay. Replay needs the *sending* end's trace (see that
  module's docstring for the model and its limits).
* A dataset with several runs gets a run picker naming each run's scenario and
  controller (``rate_mbps=20 rtt_ms=40 ... · cubic``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd

import wtlab.cc
from wtlab.errors import ConfigError, WtlabError
from wtlab.lab.thinning import MAX_POINTS
from wtlab.widgets._common import row_html, table_html
from wtlab.widgets.trace_source import TRACE_SUFFIXES, load_trace, run_labels
from wtlab.widgets.trace_view import (
    SequenceView,
    TraceView,
    columns_of_frame,
    columns_of_records,
    series_of,
)

__all__ = ["KIND_CHOICES", "TRACE_SUFFIXES", "ReplayWidget", "SequenceView", "TraceView",
           "columns_of_frame", "columns_of_records", "load_trace", "run_labels", "series_of"]

KIND_CHOICES = ("any event", "packet_lost", "cwnd_changed", "state_changed", "packet_acked",
                "packet_sent", "rtt_sample", "path_changed", "message_delivered")


# --------------------------------------------------------------------------- the widget
def _row_dict(df: pd.DataFrame, i: int) -> dict:
    row = df.iloc[i].to_dict()
    return {k: (None if v is pd.NA or v is None or (isinstance(v, float) and math.isnan(v))
                else v) for k, v in row.items()}


class ReplayWidget:
    """``ReplayWidget(source)`` then display it; ``ReplayWidget()`` to type a path and Load.

    Controls: path + Load (and a run picker for datasets with several runs); a time-window
    range slider (its right edge is the cursor); ◀ / ▶ to the previous / next event of the
    chosen kind; a controller dropdown, Rerun (adds an overlay) and Clear (removes them).
    From code: ``load``, ``set_window``, ``next_event``, ``prev_event``, ``current_row``,
    ``rerun`` (awaitable), ``rerun_now`` (blocking), ``clear_overlays``. ``overlays`` are
    the replays shown, ``replayed`` the last one. ``replay_options`` are passed to
    :func:`wtlab.lab.replay.replay` (``capacity``, ``loss``, ``capacity_bps``, ...).
    """

    def __init__(self, source: Any = None, *, run_id: str | None = None, cc: str = "bbr",
                 meta: Mapping[str, Any] | None = None,
                 replay_options: Mapping[str, Any] | None = None,
                 max_points: int = MAX_POINTS) -> None:
        self.replay_options = dict(replay_options or {})
        self.path_text = W.Text(placeholder="trace file (.parquet .qlog .sqlog .csv) or dataset",
                                description="trace", layout=W.Layout(width="420px"))
        self.load_button = W.Button(description="Load", icon="folder-open")
        self.run_choice = W.Dropdown(options=[], description="run",
                                     layout=W.Layout(display="none"))
        self.window = W.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=1.0, step=0.001,
                                         description="window s", readout_format=".3f",
                                         continuous_update=True,
                                         layout=W.Layout(width="720px"))
        self.kind_choice = W.Dropdown(options=KIND_CHOICES, value="any event",
                                      description="step to", layout=W.Layout(width="240px"))
        self.prev_button = W.Button(description="◀", tooltip="previous event",
                                    layout=W.Layout(width="48px"))
        self.next_button = W.Button(description="▶", tooltip="next event",
                                    layout=W.Layout(width="48px"))
        names = wtlab.cc.names()
        self.algorithm = W.Dropdown(options=names, value=cc if cc in names else names[0],
                                    description="rerun with")
        self.rerun_button = W.Button(description="Rerun", icon="refresh")
        self.clear_button = W.Button(description="Clear", icon="eraser",
                                     tooltip="remove the replays' overlays",
                                     layout=W.Layout(width="auto"))
        self.status = W.HTML()
        self.event = W.HTML(row_html(None, title="event at the cursor"))
        self.comparison = W.HTML()
        self.view = TraceView(max_points=max_points)
        self.figure = self.view.figure
        self.sequence = SequenceView(max_points=max_points)
        self.tabs = W.Tab(children=[self.figure, self.sequence.figure])
        self.tabs.set_title(0, "time series")
        self.tabs.set_title(1, "sequence graph")
        self.overlays: list[Any] = []  # wtlab.lab.replay.ReplayResult, oldest first
        self._run_labels: dict[str, str] = {}
        self.trace: pd.DataFrame = pd.DataFrame()
        self.meta: dict[str, Any] = {}
        self.runs: list[str] = []
        self.replayed: Any = None  # the last wtlab.lab.replay.ReplayResult
        self.cursor: int = -1  # row index in self.trace of the event at the cursor
        self.last_redraw_points = 0
        self._times = np.array([], dtype=float)
        self._codes = np.array([], dtype=np.int16)
        self._kind_index: dict[str, int] = {}
        self._moving = False
        self._echo: tuple[float, float] | None = None  # last window set from Python
        self._task: asyncio.Future | None = None

        self.load_button.on_click(lambda _: self._guard(self.load, self.path_text.value))
        self.run_choice.observe(self._on_run, names="value")
        self.window.observe(self._on_window, names="value")
        self.prev_button.on_click(lambda _: self._guard(self.prev_event, self._kind()))
        self.next_button.on_click(lambda _: self._guard(self.next_event, self._kind()))
        self.rerun_button.on_click(lambda _: self._guard(self.rerun))
        self.clear_button.on_click(lambda _: self._guard(self.clear_overlays))
        self.widget = W.VBox([
            W.HBox([self.path_text, self.load_button, self.run_choice]),
            W.HBox([self.window]),
            W.HBox([self.kind_choice, self.prev_button, self.next_button, self.algorithm,
                    self.rerun_button, self.clear_button]),
            self.status, self.event, self.comparison, self.tabs,
        ])
        if source is not None:
            self.load(source, run_id=run_id, meta=meta)
        else:
            self.status.value = "load a trace: type its path and press Load"

    # ------------------------------------------------------------------ loading
    def load(self, source: Any, *, run_id: str | None = None,
             meta: Mapping[str, Any] | None = None) -> ReplayWidget:
        """Show the trace from ``source`` (a Recorder, a run result, a DataFrame or a path:
        :func:`wtlab.widgets.trace_source.load_trace`; ``run_id`` picks a dataset's run),
        over its whole time span with the cursor at its last event; ``meta`` adds to its
        metadata. Overlays of earlier reruns are dropped. Returns the widget."""
        df, file_meta, runs = load_trace(source, run_id=run_id)
        if not len(df):
            raise ConfigError("the trace has no events; record a session first")
        same_source = getattr(self, "_source", None) is source and run_id is not None
        if same_source and len(runs) <= 1 and len(self.runs) > 1:
            runs = self.runs  # the picker chose a run: keep offering every run
        elif file_meta.get("run_labels"):
            self._run_labels = dict(file_meta["run_labels"])
        elif not same_source:
            self._run_labels = {}
        self._source = source
        self.trace = df
        self.meta = {**file_meta, **dict(meta or {})}
        self.runs = runs
        self.replayed = None
        self.overlays = []
        self.comparison.value = ""
        self._times = df["time_s"].to_numpy(dtype=float)
        kinds = df["kind"].astype("category")
        self._codes = kinds.cat.codes.to_numpy()
        self._kind_index = {str(k): i for i, k in enumerate(kinds.cat.categories)}
        self._moving = True
        try:
            self.run_choice.options = [(self._run_labels.get(r, r), r) for r in runs]
            self.run_choice.value = self.meta.get("run_id") if len(runs) > 1 else None
            self.run_choice.layout.display = "" if len(runs) > 1 else "none"
        finally:
            self._moving = False
        self.view.set_traces([(self._recorded_label(), df, "solid")], labels=self._labels())
        self.sequence.set_traces([(self._recorded_label(), df)])
        self._set_bounds(self.view.t_min, self.view.t_max)
        self.cursor = len(df) - 1
        self._apply(self.view.t_min, self.view.t_max)
        self.status.value = (f"{len(df):,} events · {df['flow'].nunique()} flow(s) · "
                             f"{_s(self.view.t_min)}–{_s(self.view.t_max)} s")
        return self

    def _labels(self) -> dict[int, str]:
        """Flow -> controller name, from the run's metadata (``Experiment`` writes them)."""
        raw = self.meta.get("labels")
        if not isinstance(raw, Mapping):
            return {}
        out = {}
        for k, v in raw.items():
            try:
                out[int(k)] = str(v)
            except (TypeError, ValueError):
                continue
        return out

    def _recorded_label(self, flow: int | None = None) -> str:
        labels = self._labels()
        if flow is not None and flow in labels:
            return f"recorded {labels[flow]}"
        cc = self.meta.get("cc") or self.meta.get("algorithm")
        if isinstance(cc, list) and len(cc) == 1:
            cc = cc[0]
        return f"recorded {cc}" if isinstance(cc, str) and cc else "recorded"

    def _on_run(self, change: dict) -> None:
        if self._moving or change["new"] is None or not hasattr(self, "_source"):
            return
        self._guard(self.load, self._source, run_id=change["new"])

    # ---------------------------------------------------------------- scrubbing
    def _set_bounds(self, t_min: float, t_max: float) -> None:
        span = max(t_max - t_min, 1e-6)
        self._moving = True
        try:  # widen first so that value and bounds never conflict
            self.window.min, self.window.max = min(self.window.min, t_min), max(self.window.max,
                                                                                 t_max)
            self.window.value = (t_min, t_max)
            self._echo = (t_min, t_max)
            self.window.min, self.window.max = t_min, t_max
            self.window.step = 10 ** math.floor(math.log10(span / 1000))
        finally:
            self._moving = False

    def set_window(self, t0: float, t1: float) -> None:
        """Show [t0, t1] (clamped to the trace); the cursor moves to t1."""
        lo, hi = self.window.min, self.window.max
        t0, t1 = max(lo, min(t0, hi)), max(lo, min(t1, hi))
        if t1 < t0:
            t0, t1 = t1, t0
        self.window.value = (t0, t1)  # observer redraws
        if self.window.value == (t0, t1):
            self._on_window({"new": (t0, t1)})
        self._echo = (t0, t1)

    def _on_window(self, change: dict) -> None:
        if self._moving or not len(self._times):
            return
        t0, t1 = change["new"]
        if (t0, t1) == self.view.window:
            return
        echo, self._echo = self._echo, None
        if echo is not None and self._is_echo((t0, t1), echo):
            # The browser snapped a value we set to the slider's step and sent it back: not
            # a move by the user. Keep the cursor (re-deriving it from the snapped edge
            # would skip to another event) and the view.
            return
        self.cursor = int(np.searchsorted(self._times, t1, side="right")) - 1
        self._apply(t0, t1)

    def _is_echo(self, new: tuple[float, float], sent: tuple[float, float]) -> bool:
        """Whether ``new`` is ``sent`` as the slider shows it: each end either as sent or
        rounded to the slider's grid (min + k * step). A user's move of one step is not."""
        step, lo = self.window.step or 0.0, self.window.min
        tol = 1e-3 * step if step else 1e-12

        def same(v: float, e: float) -> bool:
            return abs(v - e) <= tol or (step > 0 and abs(v - (lo + round((e - lo) / step) * step))
                                         <= tol)

        return same(new[0], sent[0]) and same(new[1], sent[1])

    def _apply(self, t0: float, t1: float) -> None:
        cursor_s = float(self._times[self.cursor]) if self.cursor >= 0 else None
        self.last_redraw_points = self.view.show(t0, t1, cursor_s=cursor_s)
        self.sequence.show(t0, t1)
        self.event.value = row_html(self.current_row(), title="event at the cursor")

    def current_row(self) -> dict | None:
        """The event at the cursor (the last one at or before the window's right edge)."""
        if self.cursor < 0 or not len(self.trace):
            return None
        return _row_dict(self.trace, self.cursor)

    def _kind(self) -> str | None:
        k = self.kind_choice.value
        return None if k == "any event" else k

    def next_event(self, kind: str | None = None) -> dict | None:
        """Move the cursor to the next event (of ``kind``); None (cursor kept) if none."""
        return self._move(+1, kind)

    def prev_event(self, kind: str | None = None) -> dict | None:
        """Move the cursor to the previous event (of ``kind``); None (cursor kept) if none."""
        return self._move(-1, kind)

    def _move(self, direction: int, kind: str | None) -> dict | None:
        n = len(self._times)
        if not n:
            return None
        if kind is None:
            target = self.cursor + direction
            if not 0 <= target < n:
                return None
        else:
            code = self._kind_index.get(kind)
            if code is None:
                return None
            if direction > 0:
                hits = np.flatnonzero(self._codes[self.cursor + 1:] == code)
                if not len(hits):
                    return None
                target = self.cursor + 1 + int(hits[0])
            else:
                hits = np.flatnonzero(self._codes[:max(self.cursor, 0)] == code)
                if not len(hits):
                    return None
                target = int(hits[-1])
        self.cursor = target
        t_new = float(self._times[self.cursor])
        t0, t1 = self.view.window
        width = t1 - t0
        t0 = max(self.window.min, t_new - width)
        self._moving = True
        try:
            self.window.value = (t0, t_new)
            self._echo = (t0, t_new)
        finally:
            self._moving = False
        self._apply(t0, t_new)
        return self.current_row()

    # -------------------------------------------------------------------- rerun
    def rerun_now(self, cc: Any = None, **options: Any) -> Any:
        """Replay the trace with controller ``cc`` (blocking) and overlay the result."""
        result = self._replay(cc, options)
        self._show_replay(result)
        return result

    def rerun(self, cc: Any = None, **options: Any) -> asyncio.Future:
        """Replay in a worker thread (the kernel stays responsive); returns an awaitable
        that resolves to the :class:`~wtlab.lab.replay.ReplayResult` once it is overlaid."""
        if self._task is not None and not self._task.done():
            return self._task
        loop = _loop()
        self.rerun_button.disabled = True
        name = cc if cc is not None else self.algorithm.value
        self.status.value = f"replaying with {name} against the recorded server…"

        async def run() -> Any:
            try:
                result = await loop.run_in_executor(None, self._replay, cc, options)
                self._show_replay(result)
                return result
            except Exception as exc:
                self.status.value = f"<b>rerun failed:</b> {_esc(exc)}"
                raise
            finally:
                self.rerun_button.disabled = False

        self._task = loop.create_task(run())
        self._task.add_done_callback(_consume)
        return self._task

    def _replay(self, cc: Any, options: Mapping[str, Any]) -> Any:
        if not len(self.trace):
            raise ConfigError("nothing to rerun: load a trace first")
        from wtlab.lab.replay import replay

        return replay(self.trace, cc=cc if cc is not None else self.algorithm.value,
                      meta=self.meta, **{**self.replay_options, **options})

    def _show_replay(self, result: Any) -> None:
        """Add ``result`` as an overlay; the window and the cursor stay where they are."""
        self.replayed = result
        self.overlays.append(result)
        self._draw_overlays()
        rep = result.trace()
        self.status.value = (f"replayed with {_cc_text(result.cc)}: {len(rep):,} events "
                             f"over the recorded {len(self._recorded_part()):,} "
                             f"({len(self.overlays)} replay(s) shown)")

    def _recorded_part(self) -> pd.DataFrame:
        flow = self.overlays[0].recorded_flow if self.overlays else None
        return self.trace if flow is None else self.trace[self.trace["flow"] == flow]

    def _overlay_labels(self) -> list[str]:
        labels, seen = [], {}
        for r in self.overlays:
            name = f"{_cc_text(r.cc)} replay"
            seen[name] = seen.get(name, 0) + 1
            labels.append(name if seen[name] == 1 else f"{name} {seen[name]}")
        return labels

    def _draw_overlays(self) -> None:
        recorded = self._recorded_part()
        flow = self.overlays[0].recorded_flow if self.overlays else None
        groups = [(self._recorded_label(flow), recorded, "solid")]
        groups += [(label, r.trace(), "replay")
                   for label, r in zip(self._overlay_labels(), self.overlays, strict=True)]
        t0, t1 = self.view.window
        cursor = self.cursor
        self.view.set_traces(groups, labels=self._labels())
        self.sequence.set_traces([(g[0], g[1]) for g in groups])
        # the slider's range grows to the longest run; the window and cursor stay
        lo, hi = min(self.window.min, self.view.t_min), max(self.window.max, self.view.t_max)
        self._moving = True
        try:
            self.window.min, self.window.max = lo, hi
            self.window.value = (t0, t1)
            self._echo = (t0, t1)
        finally:
            self._moving = False
        self.cursor = cursor
        self._apply(t0, t1)
        tables = []
        for label, r in zip(self._overlay_labels(), self.overlays, strict=True):
            try:
                table = r.compare().reset_index(names="run")
            except Exception as exc:  # the overlay stands even without its metrics
                self.comparison.value = f"(no comparison table: {_esc(exc)})"
                return
            if not tables:
                tables.append(table.iloc[[0]])
            row = table.iloc[[1]].copy()
            row["run"] = label.replace(" replay", "").join(("replayed with ", ""))
            tables.append(row)
        self.comparison.value = table_html(pd.concat(tables, ignore_index=True)) if tables \
            else ""

    def clear_overlays(self) -> None:
        """Remove every replay overlay (the recording stays, window and cursor too)."""
        self.overlays = []
        self.replayed = None
        self._draw_overlays()
        self.status.value = "overlays cleared"

    # ------------------------------------------------------------------- helpers
    def _guard(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a button's action; wtlab errors go to the status line, not a traceback."""
        try:
            return fn(*args, **kwargs)
        except WtlabError as exc:
            self.status.value = f"<b>error:</b> {_esc(exc)}"
            return None

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def _loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()


def _consume(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()  # retrieved here; the status line already shows it


def _cc_text(cc: Any) -> str:
    return cc if isinstance(cc, str) else getattr(cc, "name", type(cc).__name__)


def _s(t: float) -> str:
    return f"{round(t, 6) + 0.0:.3f}"  # no "-0.000" for a first event at -1e-300 s


def _esc(exc: BaseException) -> str:
    import html

    return html.escape(str(exc))
