"""Widget responsiveness on a 1,000,000-event trace: how long one redraw takes.

    .venv/bin/python -m benchmarks.widgets              # 1M events, 7 interleaved runs
    .venv/bin/python -m benchmarks.widgets --events 200000 --runs 5
    .venv/bin/python -m benchmarks.widgets --quick

The trace is real: the fast flow model (CUBIC, 50 Mbit/s, 40 ms, 0.2 % loss) run until
it has recorded ``--events`` events. Then, in the same process, interleaved:

(a) Replay window move: ``ReplayWidget.set_window`` for a full-span, a 10 % and a 1 %
    window at a random place (what one slider event costs in the kernel: binary search,
    min/max thinning of every series, one batched FigureWidget update, the cursor row).
    Contender "rebuild": what a naive view does on each move: cut the DataFrame to the
    window, build a new figure with ``wtlab.lab.plots.trace_figure`` and copy it into
    the FigureWidget (``refresh_figure``). Target: a window move under 0.1 s, the
    rebuild much slower.
(b) Event step: ``next_event("packet_lost")`` (the ▶ button).
(c) Loading: ``ReplayWidget(recorder)`` once (to_pandas + series extraction + first
    draw) and the Live redraw from the recorder's packed records (``LiveWidget.redraw``,
    what every tick costs while a session runs) against the same redraw through
    ``to_pandas``.

Points per redraw are printed too: what goes to the browser is at most ``MAX_POINTS``
per series (16 bytes each), whatever the trace's length.

(d) ``--browser``: end to end in JupyterLab and headless Chromium (as in
    ``tests/browser``): a kernel builds the same trace and two ReplayWidgets over it
    (full span, and a 1 % window); the benchmark presses the window slider's handle with
    the keyboard (ArrowLeft: one step, as a user would) and measures in the page, from
    the keydown to plotly's ``plotly_afterplot`` (the figure redrawn with the kernel's
    update), and until the cursor row shows the new event.

The Explorer (Play, Pause, Step, a slider moved mid-run), 20 Mbit/s, 40 ms, 1 sim-s/s:

(e) In the kernel: one Play frame (0.1 s of simulated time, then the figure update) at
    5, 20 and 60 s into a run: wall time, and the bytes the figure's comm sends for it
    (plotly's messages, JSON plus binary buffers, counted at ``comm.send``).
(f) ``--browser``: the Explorer in JupyterLab + Chromium. Play for ``--play-s`` seconds:
    frames per second drawn (``plotly_afterplot``), simulated seconds per wall second
    achieved, bytes sent per frame drawn. Latency on the browser's clock, ``--runs``
    times each (median, p95): Pause (click to the button showing Play again, and to the
    last frame drawn after the click), Step (click to the figure redrawn), a rate
    slider moved by the keyboard mid-run (keydown to the figure redrawn).

Before/after: ``--wtlab DIR`` runs (e) and (f) against another wtlab (a folder holding
its ``wtlab`` package, e.g. ``git archive fc6450a wtlab | tar -x -C /tmp/before``); the
kernel of (f) gets it through PYTHONPATH. Targets (the issue's): >= 10 frames/s at
1 sim-s/s on a 20 Mbit/s path, Pause and Step <= 250 ms p95.
"""

from __future__ import annotations

import argparse
import random
import time

from benchmarks._util import interleaved, print_table, ratio_line, summarize


def make_trace(events: int):
    from wtlab.lab import Experiment

    s = Experiment(path=dict(rate_bps=50e6, rtt_s=0.04, loss=0.002), cc="cubic",
                   seed=1).stepper()
    t0 = time.perf_counter()
    for _ in range(100_000):  # bounded
        if len(s.recorder) >= events:
            break
        s.advance(1.0)
    print(f"trace: {len(s.recorder):,} events, {s.now:.0f} s simulated, "
          f"made in {time.perf_counter() - t0:.1f} s")
    return s.recorder


def main() -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.widgets")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="200k events, 3 runs")
    ap.add_argument("--browser", action="store_true",
                    help="also measure slider moves end to end in JupyterLab + Chromium")
    ap.add_argument("--play-s", type=float, default=10.0, help="(f) seconds of Play")
    ap.add_argument("--wtlab", default=None,
                    help="run (e) and (f) against the wtlab package in this folder (before)")
    ap.add_argument("--explorer-only", action="store_true", help="only (e) and (f)")
    args = ap.parse_args()
    if args.quick:
        args.events, args.runs = 200_000, 3
    if args.wtlab:
        import os
        import sys

        sys.path.insert(0, args.wtlab)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [args.wtlab, *filter(None, [os.environ.get("PYTHONPATH")])])
        for name in [m for m in sys.modules if m == "wtlab" or m.startswith("wtlab.")]:
            del sys.modules[name]
    if not args.explorer_only:
        in_process(args)
    explorer_frames(args)
    if args.browser:
        if not args.explorer_only:
            in_browser(args.events, args.runs)
        explorer_in_browser(args.runs, args.play_s)
    return 0


# --------------------------------------------------------------------------- Explorer
EXPLORER_PATH = dict(rate_bps=20e6, rtt_s=0.04, loss=0.002, buffer_bdp=1.0)


class CommBytes:
    """Bytes a widget's comm sends (JSON text plus binary buffers), counted at send()."""

    def __init__(self, widget) -> None:
        import json

        self.bytes = 0
        self.messages = 0
        comm = widget.comm
        send = comm.send

        def counting(data=None, metadata=None, buffers=None):
            self.bytes += len(json.dumps(data, default=str)) + sum(
                memoryview(b).nbytes for b in (buffers or ()))
            self.messages += 1
            return send(data=data, metadata=metadata, buffers=buffers)

        comm.send = counting


def _frame(ex, dt_s: float) -> None:
    """One Play frame: dt_s of simulated time, then the figure (whatever the version)."""
    if hasattr(ex, "timeline"):  # this version: the player's frame
        ex.timeline.advance(dt_s)
        ex._redraw()
    else:  # before: the old player's tick (advance + full redraw)
        ex.advance(dt_s)


def explorer_frames(args) -> None:
    import plotly.graph_objects as go

    from wtlab.lab import Experiment
    from wtlab.widgets import Explorer

    go.FigureWidget()
    results: dict[str, list[float]] = {}
    sizes: dict[str, list[float]] = {}
    for at_s in (5.0, 20.0) if args.quick else (5.0, 20.0, 60.0):
        key = f"frame at t={at_s:g}s"
        results[key], sizes[key] = [], []
        for _ in range(max(1, args.runs)):
            ex = Explorer(Experiment(path=EXPLORER_PATH, cc="cubic", seed=1))
            for _ in range(int(at_s / 1.0)):  # get there in 1 s frames
                _frame(ex, 1.0)
            counter = CommBytes(ex.figure)
            t = time.perf_counter()
            for _ in range(5):
                _frame(ex, 0.1)
            results[key].append((time.perf_counter() - t) / 5)
            sizes[key].append(counter.bytes / 5)
    print_table("(e) Explorer Play frame in the kernel (0.1 sim-s + figure update), 20 Mbit/s",
                results, unit="s", higher_is_better=False)
    for key, v in sizes.items():
        print(f"    {key}: {summarize(v).median / 1e3:.1f} KB sent by the figure per frame")


EXPLORER_CELL = """\
import json, time
import ipywidgets as W
from wtlab.lab import Experiment
from wtlab.widgets import Explorer
explorer = Explorer(Experiment(path={path!r}, cc="cubic", seed=1))
sent = {{"bytes": 0, "messages": 0}}
_send = explorer.figure.comm.send
def _counting(data=None, metadata=None, buffers=None):
    sent["bytes"] += len(json.dumps(data, default=str)) + sum(memoryview(b).nbytes for b in (buffers or ()))
    sent["messages"] += 1
    return _send(data=data, metadata=metadata, buffers=buffers)
explorer.figure.comm.send = _counting
meter = W.HTML("sent 0 0")
def _show(_=None):
    meter.value = f"sent {{sent['bytes']}} {{sent['messages']}} t={{getattr(explorer, 'stepper').now:.3f}}"
explorer.status.observe(_show, names="value")
W.VBox([meter, explorer.widget])"""

JS_FRAMES = """gd => {
  window.__ex = {frames: [], down: 0, clickAt: 0, playShown: 0};
  gd.on('plotly_afterplot', () => window.__ex.frames.push(performance.now()));
  document.addEventListener('keydown', () => { window.__ex.down = performance.now(); },
                            {capture: true});
}"""

JS_PAUSE = """btn => {
  window.__ex.clickAt = 0; window.__ex.playShown = 0;
  btn.addEventListener('click', () => { window.__ex.clickAt = performance.now(); },
                       {capture: true, once: true});
  const obs = new MutationObserver(() => {
    if (window.__ex.clickAt && /Play/.test(btn.innerText) && !window.__ex.playShown) {
      window.__ex.playShown = performance.now(); obs.disconnect(); } });
  obs.observe(btn, {childList: true, subtree: true, characterData: true, attributes: true});
}"""


WAIT_LIMIT_MS = 90_000  # a wait longer than this is recorded as this (a lower bound)


def _redrawn(page, n: int, t_start: float | None) -> float:
    """Seconds from ``t_start`` (default: the last keydown) to the next frame drawn after
    frame ``n``; ``WAIT_LIMIT_MS`` if none comes by then."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if t_start is None:
        t_start = page.evaluate("() => window.__ex.down")
    try:
        page.wait_for_function(f"() => window.__ex.frames.length > {n}", timeout=WAIT_LIMIT_MS)
    except PlaywrightTimeout:
        print(f"    no redraw within {WAIT_LIMIT_MS / 1e3:g} s")
        return WAIT_LIMIT_MS / 1e3
    return (page.evaluate(f"() => window.__ex.frames[{n}]") - t_start) / 1e3


def _p95(values: list[float]) -> float:
    vals = sorted(values)
    if not vals:
        return float("nan")
    return vals[min(len(vals) - 1, int(round(0.95 * (len(vals) - 1))))]


def explorer_in_browser(runs: int, play_s: float) -> None:
    import re
    import shutil
    import tempfile
    from pathlib import Path

    import nbformat
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from tests.browser.jupyter import running_jupyterlab
    from tests.browser.test_jupyterlab import _open_and_run_all
    from tests.interop.browser import CHROMIUM_ARGS, chromium_path

    root = Path(tempfile.mkdtemp(prefix="wtlab-bench-explorer-"))
    profile = tempfile.mkdtemp(prefix="wtlab-chromium-")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(EXPLORER_CELL.format(path=EXPLORER_PATH))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, root / "explorer.ipynb")
    lat: dict[str, list[float]] = {"Pause (button)": [], "Pause (last frame)": [],
                                   "Step": [], "slider": []}
    play: dict[str, list[float]] = {"frames/s drawn": [], "sim-s/s": [], "KB per frame": []}

    def sent(meter) -> tuple[int, float]:
        m = re.search(r"sent (\d+) \d+ t=([\d.]+)", meter.inner_text())
        return (int(m.group(1)), float(m.group(2))) if m else (0, 0.0)

    try:
        with running_jupyterlab(root) as lab, sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1300})
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            _open_and_run_all(page, lab, "explorer.ipynb")
            cell = page.locator(".jp-Notebook .jp-CodeCell").first

            def button(text: str):
                return cell.locator("button.jupyter-button",
                                    has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))

            button("Step").wait_for(timeout=180_000)
            figure = cell.locator(".js-plotly-plot").first
            page.wait_for_function("gd => Array.isArray(gd.data)", arg=figure.element_handle())
            figure.evaluate(JS_FRAMES)
            meter = cell.locator(".widget-html-content", has_text="sent").first
            status = cell.locator(".widget-html-content", has_text="events").first
            for _ in range(max(1, runs)):
                # Play: frames drawn, speed achieved, bytes per frame
                b0, t0 = sent(meter)
                n0 = page.evaluate("() => window.__ex.frames.length")
                button("Play").click()
                start = page.evaluate("() => performance.now()")
                page.wait_for_function(f"() => performance.now() - {start} >= {play_s * 1e3}",
                                       timeout=int(play_s * 1e3) + 60_000, polling=250)
                pause = button("Pause")
                pause.evaluate(JS_PAUSE)
                pause.click()
                try:
                    page.wait_for_function("() => window.__ex.playShown > 0",
                                           timeout=WAIT_LIMIT_MS)
                    # a kernel round trip, then read what arrived
                    before = status.inner_text()
                    button("Step").click()
                    page.wait_for_function("([el, b]) => el.innerText !== b",
                                           arg=[status.element_handle(), before],
                                           timeout=WAIT_LIMIT_MS)
                except PlaywrightTimeout:
                    print(f"    Pause not shown within {WAIT_LIMIT_MS / 1e3:g} s")
                ex = page.evaluate("() => window.__ex")
                if not ex["playShown"]:
                    ex["playShown"] = ex["clickAt"] + WAIT_LIMIT_MS
                frames = [f for f in ex["frames"][n0:] if start <= f <= ex["clickAt"]]
                after = [f - ex["clickAt"] for f in ex["frames"] if f > ex["clickAt"]]
                b1, t1 = sent(meter)
                wall = (ex["clickAt"] - start) / 1e3
                play["frames/s drawn"].append(len(frames) / wall)
                play["sim-s/s"].append((t1 - t0) / wall)
                play["KB per frame"].append((b1 - b0) / 1e3 / max(1, len(frames)))
                lat["Pause (button)"].append((ex["playShown"] - ex["clickAt"]) / 1e3)
                print(f"    run {len(lat['Pause (button)'])}: {play['frames/s drawn'][-1]:.1f} "
                      f"frames/s, {play['sim-s/s'][-1]:.2f} sim-s/s, "
                      f"{play['KB per frame'][-1]:.0f} KB/frame, Pause shown after "
                      f"{lat['Pause (button)'][-1] * 1e3:.0f} ms")
                drawn_after = [ms for ms in after if ms < (ex["playShown"] - ex["clickAt"]) + 1]
                lat["Pause (last frame)"].append(max(drawn_after, default=0.0) / 1e3)
                # Step: click to the figure redrawn
                for _ in range(3):
                    n = page.evaluate("() => window.__ex.frames.length")
                    t_click = page.evaluate("() => performance.now()")
                    button("Step").click()
                    lat["Step"].append(_redrawn(page, n, t_click))
                # a rate slider moved by the keyboard mid-run
                n = page.evaluate("() => window.__ex.frames.length")
                handle = cell.locator(".widget-slider", has_text="rate Mbit/s").locator(
                    ".noUi-handle").first
                handle.focus()
                page.keyboard.press("ArrowRight" if len(lat["slider"]) % 2 else "ArrowLeft")
                lat["slider"].append(_redrawn(page, n, None))
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    print_table(f"(f) Explorer Play in JupyterLab + Chromium, {play_s:g} s, 20 Mbit/s, 1 sim-s/s",
                play, unit="", higher_is_better=True)
    print_table("(f) latency on the browser's clock, s", lat, unit="s", higher_is_better=False)
    for name, v in lat.items():
        print(f"    {name}: median {summarize(v).median * 1e3:.0f} ms, p95 {_p95(v) * 1e3:.0f} ms"
              f" (n={len(v)})")
    fps = summarize(play["frames/s drawn"]).median
    print(f"    targets: >= 10 frames/s: {fps:.1f} ({'met' if fps >= 10 else 'MISSED'}); "
          f"Pause and Step p95 <= 250 ms: "
          f"{'met' if max(_p95(lat['Pause (button)']), _p95(lat['Step'])) <= 0.25 else 'MISSED'}")


def in_process(args) -> None:

    import numpy as np

    from wtlab.lab.plots import trace_figure
    from wtlab.widgets import LiveWidget, ReplayWidget
    from wtlab.widgets._common import refresh_figure
    from wtlab.widgets.replay import columns_of_frame

    rec = make_trace(args.events)
    import plotly.graph_objects as go

    go.FigureWidget()  # its first use imports half of Jupyter (seconds): not the widget's cost
    t0 = time.perf_counter()
    w = ReplayWidget(rec)
    load_s = time.perf_counter() - t0
    df = w.trace
    t_min, t_max = w.window.min, w.window.max
    span = t_max - t_min
    rng = random.Random(1)
    times = df["time_s"].to_numpy()
    naive_fig = go.FigureWidget()  # the rebuild contender draws into a FigureWidget too

    def window(frac: float) -> tuple[float, float]:
        width = span * frac * (0.98 + 0.02 * rng.random())  # never the same window twice
        start = t_min + rng.random() * (span - width)
        return start, start + width

    points: dict[str, int] = {}

    def move(frac: float, key: str):
        def run() -> float:
            a, b = window(frac)
            t = time.perf_counter()
            w.set_window(a, b)
            dt = time.perf_counter() - t
            points[key] = w.last_redraw_points
            return dt
        return run

    def rebuild(frac: float):
        def run() -> float:
            a, b = window(frac)
            t = time.perf_counter()
            lo, hi = np.searchsorted(times, [a, b])
            part = df.iloc[lo:hi]
            refresh_figure(naive_fig, trace_figure(part))
            return time.perf_counter() - t
        return run

    for frac, title in ((1.0, "full span"), (0.1, "10% window"), (0.01, "1% window")):
        key = f"move {title}"
        res = interleaved({"window move": move(frac, key), "rebuild": rebuild(frac)},
                          runs=args.runs)
        print_table(f"(a) {title}: seconds per redraw, {len(df):,} events", res, unit="s",
                    higher_is_better=False)
        print(ratio_line(f"    {title}", res, "window move", "rebuild", higher_is_better=False))
        print(f"    points sent by the window move: {points.get(key, 0):,}; "
              f"median {summarize(res['window move']).median * 1e3:.0f} ms "
              f"(target < 100 ms: {'met' if summarize(res['window move']).median < 0.1 else 'MISSED'})")

    def step() -> float:
        w.set_window(*window(0.01))
        t = time.perf_counter()
        w.next_event("packet_lost")
        return time.perf_counter() - t

    res = interleaved({"next loss": step}, runs=args.runs)
    print_table("(b) ▶ next packet_lost (cursor + redraw)", res, unit="s", higher_is_better=False)

    live = LiveWidget()
    live.recorder = rec

    def live_records() -> float:
        t = time.perf_counter()
        live.redraw()
        return time.perf_counter() - t

    def live_frame() -> float:
        t = time.perf_counter()
        cols = columns_of_frame(rec.to_pandas())
        live.view.set_traces([("cubic", cols, "solid")])
        return time.perf_counter() - t

    res = interleaved({"records": live_records, "to_pandas": live_frame}, runs=args.runs)
    print_table(f"(c) live redraw of a {len(rec):,}-event recorder", res, unit="s",
                higher_is_better=False)
    print(ratio_line("    live redraw", res, "records", "to_pandas", higher_is_better=False))
    print(f"(c) ReplayWidget(recorder) load, once: {load_s:.2f} s")


BROWSER_CELLS = ("""\
from wtlab.lab import Experiment
from wtlab.widgets import ReplayWidget
s = Experiment(path=dict(rate_bps=50e6, rtt_s=0.04, loss=0.002), cc="cubic", seed=1).stepper()
for _ in range(100_000):
    if len(s.recorder) >= {events}:
        break
    s.advance(1.0)
full = ReplayWidget(s.recorder)
full""", """\
narrow = ReplayWidget(s.recorder)
t_mid = (narrow.window.min + narrow.window.max) / 2
narrow.set_window(t_mid, t_mid + (narrow.window.max - narrow.window.min) / 100)
narrow""")

# In the page: time from a keydown on the slider handle to plotly's next afterplot.
JS_ARM = """gd => {
  window.__wt = {down: 0, plot: 0, n: 0};
  if (!gd.__wtHooked) {
    gd.on('plotly_afterplot', () => { window.__wt.plot = performance.now(); window.__wt.n++; });
    gd.__wtHooked = true;
  }
  document.addEventListener('keydown', () => { window.__wt.down = performance.now(); },
                            {capture: true, once: true});
}"""


def in_browser(events: int, runs: int) -> None:
    import shutil
    import tempfile
    from pathlib import Path

    import nbformat
    from playwright.sync_api import sync_playwright

    from tests.browser.jupyter import running_jupyterlab
    from tests.browser.test_jupyterlab import _open_and_run_all
    from tests.interop.browser import CHROMIUM_ARGS, chromium_path

    root = Path(tempfile.mkdtemp(prefix="wtlab-bench-lab-"))
    profile = tempfile.mkdtemp(prefix="wtlab-chromium-")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.replace("{events}", str(events)))
                for c in BROWSER_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, root / "bench.ipynb")
    results: dict[str, list[float]] = {}
    try:
        with running_jupyterlab(root) as lab, sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1300})
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            _open_and_run_all(page, lab, "bench.ipynb")
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            for i, name in ((0, "full span"), (1, "1% window")):
                cell = cells.nth(i)
                figure = cell.locator(".js-plotly-plot")
                figure.wait_for(timeout=180_000)  # the kernel builds the trace first
                page.wait_for_function("gd => (gd.data || []).length > 0",
                                       arg=figure.element_handle(), timeout=60_000)
                # the upper handle: moving it moves the cursor, so the row changes too
                handle = cell.locator(".widget-slider .noUi-handle").nth(1)
                row = cell.locator(".widget-html-content", has_text="event at the cursor")
                plot_ms: list[float] = []
                changed: list[bool] = []
                readout = cell.locator(".widget-readout").first
                for _ in range(runs):
                    before, shown = row.inner_text(), readout.inner_text()
                    figure.evaluate(JS_ARM)
                    handle.focus()
                    page.keyboard.press("ArrowLeft")
                    page.wait_for_function("([el, b]) => el.innerText !== b",
                                           arg=[readout.element_handle(), shown])
                    page.wait_for_function("() => window.__wt.n > 0 && window.__wt.down > 0")
                    plot_ms.append(page.evaluate("() => window.__wt.plot - window.__wt.down"))
                    # the row changes only if an event lies in the step the edge moved
                    changed.append(row.inner_text() != before)
                results[name] = [v / 1e3 for v in plot_ms]
                print(f"(d) {name}: the cursor row changed on {sum(changed)} of {runs} moves")
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    print_table(f"(d) JupyterLab + Chromium: slider ArrowLeft to plot redrawn ({events:,} "
                "events)", results, unit="s", higher_is_better=False)


if __name__ == "__main__":
    raise SystemExit(main())
