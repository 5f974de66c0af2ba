"""Widgets respond: Step and step back, Play, path sliders during a run, flows, saving.

These drive the widgets from Python (no browser: the frame gate does not wait); the
browser tests (tests/browser) check the same in JupyterLab with Chromium.
"""

import asyncio
import json

import numpy as np
import pytest

from wtlab.lab import Experiment
from wtlab.widgets import CompareWidget, Explorer
from wtlab.widgets.explorer import FRAME_TARGET_S

EXP = Experiment(path=dict(rate_bps=5e6, rtt_s=0.04, loss=0.02), seed=3)


def _xs(fig):
    return sum(len(t.x) for t in fig.data if t.x is not None)


def _by_name(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_explorer_step_and_loss_and_reset():
    ex = Explorer(EXP)
    assert _xs(ex.figure) == 0 or "events" in ex.status.value
    ex.step_button.click()
    assert "packet_sent" in ex.event.value
    assert _xs(ex.figure) > 0
    row = ex.step(kinds="packet_lost")
    assert row["kind"] == "packet_lost"
    assert "packet_lost" in ex.event.value
    assert len(_by_name(ex.figure, "cubic loss").x) == 1
    t_loss = ex.stepper.now
    ex.algorithm.value = "bbr"  # a controller change restarts the run with it
    assert ex.stepper.now == 0 and ex.stepper.controllers[0].name == "bbr"
    assert t_loss > 0


def test_explorer_steps_back_to_the_previous_event_loss_and_state():
    ex = Explorer(EXP)
    for _ in range(2):
        loss = ex.step(kinds="packet_lost")
    ex.step()
    row = ex.back()
    assert row == ex.timeline.row(loss["index"]) and "packet_lost" in ex.event.value
    assert f"{row['cwnd'] / 1e3:.1f} KB" in ex.status.value  # the state as it was then
    prev = ex.back_loss_button.click() or ex.timeline.row()
    assert prev["kind"] == "packet_lost" and prev["index"] < loss["index"]
    x = np.asarray(_by_name(ex.figure, "cubic cwnd").x)
    assert x.max() <= prev["time_s"] + 1e-6  # the figure as it was at that moment
    s1 = ex.step(kinds="state_changed")
    ex.step(kinds="state_changed")
    ex.back_state_button.click()
    assert ex.timeline.row() == s1 and "state_changed" in ex.event.value


async def test_explorer_play_updates_in_place_and_reports_its_speed():
    ex = Explorer(EXP)
    ex.step()
    traces = list(ex.figure.data)
    cwnd = _by_name(ex.figure, "cubic cwnd")
    seen = []
    push = ex.view.trace.push

    def spy(layout=None):  # every frame: the cwnd series is never emptied
        n = push(layout)
        seen.append(len(cwnd.x))
        return n

    ex.view.trace.push = spy
    ex.speed.value = 2.0
    loop = asyncio.get_running_loop()
    t0, now0 = loop.time(), ex.stepper.now
    ex._playing = True
    await ex._play_loop(max_frames=6)
    wall = loop.time() - t0
    # the first frame counts one frame interval, the others the wall time they took
    assert 0 < ex.stepper.now - now0 <= 2.0 * (wall + FRAME_TARGET_S) * 1.05
    assert all(a is b for a, b in zip(traces, ex.figure.data, strict=True))  # never rebuilt
    assert len(seen) == 6 and min(seen) > 0
    assert "sim-s/s achieved" in ex.speed_readout.value
    assert "events" in ex.status.value


def test_a_path_slider_moved_during_a_run_changes_the_path_now():
    ex = Explorer(EXP)
    ex.advance(1.0)
    first_rows = ex.stepper.recorder.to_pandas(0, 100)
    n = len(ex.stepper.recorder)
    ex.rate.value = 1.0  # the browser moves the log slider to 1 Mbit/s
    df = ex.stepper.trace()
    changes = df[df["kind"] == "path_changed"]
    assert len(changes) == 1 and changes["time_s"].iloc[0] == pytest.approx(1.0)
    assert json.loads(changes["extra"].iloc[0])["changes"] == {"rate_bps": 1e6}
    assert len(df) == n + 1  # the run went on: nothing was rerun
    assert df.iloc[:100].drop(columns="extra").equals(first_rows.drop(columns="extra"))
    assert ex.stepper.path.capacity_bps == 1e6
    ex.advance(1.0)
    cap = _by_name(ex.figure, "capacity")
    assert min(cap.y) == pytest.approx(1.0) and max(cap.y) == pytest.approx(5.0)


def test_log_sliders_hold_the_experiments_path_and_ignore_their_echo():
    ex = Explorer(Experiment(path=dict(rate_bps=12.3e6, rtt_s=0.0375, loss=0.0025,
                                       buffer_bdp=1.5)))
    p = ex.stepper.path
    assert p.capacity_bps == pytest.approx(12.3e6) and p.rtt_s == pytest.approx(0.0375)
    for s in (ex.rate_slider, ex.rtt_slider, ex.buffer_slider):  # shown on the grid
        k = np.log10(s.slider.value) / s.step
        assert abs(k - round(k)) < 1e-6
    assert ex.rate_slider.value == pytest.approx(12.3)
    ex.advance(0.5)
    ex.rate.value = ex.rate.value * (1 + 1e-9)  # the browser echoing the snapped value
    assert (ex.stepper.trace()["kind"] == "path_changed").sum() == 0
    ex.rate_slider.buttons[2].click()  # the 100 Mbit/s preset
    assert ex.stepper.path.capacity_bps == 100e6


def test_two_flows_draw_two_rate_lines_and_jain():
    ex = Explorer(EXP)
    ex.set_flows([{"cc": "cubic", "start_s": 0.0, "extra_rtt_s": 0.0},
                  {"cc": "bbr", "start_s": 0.5, "extra_rtt_s": 0.04}])
    ex.advance(3.0)
    assert len(_by_name(ex.figure, "cubic delivery").x) > 5
    assert len(_by_name(ex.figure, "bbr delivery").x) > 5
    jain = np.asarray(_by_name(ex.figure, "Jain's index").y, dtype=float)
    assert len(jain) > 5 and np.nanmin(jain) >= 0.5 - 1e-9 and np.nanmax(jain) <= 1.0 + 1e-9
    first = ex.stepper.trace().groupby("flow")["time_s"].min()
    assert first[1] >= 0.5
    # a flow added mid-run starts at the cursor; the past is kept
    ex.seek(2.0)
    ex.set_flows([*ex.flows.specs(), {"cc": "reno", "start_s": 0.0, "extra_rtt_s": 0.0}])
    assert ex.timeline.experiment.flow_specs()[2].start_s == pytest.approx(2.0)
    assert ex.stepper.now == pytest.approx(2.0) and len(ex.stepper.controllers) == 3


def test_save_reopens_the_same_cursor_spec_and_schedule(tmp_path):
    ex = Explorer(EXP)
    ex.advance(1.0)
    ex.set_path(rate_bps=2e6)
    ex.advance(0.5)
    row = ex.back(kinds="packet_lost")
    path = ex.save(tmp_path / "lesson.json")
    assert path.stat().st_size < 4000
    ex2 = Explorer.load(path)
    assert ex2.timeline.cursor == ex.timeline.cursor and ex2.timeline.row() == row
    assert ex2.timeline.experiment == ex.timeline.experiment
    assert ex2.rate_slider.value == pytest.approx(2.0)  # the path as last changed
    ex._redraw()
    assert ex2.status.value == ex.status.value
    ex3 = Explorer()
    ex3.file.value = str(path)
    ex3.load_button.click()
    assert ex3.timeline.row() == row


def test_sequence_tab_draws_sends_acks_and_losses():
    ex = Explorer(EXP)
    ex.advance(2.0)
    ex.tabs.selected_index = 1
    seq = ex.view.sequence.widget
    assert len(_by_name(seq, "cubic sent").x) > 10
    assert len(_by_name(seq, "cubic lost").x) >= 1
    assert len(_by_name(seq, "cubic retransmitted").x) >= 1
    # zoomed (the browser's relayout), the graph shows every packet inside the range
    from wtlab.trace.metrics import sequence_table

    seq.layout.xaxis.range = [1.0, 1.3]
    rows = sequence_table(ex.stepper.trace())
    inside = rows[(rows["event"] == "sent") & rows["time_s"].between(1.0, 1.3)]
    x = np.asarray(_by_name(seq, "cubic sent").x)
    assert len(x) == len(inside) > 0 and x.min() >= 1.0 - 1e-6 and x.max() <= 1.3 + 1e-6


def test_compare_widget_runs_each_controller_over_seeds():
    w = CompareWidget(Experiment(path=dict(rate_bps=5e6, rtt_s=0.04, loss=0.01)),
                      ccs=("reno", "bbr"), duration_s=2, seeds=3)
    c = w.run()
    assert list(c.table["cc"]) == ["reno", "bbr"] and (c.table["seeds"] == 3).all()
    assert "goodput ±95% (Mbit/s)" in w.table.value
    assert len(c.runs) == 6 and set(c.runs["seed"]) == {0, 1, 2}
    bars = w.bars.data[0]
    assert bars.error_y.array is not None and len(bars.error_y.array) == 2
    assert _xs(w.traces) > 0
