"""A real JupyterLab in a real browser: the Explorer, the Replay and the Live widgets.

JupyterLab (from .venv) runs headless on 127.0.0.1 with a token and a temporary root.
Debian's headless Chromium opens it, runs all cells from the Run menu, waits for the
widgets (ipywidgets 8 + plotly's anywidget FigureWidget) to render, and drives them with
the mouse and keyboard, as a lecturer would.

The Explorer notebook (one kernel, three widgets):

* Step, Step to loss: the status line's event count grows, the "current event" row shows
  the new event (DOM text rendered from the kernel's reply), plotly's graph div holds
  more points and the figure's pixels change (element screenshots compared by the
  browser's own PNG decoder).
* Step back: one event forward then ◀ restores the loss row and the controller state
  shown with it.
* Play for 10 s: every frame plotly draws (``plotly_afterplot``) and a 100 ms sampler
  record the points of the cwnd series: once drawn it is never empty. Pause: measured
  on the browser's clock from the click to the button showing "Play" again and to the
  last frame drawn; both must be within ``PAUSE_LIMIT_MS``: the issue's 250 ms target
  with a 4x margin, because this machine runs the kernel, JupyterLab, Chromium and other
  test suites on two shared cores (``benchmarks/widgets.py --browser`` reports the
  actual median and p95). No frame arrives after it (checked after a kernel round trip).
* A rate slider moved by the keyboard during the run: the event row shows the
  ``path_changed`` row at the same simulated time and the event count went on: the
  run was not restarted.
* A two-flow Explorer draws two delivery-rate lines and a Jain's-index line.
* Save writes the view to explorer.json; Load in a third Explorer reopens the same
  cursor (same event row) and spec (same status line).

A second notebook holds a ReplayWidget (a recorded model run: ◀ to the last loss moves
the window and the cursor row there; Rerun overlays BBR's replay and shows the
recorded-vs-replayed table) and a LiveWidget (Connect runs a session against the embedded
server on 127.0.0.1; the plots grow while it runs; Disconnect stops it).

Screenshots are kept in ``test-artifacts/`` (``jupyterlab_explorer.png``,
``jupyterlab_replay.png``, ``jupyterlab_live.png``; ``*_failure.png`` on a failure). Every wait
is a bounded Playwright wait on a condition; there are no fixed sleeps (the 10 s of Play
are the browser's own clock, awaited as a condition).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

from tests.browser.jupyter import running_jupyterlab
from tests.interop.browser import CHROMIUM_ARGS, chromium_path

pytestmark = [pytest.mark.browser, pytest.mark.timeout(170)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# The Explorer cell of notebooks/02_stepping.ipynb, without its pre-steps so the
# widget starts at t = 0.
EXPLORER_CELL = """\
from wtlab.lab import Experiment
from wtlab.widgets import Explorer
exp = Experiment(path=dict(rate_bps=10e6, rtt_s=0.05, loss=0.01, buffer_bdp=1.0), cc="cubic", seed=7)
explorer = Explorer(exp, height=600)
explorer"""

TWO_FLOWS_CELL = """\
two = Explorer(Experiment(path=dict(rate_bps=10e6, rtt_s=0.04), seed=1,
                          flows=[{"cc": "cubic"}, {"cc": "bbr", "extra_rtt_s": 0.04}]), height=600)
two.advance(3.0)
two"""

LOAD_CELL = """\
fresh = Explorer(height=400)
fresh"""

PAUSE_LIMIT_MS = 1000  # the 250 ms target x 4: see the module docstring

# A recorded run (the fast model, 3 s) in the ReplayWidget; the LiveWidget against the
# embedded server on 127.0.0.1, long enough to be disconnected while it runs.
REPLAY_CELL = """\
from wtlab.lab import Experiment
from wtlab.widgets import ReplayWidget
run = Experiment(path=dict(rate_bps=10e6, rtt_s=0.05, loss=0.01), cc="cubic", seed=7).run(3.0)
replay = ReplayWidget(run.recorder, cc="bbr")
replay"""

LIVE_CELL = """\
from wtlab.widgets import LiveWidget
live = LiveWidget(size_mb=500, max_duration_s=60, tick_s=0.25)
live"""

# Points and trace names of one plotly graph div (a locator's element).
GD_POINTS = "gd => (gd.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0)"
GD_NAMES = "gd => (gd.data || []).map(t => t.name)"
GD_XRANGE = "gd => (gd._fullLayout && gd._fullLayout.xaxis) ? gd._fullLayout.xaxis.range : null"

# Points plotly holds for the Explorer's figure (the output's plotly graph div).
JS_POINTS = """() => {
  const gd = document.querySelector('.jp-OutputArea-output .js-plotly-plot');
  if (!gd || !gd.data) return -1;
  return gd.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
}"""

# How many pixels differ between two PNG screenshots (decoded by the browser).
JS_PIXEL_DIFF = """async ([a, b]) => {
  async function pixels(b64) {
    const blob = await (await fetch('data:image/png;base64,' + b64)).blob();
    const bmp = await createImageBitmap(blob);
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = c.getContext('2d');
    ctx.drawImage(bmp, 0, 0);
    return ctx.getImageData(0, 0, bmp.width, bmp.height);
  }
  const [pa, pb] = [await pixels(a), await pixels(b)];
  if (pa.width !== pb.width || pa.height !== pb.height) return pa.width * pa.height;
  let n = 0;
  for (let i = 0; i < pa.data.length; i += 4) {
    if (pa.data[i] !== pb.data[i] || pa.data[i + 1] !== pb.data[i + 1] ||
        pa.data[i + 2] !== pb.data[i + 2]) n++;
  }
  return n;
}"""

# The event count of the Explorer's status line ("t = ... s · N events · ..."), -1 if absent.
JS_EVENTS = """() => {
  for (const e of document.querySelectorAll('.jp-OutputArea-output .widget-html-content')) {
    const m = /(\\d+) events/.exec(e.innerText);
    if (m) return parseInt(m[1], 10);
  }
  return -1;
}"""

STATUS = ".jp-OutputArea-output .widget-html-content:has-text('events')"
EVENT_ROW = ".jp-OutputArea-output .widget-html-content:has-text('current event')"


def _write_notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def _events(text: str) -> int:
    m = re.search(r"(\d+) events", text)
    assert m, f"status line without an event count: {text!r}"
    return int(m.group(1))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    _write_notebook(root / "explorer.ipynb", EXPLORER_CELL, TWO_FLOWS_CELL, LOAD_CELL)
    _write_notebook(root / "replay_live.ipynb", REPLAY_CELL, LIVE_CELL)
    with running_jupyterlab(root) as running:
        yield running


@pytest.fixture(scope="module")
def browser_context():
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="wtlab-chromium-")
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1300})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def _page(ctx, lab, name: str):
    """A page; on failure its screenshot, console and the server log are kept."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"[:300]))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"[:300]))
    try:
        yield page
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"jupyterlab_{name}_failure.png"))
        print("browser console:\n  " + "\n  ".join(console[-40:]))
        print("jupyter log:\n" + lab.log_tail())
        raise
    finally:
        page.close()


def _open_and_run_all(page, lab, notebook: str) -> None:
    # A workspace per notebook, reset: only this notebook's tab opens (no restored tabs
    # whose kernels could answer the status checks below).
    stem = Path(notebook).stem
    page.goto(lab.url(f"/lab/workspaces/{stem}/tree/{notebook}?reset"), timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # Run only once this notebook's kernel is up, or JupyterLab asks which kernel to start.
    page.wait_for_selector("#jp-main-statusbar >> text=/Python 3.*Idle/", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator"
                           "[data-status='idle']", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel-toolbar .jp-KernelName >> text=/Python 3/")
    page.click("#jp-MainMenu >> text=Run")
    page.click(".lm-Menu >> text=Run All Cells")
    # the first cell is queued or running: Run All reached the kernel
    page.wait_for_selector(".jp-CodeCell .jp-InputPrompt >> text=/\\[(\\*|\\d+)\\]/")


@pytest.mark.timeout(300)
def test_explorer_in_jupyterlab(lab, browser_context):
    with _page(browser_context, lab, "explorer") as page:
        _drive(page, lab)
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        main = cells.nth(0)
        _drive_back(page, main)
        _drive_play_pause(page, main)
        _drive_slider_mid_run(page, main)
        main.screenshot(path=str(ARTIFACTS / "jupyterlab_explorer.png"))
        _drive_two_flows(page, cells.nth(1))
        _drive_save_load(page, main, cells.nth(2))


def _drive(page, lab) -> None:
    _open_and_run_all(page, lab, "explorer.ipynb")
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(0)

    # The widget renders: controls, status line, current-event row and the plotly figure.
    step = _button(cell, "Step")
    step.wait_for(timeout=90_000)  # kernel start-up imports wtlab, plotly and ipywidgets
    figure = cell.locator(".js-plotly-plot").first
    figure.wait_for()
    page.wait_for_function(f"({JS_POINTS})() >= 0")
    status = cell.locator(".widget-html-content", has_text="events").first
    event_row = cell.locator(".widget-html-content", has_text="current event").first
    assert _events(status.inner_text()) == 0
    assert "none" in event_row.inner_text()
    points0 = page.evaluate(JS_POINTS)
    shot0 = figure.screenshot()

    # Step: one event further; the page shows it and the plot gets its first points.
    step.click()
    page.wait_for_function(f"({JS_EVENTS})() > 0")
    events1 = _events(status.inner_text())
    assert events1 > 0
    row = event_row.inner_text()
    assert "packet_sent" in row, row
    page.wait_for_function(f"({JS_POINTS})() > {points0}")
    points1 = page.evaluate(JS_POINTS)
    shot1 = _figure_changed(page, figure, shot0)

    # Step to loss: many events at once; a loss row and a grown sawtooth.
    _button(cell, "Step to loss").click()
    page.wait_for_function("el => el.innerText.includes('packet_lost')",
                           arg=event_row.element_handle())
    page.wait_for_function(f"({JS_EVENTS})() > {events1}")
    events2 = _events(status.inner_text())
    assert events2 > events1
    page.wait_for_function(f"({JS_POINTS})() > {points1}")
    _figure_changed(page, figure, shot1)


def _text(cell, selector_text: str) -> str:
    return cell.locator(".widget-html-content", has_text=selector_text).first.inner_text()


def _wait_text_change(page, cell, selector_text: str, before: str, timeout: int = 30_000):
    el = cell.locator(".widget-html-content", has_text=selector_text).first
    page.wait_for_function("([el, b]) => el.innerText !== b", arg=[el.element_handle(), before],
                           timeout=timeout)
    return el.inner_text()


def _status_t(text: str) -> float:
    m = re.search(r"t = ([\d.]+) s", text)
    assert m, text
    return float(m.group(1))


def _drive_back(page, cell) -> None:
    """One event forward, then ◀: the loss row and its state come back exactly."""
    loss_row = _text(cell, "current event")
    loss_status = _text(cell, "events")
    assert "packet_lost" in loss_row
    _button(cell, "Step").click()
    stepped = _wait_text_change(page, cell, "current event", loss_row)
    _button(cell, "◀").click()
    back_row = _wait_text_change(page, cell, "current event", stepped)
    assert back_row == loss_row
    page.wait_for_function("([el, b]) => el.innerText === b",
                           arg=[cell.locator(".widget-html-content", has_text="events")
                                .first.element_handle(), loss_status])


JS_ARM_FRAMES = """gd => {
  window.__wt = {frames: [], samples: [], clickPause: 0, playShown: 0, stepClick: 0};
  const cwnd = () => { const t = (gd.data || []).find(t => t.name === 'cubic cwnd');
                       return t && t.x ? t.x.length : 0; };
  gd.on('plotly_afterplot', () => window.__wt.frames.push([performance.now(), cwnd()]));
  window.__wtSampler = setInterval(() => window.__wt.samples.push(cwnd()), 100);
}"""

JS_ARM_PAUSE = """btn => {
  btn.addEventListener('click', () => { window.__wt.clickPause = performance.now(); },
                       {capture: true, once: true});
  new MutationObserver((_, obs) => {
    if (window.__wt.clickPause && /Play/.test(btn.innerText)) {
      window.__wt.playShown = performance.now(); obs.disconnect(); }
  }).observe(btn, {childList: true, subtree: true, characterData: true, attributes: true});
}"""


def _drive_play_pause(page, cell) -> None:
    """Play 10 s of wall time: the cwnd series is never empty; Pause is effective fast."""
    figure = cell.locator(".js-plotly-plot").first
    figure.evaluate(JS_ARM_FRAMES)
    status = cell.locator(".widget-html-content", has_text="events").first
    t_before = _status_t(status.inner_text())
    play = cell.locator(".jp-OutputArea-output button.jupyter-button",
                        has_text=re.compile(r"^\s*Play\s*$"))
    play.click()
    page.wait_for_function("el => el.innerText.includes('playing')",
                           arg=status.element_handle())
    started = page.evaluate("() => performance.now()")
    page.wait_for_function(f"() => performance.now() - {started} >= 10000", timeout=30_000,
                           polling=500)
    pause = cell.locator(".jp-OutputArea-output button.jupyter-button",
                         has_text=re.compile(r"^\s*Pause\s*$"))
    pause.evaluate(JS_ARM_PAUSE)
    pause.click()
    page.wait_for_function("() => window.__wt.playShown > 0", timeout=20_000)
    # a kernel round trip after the pause: any frame still coming has arrived by then
    row = _text(cell, "current event")
    page.evaluate("() => { window.__wt.stepClick = performance.now(); }")
    _button(cell, "Step").click()
    _wait_text_change(page, cell, "current event", row)
    wt = page.evaluate("() => { clearInterval(window.__wtSampler); return window.__wt; }")
    frames = wt["frames"]
    during = [f for f in frames if f[0] < wt["clickPause"]]
    assert len(during) >= 5, f"only {len(during)} frames drawn in 10 s of Play"
    drawn = [n for n in wt["samples"] + [f[1] for f in frames]]
    assert drawn and min(drawn) > 0, "the cwnd series was empty in a sampled frame"
    pause_ms = wt["playShown"] - wt["clickPause"]
    late = [f[0] - wt["clickPause"] for f in frames
            if wt["clickPause"] < f[0] < wt["stepClick"]]
    assert pause_ms <= PAUSE_LIMIT_MS, f"Pause took {pause_ms:.0f} ms to show"
    assert all(ms <= PAUSE_LIMIT_MS for ms in late), f"frames after Pause: {late}"
    t_after = _status_t(status.inner_text())
    assert t_after > t_before + 1.0  # the run went on while playing
    print(f"browser: {len(during)} frames in 10 s of Play; Pause shown after {pause_ms:.0f} ms,"
          f" last frame {max(late, default=0):.0f} ms after the click")


def _drive_slider_mid_run(page, cell) -> None:
    """ArrowLeft on the rate slider: a path change at the current simulated time."""
    status = cell.locator(".widget-html-content", has_text="events").first
    before = status.inner_text()
    t0, n0 = _status_t(before), _events(before)
    row = _text(cell, "current event")
    handle = cell.locator(".widget-slider", has_text="rate Mbit/s").locator(".noUi-handle")
    handle.first.focus()
    page.keyboard.press("ArrowLeft")
    after_row = _wait_text_change(page, cell, "current event", row)
    assert "path_changed" in after_row, after_row
    after = status.inner_text()
    assert _status_t(after) == pytest.approx(t0, abs=1e-3)  # at the current time
    assert _events(after) >= n0  # the run went on from there: it was not restarted


def _drive_two_flows(page, cell) -> None:
    figure = cell.locator(".js-plotly-plot").first
    figure.wait_for()
    names = ("cubic delivery", "bbr delivery", "Jain's index")
    js = ("gd => { const n = " + json.dumps(list(names)) + ";"
          " return n.every(name => (gd.data || []).some(t => t.name === name &&"
          " t.x && t.x.length > 5)); }")
    page.wait_for_function(js, arg=figure.element_handle(), timeout=60_000)
    cell.screenshot(path=str(ARTIFACTS / "jupyterlab_explorer_two_flows.png"))


def _drive_save_load(page, main, fresh) -> None:
    row, status = _text(main, "current event"), _text(main, "events")
    _button(main, "Save").click()
    main.locator(".widget-html-content", has_text="saved to").first.wait_for()
    _button(fresh, "Load").click()
    page.wait_for_function("([el, b]) => el.innerText === b",
                           arg=[fresh.locator(".widget-html-content",
                                              has_text="current event").first.element_handle(),
                                row], timeout=60_000)
    page.wait_for_function("([el, b]) => el.innerText === b",
                           arg=[fresh.locator(".widget-html-content", has_text="events")
                                .first.element_handle(), status])


def test_replay_and_live_in_jupyterlab(lab, browser_context):
    with _page(browser_context, lab, "replay_live") as page:
        _open_and_run_all(page, lab, "replay_live.ipynb")
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        replay_cell, live_cell = cells.nth(0), cells.nth(1)
        _drive_replay(page, replay_cell)
        replay_cell.screenshot(path=str(ARTIFACTS / "jupyterlab_replay.png"))
        _drive_live(page, live_cell)
        live_cell.screenshot(path=str(ARTIFACTS / "jupyterlab_live.png"))


def _button(cell, text: str):
    return cell.locator(".jp-OutputArea-output button.jupyter-button",
                        has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


def _drive_replay(page, cell) -> None:
    back = _button(cell, "◀")
    back.wait_for(timeout=90_000)  # the kernel imports wtlab and runs the 3 s model first
    figure = cell.locator(".js-plotly-plot").first  # the time series (the 2nd tab: sequence)
    figure.wait_for()
    page.wait_for_function("gd => (gd.data || []).length > 0", arg=figure.element_handle())
    out = cell.locator(".jp-OutputArea-output")
    assert re.search(r"[1-9][\d,]* events", out.inner_text())
    points0 = figure.evaluate(GD_POINTS)
    right0 = figure.evaluate(GD_XRANGE)[1]
    shot0 = figure.screenshot()
    # step back to the last loss: the cursor row shows it, the window ends there
    cell.locator(".widget-dropdown", has_text="step to").locator("select").select_option(
        "packet_lost")
    back.click()
    page.wait_for_function(
        "el => el.innerText.includes('event at the cursor') && "
        "/packet_lost/.test(el.innerText.split('event at the cursor')[1])",
        arg=out.element_handle())
    page.wait_for_function(f"gd => ({GD_XRANGE})(gd)[1] < {right0}",
                           arg=figure.element_handle())
    shot1 = _figure_changed(page, figure, shot0)
    assert figure.evaluate(GD_POINTS) <= points0  # a narrower window, no more points
    # rerun with BBR against the recorded server: the replay is overlaid, a table appears
    _button(cell, "Rerun").click()
    page.wait_for_function(f"gd => ({GD_NAMES})(gd).includes('bbr replay cwnd')",
                           arg=figure.element_handle(), timeout=90_000)
    page.wait_for_function("el => el.innerText.includes('replayed with bbr')",
                           arg=out.element_handle())
    assert "replayed" in cell.locator("table.dataframe").inner_text()  # recorded vs replayed
    _figure_changed(page, figure, shot1)


def _drive_live(page, cell) -> None:
    connect = _button(cell, "Connect")
    connect.wait_for(timeout=60_000)
    figure = cell.locator(".js-plotly-plot")
    out = cell.locator(".jp-OutputArea-output")
    connect.click()
    # the session runs as a task on the kernel's loop; the plots redraw while it runs
    page.wait_for_function("el => /running .* events/.test(el.innerText)",
                           arg=out.element_handle(), timeout=60_000)
    page.wait_for_function(f"gd => ({GD_NAMES})(gd).includes('cubic cwnd') && "
                           f"({GD_POINTS})(gd) > 0", arg=figure.element_handle())
    first = figure.evaluate(GD_POINTS)
    page.wait_for_function(f"gd => ({GD_POINTS})(gd) > {first}", arg=figure.element_handle())
    _button(cell, "Disconnect").click()
    page.wait_for_function("el => el.innerText.includes('disconnected after')",
                           arg=out.element_handle(), timeout=30_000)


def _figure_changed(page, figure, before: bytes, *, min_pixels: int = 200,
                    timeout_s: float = 20.0) -> bytes:
    """Wait (bounded) until the figure's screenshot differs from ``before`` by enough pixels."""
    import time

    deadline = time.monotonic() + timeout_s
    b64_before = base64.b64encode(before).decode()
    while True:  # plotly redraws asynchronously after the widget message; poll the pixels
        after = figure.screenshot()
        diff = page.evaluate(JS_PIXEL_DIFF, [b64_before, base64.b64encode(after).decode()])
        if diff >= min_pixels:
            return after
        if time.monotonic() > deadline:
            raise AssertionError(f"the figure changed only {diff} pixels in {timeout_s} s")
