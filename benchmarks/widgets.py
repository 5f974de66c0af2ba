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
    args = ap.parse_args()
    if args.quick:
        args.events, args.runs = 200_000, 3
    in_process(args)
    if args.browser:
        in_browser(args.events, args.runs)
    return 0


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
    naive_fig = w.view.figure  # the rebuild contender draws into a FigureWidget too

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
        # restore the widget's own traces after the contender drew into the same figure
        w.view.set_traces([(w._recorded_label(), df, "solid")])
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
