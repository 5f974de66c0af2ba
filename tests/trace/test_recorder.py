"""Recorder: hardening, metadata, views, from_pandas, merge."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings

from wtlab import ConfigError
from wtlab.trace import Recorder, merge, schema

from .helpers import synthetic_recorder, trace_strategy


def test_meta_has_run_facts_and_travels_with_frame():
    rec = Recorder(meta={"algorithm": "cubic", "seed": 7, "path": "10mbit-50ms",
                         "workload": "bulk"})
    m = rec.meta
    assert len(m["run_id"]) == 32 and m["algorithm"] == "cubic" and m["seed"] == 7
    assert m["start_time_utc"].endswith("+00:00") and m["created_unix_s"] > 1.7e9
    assert set(m["versions"]) >= {"wtlab", "aioquic", "python"}
    assert m["versions"]["aioquic"] == "1.7.2"
    assert rec.to_pandas().attrs["meta"]["algorithm"] == "cubic"


def test_event_rejects_values_that_do_not_fit_and_appends_nothing():
    rec = Recorder()
    rec.event(0.0, "packet_sent", pn=1, bytes=1200)
    for bad in ({"flow": 70000}, {"bytes": -1}, {"bytes": 2**32}, {"pn": -1},
                {"stream_id": -1}, {"stream_id": 2**31}, {"pn": 2**63}):
        with pytest.raises(ConfigError):
            rec.event(1.0, "packet_sent", **bad)
    with pytest.raises(ConfigError):
        rec.event(1.0, "")
    assert len(rec) == 1
    with pytest.raises(ConfigError):
        rec.set_extra(5, {"x": 1})
    rec.set_extra(-1, {"x": 1})
    assert rec.to_pandas()["extra"].tolist() == ['{"x": 1}']


def test_huge_windows_are_clamped_not_wrapped():
    rec = Recorder()
    rec.event(0.0, "cwnd_changed", cwnd=2**40, ssthresh=-5)
    df = rec.to_pandas()
    assert df["cwnd"].iloc[0] == 2**32 - 2 and df["ssthresh"].iloc[0] == 0


def test_len_is_cheap_and_exact_across_chunks():
    rec = Recorder()
    for i in range(20_000):
        rec.append(i * 1e-4, 0, 0, 0, i, -1, 1200, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        if i in (0, 16_383, 16_384, 19_999):
            assert len(rec) == i + 1
    assert rec.nbytes == 68 * 20_000 and len(rec._chunks) == 1


def test_views():
    rec = synthetic_recorder(100)
    df = rec.to_pandas()
    assert len(rec.acks()) == (df["kind"] == "packet_acked").sum() > 0
    assert len(rec.losses()) == (df["kind"] == "packet_lost").sum() > 0
    assert len(rec.sent()) == 100
    assert list(rec.rtt().columns) == ["time_s", "flow", "latest_rtt_s", "srtt_s", "min_rtt_s",
                                       "rttvar_s"]
    assert rec.cwnd()["cwnd"].notna().all()
    both = rec.of_kind("packet_sent", "packet_lost")
    assert set(both["kind"].astype(str)) == {"packet_sent", "packet_lost"}


@settings(max_examples=60, deadline=None)
@given(trace_strategy())
def test_from_pandas_inverts_to_pandas(rec):
    df = rec.to_pandas()
    back = Recorder.from_pandas(df)
    pd.testing.assert_frame_equal(back.to_pandas(), df, check_categorical=False)
    assert back.meta["run_id"] == rec.meta["run_id"]


def test_from_pandas_large_and_range_checked():
    rec = synthetic_recorder(3000)
    back = Recorder.from_pandas(rec.to_pandas())
    assert back.records().tobytes() == rec.records().tobytes()
    bad = rec.to_pandas()
    bad.loc[0, "cwnd"] = 2**33
    with pytest.raises(ConfigError):
        Recorder.from_pandas(bad)


def test_merge_renumbers_flows_and_labels():
    a, b = synthetic_recorder(30, flows=2, seed=1), synthetic_recorder(20, seed=2)
    m = merge([a, b], labels=["cubic", "bbr"], label_column="algo")
    assert len(m) == len(a) + len(b)
    assert m["time_s"].is_monotonic_increasing
    assert sorted(m["flow"].unique().tolist()) == [0, 1, 2]
    assert set(m.loc[m["flow"] == 2, "algo"]) == {"bbr"}
    assert list(m.columns[: len(schema.COLUMNS)]) == list(schema.COLUMNS)
    same = merge([a.to_pandas(), b.to_pandas()], renumber_flows=False)
    assert sorted(same["flow"].unique().tolist()) == [0, 1]


def test_recorder_pickles_and_keeps_recording():
    import copy
    import pickle

    rec = synthetic_recorder(40)
    rec.set_extra(0, {"note": 1})
    back = pickle.loads(pickle.dumps(rec))
    pd.testing.assert_frame_equal(back.to_pandas(), rec.to_pandas())
    assert back.meta == rec.meta
    back.event(99.0, "my_new_kind", pn=1)
    assert len(back) == len(rec) + 1 and len(copy.deepcopy(rec)) == len(rec)
