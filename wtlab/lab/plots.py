"""Figures of a run's trace (plotly, imported only when a figure is built).

Every builder takes the tidy trace DataFrame (``wtlab.trace.schema``) and returns a
``plotly.graph_objects.Figure``; widgets build their FigureWidgets from the same
layouts and series (:func:`trace_layout`, :func:`flow_series`, :func:`series_of_rows`,
:func:`sequence_layout`, ...), so a figure looks the same in a notebook, a widget and
a slide. Colours and line styles: :mod:`wtlab.lab.style` (one colour per algorithm).

* :func:`trace_figure`: window and bytes in flight (loss markers, BDP), the rate panel
  (every controller's delivery rate, i.e. acknowledged payload per bin, plus pacing
  where a controller paces, plus the capacity as it changed), RTT, and optionally the
  bottleneck queue and Jain's index over time; controller phases shaded.
* :func:`sequence_figure`: the time-sequence graph (payload offset vs time: sends,
  retransmissions, acks, losses, PTOs).
* :func:`comparison_figure`: bars per figure, one colour per algorithm, 95 % error bars
  over seeds.

Long traces are thinned for display with a min/max-per-bin reduction, which keeps
every peak and trough of a sawtooth (a 1,000,000-event trace draws as a few thousand
points). Figures computed from rows (rates per bin, Jain's index, phases, sequence
offsets) come from :mod:`wtlab.trace.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from wtlab.lab.style import (
    BDP_LINE,
    CAPACITY_LINE,
    JAIN_LINE,
    LINE_STYLES,
    PHASE_COLOURS,
    QUEUE_FILL,
    colour_of,
    flow_colours,
    legend_colour,
)
from wtlab.lab.thinning import MAX_POINTS, thin

__all__ = ["MAX_POINTS", "comparison_figure", "display_table", "rate_bin_s",
           "sequence_figure", "thin", "trace_figure"]

PANEL_TITLES = {"window": "congestion window (KB)", "rate": "rate (Mbit/s)",
                "rtt": "RTT (ms)", "queue": "bottleneck queue (KB)",
                "jain": "Jain's fairness index"}
_PANEL_WEIGHT = {"window": 1.0, "rate": 1.0, "rtt": 0.8, "queue": 0.6, "jain": 0.5}


def rate_bin_s(rtt_s: float | None) -> float:
    """The bin of the rate panel: the first of 50, 100, 200, 500 ms, 1 s, 2 s at least two
    RTTs long (ack clocking makes shorter bins jumpy)."""
    want = 2.0 * (rtt_s or 0.05)
    for b in (0.05, 0.1, 0.2, 0.5, 1.0, 2.0):
        if b >= want:
            return b
    return 5.0


def _flow_label(flow: int, labels: Mapping[int, str] | None) -> str:
    if labels and flow in labels:
        return str(labels[flow])
    return f"flow {flow}"


def flow_names(flows: Iterable[int], labels: Mapping[int, str] | None) -> dict[int, str]:
    """Legend names of flows: their labels, with the flow id where a label repeats (two
    CUBIC flows: "cubic (flow 0)", "cubic (flow 1)")."""
    flows = list(flows)
    names = {f: _flow_label(f, labels) for f in flows}
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    return {f: (f"{n} (flow {f})" if counts[n] > 1 else n) for f, n in names.items()}


# ------------------------------------------------------------------ layout and series specs
def trace_panels(*, queue: bool = False, jain: bool = False) -> list[str]:
    """The panels of a trace figure, top to bottom."""
    return ["window", "rate", "rtt"] + (["queue"] if queue else []) + (["jain"] if jain else [])


def trace_layout(panels: Sequence[str], *, title: str | None = None, height: int | None = None):
    """An empty trace figure: one row per panel, shared time axis, titles that fit."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    weights = [_PANEL_WEIGHT[p] for p in panels]
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        row_heights=[w / sum(weights) for w in weights],
                        subplot_titles=[PANEL_TITLES[p] for p in panels])
    fig.update_xaxes(title_text="time (s)", row=len(panels), col=1)
    if "jain" in panels:
        fig.update_yaxes(range=[0, 1.05], row=panels.index("jain") + 1, col=1)
    fig.update_layout(height=height or int(190 * sum(weights) + 130), title=title,
                      legend={"groupclick": "toggleitem", "font": {"size": 12}},
                      margin={"l": 60, "r": 20, "t": 60 if title else 40, "b": 40},
                      template="plotly_white", font={"size": 13},
                      uirevision="wtlab")  # zoom survives data updates
    fig.update_annotations(font_size=13)
    return go.Figure(fig) if not isinstance(fig, go.Figure) else fig


def flow_series(flow: int, label: str, colour: str) -> list[dict[str, Any]]:
    """The series one flow contributes to a trace figure: dicts with ``key`` ((flow,
    quantity)), ``panel`` and the plotly properties (name, mode, line/marker)."""
    def line(what: str) -> dict:
        return {"color": colour, **LINE_STYLES[what]}

    group = f"flow {flow}"
    return [
        {"key": (flow, "cwnd"), "panel": "window", "name": f"{label} cwnd", "mode": "lines",
         "line": line("cwnd"), "legendgroup": group},
        {"key": (flow, "in flight"), "panel": "window", "name": f"{label} in flight",
         "mode": "lines", "line": line("in flight"), "legendgroup": group},
        {"key": (flow, "loss"), "panel": "window", "name": f"{label} loss", "mode": "markers",
         "marker": {"color": colour, "symbol": "x", "size": 8}, "legendgroup": group},
        {"key": (flow, "delivery"), "panel": "rate", "name": f"{label} delivery",
         "mode": "lines", "line": {**line("delivery"), "shape": "hv"}, "legendgroup": group},
        {"key": (flow, "pacing"), "panel": "rate", "name": f"{label} pacing", "mode": "lines",
         "line": line("pacing"), "legendgroup": group},
        {"key": (flow, "RTT"), "panel": "rtt", "name": f"{label} RTT", "mode": "lines",
         "line": line("RTT"), "legendgroup": group},
    ]


def extra_series(panels: Sequence[str]) -> list[dict[str, Any]]:
    """Series not tied to a flow: capacity, queue, Jain's index."""
    out = [{"key": ("path", "capacity"), "panel": "rate", "name": "capacity", "mode": "lines",
            "line": {**CAPACITY_LINE, "shape": "hv"}}]
    if "queue" in panels:
        out.append({"key": ("path", "queue"), "panel": "queue", "name": "queue",
                    "mode": "lines", "line": {"color": "#555555", "width": 1},
                    "fill": "tozeroy", "fillcolor": QUEUE_FILL})
    if "jain" in panels:
        out.append({"key": ("flows", "jain"), "panel": "jain", "name": "Jain's index",
                    "mode": "lines", "line": {**JAIN_LINE, "shape": "hv"}})
    return out


def phase_legend(states: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Legend-only entries naming the shaded phases (those of ``states``, default all)."""
    wanted = None if states is None else set(states)
    seen: dict[str, str] = {}
    for state, colour in PHASE_COLOURS.items():
        if wanted is None or state in wanted:
            seen.setdefault(colour, state)
    names = {"slow_start": "slow start", "startup": "startup", "recovery": "recovery",
             "drain": "drain", "probe_rtt": "probe RTT"}
    return [{"key": ("phase", state), "panel": "window", "name": f"phase: {names[state]}",
             "mode": "markers", "marker": {"symbol": "square", "size": 14,
                                           "color": legend_colour(colour)},
             "legendgroup": "phases"} for colour, state in seen.items()]


def phase_shapes(phase_table: pd.DataFrame, *, flow: int = 0,
                 x_max: float | None = None) -> list[dict[str, Any]]:
    """Shaded vertical bands for the phases of ``flow`` (from
    :func:`wtlab.trace.metrics.phases`), across every panel."""
    if not len(phase_table):
        return []
    rows = phase_table[phase_table["flow"] == flow]
    shapes = []
    for state, a, b in zip(rows["state"], rows["start_s"], rows["end_s"], strict=True):
        colour = PHASE_COLOURS.get(str(state))
        if colour is None or not b > a:
            continue
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": float(a),
                       "x1": float(b if x_max is None else min(b, x_max)), "y0": 0, "y1": 1,
                       "fillcolor": colour, "line": {"width": 0}, "layer": "below"})
    return shapes


def add_series(fig: Any, specs: Sequence[Mapping[str, Any]], panels: Sequence[str],
               data: Mapping[Any, tuple[np.ndarray, np.ndarray]] | None = None, *,
               gl: bool = True) -> None:
    """Add one scatter per spec to ``fig`` (its data from ``data[key]``, else empty):
    WebGL (``gl``, for long static series) or SVG (cheaper to redraw when a live figure
    updates a few thousand points many times a second)."""
    import plotly.graph_objects as go

    traces, rows = [], []
    for spec in specs:
        props = {k: v for k, v in spec.items() if k not in ("key", "panel")}
        x, y = (data or {}).get(spec["key"], ((), ()))
        cls = go.Scatter if not gl or spec["key"][0] == "phase" or "fill" in props else (
            go.Scattergl)
        if spec["key"][0] == "phase":
            x, y = [None], [None]
        traces.append(cls(x=x, y=y, **props))
        rows.append(panels.index(spec["panel"]) + 1)
    if traces and len(panels) > 1:
        fig.add_traces(traces, rows=rows, cols=[1] * len(rows))
    elif traces:
        fig.add_traces(traces)


# ------------------------------------------------------------------ data of the series
def series_of_rows(df: pd.DataFrame) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """(flow, quantity) -> (time_s, value in display units) from trace rows: cwnd, in
    flight (KB), loss markers (at the window after the loss), pacing (Mbit/s), RTT
    samples (ms). Rows without the value are left out."""
    out: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    if not len(df):
        return out
    t = df["time_s"].to_numpy(dtype=float)
    flow = df["flow"].to_numpy().astype(np.int64)
    kind = df["kind"]
    lost = _kind_mask(kind, "packet_lost")
    rtt_row = _kind_mask(kind, "rtt_sample")
    cwnd = df["cwnd"].to_numpy(dtype=float, na_value=np.nan) / 1e3
    bif = df["bytes_in_flight"].to_numpy(dtype=float, na_value=np.nan) / 1e3
    pacing = df["pacing_rate_bps"].to_numpy(dtype=float) / 1e6
    rtt = df["latest_rtt_s"].to_numpy(dtype=float) * 1e3
    for f in np.unique(flow).tolist():
        m = flow == f
        for what, values, sel in (("cwnd", cwnd, m), ("in flight", bif, m),
                                  ("loss", cwnd, m & lost), ("pacing", pacing, m),
                                  ("RTT", rtt, m & rtt_row)):
            ok = sel & ~np.isnan(values)
            if ok.any():
                out[(int(f), what)] = (t[ok], values[ok])
    return out


def _kind_mask(kind: pd.Series, name: str) -> np.ndarray:
    if isinstance(kind.dtype, pd.CategoricalDtype):  # compare codes, not strings
        cats = list(kind.cat.categories)
        if name not in cats:
            return np.zeros(len(kind), dtype=bool)
        return kind.cat.codes.to_numpy() == cats.index(name)
    return (kind.astype(str) == name).to_numpy()


def series_of_rates(rates: pd.DataFrame, bin_s: float
                    ) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """(flow, "delivery") -> (bin start, Mbit/s) from :func:`wtlab.trace.metrics.rate_over_time`."""
    out = {}
    for f, g in rates.groupby("flow", sort=True):
        out[(int(f), "delivery")] = (g["time_s"].to_numpy(dtype=float),
                                     g["goodput_bps"].to_numpy(dtype=float) / 1e6)
    return out


def capacity_xy(capacity: Any, t_end: float) -> tuple[np.ndarray, np.ndarray]:
    """A step line of the capacity (Mbit/s) from a number or ``[(from_s, bps), ...]``."""
    steps = [(0.0, float(capacity))] if isinstance(capacity, int | float) else [
        (float(a), float(b)) for a, b in capacity]
    xs = [a for a, _ in steps] + [max(t_end, steps[-1][0])]
    ys = [b / 1e6 for _, b in steps] + [steps[-1][1] / 1e6]
    return np.asarray(xs), np.asarray(ys)


def rate_axis_top(values: Iterable[np.ndarray], capacity_mbps: float | None) -> float | None:
    """Top of the rate axis: 1.25 x the larger of the capacity and the 99th percentile of
    the delivery rates, so Startup's brief pacing spike (BBR: 2.89 x) does not flatten
    the panel; None when there is nothing to scale to."""
    arrays = [np.asarray(v, dtype=float) for v in values]
    vals = np.concatenate(arrays) if arrays else np.array([])
    vals = vals[np.isfinite(vals)]
    top = float(np.percentile(vals, 99)) if len(vals) else 0.0
    if capacity_mbps:
        top = max(top, capacity_mbps)
    return 1.25 * top if top > 0 else None


# ------------------------------------------------------------------ the trace figure
def trace_figure(df: pd.DataFrame, *, labels: Mapping[int, str] | None = None,
                 title: str | None = None, bdp_bytes: float | None = None,
                 max_points: int = MAX_POINTS, capacity: Any = None,
                 queue: pd.DataFrame | None = None, rate_bin: float | None = None,
                 rtt_s: float | None = None, jain: bool | None = None,
                 shade_phases: bool | None = None):
    """cwnd and bytes in flight (losses marked, BDP line), the rate panel, RTT, and
    optionally the bottleneck queue and Jain's index over time.

    The rate panel shows every flow's delivery rate (acknowledged payload per
    ``rate_bin`` seconds, :func:`wtlab.trace.metrics.rate_over_time`; default
    :func:`rate_bin_s` of ``rtt_s`` or the smallest RTT sample), its pacing rate where
    the controller paces, and ``capacity`` (bit/s, or ``[(from_s, bps), ...]`` as
    ``Path.capacity_steps()`` gives it). ``queue``: a DataFrame of ``time_s`` and
    ``queue_bytes`` (``Result.queue()``). ``jain``: Jain's index over time (default: with
    two flows or more). ``shade_phases`` (default: with one flow): that flow's
    controller states shaded (:data:`wtlab.lab.style.PHASE_COLOURS`).
    """
    from wtlab.trace import metrics as M

    flows = sorted(int(f) for f in pd.unique(df["flow"][_kind_mask(df["kind"], "packet_sent")])
                   ) if len(df) else []
    if not flows and len(df):
        flows = sorted(int(f) for f in pd.unique(df["flow"]))
    if jain is None:
        jain = len(flows) >= 2
    panels = trace_panels(queue=queue is not None, jain=jain)
    fig = trace_layout(panels, title=title)
    names = flow_names(flows, labels)
    colours = flow_colours(names)
    if rtt_s is None and len(df):
        rs = df["latest_rtt_s"].to_numpy(dtype=float)
        rtt_s = float(np.nanmin(rs)) if np.isfinite(rs).any() else None
    bin_s = rate_bin or rate_bin_s(rtt_s)
    t_end = float(df["time_s"].max()) if len(df) else 0.0
    rates = M.rate_over_time(df, bin_s, to_s=t_end) if len(df) else None
    data = {k: thin(x, y, max_points) for k, (x, y) in series_of_rows(df).items()}
    if rates is not None and len(rates):
        data.update(series_of_rates(rates, bin_s))
    specs: list[dict[str, Any]] = []
    for f in flows:
        specs += [s for s in flow_series(f, names[f], colours[f]) if s["key"] in data]
    if capacity is not None:
        data[("path", "capacity")] = capacity_xy(capacity, t_end)
    if queue is not None:
        data[("path", "queue")] = thin(queue["time_s"].to_numpy(dtype=float),
                                       queue["queue_bytes"].to_numpy(dtype=float) / 1e3,
                                       max_points)
    if jain and rates is not None and len(rates):
        j = M.jain_over_time(rates)
        data[("flows", "jain")] = (j["time_s"].to_numpy(dtype=float),
                                   j["jain_index"].to_numpy(dtype=float))
    specs += [s for s in extra_series(panels) if s["key"] in data]
    if shade_phases is None:
        shade_phases = len(flows) == 1
    shapes = []
    if shade_phases and flows:
        table = M.phases(df, to_s=t_end)
        shapes = phase_shapes(table, flow=flows[0])
        if shapes:
            specs += phase_legend(table[table["flow"] == flows[0]]["state"])
    add_series(fig, specs, panels, data)
    cap_top = None
    if capacity is not None:
        cap_top = float(np.max(capacity_xy(capacity, t_end)[1]))
    top = rate_axis_top([data[k][1] for k in data if k[1] == "delivery"], cap_top)
    if top:
        fig.update_yaxes(range=[0, top], row=2, col=1)
    if bdp_bytes:
        fig.add_hline(y=bdp_bytes / 1e3, line=BDP_LINE, annotation_text="BDP", row=1, col=1)
    if shapes:
        fig.update_layout(shapes=list(fig.layout.shapes) + shapes)
    return fig


# ------------------------------------------------------------------ the time-sequence graph
SEQUENCE_STYLE = {
    "sent": {"mode": "markers", "marker": {"symbol": "circle", "size": 3}},
    "acked": {"mode": "markers", "marker": {"symbol": "line-ew-open", "size": 6}},
    "retransmitted": {"mode": "markers",
                      "marker": {"symbol": "diamond", "size": 9, "line": {"width": 1,
                                                                          "color": "#000"}}},
    "lost": {"mode": "markers", "marker": {"symbol": "x-thin-open", "size": 10,
                                           "line": {"width": 2, "color": "#000"}}},
    "pto": {"mode": "markers", "marker": {"symbol": "triangle-down", "size": 11,
                                          "line": {"width": 1, "color": "#000"}}},
}


def sequence_layout(*, title: str | None = None, height: int = 520):
    """An empty time-sequence figure (payload offset in MB against time)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(height=height, title=title, template="plotly_white", font={"size": 13},
                      xaxis={"title": "time (s)"},
                      yaxis={"title": "payload offset (MB)", "tickformat": ".3~f"},
                      legend={"groupclick": "toggleitem"}, uirevision="wtlab",
                      margin={"l": 70, "r": 20, "t": 60 if title else 30, "b": 40})
    return fig


def sequence_series(flow: int, label: str, colour: str) -> list[dict[str, Any]]:
    """The series of one flow in the time-sequence graph (same contract as
    :func:`flow_series`)."""
    out = []
    for event, style in SEQUENCE_STYLE.items():
        marker = {**style["marker"]}
        marker["color"] = "#000000" if event == "lost" else colour
        if event == "acked":
            marker["line"] = {"color": colour, "width": 1}
        out.append({"key": (flow, event), "panel": "sequence", "name": f"{label} {event}",
                    "mode": style["mode"], "marker": marker, "legendgroup": f"flow {flow}"})
    return out


def series_of_sequence(seq: pd.DataFrame
                       ) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """(flow, event) -> (time_s, offset MB) from :func:`wtlab.trace.metrics.sequence_table`
    rows; a PTO is drawn at the flow's highest offset sent so far."""
    out = {}
    if not len(seq):
        return out
    for (f, event), g in seq.groupby(["flow", "event"], sort=True):
        t = g["time_s"].to_numpy(dtype=float)
        y = g["offset_bytes"].to_numpy(dtype=float) / 1e6
        if event == "pto":
            sent = seq[(seq["flow"] == f) & seq["event"].isin(["sent", "retransmitted"])]
            top = (sent["offset_bytes"] + sent["length_bytes"]).to_numpy(dtype=float)
            st = sent["time_s"].to_numpy(dtype=float)
            idx = np.searchsorted(st, t, side="right") - 1
            highest = np.maximum.accumulate(top) if len(top) else top
            y = np.where(idx >= 0, highest[np.clip(idx, 0, None)] / 1e6 if len(top) else 0.0,
                         0.0)
        out[(int(f), str(event))] = (t, y)
    return out


def sequence_figure(df: pd.DataFrame, *, labels: Mapping[int, str] | None = None,
                    flows: Iterable[int] | None = None, title: str | None = None,
                    x_range: tuple[float, float] | None = None, max_points: int = MAX_POINTS):
    """The time-sequence (tcptrace / qvis) graph: each packet's payload offset against
    time, new data and retransmissions (diamonds) when sent, acks when acknowledged,
    losses (x) when declared, PTOs (triangles). Zoom with plotly's tools; ``x_range``
    starts zoomed (the points inside it are thinned only to ``max_points``)."""
    from wtlab.trace import metrics as M

    seq = M.sequence_table(df)
    if flows is not None:
        seq = seq[seq["flow"].isin(list(flows))]
    if x_range is not None:
        seq = seq[(seq["time_s"] >= x_range[0]) & (seq["time_s"] <= x_range[1])]
    fig = sequence_layout(title=title)
    fl = sorted(int(f) for f in pd.unique(seq["flow"])) if len(seq) else []
    names = flow_names(fl, labels)
    colours = flow_colours(names)
    data = {}
    for k, (x, y) in series_of_sequence(seq).items():
        data[k] = thin(x, y, max_points) if k[1] in ("sent", "acked") else (x, y)
    specs = []
    for f in fl:
        specs += [s for s in sequence_series(f, names[f], colours[f]) if s["key"] in data]
    add_series(fig, specs, ["sequence"], data)
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig


# ------------------------------------------------------------------ comparisons
# How comparison panels show a figure: (title, scale from the figure's unit)
_DISPLAY = {"goodput_bps": ("goodput (Mbit/s)", 1e-6),
            "goodput_packet_bps": ("goodput, whole packets (Mbit/s)", 1e-6),
            "utilisation": ("utilisation", 1.0),
            "rtt_p95_s": ("p95 RTT (ms)", 1e3),
            "queueing_delay_mean_s": ("mean queueing delay (ms)", 1e3),
            "loss_rate": ("loss rate", 1.0),
            "jain_index": ("Jain's index", 1.0)}


def comparison_figure(table: pd.DataFrame, *, x: str = "cc",
                      metrics: Iterable[str] = ("goodput_bps", "rtt_p95_s", "loss_rate")):
    """Bar charts of comparison figures (``compare().table`` columns), one panel each,
    in display units (Mbit/s, ms), each bar in its algorithm's colour; with
    ``<figure>_ci95`` columns (``compare(seeds=N)``) each bar carries its 95 % confidence
    interval as an error bar. The goodput panel also draws the capacity and, on a lossy
    path, the analytic references compare() computed at goodput's packet size."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = [m for m in metrics if m in table.columns]
    titles = [_DISPLAY.get(m, (m, 1.0))[0] for m in metrics]
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), subplot_titles=titles)
    names = table[x].astype(str) if len(table) else pd.Series([], dtype=str)
    colours = [colour_of(n) for n in names]
    seeds = int(table["seeds"].max()) if "seeds" in table.columns and len(table) else 1
    for i, m in enumerate(metrics):
        scale = _DISPLAY.get(m, (m, 1.0))[1]
        err = None
        ci = f"{m}_ci95"
        if ci in table.columns:
            err = {"type": "data", "array": (table[ci] * scale).fillna(0).tolist(),
                   "visible": True, "thickness": 2, "width": 8, "color": "#222"}
        fig.add_trace(go.Bar(x=names, y=table[m] * scale, name=m, error_y=err,
                             marker={"color": colours}), row=1, col=i + 1)
    if "goodput_bps" in metrics:
        col = metrics.index("goodput_bps") + 1
        refs = [("capacity_bps", "capacity", "solid", "top left"),
                ("mathis_bps", "Mathis (Reno)", "dash", "top left"),
                ("cubic_response_bps", "CUBIC response (RFC 9438)", "dot", "bottom right")]
        first = table.iloc[0] if len(table) else {}
        if ("mathis_bps" in table.columns and "cubic_response_bps" in table.columns
                and np.isclose(first["mathis_bps"], first["cubic_response_bps"], rtol=0.01)):
            # small BDP: CUBIC's Reno-friendly region is its response; one line, one label
            refs = [refs[0], ("mathis_bps", "Mathis = CUBIC (Reno-friendly region)", "dash",
                              "top left")]
        for ref, label, dash, where in refs:
            if ref in table.columns and len(table) and np.isfinite(first[ref]):
                fig.add_hline(y=float(first[ref]) / 1e6, row=1, col=col,
                              line={"dash": dash, "color": "gray"}, annotation_text=label,
                              annotation_position=where)
    fig.update_layout(height=380, showlegend=False, template="plotly_white", font={"size": 13},
                      margin={"l": 50, "r": 20, "t": 70 if seeds > 1 else 50, "b": 40},
                      title=(f"mean of {seeds} seeds, error bars: 95 % confidence interval"
                             if seeds > 1 else None))
    return fig


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` for people: bit/s columns in Mbit/s and second columns in ms, the unit in
    each header (``goodput_bps`` -> ``goodput (Mbit/s)``, ``goodput_bps_ci95`` ->
    ``goodput ±95% (Mbit/s)``); other columns unchanged."""
    out = {}
    for col in table.columns:
        values = table[col]
        base, ci = (col[:-5], " ±95%") if col.endswith("_ci95") else (col, "")
        numeric = pd.api.types.is_numeric_dtype(values)
        if base.endswith("_bps") and numeric:
            out[f"{base[:-4]}{ci} (Mbit/s)"] = values / 1e6
        elif base.endswith("_s") and numeric:
            out[f"{base[:-2]}{ci} (ms)"] = values * 1e3
        elif ci:
            out[f"{base}{ci}"] = values
        else:
            out[col] = values
    return pd.DataFrame(out, index=table.index)
