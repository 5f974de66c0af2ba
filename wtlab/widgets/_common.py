"""Pieces shared by the widgets: figure refresh and the current-event view."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd


def refresh_figure(figw: Any, new_fig: Any) -> None:
    """Replace a FigureWidget's traces by those of ``new_fig`` in one batched update."""
    with figw.batch_update():
        figw.data = ()
        figw.add_traces(list(new_fig.data))
        figw.layout.shapes = new_fig.layout.shapes
        figw.layout.annotations = new_fig.layout.annotations


_ROW_FIELDS = ("time_s", "flow", "kind", "pn", "bytes", "cwnd", "bytes_in_flight", "ssthresh",
               "srtt_s", "latest_rtt_s", "pacing_rate_bps", "state")


def row_html(row: dict | None, *, title: str = "current event") -> str:
    """A one-row table of the event a user just stepped to."""
    if row is None:
        return f"<b>{title}:</b> none (the run has nothing left)"
    cells = []
    for k in _ROW_FIELDS:
        v = row.get(k)
        if v is None or (isinstance(v, float) and v != v):
            text = "–"
        elif isinstance(v, float):
            text = f"{v:.6g}"
        else:
            text = str(v)
        cells.append(f"<td style='padding:2px 8px'><small>{k}</small><br><b>{html.escape(text)}"
                     "</b></td>")
    return f"<b>{title}</b><table><tr>{''.join(cells)}</tr></table>"


def table_html(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    return df.to_html(index=False, float_format=lambda v: floatfmt.format(v), border=0)
