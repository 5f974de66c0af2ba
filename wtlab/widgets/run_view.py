"""The figures of a run as it goes, up to a cursor: the trace panels and the sequence graph.

A :class:`RunView` follows a :class:`wtlab.lab.timeline.Timeline`. New rows are read
once, in slices (``Recorder.to_pandas(start, stop)``), into what the figures draw:

* the trace series (cwnd, in flight, losses, pacing, RTT:
  :func:`wtlab.lab.plots.series_of_rows`) are appended to the figure's buffers as the
  cursor moves forward, and cut at the cursor's time when it moves back;
* derived tables kept for the whole run, all from :mod:`wtlab.trace.metrics` fed slice by
  slice: the rate per bin (``rate_over_time``: only whole bins, each computed once),
  Jain's index (``jain_over_time``), controller phases (``phases``) and the sequence
  graph's rows (``SequenceBuilder``, read only while its tab is shown); the figures
  show them up to the cursor;
* the bottleneck queue as the link logged it, and the capacity as the path changed.

No figure is computed here; this module decides what part of which table is drawn.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from wtlab.lab import plots as P
from wtlab.lab.style import flow_colours
from wtlab.trace import metrics as M
from wtlab.widgets.live_figure import LiveFigure

SEQUENCE_EVENTS = ("sent", "acked", "retransmitted", "lost", "pto")
SHAPES_EVERY_S = 1.0


class _Growing:
    """An append-only float array (amortised doubling)."""

    __slots__ = ("data", "n")

    def __init__(self) -> None:
        self.data = np.zeros(256, dtype=float)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.data):
            grown = np.zeros(max(need, 2 * len(self.data)), dtype=float)
            grown[:self.n] = self.data[:self.n]
            self.data = grown
        self.data[self.n:need] = values
        self.n = need

    @property
    def values(self) -> np.ndarray:
        return self.data[:self.n]


class RunView:
    """Two :class:`LiveFigure` s (``trace`` and ``sequence``) over a timeline's run."""

    def __init__(self, timeline: Any, *, max_points: int = 800, height: int = 760) -> None:
        self.max_points = max_points
        self.height = height
        self.trace: LiveFigure | None = None
        self.sequence: LiveFigure | None = None
        self.sequence_visible = False
        self.playing = False  # a player is running: layout changes are spaced out
        self.sequence_range: tuple[float, float] | None = None  # zoom: full detail inside
        self.attach(timeline)

    # -------------------------------------------------------------- set-up
    def attach(self, timeline: Any) -> None:
        """Follow ``timeline`` (a new run): every buffer and table starts empty; the figures
        are rebuilt only when the flows or panels change, else cleared in place."""
        self.timeline = timeline
        exp = timeline.experiment
        labels = P.flow_names(sorted(exp.labels), exp.labels)
        self.flows = sorted(labels)
        self.labels = labels
        colours = flow_colours(labels)
        self.jain = len(self.flows) >= 2
        self.shade = len(self.flows) == 1
        panels = P.trace_panels(queue=True, jain=self.jain)
        signature = (tuple((f, labels[f]) for f in self.flows), tuple(panels))
        rebuild = self.trace is None or signature != getattr(self, "_signature", None)
        self._signature = signature
        path = timeline.stepper.path
        self.bin_s = P.rate_bin_s(path.rtt_s)
        self.bdp_kb = path.bdp_bytes / 1e3
        if rebuild:
            specs = []
            for f in self.flows:
                specs += P.flow_series(f, labels[f], colours[f])
            specs += P.extra_series(panels)
            if self.shade:
                specs += P.phase_legend(self._phase_states(exp))
            self.trace = LiveFigure(P.trace_layout(panels), panels, max_points=self.max_points,
                                    height=self.height)
            self.trace.ensure(specs)
            seq_specs = []
            for f in self.flows:
                seq_specs += P.sequence_series(f, labels[f], colours[f])
            self.sequence = LiveFigure(P.sequence_layout(height=560), ["sequence"],
                                       max_points=2 * self.max_points)
            self.sequence.ensure(seq_specs)
            self.sequence.widget.layout.on_change(self._on_sequence_zoom, "xaxis.range",
                                                  "xaxis.autorange")
        else:
            self.trace.clear()
            self.sequence.clear()
        self.panels = panels
        self.fed = 0  # rows read into the tables below
        self.shown = -1  # the cursor row the trace series reach
        self.shown_t = 0.0
        self.rates = pd.DataFrame({c.name: pd.Series([], dtype=float)
                                   for c in M.RATE_OVER_TIME})
        self.jain_table = M.jain_over_time(self.rates)
        self.rate_done_s = 0.0
        self.rate_pending: pd.DataFrame | None = None
        self.phase_closed: list[dict] = []
        self.phase_open: dict[int, tuple[str, float]] = {}
        self.seq_builder = M.SequenceBuilder()
        self.seq_fed = 0  # rows read into the sequence table (read when it is shown)
        self.seq = {(f, e): (_Growing(), _Growing()) for f in self.flows
                    for e in SEQUENCE_EVENTS}
        self.seq_top: dict[int, float] = {}
        self.queue_t = _Growing()
        self.queue_b = _Growing()
        self._shapes: list[dict] = []
        self._shapes_at = 0.0  # wall time of the last shapes update
        self._last_layout: dict = {}
        self._pending_layout: dict = {}
        self._slice: tuple[int, int, pd.DataFrame] | None = None

    @staticmethod
    def _phase_states(exp: Any) -> list[str]:
        from wtlab.lab.style import algorithm_of

        algo = algorithm_of(exp.labels.get(0, ""))
        if algo in ("bbr", "bbr3"):
            return ["startup", "drain", "probe_rtt"]
        return ["slow_start", "recovery"]

    # -------------------------------------------------------------- reading new rows
    def feed(self) -> None:
        """Read the rows recorded since the last call into the derived tables."""
        rec = self.timeline.stepper.recorder
        n = len(rec)
        now = self.timeline.now_s
        if n > self.fed:
            rows = self._rows(self.fed, n)
            self.fed = n
            self._feed_phases(rows)
            pending = rows if self.rate_pending is None else pd.concat(
                [self.rate_pending, rows])
        else:
            pending = self.rate_pending
        if pending is not None and len(pending):
            new = M.rate_over_time(pending, self.bin_s, from_s=self.rate_done_s, to_s=now)
            if len(new):
                self.rates = pd.concat([self.rates, new], ignore_index=True)
                self.jain_table = M.jain_over_time(self.rates)
                self.rate_done_s = float(new["time_s"].max()) + self.bin_s
            keep = pending["time_s"].to_numpy() >= self.rate_done_s - 1e-9
            self.rate_pending = pending[keep]
        times, occupancy = self.timeline.stepper.path.down.queue_log()
        have = self.queue_t.n
        if len(times) > have:
            self.queue_t.extend(np.asarray(times[have:], dtype=float))
            self.queue_b.extend(np.asarray(occupancy[have:], dtype=float) / 1e3)

    def _rows(self, start: int, stop: int) -> pd.DataFrame:
        """Rows ``start:stop`` (the last slice read is reused: while playing, the rows read
        into the tables and the rows drawn are the same)."""
        cached = self._slice
        if cached is not None and cached[0] <= start and stop <= cached[1]:
            df = cached[2]
            return df.iloc[start - cached[0]:stop - cached[0]]
        df = self.timeline.stepper.recorder.to_pandas(start, stop)
        df.attrs = {}  # pandas deep-copies attrs (the run's metadata) on every operation
        self._slice = (start, stop, df)
        return df

    def _feed_sequence(self, rows: pd.DataFrame) -> None:
        seq = self.seq_builder.feed(rows)
        if not len(seq):
            return
        for f in pd.unique(seq["flow"]):
            f = int(f)
            mine = seq[seq["flow"] == f]
            sends = mine[mine["event"].isin(["sent", "retransmitted"])]
            for ev, g in mine.groupby("event", sort=False):
                key = (f, str(ev))
                if key not in self.seq:
                    continue
                t = g["time_s"].to_numpy(dtype=float)
                y = g["offset_bytes"].to_numpy(dtype=float) / 1e6
                if ev == "pto":
                    y = np.full(len(t), self.seq_top.get(f, 0.0))
                xs, ys = self.seq[key]
                xs.extend(t)
                ys.extend(y)
            if len(sends):
                top = float((sends["offset_bytes"] + sends["length_bytes"]).max()) / 1e6
                self.seq_top[f] = max(self.seq_top.get(f, 0.0), top)

    def _feed_phases(self, rows: pd.DataFrame) -> None:
        if not self.shade:
            return
        table = M.phases(rows)
        for r in table.itertuples(index=False):
            f = int(r.flow)
            cur = self.phase_open.get(f)
            if cur is None:
                self.phase_open[f] = (r.state, r.start_s)
            elif cur[0] != r.state:
                self.phase_closed.append({"flow": f, "state": cur[0], "start_s": cur[1],
                                          "end_s": r.start_s})
                self.phase_open[f] = (r.state, r.start_s)

    # -------------------------------------------------------------- drawing
    def show(self, cursor: int, t_s: float) -> None:
        """Draw the run up to row ``cursor`` at time ``t_s`` (forward: appended; back: cut)."""
        self.update(cursor, t_s)
        self.push()

    def push(self) -> None:
        """Send what :meth:`update` prepared (one batched update per figure shown)."""
        layout, self._pending_layout = self._pending_layout, {}
        self.trace.push(layout or None)
        if self.sequence_visible:
            self.show_sequence(self.shown_t)

    def update(self, cursor: int, t_s: float) -> None:
        """Prepare the figures for row ``cursor`` at ``t_s`` without sending them (a player
        prepares the next frame while the browser draws the previous one)."""
        self.feed()
        fig = self.trace
        self.shown_before = self.shown
        span = max(self.timeline.now_s, t_s, 1e-3)
        if cursor > self.shown:
            rows = self._rows(self.shown + 1, cursor + 1)
            chunk_s = max(t_s - self.shown_t, 1e-3)
            for key, (x, y) in P.series_of_rows(rows).items():
                if key in fig.buffers:
                    fig.append(key, x, y, span_s=span, chunk_s=chunk_s)
        elif cursor < self.shown or t_s < self.shown_t:
            fig.truncate(t_s, [k for k in fig.buffers if k[1] in ("cwnd", "in flight", "loss",
                                                                  "pacing", "RTT")])
        self.shown, self.shown_t = cursor, t_s
        # derived series, shown to the cursor
        shown_rates = self.rates[self.rates["time_s"] + self.bin_s <= t_s + 1e-9]
        for key, (x, y) in P.series_of_rates(shown_rates, self.bin_s).items():
            fig.set(key, x, y)
        for f in self.flows:
            if (f, "delivery") in fig.buffers and not (shown_rates["flow"] == f).any():
                fig.set((f, "delivery"), [], [])
        cap_x, cap_y = P.capacity_xy(self.timeline.stepper.path.capacity_steps(), t_s)
        cap_keep = cap_x <= t_s + 1e-9
        fig.set(("path", "capacity"), cap_x[cap_keep], cap_y[cap_keep])
        qt, qb = self.queue_t.values, self.queue_b.values
        q_hi = int(np.searchsorted(qt, t_s, side="right"))
        fig.set(("path", "queue"), qt[:q_hi], qb[:q_hi])
        if self.jain:
            j = self.jain_table[self.jain_table["time_s"] + self.bin_s <= t_s + 1e-9]
            fig.set(("flows", "jain"), j["time_s"].to_numpy(dtype=float),
                    j["jain_index"].to_numpy(dtype=float))
        layout: dict[str, Any] = {}
        # the phases' shading is layout (a relayout costs the browser a full redraw): while
        # playing it follows at most once a second, else at once
        shapes = self._shapes_until(t_s)
        wall = time.perf_counter()
        if shapes != self._shapes and (not self.playing
                                       or wall - self._shapes_at > SHAPES_EVERY_S):
            self._shapes, self._shapes_at = shapes, wall
            layout["shapes"] = shapes
        top = P.rate_axis_top([fig.buffers[(f, "delivery")].y for f in self.flows
                               if (f, "delivery") in fig.buffers], float(np.max(cap_y)))
        if top:
            top = float(np.ceil(top))
            if self._last_layout.get("rate_top") != top:
                self._last_layout["rate_top"] = top
                layout["yaxis2"] = {"range": [0, top]}
        self._pending_layout.update(layout)

    def _shapes_until(self, t_s: float) -> list[dict]:
        shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                   "y0": self.bdp_kb, "y1": self.bdp_kb,
                   "line": {"color": "#888888", "dash": "dash", "width": 1}}]
        if not self.shade:
            return shapes
        intervals = [p for p in self.phase_closed if p["start_s"] < t_s]
        for f, (state, start) in self.phase_open.items():
            if start < t_s:
                intervals.append({"flow": f, "state": state, "start_s": start, "end_s": t_s})
        table = pd.DataFrame(intervals, columns=["flow", "state", "start_s", "end_s"])
        return shapes + P.phase_shapes(table, flow=self.flows[0], x_max=t_s)

    def show_sequence(self, t_s: float | None = None) -> None:
        """Draw the sequence graph up to ``t_s`` (default: the cursor); inside a zoomed
        range every point is drawn (up to the figure's budget), else a thinned view."""
        t_s = self.shown_t if t_s is None else t_s
        if self.fed > self.seq_fed:
            self._feed_sequence(self.timeline.stepper.recorder.to_pandas(self.seq_fed, self.fed))
            self.seq_fed = self.fed
        lo, hi = self.sequence_range or (-np.inf, np.inf)
        hi = min(hi, t_s)
        for key, (xs, ys) in self.seq.items():
            x, y = xs.values, ys.values
            a = int(np.searchsorted(x, lo, side="left")) if np.isfinite(lo) else 0
            b = int(np.searchsorted(x, hi, side="right"))
            self.sequence.set(key, x[a:b], y[a:b])
        self.sequence.push()

    def _on_sequence_zoom(self, layout: Any, x_range: Any, autorange: Any) -> None:
        if autorange or not x_range:
            self.sequence_range = None
        else:
            self.sequence_range = (float(x_range[0]), float(x_range[1]))
        if self.sequence_visible:
            self.show_sequence()

    def frame_points(self) -> int:
        """Points the last frame sent to the trace figure (0 before the first)."""
        return self.trace.points_sent if self.trace is not None else 0


