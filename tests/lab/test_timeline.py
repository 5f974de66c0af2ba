"""The Timeline: a cursor over a run, steps both ways, path changes at the cursor, saved state."""

from __future__ import annotations

import json

import pytest

from wtlab.errors import ConfigError
from wtlab.lab import Experiment
from wtlab.lab.timeline import Timeline

EXP = Experiment(path=dict(rate_bps=10e6, rtt_s=0.05, loss=0.01), cc="cubic", seed=7)


def test_back_restores_the_previous_event_and_its_state():
    tl = Timeline(EXP)
    first = tl.step()
    assert first["index"] == 0 and first["kind"] == "packet_sent"
    rows = [tl.step() for _ in range(30)]
    loss = tl.step(kinds="packet_lost")
    assert loss["kind"] == "packet_lost" and loss["state"] == "recovery"
    before = tl.back()
    assert before["index"] == loss["index"] - 1
    assert tl.row() == before and tl.time_s == before["time_s"]
    assert before == tl.row(loss["index"] - 1)
    assert tl.back(kinds="packet_sent")["kind"] == "packet_sent"
    again = tl.step(kinds="packet_lost")  # forward again: the recorded row, not a new one
    assert again == loss and len(tl) >= loss["index"] + 1
    assert rows[-1]["index"] == 30


def test_controller_at_rebuilds_the_object_by_deterministic_rerun():
    tl = Timeline(EXP)
    for _ in range(3):
        row = tl.step(kinds="packet_lost")
    tl.advance(1.0)
    cc = tl.controller_at(row["index"])
    assert cc.cwnd == row["cwnd"] and cc.state == row["state"]
    assert cc is not tl.stepper.controllers[0]


def test_advance_moves_through_recorded_rows_before_running_on():
    tl = Timeline(EXP)
    tl.advance(2.0)
    n = len(tl)
    tl.seek(0.5)
    assert tl.time_s == 0.5 and tl.row()["time_s"] <= 0.5 and not tl.at_end
    tl.advance(0.5)
    assert len(tl) == n and tl.time_s == pytest.approx(1.0)  # no engine run needed
    tl.advance(1.5)
    assert len(tl) > n and tl.time_s == pytest.approx(2.5) and tl.now_s == pytest.approx(2.5)


def test_a_path_change_in_the_past_branches_the_run():
    tl = Timeline(EXP)
    tl.advance(2.0)
    early = tl.stepper.recorder.to_pandas(0, 500)
    tl.seek(1.0)
    extra = tl.change_path(rate_bps=2e6)
    assert extra["changes"] == {"rate_bps": 2e6} and extra["source"] == "explorer"
    assert tl.now_s == pytest.approx(1.0) and tl.at_end
    df = tl.stepper.trace()
    assert (df["time_s"] <= 1.0 + 1e-9).all()  # what came after the cursor was dropped
    assert df.iloc[:500].drop(columns="extra").equals(early.drop(columns="extra"))
    assert tl.experiment.schedule.to_list() == [
        {"at_s": 1.0, "rate_bps": 2e6, "source": "explorer"}]
    tl.advance(1.0)
    assert tl.stepper.metrics(1.5, 2.0)["goodput_bps"].iloc[0] < 2.1e6


@pytest.mark.parametrize("engine", ["model", "emulate"])
def test_saved_state_reopens_the_same_row(engine):
    tl = Timeline(EXP.replace(engine=engine, schedule=[{"at_s": 0.3, "rtt_s": 0.08}]))
    tl.advance(0.8)
    tl.change_path(loss=0.0)
    tl.advance(0.2)
    tl.back(kinds="packet_acked")
    state = json.loads(json.dumps(tl.state()))
    again = Timeline.from_state(state)
    try:
        assert again.cursor == tl.cursor and again.row() == tl.row()
        assert again.experiment == tl.experiment
        assert len(again.stepper.trace()[lambda d: d["kind"] == "path_changed"]) == 2
    finally:
        again.stepper.close()
        tl.stepper.close()
    with pytest.raises(ConfigError, match="not a saved"):
        Timeline.from_state({"version": 99})
