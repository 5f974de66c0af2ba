"""The recorder's core and the controller registry."""

import math

import pytest

import wtlab
from wtlab.trace import Recorder


def test_import_wtlab_is_light():
    import subprocess
    import sys

    code = ("import sys, wtlab; bad = [m for m in ('plotly', 'ipywidgets', 'jupyter_client', "
            "'IPython') if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_recorder_roundtrip_types():
    rec = Recorder()
    rec.event(0.5, "packet_sent", pn=3, bytes=1200, cwnd=12000, bytes_in_flight=1200,
              state="slow_start")
    rec.event(0.7, "packet_lost", pn=3, bytes=1200, extra={"trigger": "time_threshold"})
    rec.event(0.9, "my_custom_kind")
    df = rec.to_pandas()
    assert list(df["kind"]) == ["packet_sent", "packet_lost", "my_custom_kind"]
    assert str(df["kind"].dtype) == "category"
    assert df["pn"].tolist()[:2] == [3, 3] and df["pn"].isna().tolist()[2]
    assert df["cwnd"].iloc[0] == 12000 and df["cwnd"].isna().iloc[1]
    assert df["ssthresh"].isna().all()
    assert math.isnan(df["srtt_s"].iloc[0])
    assert df["extra"].iloc[1] == '{"trigger": "time_threshold"}'
    assert df["extra"].iloc[0] is None
    assert rec.nbytes == 68 * 3


def test_recorder_t0_and_chunks():
    rec = Recorder(t0=10.0)
    for i in range(40_000):  # crosses the 1 MiB chunk boundary
        rec.event(10.0 + i * 1e-3, "packet_sent", pn=i, bytes=1)
    df = rec.to_pandas()
    assert len(df) == 40_000
    assert df["pn"].tolist() == list(range(40_000))
    assert df["time_s"].iloc[-1] == pytest.approx(39.999)


def test_unknown_algorithm_is_typed():
    with pytest.raises(wtlab.UnknownAlgorithm, match="register your own"):
        wtlab.cc.get("no-such-cc")


def test_to_pandas_slice_decodes_only_those_rows_and_matches_the_whole():
    rec = Recorder(t0=0.0)
    for i in range(40_000):  # spans the 1 MiB chunk boundary
        rec.event(i * 1e-3, "packet_sent", pn=i, bytes=1200,
                  extra={"i": i} if i % 1000 == 7 else None)
    whole = rec.to_pandas()
    for start, stop in ((0, 5), (16_380, 16_390), (39_990, None), (1_000, 3_010)):
        part = rec.to_pandas(start, stop)
        expect = whole.iloc[start:stop]
        assert list(part.index) == list(expect.index)
        assert part["pn"].tolist() == expect["pn"].tolist()
        assert part["extra"].tolist() == expect["extra"].tolist()
