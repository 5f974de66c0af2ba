"""Replay: load a recorded trace, scrub through time, rerun it with another controller.

::

    from wtlab.widgets import ReplayWidget
    w = ReplayWidget(recorder)               # or a DataFrame, "run.parquet", "run.qlog",
    w                                        # "trace.csv", or a dataset folder
    w.set_window(1.0, 2.5)                   # what the time slider does
    w.next_event("packet_lost")              # move the cursor to the next loss
    await w.rerun("bbr")                     # the Rerun button: replay against the recorded
                                             # server, overlaid on the original

What a user may rely on:

* The trace is read once. Each series (cwnd, bytes in flight, losses, pacing and delivery
  rate, RTT) is kept as sorted numpy arrays; moving the window slices them by binary
  search and thins the slice for display (``wtlab.lab.plots.thin``, min/max per bin, at
  most ``max_points`` per series), then updates the existing figure traces in one batched
  update. Nothing rebuilds a DataFrame or a figure on a slider move, so a 1,000,000-event
  trace stays responsive (``python -m benchmarks.widgets`` measures it).
* The cursor is the window's right edge; the "current event" row is the last event at or
  before it. ``next_event``/``prev_event`` move the cursor one event (of a kind, if given)
  and keep the window's width.
* Rerun calls :func:`wtlab.lab.replay.replay` (derived path, recorded server behaviour,
  virtual time) in a worker thread, so the kernel stays responsive; the replayed trace is
  overlaid (dashed) on the recorded one and a recorded-vs-replayed table is shown. Replay
  needs the *sending* end's trace (see that module's docstring for the model and its limits).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import wtlab.cc
from wtlab.errors import ConfigError, WtlabError
from wtlab.lab.plots import MAX_POINTS, thin
from wtlab.widgets._common import row_html, table_html

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf")
KIND_CHOICES = ("any event", "packet_lost", "cwnd_changed", "state_changed", "packet_acked",
                "packet_sent", "rtt_sample", "message_delivered")
TRACE_SUFFIXES = (".parquet", ".qlog", ".sqlog", ".json", ".csv")


# --------------------------------------------------------------------------- loading
def load_trace(source: Any, *, run_id: str | None = None
               ) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """(trace, meta, run ids) from a Recorder, a run result, a DataFrame or a path.

    Paths: ``.parquet`` (``wtlab.trace.export``), ``.qlog``/``.sqlog``/``.json``
    (``wtlab.trace.qlog``), ``.csv``, or a dataset folder (``wtlab.datasets``). A trace
    holding several runs (a dataset) is cut to ``run_id`` (default: the first run).
    """
    meta: dict[str, Any] = {}
    if hasattr(source, "to_pandas") and hasattr(source, "meta"):  # Recorder
        df, meta = source.to_pandas(), dict(source.meta)
    elif hasattr(source, "recorder") and hasattr(source.recorder, "to_pandas"):  # Result
        df, meta = source.recorder.to_pandas(), dict(source.recorder.meta)
    elif isinstance(source, pd.DataFrame):
        df, meta = source, dict(source.attrs.get("meta") or {})
    elif isinstance(source, (str, Path)):
        df, meta = _read_path(Path(source).expanduser(), run_id)
    else:
        raise ConfigError(f"cannot load a trace from a {type(source).__name__}: give a Recorder, "
                          "a Result, a trace DataFrame, or the path of a .parquet/.qlog/.sqlog/"
                          ".csv file or a dataset folder")
    for col in ("time_s", "flow", "kind"):
        if col not in df.columns:
            raise ConfigError(f"the trace has no {col!r} column; give a table in the wtlab trace "
                              "schema (wtlab.trace.schema)")
    runs: list[str] = []
    if "run_id" in df.columns and len(df):
        runs = [str(r) for r in pd.unique(df["run_id"].astype(str))]
        if len(runs) > 1 or run_id is not None:
            chosen = run_id if run_id is not None else runs[0]
            if chosen not in runs:
                raise ConfigError(f"run_id {chosen!r} is not in this trace; it holds {runs[:5]}"
                                  f"{' ...' if len(runs) > 5 else ''}")
            df = df[df["run_id"].astype(str) == chosen]
            meta = {**meta, "run_id": chosen}
    t = df["time_s"].to_numpy(dtype=float)
    if len(t) > 1 and not (np.diff(t) >= 0).all():
        df = df.sort_values("time_s", kind="stable")  # once, at load: scrubbing needs order
    if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0:
        df = df.reset_index(drop=True)
    return df, meta, runs


def _read_path(path: Path, run_id: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    if path.is_dir():
        from wtlab import datasets
        from wtlab.trace.export import read_meta

        filters = {"run_id": run_id} if run_id is not None else None
        df = datasets.load(path, filters=filters)
        meta: dict[str, Any] = {}
        if len(df):
            rid = run_id or str(df["run_id"].iloc[0])
            part = next(iter(path.rglob(f"{datasets.PART_PREFIX}{rid}.parquet")), None)
            if part is not None:
                meta = read_meta(part)
        return df, meta
    if not path.exists():
        raise ConfigError(f"{str(path)!r} does not exist; give a trace file "
                          f"({', '.join(TRACE_SUFFIXES)}) or a dataset folder")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from wtlab.trace.export import read_parquet

        df = read_parquet(path)
        return df, dict(df.attrs.get("meta") or {})
    if suffix in (".qlog", ".sqlog", ".json"):
        from wtlab.trace.qlog import read_qlog

        df = read_qlog(path)
        return df, dict(df.attrs.get("meta") or {})
    if suffix == ".csv":
        from wtlab.trace.export import read_csv

        return read_csv(path), {}
    raise ConfigError(f"{path.name}: unknown trace format {suffix!r}; use one of "
                      f"{', '.join(TRACE_SUFFIXES)} or a dataset folder")


# --------------------------------------------------------------------------- the view
@dataclass
class _Series:
    x: np.ndarray  # time, sorted
    y: np.ndarray


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return df[name].to_numpy(dtype=float, na_value=np.nan)


def _kind_mask(kind: pd.Series, name: str) -> np.ndarray:
    if isinstance(kind.dtype, pd.CategoricalDtype):  # compare codes, not 1M strings
        cats = list(kind.cat.categories)
        if name not in cats:
            return np.zeros(len(kind), dtype=bool)
        return kind.cat.codes.to_numpy() == cats.index(name)
    return (kind.astype(str) == name).to_numpy()


def columns_of_frame(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The arrays a plot needs, from a trace DataFrame (display units, NaN for NA)."""
    return {"t": df["time_s"].to_numpy(dtype=float), "flow": df["flow"].to_numpy(),
            "lost": _kind_mask(df["kind"], "packet_lost"),
            "rtt_row": _kind_mask(df["kind"], "rtt_sample"),
            "cwnd": _column(df, "cwnd") / 1e3, "bif": _column(df, "bytes_in_flight") / 1e3,
            "pacing": _column(df, "pacing_rate_bps") / 1e6,
            "delivery": _column(df, "delivery_rate_bps") / 1e6,
            "rtt": _column(df, "latest_rtt_s") * 1e3}


def columns_of_records(rec: np.ndarray, kinds: Sequence[str]) -> dict[str, np.ndarray]:
    """The same arrays straight from a Recorder's packed records (no DataFrame built)."""
    from wtlab.trace.schema import NO_BYTES_U32

    def u32(col: str) -> np.ndarray:
        v = rec[col].astype(float)
        v[rec[col] == NO_BYTES_U32] = np.nan
        return v

    code = {k: i for i, k in enumerate(kinds)}
    k = rec["kind"]
    return {"t": rec["time_s"].astype(float), "flow": rec["flow"],
            "lost": k == code.get("packet_lost", -1), "rtt_row": k == code.get("rtt_sample", -1),
            "cwnd": u32("cwnd") / 1e3, "bif": u32("bytes_in_flight") / 1e3,
            "pacing": rec["pacing_rate_bps"].astype(float) / 1e6,
            "delivery": rec["delivery_rate_bps"].astype(float) / 1e6,
            "rtt": rec["latest_rtt_s"].astype(float) * 1e3}


def series_of(trace: pd.DataFrame | Mapping[str, np.ndarray], *, label: str,
              dash: str = "solid", color_offset: int = 0,
              labels: Mapping[int, str] | None = None) -> list[tuple[dict, _Series]]:
    """Plot series of one trace (a DataFrame or ``columns_of_*`` arrays): (plotly trace
    properties, arrays), one set per flow, each sorted by time."""
    c = columns_of_frame(trace) if isinstance(trace, pd.DataFrame) else trace
    if len(c["t"]) > 1 and (np.diff(c["t"]) < 0).any():  # windows are cut by binary search
        order = np.argsort(c["t"], kind="stable")
        c = {k: np.asarray(v)[order] for k, v in c.items()}
    t, flow = c["t"], c["flow"]
    flows = sorted(int(f) for f in np.unique(flow)) if len(flow) else []
    out: list[tuple[dict, _Series]] = []
    for i, f in enumerate(flows):
        m = flow == f if len(flows) > 1 else np.ones(len(t), dtype=bool)
        color = PALETTE[(i + color_offset) % len(PALETTE)]
        name = label if len(flows) == 1 else f"{label} {(labels or {}).get(f, f'flow {f}')}"
        if len(flows) > 1 and label == "recorded" and labels and f in labels:
            name = f"recorded {labels[f]}"

        def add(row: int, y: np.ndarray, sel: np.ndarray, what: str, *, mode: str = "lines",
                line: dict | None = None, marker: dict | None = None,
                name: str = name, color: str = color) -> None:
            sel = sel & ~np.isnan(y)
            if not sel.any():
                return
            props = {"name": f"{name} {what}", "mode": mode, "legendgroup": name, "row": row}
            if line is not None:
                props["line"] = {"color": color, **line}
            if marker is not None:
                props["marker"] = {"color": color, **marker}
            out.append((props, _Series(t[sel], y[sel])))

        add(1, c["cwnd"], m, "cwnd", line={"dash": dash})
        add(1, c["bif"], m, "in flight", line={"dash": "dot", "width": 1})
        add(1, c["cwnd"], m & c["lost"], "loss", mode="markers",
            marker={"symbol": "x", "size": 7})
        add(2, c["pacing"], m, "pacing", line={"dash": dash})
        add(2, c["delivery"], m, "delivery", line={"dash": "dot"})
        rtt_rows = m & c["rtt_row"]
        add(3, c["rtt"], rtt_rows if rtt_rows.any() else m, "RTT", line={"dash": dash})
    return out


class TraceView:
    """A FigureWidget over traces whose window moves cheaply (see the module docstring).

    ``set_traces([(label, df, dash), ...])`` builds the figure once; ``show(t0, t1)``
    re-slices and thins every series into the existing traces in one batched update.
    """

    def __init__(self, *, height: int = 680, max_points: int = MAX_POINTS) -> None:
        self.max_points = max_points
        self.series: list[_Series] = []
        self.figure = go.FigureWidget(self._layout())
        self.figure.layout.height = height
        self.t_min, self.t_max = 0.0, 1.0
        self.window = (0.0, 1.0)
        self.cursor_s: float | None = None

    @staticmethod
    def _layout():
        fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                            subplot_titles=("congestion window (KB)", "rate (Mbit/s)",
                                            "RTT (ms)"))
        fig.update_xaxes(title_text="time (s)", row=3, col=1)
        fig.update_layout(legend={"groupclick": "togglegroup"},
                          margin={"l": 60, "r": 20, "t": 50, "b": 40})
        return fig

    def set_traces(self, groups: Sequence[tuple[str, Any, str]], *,
                   labels: Mapping[int, str] | None = None) -> None:
        """Show these traces: ``(label, DataFrame, dash)`` each; ``labels`` names the flows."""
        specs: list[tuple[dict, _Series]] = []
        for i, (label, df, dash) in enumerate(groups):
            specs.extend(series_of(df, label=label, dash=dash, color_offset=i, labels=labels))
        self.series = [s for _, s in specs]
        xs = [s.x for s in self.series if len(s.x)]
        self.t_min = float(min(x[0] for x in xs)) if xs else 0.0
        self.t_max = float(max(x[-1] for x in xs)) if xs else 1.0
        names = [props["name"] for props, _ in specs]
        if names != [t.name for t in self.figure.data]:  # new series: rebuild the traces once
            traces, rows = [], []
            for props, _ in specs:
                props = dict(props)
                rows.append(props.pop("row"))
                traces.append(go.Scattergl(x=[], y=[], **props))
            with self.figure.batch_update():
                self.figure.data = ()
                if traces:
                    self.figure.add_traces(traces, rows=rows, cols=[1] * len(rows))
        self.show(self.t_min, self.t_max)

    def show(self, t0: float, t1: float, *, cursor_s: float | None = None) -> int:
        """Draw the window [t0, t1]; returns how many points were sent to the figure."""
        self.window = (float(t0), float(t1))
        self.cursor_s = cursor_s
        points = 0
        with self.figure.batch_update():
            for trace, s in zip(self.figure.data, self.series, strict=True):
                lo = int(np.searchsorted(s.x, t0, side="left"))
                hi = int(np.searchsorted(s.x, t1, side="right"))
                x, y = thin(s.x[lo:hi], s.y[lo:hi], self.max_points)
                trace.x, trace.y = x, y
                points += len(x)
            pad = (t1 - t0) * 0.01 or 1e-3
            self.figure.update_xaxes(range=[t0 - pad, t1 + pad])
            self.figure.layout.shapes = [] if cursor_s is None else [
                {"type": "line", "xref": "x", "yref": "paper", "x0": cursor_s, "x1": cursor_s,
                 "y0": 0, "y1": 1, "line": {"color": "gray", "width": 1, "dash": "dot"}}]
        return points


# --------------------------------------------------------------------------- the widget
def _row_dict(df: pd.DataFrame, i: int) -> dict:
    row = df.iloc[i].to_dict()
    return {k: (None if v is pd.NA or v is None or (isinstance(v, float) and math.isnan(v))
                else v) for k, v in row.items()}


class ReplayWidget:
    """``ReplayWidget(source)`` then display it; ``ReplayWidget()`` to type a path and Load.

    Controls: path + Load (and a run picker for datasets with several runs); a time-window
    range slider (its right edge is the cursor); ◀ / ▶ to the previous / next event of the
    chosen kind; a controller dropdown and Rerun. From code: ``load``, ``set_window``,
    ``next_event``, ``prev_event``, ``current_row``, ``rerun`` (awaitable),
    ``rerun_now`` (blocking). ``replay_options`` are passed to
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
        self.status = W.HTML()
        self.event = W.HTML(row_html(None, title="event at the cursor"))
        self.comparison = W.HTML()
        self.view = TraceView(max_points=max_points)
        self.figure = self.view.figure
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
        self.widget = W.VBox([
            W.HBox([self.path_text, self.load_button, self.run_choice]),
            W.HBox([self.window]),
            W.HBox([self.kind_choice, self.prev_button, self.next_button, self.algorithm,
                    self.rerun_button]),
            self.status, self.event, self.comparison, self.figure,
        ])
        if source is not None:
            self.load(source, run_id=run_id, meta=meta)
        else:
            self.status.value = "load a trace: type its path and press Load"

    # ------------------------------------------------------------------ loading
    def load(self, source: Any, *, run_id: str | None = None,
             meta: Mapping[str, Any] | None = None) -> ReplayWidget:
        """Load a recording (a Recorder, a DataFrame or a trace file; ``run_id`` picks one run of a
        dataset) and redraw; returns the widget. :class:`~wtlab.errors.ConfigError` for an empty
        trace.
        """
        df, file_meta, runs = load_trace(source, run_id=run_id)
        if not len(df):
            raise ConfigError("the trace has no events; record a session first")
        self._source = source
        self.trace = df
        self.meta = {**file_meta, **dict(meta or {})}
        self.runs = runs
        self.replayed = None
        self.comparison.value = ""
        self._times = df["time_s"].to_numpy(dtype=float)
        kinds = df["kind"].astype("category")
        self._codes = kinds.cat.codes.to_numpy()
        self._kind_index = {str(k): i for i, k in enumerate(kinds.cat.categories)}
        self._moving = True
        try:
            self.run_choice.options = runs
            self.run_choice.value = self.meta.get("run_id") if len(runs) > 1 else None
            self.run_choice.layout.display = "" if len(runs) > 1 else "none"
        finally:
            self._moving = False
        self.view.set_traces([(self._recorded_label(), df, "solid")], labels=self._labels())
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
        self.replayed = result
        rep = result.trace()
        recorded = self.trace[self.trace["flow"] == result.recorded_flow]
        self.view.set_traces([(self._recorded_label(result.recorded_flow), recorded, "solid"),
                              (f"{_cc_text(result.cc)} replay", rep, "dash")])
        t0, t1 = self.view.t_min, self.view.t_max
        self._set_bounds(t0, t1)
        self.cursor = int(np.searchsorted(self._times, t1, side="right")) - 1
        self._apply(t0, t1)
        try:
            table = result.compare().reset_index(names="run")
            self.comparison.value = table_html(table)
        except Exception as exc:  # the overlay stands even if the metrics cannot be computed
            self.comparison.value = f"(no comparison table: {_esc(exc)})"
        self.status.value = (f"replayed with {_cc_text(result.cc)}: {len(rep):,} events "
                             f"(dashed) over the recorded {len(recorded):,}")

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
