"""Figures of a run's trace (plotly, imported only when a figure is built).

Every builder takes the tidy trace DataFrame (``wtlab.trace.schema``) and returns a
``plotly.graph_objects.Figure``; widgets wrap the same builders into FigureWidgets.
Long traces are thinned for display with a min/max-per-bin reduction, which keeps
every peak and trough of a sawtooth (a 1,000,000-event trace draws as a few
thousand points).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

MAX_POINTS = 4000  # per series, after thinning

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf")


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Reduce (x, y) to at most ~max_points keeping each bin's min and max (order kept)."""
    n = len(x)
    if n <= max_points:
        return x, y
    bins = max(1, max_points // 2)
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    lo, hi = edges[:-1], edges[1:]
    lo, hi = lo[hi > lo], hi[hi > lo]
    # Vectorised over bins (a Python loop per bin cost ~20 ms per series): per-bin minima
    # and maxima by reduceat, then the first index in each bin that reaches them. NaN
    # counts as +inf for the minimum and -inf for the maximum; ties keep the first
    # index, as np.argmin/np.argmax on each bin would.
    yv = np.asarray(y, dtype=float)[lo[0]:hi[-1]]
    vmax = yv
    if not np.isfinite(yv).all():  # the slow path only where NaN or inf occur
        yv = np.nan_to_num(yv, nan=np.inf)  # +-inf become +-max float, NaN stays +inf
        vmax = np.where(np.isinf(yv), -np.inf, yv)
    starts, lengths = lo - lo[0], hi - lo

    def first_reaching(v: np.ndarray, extreme: np.ndarray) -> np.ndarray:
        hits = np.flatnonzero(v == np.repeat(extreme, lengths))  # each bin has >= 1 hit
        return lo[0] + hits[np.searchsorted(hits, starts)]

    i_min = first_reaching(yv, np.minimum.reduceat(yv, starts))
    i_max = first_reaching(vmax, np.maximum.reduceat(vmax, starts))
    first, second = np.minimum(i_min, i_max), np.maximum(i_min, i_max)
    pairs = np.stack([first, second], axis=1)
    keep = np.ones(pairs.shape, dtype=bool)
    keep[:, 1] = second != first
    out = pairs[keep]
    return np.asarray(x)[out], np.asarray(y)[out]


def _rows(df: pd.DataFrame, column: str) -> pd.DataFrame:
    out = df[df[column].notna()]
    return out[["time_s", "flow", column]]


def _flow_label(flow: int, labels: dict[int, str] | None) -> str:
    if labels and flow in labels:
        return labels[flow]
    return f"flow {flow}"


def trace_figure(df: pd.DataFrame, *, labels: dict[int, str] | None = None,
                 title: str | None = None, bdp_bytes: float | None = None,
                 max_points: int = MAX_POINTS):
    """cwnd and bytes in flight, pacing and delivery rate, RTT, with loss markers."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("congestion window (KB)", "rate (Mbit/s)", "RTT (ms)"))
    flows = sorted(int(f) for f in pd.unique(df["flow"])) if len(df) else []
    rates: list[np.ndarray] = []
    for i, flow in enumerate(flows):
        color = _PALETTE[i % len(_PALETTE)]
        name = _flow_label(flow, labels)
        f = df[df["flow"] == flow]
        cw = _rows(f, "cwnd")
        x, y = thin(cw["time_s"].to_numpy(), cw["cwnd"].to_numpy(dtype=float) / 1e3, max_points)
        fig.add_trace(go.Scattergl(x=x, y=y, name=f"{name} cwnd", mode="lines",
                                   line={"color": color}, legendgroup=name), row=1, col=1)
        bif = _rows(f, "bytes_in_flight")
        x, y = thin(bif["time_s"].to_numpy(), bif["bytes_in_flight"].to_numpy(dtype=float) / 1e3,
                    max_points)
        fig.add_trace(go.Scattergl(x=x, y=y, name=f"{name} in flight", mode="lines",
                                   line={"color": color, "dash": "dot", "width": 1},
                                   legendgroup=name), row=1, col=1)
        lost = f[f["kind"] == "packet_lost"]
        if len(lost):
            lx = lost["time_s"].to_numpy()
            ly = lost["cwnd"].to_numpy(dtype=float, na_value=np.nan) / 1e3
            lx, ly = thin(lx, ly, max_points)
            fig.add_trace(go.Scattergl(x=lx, y=ly, name=f"{name} loss", mode="markers",
                                       marker={"color": color, "symbol": "x", "size": 7},
                                       legendgroup=name), row=1, col=1)
        for column, dash in (("pacing_rate_bps", "solid"), ("delivery_rate_bps", "dot")):
            r = _rows(f, column)
            if len(r):
                x, y = thin(r["time_s"].to_numpy(), r[column].to_numpy(dtype=float) / 1e6,
                            max_points)
                rates.append(y)
                fig.add_trace(go.Scattergl(x=x, y=y, mode="lines",
                                           name=f"{name} {column.split('_rate')[0]}",
                                           line={"color": color, "dash": dash},
                                           legendgroup=name), row=2, col=1)
        rtt = f[f["kind"] == "rtt_sample"]
        if not len(rtt):
            rtt = _rows(f, "latest_rtt_s")
        if len(rtt):
            x, y = thin(rtt["time_s"].to_numpy(), rtt["latest_rtt_s"].to_numpy(dtype=float) * 1e3,
                        max_points)
            fig.add_trace(go.Scattergl(x=x, y=y, mode="lines", name=f"{name} RTT",
                                       line={"color": color}, legendgroup=name), row=3, col=1)
    if rates:
        # Startup's pacing (BBR: 2.89 x cwnd over the first RTT) can be 10-100x the link
        # rate for a moment; scale to the bulk of the run so the rest stays readable.
        values = np.concatenate(rates)
        values = values[np.isfinite(values)]
        if len(values):
            top = float(np.percentile(values, 99)) * 1.25
            if top > 0 and top < float(values.max()):
                fig.update_yaxes(range=[0, top], row=2, col=1)
    if bdp_bytes:
        fig.add_hline(y=bdp_bytes / 1e3, line={"dash": "dash", "color": "gray"},
                      annotation_text="BDP", row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=3, col=1)
    fig.update_layout(height=720, title=title, legend={"groupclick": "togglegroup"},
                      margin={"l": 60, "r": 20, "t": 60, "b": 40})
    return fig


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
    in display units (Mbit/s, ms); the goodput panel also draws the capacity and, on a
    lossy path, the analytic references compare() computed at goodput's packet size."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = [m for m in metrics if m in table.columns]
    titles = [_DISPLAY.get(m, (m, 1.0))[0] for m in metrics]
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), subplot_titles=titles)
    for i, m in enumerate(metrics):
        scale = _DISPLAY.get(m, (m, 1.0))[1]
        fig.add_trace(go.Bar(x=table[x].astype(str), y=table[m] * scale, name=m,
                             marker={"color": _PALETTE[i % len(_PALETTE)]}), row=1, col=i + 1)
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
    fig.update_layout(height=360, showlegend=False, margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return fig


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` for people: bit/s columns in Mbit/s and second columns in ms, the unit in
    each header (``goodput_bps`` -> ``goodput (Mbit/s)``); other columns unchanged."""
    out = {}
    for col in table.columns:
        values = table[col]
        if col.endswith("_bps") and pd.api.types.is_numeric_dtype(values):
            out[f"{col[:-4]} (Mbit/s)"] = values / 1e6
        elif col.endswith("_s") and pd.api.types.is_numeric_dtype(values):
            out[f"{col[:-2]} (ms)"] = values * 1e3
        else:
            out[col] = values
    return pd.DataFrame(out, index=table.index)
