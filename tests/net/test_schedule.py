"""Path schedules: a link changed mid-run, the path's bookkeeping, the schedule as data."""

from __future__ import annotations

import json

import pytest

from wtlab.errors import ConfigError
from wtlab.net.link import Link
from wtlab.net.path import Path
from wtlab.net.schedule import PathChange, PathSchedule, apply_change
from wtlab.trace.recorder import Recorder


def test_a_new_rate_applies_to_packets_offered_after_the_change():
    link = Link(rate_bps=8e6, delay_s=0.01)
    (a,) = link.transmit(0.0, 1000)  # 1 ms at 8 Mbit/s
    link.reconfigure(0.5, rate_bps=4e6)
    (b,) = link.transmit(0.5, 1000)  # 2 ms at 4 Mbit/s
    assert a == pytest.approx(0.011)
    assert b == pytest.approx(0.5 + 0.002 + 0.01)
    assert link.capacity_bps == 4e6 and link.spec.rate_bps == 4e6


def test_packets_already_queued_keep_their_times():
    link = Link(rate_bps=8e6, delay_s=0.0)
    first = [link.transmit(0.0, 1000)[0] for _ in range(3)]  # leave at 1, 2, 3 ms
    link.reconfigure(0.0005, rate_bps=1e6)
    (late,) = link.transmit(0.0005, 1000)  # waits for the queue, then 8 ms
    assert first == pytest.approx([0.001, 0.002, 0.003])
    assert late == pytest.approx(0.003 + 0.008)


def test_a_shorter_delay_never_lets_a_packet_overtake():
    link = Link(rate_bps=8e6, delay_s=0.05)
    (a,) = link.transmit(0.0, 1000)
    link.reconfigure(0.0, delay_s=0.001)
    (b,) = link.transmit(0.0, 1000)
    assert b >= a
    (c,) = link.transmit(1.0, 1000)  # long after: the new delay alone
    assert c == pytest.approx(1.0 + 0.001 + 0.001)


def test_loss_buffer_and_outage_changes():
    link = Link(rate_bps=8e6, delay_s=0.0, buffer="2000B", seed=1)
    link.reconfigure(0.0, loss="100%")
    assert link.transmit(0.0, 100) == ()
    assert link.last_drop_cause == "loss"
    link.reconfigure(0.1, loss=None, buffer=None)  # no loss, unlimited buffer
    assert all(link.transmit(0.1, 1000) for _ in range(10))
    link.reconfigure(1.0, outage_s=0.5)
    assert link.transmit(1.2, 100) == () and link.last_drop_cause == "outage"
    assert link.transmit(1.6, 100) != ()


def test_path_change_counts_capacity_over_time_and_new_rebuilds_the_original():
    p = Path.symmetric(rate_bps=10e6, rtt_s=0.04, buffer_bdp=1, seed=1)
    after = p.change(2.0, rate_bps=5e6, rtt_s=0.08, loss="1%")
    assert after["capacity_bps"] == 5e6 and after["rtt_s"] == pytest.approx(0.08)
    assert after["loss"] == pytest.approx(0.01)
    assert p.up.capacity_bps == 5e6 and p.up_spec.loss is None  # loss: data direction only
    assert p.down.delay_s == pytest.approx(0.04)
    assert p.capacity_bps_between(0, 4) == pytest.approx(7.5e6)
    assert p.capacity_steps() == [(0.0, 10e6), (2.0, 5e6)]
    fresh = p.new()
    assert fresh.capacity_bps == 10e6 and fresh.rtt_s == pytest.approx(0.04)


def test_schedule_is_sorted_validated_and_round_trips_through_json():
    s = PathSchedule([{"at_s": 5, "rate_bps": "5mbit"}, {"at_s": 1.0, "loss": "1%"},
                      PathChange(at_s=3.0, outage_s=0.2, source="explorer")])
    assert [c.at_s for c in s] == [1.0, 3.0, 5.0]
    again = PathSchedule(json.loads(json.dumps(s.to_list())))
    assert again == s
    assert s.until(3.0).to_list() == s.to_list()[:2]
    assert PathSchedule.outages([(2, 2.5)]).to_list() == [{"at_s": 2.0, "outage_s": 0.5}]
    with pytest.raises(ConfigError, match="changes nothing"):
        PathChange(at_s=1.0)
    with pytest.raises(ConfigError, match="unknown key"):
        PathSchedule([{"at_s": 1.0, "bandwidth": 5e6}])
    with pytest.raises(ConfigError, match="rate_bps"):
        PathChange(at_s=1.0, rate_bps=0)


def test_apply_change_writes_one_path_changed_row():
    p = Path.symmetric(rate_bps=10e6, rtt_s=0.04, seed=1)
    rec = Recorder(t0=0.0)
    apply_change(p, PathChange(at_s=1.5, rate_bps=2e6), 1.5, rec)
    df = rec.to_pandas()
    assert list(df["kind"].astype(str)) == ["path_changed"]
    extra = json.loads(df["extra"].iloc[0])
    assert df["time_s"].iloc[0] == 1.5 and extra["changes"] == {"rate_bps": 2e6}
    assert extra["path"]["capacity_bps"] == 2e6 and extra["source"] == "schedule"
