"""Both engines honour a path schedule: the rate halves at t = 5 s, the delivery rate halves
within two RTTs, and the change is one trace row (and the same when a stepper changes
the path mid-run)."""

from __future__ import annotations

import json

import pytest

from wtlab.lab import Experiment
from wtlab.trace import metrics as M

RTT_S = 0.04
pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("engine", ["model", "emulate"])
def test_rate_halves_at_5s_and_the_delivery_rate_follows_within_two_rtts(engine):
    exp = Experiment(path=dict(rate_bps=10e6, rtt_s=RTT_S, buffer_bdp=1), cc="cubic",
                     seed=1, engine=engine, schedule=[{"at_s": 5.0, "rate_bps": 5e6}])
    r = exp.run(6.0)
    df = r.trace()
    changes = df[df["kind"] == "path_changed"]
    assert len(changes) == 1
    assert changes["time_s"].iloc[0] == pytest.approx(5.0)
    assert json.loads(changes["extra"].iloc[0])["changes"] == {"rate_bps": 5e6}
    before = r.metrics(4.5, 5.0)["goodput_bps"].iloc[0]
    after = r.metrics(5.0 + 2 * RTT_S, 5.5 + 2 * RTT_S)["goodput_bps"].iloc[0]
    assert before > 0.85 * 10e6 * 1160 / 1228  # the link was full (payload of each packet)
    assert after / before == pytest.approx(0.5, abs=0.06)
    # the bin two RTTs after the change already shows the new rate
    rates = M.rate_over_time(df, RTT_S, to_s=6.0)
    first_after = rates[rates["time_s"] >= 5.0 + 2 * RTT_S - 1e-9]["goodput_bps"].iloc[0]
    assert first_after == pytest.approx(after, rel=0.12)
    assert r.capacity_bps == pytest.approx((5 * 10e6 + 1 * 5e6) / 6)


@pytest.mark.parametrize("engine", ["model", "emulate"])
def test_a_stepper_changes_the_path_now_without_restarting(engine):
    s = Experiment(path=dict(rate_bps=10e6, rtt_s=RTT_S), cc="reno", seed=2,
                   engine=engine).stepper()
    try:
        s.run(1.0)
        events = len(s.recorder)
        extra = s.change_path(rate_bps=2e6, source="explorer")
        assert extra["path"]["capacity_bps"] == 2e6
        row = s.step(kinds="path_changed")
        assert row is None or row["kind"] == "path_changed"
        s.run(2.0)
        df = s.trace()
        changes = df[df["kind"] == "path_changed"]
        assert len(changes) == 1 and changes["time_s"].iloc[0] == pytest.approx(1.0)
        assert (df.index[df["kind"] == "path_changed"] >= events).all()  # appended, not rerun
        assert df["time_s"].iloc[0] < 1.0  # the run before the change is still there
        assert s.experiment.schedule.to_list() == [
            {"at_s": pytest.approx(1.0), "rate_bps": 2e6, "source": "explorer"}]
        assert s.metrics(1.5, 2.0)["goodput_bps"].iloc[0] < 2.1e6
    finally:
        s.close()


def test_per_flow_start_and_extra_rtt_in_both_descriptions():
    exp = Experiment(path=dict(rate_bps=10e6, rtt_s=RTT_S), seed=1,
                     flows=[{"cc": "cubic"}, {"cc": "cubic", "start_s": 1.0,
                                                "extra_rtt_s": 0.06}])
    r = exp.run(4.0)
    m = r.metrics(2.0, 4.0)
    df = r.trace()
    first = df[df["kind"] == "packet_sent"].groupby("flow")["time_s"].min()
    assert first[1] >= 1.0 > first[0]
    rtt_min = df[df["kind"] == "rtt_sample"].groupby("flow")["latest_rtt_s"].min()
    # flow 0 measured the empty path; flow 1 joined a queue flow 0 already holds, so its
    # least RTT is the base RTT, its 60 ms more, and at most a full buffer (1 BDP = 40 ms)
    assert rtt_min[0] == pytest.approx(RTT_S, abs=0.003)
    assert 0.06 - 0.002 <= rtt_min[1] - rtt_min[0] <= 0.06 + RTT_S
    assert list(m["cc"]) == ["cubic", "cubic"] and (m["goodput_bps"] > 0).all()
    again = Experiment.from_dict(json.loads(json.dumps(exp.to_dict())))
    assert again.flow_specs() == exp.flow_specs()
