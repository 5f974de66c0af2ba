"""Mahimahi link logs: parsing into the schema and the delivered/queued/drop views."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtlab import TraceFormatError
from wtlab.trace import mahimahi as mm

DATA = Path(__file__).parent / "data"


def test_sample_log_rows():
    df = mm.read_mahimahi(DATA / "mahimahi_uplink.log", flow=2)
    assert len(df) == 17 and set(df["flow"]) == {2}
    counts = df["kind"].astype(str).value_counts()
    assert (counts["link_arrival"], counts["link_opportunity"], counts["link_delivery"],
            counts["link_drop"]) == (5, 7, 4, 1)
    assert df["time_s"].iloc[0] == 0.0 and df["time_s"].iloc[-1] == pytest.approx(0.501)
    assert df.attrs["meta"]["mahimahi"]["queue"] == "droptail [packets=2]"
    assert df.attrs["meta"]["base_timestamp_ms"] == 1700000000100


def test_views():
    df = mm.read_mahimahi(DATA / "mahimahi_uplink.log")
    d = mm.delivered(df, 0.5)
    assert d["delivered_bytes"].tolist() == [1500 + 1500 + 600, 1200]
    assert d["capacity_bps"].tolist() == pytest.approx([5 * 1504 * 8 / 0.5, 2 * 1504 * 8 / 0.5])
    assert d["utilization"].iloc[0] == pytest.approx(3600 / (5 * 1504))
    q = mm.queued(df)
    assert q["queue_packets"].max() == 3 and q["queue_packets"].iloc[-1] == 0
    assert q["queue_bytes"].iloc[-1] == 0 and (q["queue_bytes"] >= 0).all()
    dr = mm.drops(df)
    assert dr[["packets", "bytes"]].values.tolist() == [[1, 1500]]
    de = mm.delays(df)
    assert de["queue_delay_s"].tolist() == pytest.approx([0.0, 0.001, 0.0, 0.0])


def test_no_base_timestamp_uses_first_event():
    df = mm.parse_mahimahi("500 + 100\n503 - 100 3\n")
    assert df["time_s"].tolist() == pytest.approx([0.0, 0.003])


@pytest.mark.parametrize("text,line", [
    ("# base timestamp: 10\n10 + 1500\n11 x 3\n", 3),
    ("10 + \n", 1),
    ("10 - 1500\n", 1),
    ("10 + -5\n", 1),
    ("# base timestamp: soon\n", 1),
    ("1e3 + 5\n", 1),
])
def test_malformed(tmp_path, text, line):
    p = tmp_path / "bad.log"
    p.write_text(text)
    with pytest.raises(TraceFormatError) as err:
        mm.read_mahimahi(p)
    assert err.value.line == line and str(p) in str(err.value)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**12), st.sampled_from(["+", "-", "#", "d"]),
                          st.integers(0, 10**6), st.integers(0, 10**4)), max_size=30),
       st.booleans())
def test_fast_and_checked_parsers_agree(events, with_base):
    lines = ["# mahimahi mm-link (uplink) [trace] > log"]
    if with_base:
        lines.append("# base timestamp: 0")
    for t, op, a, b in events:
        lines.append(f"{t} {op} {a}" + (f" {b}" if op in "-d" else ""))
    text = "\n".join(lines) + "\n"
    fast = mm.parse_mahimahi(text)
    checked = mm._parse_checked(text, "<x>", 0)
    pd.testing.assert_frame_equal(fast, checked)
    assert len(fast) == len(events)
