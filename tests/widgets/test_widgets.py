"""Widgets respond: Step changes the plot, sliders reset the run, Play advances time."""

import pytest

from wtlab.lab import Experiment
from wtlab.widgets import CompareWidget, Explorer


def _xs(fig):
    return sum(len(t.x) for t in fig.data if t.x is not None)


def test_explorer_step_and_loss_and_reset():
    ex = Explorer(Experiment(path=dict(rate_bps=5e6, rtt_s=0.04, loss=0.02), seed=3))
    assert _xs(ex.figure) == 0
    ex.step_button.click()
    assert "packet_sent" in ex.event.value
    assert _xs(ex.figure) > 0
    row = ex.step(kinds="packet_lost")
    assert row["kind"] == "packet_lost"
    assert "packet_lost" in ex.event.value
    t_loss = ex.stepper.now
    ex.algorithm.value = "bbr"  # a control change resets the run with the new controller
    assert ex.stepper.now == 0 and ex.stepper.controllers[0].name == "bbr"
    assert t_loss > 0


async def test_explorer_play_advances_virtual_time():
    ex = Explorer()
    ex.speed.value = 2.0
    await ex._play_loop(max_ticks=2)
    assert ex.stepper.now == pytest.approx(2 * 2.0 * 0.25, rel=0.01)
    assert "events" in ex.status.value


def test_compare_widget_runs_each_controller():
    w = CompareWidget(Experiment(path=dict(rate_bps=5e6, rtt_s=0.04)), ccs=("reno", "bbr"),
                      duration_s=2)
    c = w.run()
    assert list(c.table["cc"]) == ["reno", "bbr"]
    assert "goodput (Mbit/s)" in w.table.value
    assert len(w.bars.data) >= 1 and _xs(w.traces) > 0


def test_explorer_sliders_hold_the_experiments_path_on_their_grid():
    ex = Explorer(Experiment(path=dict(rate_bps=12.3e6, rtt_s=0.0375, loss=0.0025,
                                       buffer_bdp=1.5)))
    assert ex.rate.value == pytest.approx(12.3) and ex.rtt.value == pytest.approx(37.5)
    assert ex.loss.value == pytest.approx(0.25) and ex.buffer.value == pytest.approx(1.5)
    for w in (ex.rate, ex.rtt, ex.loss, ex.buffer):  # on the grid: a browser echoes it unchanged
        k = (w.value - w.min) / w.step
        assert abs(k - round(k)) < 1e-6
    p = ex.stepper.path
    assert p.capacity_bps == pytest.approx(12.3e6) and p.rtt_s == pytest.approx(0.0375)
