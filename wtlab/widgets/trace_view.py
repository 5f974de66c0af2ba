"""Views over whole recorded traces whose time window moves cheaply (Replay, Live).

Each series (cwnd, bytes in flight, losses, delivery rate, pacing, RTT; or the sequence
graph's sends, acks, losses, retransmissions and PTOs) is kept as sorted numpy arrays;
moving the window slices them by binary search and thins the slice for display
(``wtlab.lab.thinning.thin``, min/max per bin, at most ``max_points`` per series), then
updates the existing figure traces in one batched update. Nothing rebuilds a DataFrame
or a figure on a window move. Colours and line styles are :mod:`wtlab.lab.style`'s:
one colour per algorithm (a second trace of the same algorithm, e.g. a replay over its
recording, gets a shade of it), one line style per quantity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from wtlab.lab import plots as P
from wtlab.lab.style import LINE_STYLES, flow_colours
from wtlab.lab.thinning import MAX_POINTS, thin
from wtlab.trace import metrics as M


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


def _rate_frame(t: np.ndarray, flow: np.ndarray, kind: pd.Categorical, nbytes: np.ndarray,
                payload: np.ndarray) -> pd.DataFrame:
    """The columns :func:`wtlab.trace.metrics.rate_over_time` reads (sent and acked rows)."""
    keep = np.asarray((kind == "packet_sent") | (kind == "packet_acked"))
    return pd.DataFrame({"time_s": t[keep], "flow": flow[keep], "kind": kind[keep],
                         "bytes": nbytes[keep], "payload_bytes": payload[keep]})


def _rates(frame: pd.DataFrame, bin_s: float) -> dict[str, np.ndarray]:
    if not len(frame):
        return {"rate_t": np.zeros(0), "rate_flow": np.zeros(0, dtype=np.int64),
                "rate": np.zeros(0)}
    r = M.rate_over_time(frame, bin_s)
    return {"rate_t": r["time_s"].to_numpy(dtype=float),
            "rate_flow": r["flow"].to_numpy().astype(np.int64),
            "rate": r["goodput_bps"].to_numpy(dtype=float) / 1e6}


def _bin_of(df_rtt: np.ndarray) -> float:
    finite = df_rtt[np.isfinite(df_rtt)]
    return P.rate_bin_s(float(finite.min()) if len(finite) else None)


def columns_of_frame(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The arrays a plot needs, from a trace DataFrame (display units, NaN for NA); the
    delivery rate per bin (``rate_*``) for every controller, from the acknowledged payload."""
    t = df["time_s"].to_numpy(dtype=float)
    flow = df["flow"].to_numpy()
    rtt = _column(df, "latest_rtt_s")
    kind = pd.Categorical(df["kind"].astype(str)) if not isinstance(
        df["kind"].dtype, pd.CategoricalDtype) else df["kind"].array
    out = {"t": t, "flow": flow,
           "lost": _kind_mask(df["kind"], "packet_lost"),
           "rtt_row": _kind_mask(df["kind"], "rtt_sample"),
           "cwnd": _column(df, "cwnd") / 1e3, "bif": _column(df, "bytes_in_flight") / 1e3,
           "pacing": _column(df, "pacing_rate_bps") / 1e6,
           "delivery": _column(df, "delivery_rate_bps") / 1e6,
           "rtt": rtt * 1e3}
    frame = _rate_frame(t, flow, kind, _column(df, "bytes"), _column(df, "payload_bytes"))
    out.update(_rates(frame, _bin_of(rtt)))
    return out


def columns_of_records(rec: np.ndarray, kinds: Sequence[str]) -> dict[str, np.ndarray]:
    """The same arrays straight from a Recorder's packed records (no trace DataFrame)."""
    from wtlab.trace.schema import NO_BYTES_U32

    def u32(col: str) -> np.ndarray:
        v = rec[col].astype(float)
        v[rec[col] == NO_BYTES_U32] = np.nan
        return v

    code = {k: i for i, k in enumerate(kinds)}
    k = rec["kind"]
    t = rec["time_s"].astype(float)
    rtt = rec["latest_rtt_s"].astype(float)
    out = {"t": t, "flow": rec["flow"],
           "lost": k == code.get("packet_lost", -1), "rtt_row": k == code.get("rtt_sample", -1),
           "cwnd": u32("cwnd") / 1e3, "bif": u32("bytes_in_flight") / 1e3,
           "pacing": rec["pacing_rate_bps"].astype(float) / 1e6,
           "delivery": rec["delivery_rate_bps"].astype(float) / 1e6,
           "rtt": rtt * 1e3}
    cat = pd.Categorical.from_codes(k.astype(np.int16), categories=list(kinds))
    frame = _rate_frame(t, rec["flow"].astype(np.int64), cat, rec["bytes"].astype(float),
                        u32("payload_bytes"))
    out.update(_rates(frame, _bin_of(rtt)))
    return out


def series_of(trace: pd.DataFrame | Mapping[str, np.ndarray], *, label: str,
              dash: str = "solid", color_offset: int = 0,
              labels: Mapping[int, str] | None = None,
              colours: Mapping[int, str] | None = None) -> list[tuple[dict, _Series]]:
    """Plot series of one trace (a DataFrame or ``columns_of_*`` arrays): (plotly trace
    properties, arrays), one set per flow, each sorted by time. ``colours``: flow ->
    colour (default: each flow's algorithm colour, from ``labels`` or ``label``)."""
    c = columns_of_frame(trace) if isinstance(trace, pd.DataFrame) else trace
    per_row = [k for k in ("t", "flow", "lost", "rtt_row", "cwnd", "bif", "pacing", "delivery",
                           "rtt") if k in c]
    if len(c["t"]) > 1 and (np.diff(c["t"]) < 0).any():  # windows are cut by binary search
        order = np.argsort(c["t"], kind="stable")
        c = {**c, **{k: np.asarray(c[k])[order] for k in per_row}}
    t, flow = c["t"], c["flow"]
    flows = sorted(int(f) for f in np.unique(flow)) if len(flow) else []
    names = {}
    for f in flows:
        if len(flows) == 1:
            names[f] = label
        elif label == "recorded" and labels and f in labels:
            names[f] = f"recorded {labels[f]}"
        else:
            names[f] = f"{label} {(labels or {}).get(f, f'flow {f}')}"
    if colours is None:
        colours = flow_colours({f: names[f] for f in flows})
    out: list[tuple[dict, _Series]] = []
    for f in flows:
        m = flow == f if len(flows) > 1 else np.ones(len(t), dtype=bool)
        color = colours.get(f, "#444444")
        name = names[f]

        def add(row: int, x: np.ndarray, y: np.ndarray, sel: np.ndarray, what: str, *,
                mode: str = "lines", line: dict | None = None, marker: dict | None = None,
                name: str = name, color: str = color) -> None:
            sel = sel & ~np.isnan(y)
            if not sel.any():
                return
            props = {"name": f"{name} {what}", "mode": mode, "legendgroup": name, "row": row}
            if line is not None:
                props["line"] = {"color": color, **line}
            if marker is not None:
                props["marker"] = {"color": color, **marker}
            out.append((props, _Series(x[sel], y[sel])))

        add(1, t, c["cwnd"], m, "cwnd", line=LINE_STYLES["cwnd"])
        add(1, t, c["bif"], m, "in flight", line=LINE_STYLES["in flight"])
        add(1, t, c["cwnd"], m & c["lost"], "loss", mode="markers",
            marker={"symbol": "x", "size": 8})
        if "rate" in c:
            rm = c["rate_flow"] == f
            add(2, c["rate_t"], c["rate"], rm, "delivery",
                line={**LINE_STYLES["delivery"], "shape": "hv"})
        else:
            add(2, t, c["delivery"], m, "delivery", line=LINE_STYLES["delivery"])
        add(2, t, c["pacing"], m, "pacing", line=LINE_STYLES["pacing"])
        rtt_rows = m & c["rtt_row"]
        add(3, t, c["rtt"], rtt_rows if rtt_rows.any() else m, "RTT", line=LINE_STYLES["RTT"])
    return out


class TraceView:
    """A FigureWidget over traces whose window moves cheaply (see the module docstring).

    ``set_traces([(label, df, variant), ...])`` builds the figure once; ``show(t0, t1)``
    re-slices and thins every series into the existing traces in one batched update.
    Flows of several traces with the same algorithm get shades of its colour.
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
        return P.trace_layout(P.trace_panels())

    def set_traces(self, groups: Sequence[tuple[str, Any, str]], *,
                   labels: Mapping[int, str] | None = None) -> None:
        """Build the figure from ``[(label, trace, variant), ...]`` (a trace DataFrame, or
        the arrays of :func:`columns_of_frame`; ``variant`` is not used), naming flows by
        ``labels`` (flow id -> name) when a trace has several; sets ``t_min``/``t_max``
        (seconds) and shows the whole span."""
        columns = [(label, df if not isinstance(df, pd.DataFrame) else columns_of_frame(df))
                   for label, df, _variant in groups]
        # colours over every (group, flow): repeated algorithms shaded
        names: dict[tuple[int, int], str] = {}
        for gi, (label, c) in enumerate(columns):
            flows = sorted(int(f) for f in np.unique(c["flow"])) if len(c["flow"]) else []
            for f in flows:
                names[(gi, f)] = label if len(flows) == 1 else (
                    f"{label} {(labels or {}).get(f, f'flow {f}')}")
        keyed = {i: n for i, n in enumerate(names.values())}
        shade = flow_colours(keyed)
        colour_of_pair = {pair: shade[i] for i, pair in enumerate(names)}
        specs: list[tuple[dict, _Series]] = []
        for gi, (label, c) in enumerate(columns):
            colours = {f: col for (g, f), col in colour_of_pair.items() if g == gi}
            specs.extend(series_of(c, label=label, labels=labels, colours=colours))
        self.series = [s for _, s in specs]
        xs = [s.x for s in self.series if len(s.x)]
        self.t_min = float(min(x[0] for x in xs)) if xs else 0.0
        self.t_max = float(max(x[-1] for x in xs)) if xs else 1.0
        names_now = [props["name"] for props, _ in specs]
        styles_now = [(props.get("line"), props.get("marker")) for props, _ in specs]
        if names_now != [t.name for t in self.figure.data] or styles_now != getattr(
                self, "_styles", None):  # new series: rebuild the traces once
            self._styles = styles_now
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
        rates = []
        with self.figure.batch_update():
            for trace, s in zip(self.figure.data, self.series, strict=True):
                lo = int(np.searchsorted(s.x, t0, side="left"))
                hi = int(np.searchsorted(s.x, t1, side="right"))
                x, y = thin(s.x[lo:hi], s.y[lo:hi], self.max_points)
                trace.x, trace.y = x, y
                points += len(x)
                if trace.name.endswith(" delivery"):
                    rates.append(np.asarray(y, dtype=float))
            pad = (t1 - t0) * 0.01 or 1e-3
            self.figure.update_xaxes(range=[t0 - pad, t1 + pad])
            top = P.rate_axis_top(rates, None)
            self.figure.update_yaxes(range=[0, top] if top else None, autorange=top is None,
                                     row=2, col=1)
            self.figure.layout.shapes = [] if cursor_s is None else [
                {"type": "line", "xref": "x", "yref": "paper", "x0": cursor_s, "x1": cursor_s,
                 "y0": 0, "y1": 1, "line": {"color": "gray", "width": 1, "dash": "dot"}}]
        return points


class SequenceView:
    """The time-sequence graph of traces (the recording and its replays), by window."""

    def __init__(self, *, height: int = 520, max_points: int = MAX_POINTS) -> None:
        self.max_points = max_points
        self.figure = go.FigureWidget(P.sequence_layout(height=height))
        self.series: list[tuple[str, _Series]] = []

    def set_traces(self, groups: Sequence[tuple[str, pd.DataFrame]]) -> None:
        """``[(label, trace DataFrame), ...]``: each trace's sequence rows, computed once."""
        specs, series = [], []
        names = {i: label for i, (label, _) in enumerate(groups)}
        colours = flow_colours(names)
        for gi, (label, df) in enumerate(groups):
            seq = M.sequence_table(df)
            data = P.series_of_sequence(seq)
            flows = sorted({f for f, _ in data})
            for f in flows:
                name = label if len(flows) == 1 else f"{label} flow {f}"
                for spec in P.sequence_series(f, name, colours[gi]):
                    if spec["key"] in data:
                        x, y = data[spec["key"]]
                        specs.append({**spec, "key": (gi, *spec["key"])})
                        series.append((spec["key"][1], _Series(x, y)))
        self.series = series
        with self.figure.batch_update():
            self.figure.data = ()
            P.add_series(self.figure, specs, ["sequence"])

    def show(self, t0: float, t1: float) -> int:
        """Draw the window [t0, t1] (seconds); returns how many points were sent to the
        figure."""
        points = 0
        with self.figure.batch_update():
            for trace, (event, s) in zip(self.figure.data, self.series, strict=True):
                lo = int(np.searchsorted(s.x, t0, side="left"))
                hi = int(np.searchsorted(s.x, t1, side="right"))
                x, y = s.x[lo:hi], s.y[lo:hi]
                if event in ("sent", "acked"):
                    x, y = thin(x, y, self.max_points)
                trace.x, trace.y = x, y
                points += len(x)
            pad = (t1 - t0) * 0.01 or 1e-3
            self.figure.update_xaxes(range=[t0 - pad, t1 + pad])
        return points
