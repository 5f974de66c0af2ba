"""ReplayWidget and LiveWidget driven from Python: loading, scrubbing, rerun, live sessions.

The recording is a real one: a CUBIC upload through wtlab's full stack over an emulated
8 Mbit/s, 30 ms, 0.5 %-loss path (virtual time, about a second of wall time). The live
sessions run against wtlab's embedded server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from wtlab import datasets
from wtlab.errors import ConfigError, InvalidURL
from wtlab.trace.export import write_csv, write_parquet
from wtlab.trace.qlog import write_qlog
from wtlab.trace.recorder import Recorder
from wtlab.widgets import LiveWidget, ReplayWidget

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def recording() -> Recorder:
    from wtlab.net.emulate import emulate
    from wtlab.net.link import LinkSpec
    from wtlab.net.path import Path
    from wtlab.transport.workloads import Bulk

    path = Path(up=LinkSpec(rate_bps=8e6, delay_s=0.015, loss=0.005, buffer="1.5bdp"),
                down=LinkSpec(rate_bps=8e6, delay_s=0.015, buffer="1.5bdp"), seed=5)
    res = emulate(path, cc="cubic", workload=Bulk(size_bytes=500_000, direction="up"),
                  until_s=30.0)
    assert res.flows[0].summary["transferred_bytes"] == 500_000
    return res.recorder


def _points(fig) -> int:
    return sum(len(t.x) for t in fig.data if t.x is not None)


def _by_name(fig, name: str):
    return next(t for t in fig.data if t.name == name)


# ------------------------------------------------------------------------- loading
def test_replay_loads_recorder_frame_files_and_dataset(recording, tmp_path):
    n = len(recording)
    df = recording.to_pandas()
    write_parquet(recording, tmp_path / "run.parquet")
    write_csv(recording, tmp_path / "run.csv")
    write_qlog(recording, tmp_path / "run.qlog")
    datasets.write_run(tmp_path / "ds", recording, {"algo": "cubic", "seed": 5})
    sources = [recording, df, tmp_path / "run.parquet", str(tmp_path / "run.csv"),
               tmp_path / "ds"]
    for src in sources:
        w = ReplayWidget(src)
        assert len(w.trace) == n, src
        assert _points(w.figure) > 0
        assert f"{n:,} events" in w.status.value
        assert w.current_row()["time_s"] == pytest.approx(df["time_s"].iloc[-1])
    # metadata travels with files: the Parquet file and the dataset part name the workload
    assert ReplayWidget(tmp_path / "ds").meta["workload"] == recording.meta["workload"]
    assert ReplayWidget(tmp_path / "run.parquet").meta["run_id"] == recording.meta["run_id"]
    q = ReplayWidget(tmp_path / "run.qlog")  # qlog keeps the recovery events and metrics
    assert (q.trace["kind"] == "packet_lost").sum() == (df["kind"] == "packet_lost").sum()
    assert len(_by_name(q.figure, "recorded cwnd").x) > 0


def test_replay_dataset_with_two_runs_has_a_run_picker(recording, tmp_path):
    a = datasets.write_run(tmp_path / "ds", recording, {"algo": "cubic", "seed": 1})
    short = recording.to_pandas().iloc[:500]
    datasets.write_run(tmp_path / "ds", short, {"algo": "cubic", "seed": 2})
    w = ReplayWidget(tmp_path / "ds")
    assert len(w.runs) == 2 and w.run_choice.layout.display != "none"
    first = len(w.trace)
    labels = [label for label, _ in w.run_choice.options]
    assert all("algo=" not in lab and "seed=" in lab and "cubic" in lab for lab in labels)
    other = next(r for r in w.runs if r != w.run_choice.value)
    w.run_choice.value = other  # picking a run reloads the widget on it
    assert len(w.trace) != first and {first, len(w.trace)} == {len(recording), 500}
    assert [label for label, _ in w.run_choice.options] == labels  # every run still offered
    assert a.name.startswith(datasets.PART_PREFIX)


def test_two_flow_experiment_names_each_flow_by_its_controller():
    from wtlab.lab import Experiment

    result = Experiment(path=dict(rate_bps=10e6, rtt_s=0.05), flows=["reno", "bbr"]).run(1.0)
    w = ReplayWidget(result)  # a Result loads through its recorder
    names = [t.name for t in w.figure.data]
    assert "recorded reno cwnd" in names and "recorded bbr cwnd" in names
    assert "recorded bbr pacing" in names  # BBR paces; the window view shows its rate
    assert "2 flow(s)" in w.status.value


def test_replay_load_errors_are_typed_and_shown(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ReplayWidget(tmp_path / "missing.parquet")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="unknown trace format"):
        ReplayWidget(tmp_path / "notes.txt")
    w = ReplayWidget()
    w.path_text.value = str(tmp_path / "missing.parquet")
    w.load_button.click()  # a button never raises into the kernel: the status says why
    assert "does not exist" in w.status.value
    with pytest.raises(ConfigError, match="no 'kind' column"):
        ReplayWidget(pd.DataFrame({"time_s": [0.0], "flow": [0]}))


# ------------------------------------------------------------------------ scrubbing
def test_window_slices_the_series_and_moves_the_cursor(recording):
    w = ReplayWidget(recording)
    df = w.trace
    traces_before = list(w.figure.data)
    frame_before = w.trace
    full = _points(w.figure)
    w.set_window(0.2, 0.4)
    assert w.window.value == (0.2, 0.4)
    cwnd = _by_name(w.figure, "recorded cubic cwnd")
    assert len(cwnd.x) and 0.2 <= min(cwnd.x) and max(cwnd.x) <= 0.4
    assert _points(w.figure) < full
    row = w.current_row()  # the last event at or before the window's right edge
    times = df["time_s"].to_numpy()
    i = int(np.searchsorted(times, 0.4, side="right")) - 1
    assert row["time_s"] == times[i] and row["kind"] == str(df["kind"].iloc[i])
    assert str(row["kind"]) in w.event.value
    # the slider moved the view only: same DataFrame, same figure traces (updated in place)
    assert w.trace is frame_before
    assert all(a is b for a, b in zip(traces_before, w.figure.data, strict=True))
    # the slider itself (as the browser sets it) does the same
    w.window.value = (0.5, 0.6)
    assert max(_by_name(w.figure, "recorded cubic cwnd").x) <= 0.6
    assert w.current_row()["time_s"] <= 0.6


def test_next_and_prev_event_of_a_kind(recording):
    w = ReplayWidget(recording)
    df = w.trace
    losses = df.index[df["kind"] == "packet_lost"].to_numpy()
    assert len(losses) >= 2
    w.set_window(0.0, 0.05)
    width = 0.05
    row = w.next_event("packet_lost")
    assert row["kind"] == "packet_lost" and w.cursor == losses[0]
    t0, t1 = w.window.value
    assert t1 == pytest.approx(df["time_s"].iloc[losses[0]])
    assert t1 - t0 == pytest.approx(min(width, t1 - w.window.min))
    w.kind_choice.value = "packet_lost"
    w.next_button.click()  # the ▶ button steps to the next event of the chosen kind
    assert w.cursor == losses[1]
    prev = w.prev_event()  # any kind: exactly one row back
    assert w.cursor == losses[1] - 1 and prev["time_s"] <= df["time_s"].iloc[losses[1]]
    assert w.prev_event("packet_lost")["pn"] == df["pn"].iloc[losses[0]]
    w.cursor = len(df) - 1
    assert w.next_event() is None and w.cursor == len(df) - 1


def test_the_browser_snapping_the_window_to_its_step_keeps_the_cursor(recording):
    """Found by the JupyterLab test: the slider sends back our value snapped to its step;
    re-deriving the cursor from it jumped from the loss to a later event."""
    w = ReplayWidget(recording)
    row = w.prev_event("packet_lost")
    cursor, step = w.cursor, w.window.step
    t0, t1 = w.window.value
    snapped = tuple(w.window.min + round((v - w.window.min) / step) * step for v in (t0, t1))
    w.window.value = snapped  # what the frontend does after a value set from Python
    assert w.cursor == cursor and w.current_row()["kind"] == row["kind"] == "packet_lost"
    w.window.value = (snapped[0], snapped[1] - 20 * step)  # a real drag still moves it
    assert w.cursor < cursor
    # right after loading (full window, not on the grid): one keyboard step is a real move
    w = ReplayWidget(recording)
    last = w.cursor
    t0, t1 = w.window.value
    snapped1 = w.window.min + round((t1 - w.window.min) / step) * step
    w.window.value = (t0, snapped1 - w.window.step)
    assert w.cursor < last and w.view.window[1] == snapped1 - w.window.step


def test_unsorted_trace_is_sorted_once_at_load(recording):
    df = recording.to_pandas().sample(frac=1.0, random_state=3)  # shuffled rows
    w = ReplayWidget(df)
    assert w.trace["time_s"].is_monotonic_increasing
    w.set_window(0.2, 0.3)
    x = np.asarray(_by_name(w.figure, "recorded cubic cwnd").x)
    assert len(x) and (np.diff(x) >= 0).all() and 0.2 <= x.min() and x.max() <= 0.3
    from wtlab.widgets.replay import series_of

    cols = {"t": np.array([2.0, 1.0, 3.0]), "flow": np.zeros(3, int),
            "lost": np.zeros(3, bool), "rtt_row": np.zeros(3, bool),
            "cwnd": np.array([20.0, 10.0, 30.0]), "bif": np.full(3, np.nan),
            "pacing": np.full(3, np.nan), "delivery": np.full(3, np.nan),
            "rtt": np.full(3, np.nan)}
    (props, s), = series_of(cols, label="x")
    assert props["name"] == "x cwnd" and list(s.x) == [1.0, 2.0, 3.0]
    assert list(s.y) == [10.0, 20.0, 30.0]


def test_long_trace_is_thinned_keeping_peaks():
    n = 200_000
    t = np.linspace(0.0, 100.0, n)
    saw = (np.arange(n) % 997).astype(np.int64) * 100 + 10_000  # a sawtooth of cwnd
    df = pd.DataFrame({"time_s": t, "flow": np.zeros(n, dtype=np.uint16),
                       "kind": pd.Categorical(["cwnd_changed"] * n), "cwnd": saw,
                       "bytes_in_flight": saw // 2})
    rec = Recorder.from_pandas(df)
    w = ReplayWidget(rec, max_points=2000)
    cw = _by_name(w.figure, "recorded cwnd")
    assert len(cw.x) <= 2000
    assert max(cw.y) == pytest.approx(saw.max() / 1e3) and min(cw.y) == saw.min() / 1e3
    w.set_window(10.0, 10.5)  # a narrow window shows every point of it, unthinned
    cw = _by_name(w.figure, "recorded cwnd")
    inside = int(((t >= 10.0) & (t <= 10.5)).sum())
    assert len(cw.x) == inside


def _thin_reference(x, y, max_points):
    """wtlab.lab.plots.thin as first written (a loop per bin): the vectorised one must match."""
    n = len(x)
    if n <= max_points:
        return x, y
    bins = max(1, max_points // 2)
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    keep = []
    yv = np.nan_to_num(np.asarray(y, dtype=float), nan=np.inf)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        seg = yv[lo:hi]
        i_min = lo + int(np.argmin(seg))
        i_max = lo + int(np.argmax(np.where(np.isinf(seg), -np.inf, seg)))
        keep.extend(sorted({i_min, i_max}))
    idx = np.asarray(keep, dtype=np.int64)
    return np.asarray(x)[idx], np.asarray(y)[idx]


def test_vectorised_thin_equals_the_per_bin_loop():
    from wtlab.lab.plots import thin

    rng = np.random.default_rng(7)
    for trial in range(150):
        n, mp = int(rng.integers(1, 20_000)), int(rng.integers(1, 5_000))
        y = rng.integers(0, 4, n).astype(float) if trial % 3 == 0 else rng.normal(size=n)
        if trial % 4 == 0:
            y[rng.random(n) < 0.3] = np.nan
        if trial % 5 == 0:
            y[rng.random(n) < 0.1] = np.inf
            y[rng.random(n) < 0.05] = -np.inf
        if trial % 11 == 0:
            y[:] = np.nan
        x = np.arange(n) * 1e-3
        want, got = _thin_reference(x, y, mp), thin(x, y, mp)
        assert np.array_equal(want[0], got[0]), (trial, n, mp)
        assert np.array_equal(want[1], got[1], equal_nan=True), (trial, n, mp)


def test_series_from_records_equal_series_from_the_frame(recording):
    from wtlab.widgets.replay import columns_of_frame, columns_of_records

    a = columns_of_frame(recording.to_pandas())
    b = columns_of_records(recording.records(), recording.kinds)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k], dtype=float), np.asarray(b[k], dtype=float),
                                   rtol=1e-6, equal_nan=True, err_msg=k)
    assert a["lost"].sum() > 0 and a["rtt_row"].sum() > 0


# ---------------------------------------------------------------------------- rerun
async def test_rerun_overlays_the_counterfactual(recording):
    from wtlab.lab.style import ALGORITHM_COLOURS

    w = ReplayWidget(recording, cc="bbr")
    w.prev_event("packet_lost")
    window, cursor = w.window.value, w.cursor
    w.rerun_button.click()  # runs in a worker thread; the kernel loop stays free
    assert w.rerun_button.disabled
    result = await asyncio.wait_for(w._task, 90)
    assert not w.rerun_button.disabled
    names = [t.name for t in w.figure.data]
    assert "recorded cubic cwnd" in names and "bbr replay cwnd" in names
    replayed = _by_name(w.figure, "bbr replay cwnd")
    assert replayed.line.color == ALGORITHM_COLOURS["bbr"] and len(replayed.x) > 0
    assert _by_name(w.figure, "recorded cubic cwnd").line.color == ALGORITHM_COLOURS["cubic"]
    assert result.cc == "bbr" and w.replayed is result
    assert {"startup", "probe_bw", "drain"} & set(result.trace()["state"].astype(str))
    assert "replayed" in w.comparison.value and "recorded" in w.comparison.value
    assert "replayed with bbr" in w.status.value
    # a rerun moves neither the window nor the cursor; the slider's range covers both runs
    assert w.window.value == window and w.cursor == cursor
    t_rep = float(result.trace()["time_s"].max())
    assert w.window.max >= t_rep - 1e-9
    # a second rerun adds an overlay, the first stays; a replay of the recorded algorithm
    # gets a shade of its colour
    await asyncio.wait_for(w.rerun("cubic"), 90)
    names = [t.name for t in w.figure.data]
    assert "bbr replay cwnd" in names and "cubic replay cwnd" in names
    assert len(w.overlays) == 2 and w.cursor == cursor
    assert _by_name(w.figure, "cubic replay cwnd").line.color != ALGORITHM_COLOURS["cubic"]
    assert "replayed with bbr" in w.comparison.value
    assert "replayed with cubic" in w.comparison.value
    seq_names = [t.name for t in w.sequence.figure.data]
    assert "recorded cubic sent" in seq_names and "bbr replay sent" in seq_names
    w.clear_button.click()
    assert not w.overlays and all("replay" not in t.name for t in w.figure.data)


async def test_rerun_error_is_shown(tmp_path):
    df = Recorder().to_pandas()
    df = pd.concat([df, pd.DataFrame({"time_s": [0.0, 0.1], "flow": [0, 0],
                                      "kind": ["cwnd_changed", "cwnd_changed"],
                                      "cwnd": [12000, 13200]})], ignore_index=True)
    w = ReplayWidget(df)
    with pytest.raises(ConfigError):
        await asyncio.wait_for(w.rerun("reno"), 30)
    assert "rerun failed" in w.status.value and "packet_sent" in w.status.value


# ----------------------------------------------------------------------------- live
async def test_live_echo_against_the_embedded_server():
    w = LiveWidget(size_mb=2, tick_s=0.05, cc="reno")
    task = w.connect_button.click() or w.task
    assert w.connect_button.disabled and not w.disconnect_button.disabled
    summary = await asyncio.wait_for(task, 60)
    assert summary["sent_bytes"] == 2_000_000 and summary["received_bytes"] == 2_000_000
    assert summary["mode"] == "echo" and summary["controller"] == "reno"
    assert "done: 2.0 MB" in w.status.value
    assert not w.connect_button.disabled and w.disconnect_button.disabled
    # redrawn while running and at the end; the last redraw shows the whole recording
    assert w.redraws >= 2 and w.redraw_events == sorted(w.redraw_events)
    assert w.redraw_events[-1] == len(w.recorder)
    assert len(_by_name(w.figure, "reno cwnd").x) > 0
    trace = w.trace()
    assert (trace["kind"] == "packet_acked").sum() > 100
    assert w.server is None  # the embedded server was stopped


async def test_live_sink_and_an_explicit_url():
    import wtlab

    async with wtlab.serve("127.0.0.1", 0) as server:
        w = LiveWidget(server.url("/sink"), cert_sha256=server.cert_sha256, size_mb=1,
                       cc="bbr")
        summary = await asyncio.wait_for(w.connect(), 60)
        assert summary["mode"] == "sink"
        assert summary["server_bytes"] == 1_000_000  # what the server says it received
        assert summary["url"] == server.url("/sink")
        assert server.sessions_served >= 1
    states = set(w.trace()["state"].astype(str))
    assert states & {"startup", "drain", "probe_bw"}
    assert w.recorder.meta["workload"]["size_bytes"] == 1_000_000


async def test_a_live_recording_reruns_in_the_replay_widget():
    """The researcher's question: what would Reno have done on the path I just measured?"""
    live = LiveWidget(route="/sink", size_mb=1, cc="cubic")
    await asyncio.wait_for(live.connect(), 60)
    replay = ReplayWidget(live.recorder, cc="reno")
    result = await asyncio.wait_for(replay.rerun(), 90)
    assert result.workload.size_bytes == 1_000_000 and result.workload.direction == "up"
    assert result.emulation.flows[0].summary["transferred_bytes"] == 1_000_000
    assert "reno replay cwnd" in [t.name for t in replay.figure.data]
    assert "recorded cubic cwnd" in [t.name for t in replay.figure.data]


async def test_live_disconnect_stops_a_long_transfer():
    w = LiveWidget(size_mb=1000, max_duration_s=60, tick_s=0.05)
    task = w.connect()
    for _ in range(600):  # bounded: until a few redraws have shown data (<= 30 s)
        if w.redraws >= 3 and w.redraw_events[-1] > 0:
            break
        await asyncio.wait([task], timeout=0.05)
    assert w.running, w.status.value
    w.disconnect_button.click()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 20)
    assert task.cancelled()
    assert w.summary["cancelled"] and 0 < w.summary["sent_bytes"] < 1_000_000_000
    assert "disconnected" in w.status.value
    assert w.server is None and w.session is None and not w.running
    assert len(w.recorder) > 0 and _points(w.figure) > 0


async def test_live_bad_url_is_reported_not_raised():
    w = LiveWidget("http://127.0.0.1:1/echo")
    w.connect_button.click()
    assert w.task is None and "error" in w.status.value
    with pytest.raises(InvalidURL):
        w.connect()
    with pytest.raises(ConfigError):
        LiveWidget(route="/nowhere")
