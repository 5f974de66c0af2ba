"""Controls of the Explorer: log-scale path sliders with presets, and the flows editor.

The sliders hold the exact value the path has (``value``); the slider itself shows it
on its grid (a browser snaps an off-grid value and echoes it back, which must not count
as a move). A move by the user (or a preset button) calls ``on_change(name, value)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W

import wtlab.cc

LABEL_STYLE = {"description_width": "88px"}


class PathSlider:
    """A slider (log or linear) with preset buttons; ``value`` is the exact setting."""

    def __init__(self, name: str, description: str, value: float, *, lo: float, hi: float,
                 log: bool, step: float, presets: Sequence[float] = (), unit: str = "",
                 fmt: str = ".3g", on_change: Callable[[str, float], None] | None = None,
                 width: str = "430px") -> None:
        self.name = name
        self.log = log
        self.step = step
        self.on_change = on_change
        self.value = float(value)
        self._setting = False
        if log:
            self.slider = W.FloatLogSlider(value=self._grid(value), base=10,
                                           min=math.log10(lo), max=math.log10(hi), step=step,
                                           description=description, readout_format=fmt,
                                           continuous_update=False, style=LABEL_STYLE,
                                           layout=W.Layout(width=width))
        else:
            self.slider = W.FloatSlider(value=self._grid(value), min=lo, max=hi, step=step,
                                        description=description, readout_format=fmt,
                                        continuous_update=False, style=LABEL_STYLE,
                                        layout=W.Layout(width=width))
        self.slider.observe(self._on_slider, names="value")
        self.buttons = [W.Button(description=f"{p:g}{unit}", tooltip=f"set {description} "
                                 f"to {p:g}", layout=W.Layout(width="auto", padding="0 6px"))
                        for p in presets]
        for b, p in zip(self.buttons, presets, strict=True):
            b.on_click(lambda _b, p=p: self.set(p, notify=True))
        self.widget = W.HBox([self.slider, *self.buttons])

    def _grid(self, value: float) -> float:
        if self.log:
            k = round(math.log10(max(value, 1e-12)) / self.step)
            return float(10 ** (k * self.step))
        return round(round(value / self.step) * self.step, 10)

    def _same_cell(self, a: float, b: float) -> bool:
        if self.log:
            if a <= 0 or b <= 0:
                return a == b
            return round(math.log10(a) / self.step) == round(math.log10(b) / self.step)
        return round(a / self.step) == round(b / self.step)

    def set(self, value: float, *, notify: bool = False) -> None:
        """Set the exact value (the slider shows it on its grid)."""
        self.value = float(value)
        self._setting = True
        try:
            self.slider.value = max(self.slider.min if not self.log else 0.0, self._grid(value))
        finally:
            self._setting = False
        if notify and self.on_change is not None:
            self.on_change(self.name, self.value)

    def _on_slider(self, change: dict) -> None:
        if self._setting:
            return
        new = float(change["new"])
        if self._same_cell(new, self.value):
            return  # the browser's echo of what was set, snapped to the grid
        self.value = float(f"{new:.3g}")
        if self.on_change is not None:
            self.on_change(self.name, self.value)


class FlowsEditor:
    """1-4 flows, each with a controller, a start time (s) and an extra RTT (ms)."""

    MAX_FLOWS = 4

    def __init__(self, flows: Sequence[dict[str, Any]],
                 on_change: Callable[[], None] | None = None) -> None:
        names = wtlab.cc.names()
        self.on_change = on_change
        self._quiet = False
        self.count = W.ToggleButtons(options=[1, 2, 3, 4], value=max(1, min(4, len(flows))),
                                     description="flows", style={**LABEL_STYLE,
                                                                 "button_width": "34px"})
        self.rows = []
        for i in range(self.MAX_FLOWS):
            spec = flows[i] if i < len(flows) else {"cc": names[0] if i else "cubic"}
            cc = spec.get("cc", "cubic")
            cc = cc if cc in names else names[0]
            row = {
                "cc": W.Dropdown(options=names, value=cc, description=f"flow {i}",
                                 style=LABEL_STYLE, layout=W.Layout(width="200px")),
                "start_s": W.BoundedFloatText(value=float(spec.get("start_s", 0.0)), min=0,
                                              max=3600, step=0.5, description="start s",
                                              style={"description_width": "52px"},
                                              layout=W.Layout(width="130px")),
                "extra_rtt_ms": W.BoundedFloatText(
                    value=round(float(spec.get("extra_rtt_s", 0.0)) * 1e3, 3), min=0,
                    max=2000, step=5, description="+RTT ms",
                    style={"description_width": "58px"}, layout=W.Layout(width="140px")),
            }
            self.rows.append(row)
            for w in row.values():
                w.observe(self._changed, names="value")
        self.count.observe(self._changed, names="value")
        self.boxes = [W.HBox(list(r.values())) for r in self.rows]
        self.widget = W.VBox([self.count, *self.boxes])
        self._show_rows()

    def _show_rows(self) -> None:
        for i, box in enumerate(self.boxes):
            box.layout.display = "" if i < self.count.value else "none"

    def _changed(self, _change: dict) -> None:
        self._show_rows()
        if not self._quiet and self.on_change is not None:
            self.on_change()

    def specs(self) -> list[dict[str, Any]]:
        """The flows shown, one ``{"cc", "start_s", "extra_rtt_s"}`` dict each, in seconds
        (the extra RTT entered in ms is converted), as
        :class:`wtlab.lab.experiment.Experiment` takes them."""
        return [{"cc": r["cc"].value, "start_s": float(r["start_s"].value),
                 "extra_rtt_s": float(r["extra_rtt_ms"].value) / 1e3}
                for r in self.rows[:self.count.value]]

    def set_specs(self, flows: Sequence[dict[str, Any]]) -> None:
        """Show ``flows`` without calling ``on_change``."""
        self._quiet = True
        try:
            self.count.value = max(1, min(self.MAX_FLOWS, len(flows)))
            for r, spec in zip(self.rows, flows, strict=False):
                r["cc"].value = spec["cc"]
                r["start_s"].value = float(spec.get("start_s", 0.0))
                r["extra_rtt_ms"].value = round(float(spec.get("extra_rtt_s", 0.0)) * 1e3, 3)
        finally:
            self._quiet = False
        self._show_rows()
