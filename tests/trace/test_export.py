"""Parquet and CSV export: lossless round trips, metadata, categoricals, atomic writes."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings

from wtlab import TraceFormatError
from wtlab.trace import Recorder, export

from .helpers import synthetic_recorder, trace_strategy


@settings(max_examples=40, deadline=None)
@given(trace_strategy())
def test_parquet_round_trip_any_trace(tmp_path_factory, rec):
    p = export.write_parquet(rec, tmp_path_factory.mktemp("p") / "t.parquet")
    df = export.read_parquet(p)
    pd.testing.assert_frame_equal(df, rec.to_pandas(), check_categorical=False)
    back = Recorder.from_pandas(df)
    assert back.records().tobytes() == rec.records().tobytes()
    assert back.meta["run_id"] == rec.meta["run_id"]


def test_parquet_real_trace_meta_and_types(live_run, tmp_path):
    _, rec = live_run
    p = export.write_parquet(rec, tmp_path / "live.parquet", meta={"seed": 3})
    schema = pq.read_schema(p)
    assert pa.types.is_dictionary(schema.field("kind").type)
    assert pa.types.is_dictionary(schema.field("state").type)
    assert schema.field("srtt_s").type == pa.float32()
    meta = json.loads(schema.metadata[b"wtlab"])["meta"]
    assert meta["algorithm"] == "reno" and meta["seed"] == 3 and meta["path"] == "loopback"
    assert meta["versions"]["aioquic"] == "1.7.2" and meta["run_id"] == rec.meta["run_id"]
    df = export.read_parquet(p)
    pd.testing.assert_frame_equal(df, rec.to_pandas(), check_categorical=False)
    assert list(df["kind"].cat.categories) == list(rec.to_pandas()["kind"].cat.categories)
    assert export.read_meta(p) == df.attrs["meta"]
    assert Recorder.from_pandas(df).records().tobytes() == rec.records().tobytes()


@settings(max_examples=30, deadline=None)
@given(trace_strategy())
def test_csv_round_trip_any_trace(tmp_path_factory, rec):
    df = rec.to_pandas()
    # CSV cannot tell an empty extra text from "no extra"
    df["extra"] = pd.Series([None if v == "" else v for v in df["extra"]], dtype=object)
    p = export.write_csv(df, tmp_path_factory.mktemp("c") / "t.csv")
    pd.testing.assert_frame_equal(export.read_csv(p), df, check_categorical=False)


def test_writes_are_atomic(tmp_path):
    target = tmp_path / "t.parquet"
    export.write_parquet(synthetic_recorder(10), target)
    before = target.read_bytes()
    bad = synthetic_recorder(10).to_pandas()
    bad["pn"] = bad["pn"].astype(object)
    bad.loc[0, "pn"] = "not a number"
    with pytest.raises(ValueError):
        export.write_parquet(bad, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_bad_files_raise_trace_format_error(tmp_path):
    p = tmp_path / "x.parquet"
    p.write_bytes(b"PAR1 not really")
    with pytest.raises(TraceFormatError, match="x.parquet"):
        export.read_parquet(p)
    c = tmp_path / "x.csv"
    c.write_text("a,b\n1,2\n")
    with pytest.raises(TraceFormatError, match="time_s and kind"):
        export.read_csv(c)
    c.write_text("time_s,kind,pn\nsoon,packet_sent,1\n")
    with pytest.raises(TraceFormatError):
        export.read_csv(c)


def test_read_and_write_by_file_name(tmp_path):
    from wtlab import ConfigError
    from wtlab.trace import read_trace, write_trace

    rec = synthetic_recorder(30).describe(algorithm="reno", seed=4, path="p", workload="w")
    assert rec.meta["algorithm"] == "reno" and rec.meta["seed"] == 4
    want = rec.to_pandas()
    for name in ("t.parquet", "t.csv", "t.qlog", "t.sqlog", "t.json"):
        got = read_trace(write_trace(rec, tmp_path / name))
        pd.testing.assert_frame_equal(got, want, check_categorical=False)
    assert read_trace(write_trace(rec, tmp_path / "m.parquet")).attrs["meta"]["seed"] == 4
    with pytest.raises(ConfigError):
        write_trace(rec, tmp_path / "t.xlsx")
    with pytest.raises(ConfigError):
        read_trace(tmp_path / "t.xlsx")
