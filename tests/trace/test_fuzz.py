"""Fuzzing every parser: any input gives a trace frame or TraceFormatError, nothing else."""

from __future__ import annotations

import json

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wtlab import TraceFormatError
from wtlab.trace import export, mahimahi, qlog, schema

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)

NAMES = ["transport:packet_sent", "quic:packet_sent", "recovery:packet_lost",
         "quic:packets_acked", "recovery:metrics_updated", "quic:recovery_metrics_updated",
         "quic:congestion_state_updated", "quic:loss_timer_updated",
         "quic:stream_state_updated", "quic:stream_data_moved", "quic:datagram_data_moved",
         "wtlab:packet_acked", "wtlab:", "x:y", ""]
FIELDS = ["packet_number", "length", "cwnd", "congestion_window", "smoothed_rtt", "min_rtt",
          "pacing_rate", "new", "to", "stream_id", "packet_numbers", "header", "raw",
          "trigger", "event_type", "timer_type", "wtlab"]
WT_FIELDS = ["flow", "pn", "stream_id", "bytes", "cwnd", "srtt_s", "time_s", "kind", "state",
             "extra", "bogus"]

def _mostly(good, bad):
    """``good`` about seven times in eight, else ``bad`` (keeps the fuzz near valid input)."""
    return st.integers(0, 7).flatmap(lambda i: bad if i == 0 else good)


number = st.integers(0, 2**40) | st.floats(0, 1e9, allow_nan=False)
field_value = _mostly(number | st.sampled_from(["open", "transport", "pto", "expired", "1RTT"]),
                      json_values)
header = st.dictionaries(st.sampled_from(["packet_number", "packet_type", "packet_size"]),
                         field_value, max_size=3)
wtlab_member = st.dictionaries(st.sampled_from(WT_FIELDS), _mostly(
    number | st.text(max_size=4), json_values), max_size=4)
event_data = st.dictionaries(
    st.sampled_from(FIELDS),
    _mostly(field_value, header | wtlab_member | st.lists(field_value, max_size=3)),
    max_size=5)
event = st.fixed_dictionaries(
    {"time": _mostly(st.floats(0, 1e6, allow_nan=False), json_values),
     "name": _mostly(st.sampled_from(NAMES), json_values)},
    optional={"data": _mostly(event_data, json_values), "group_id": json_values})
trace = st.fixed_dictionaries(
    {"events": _mostly(st.lists(event, max_size=5), json_values)},
    optional={"common_fields": st.dictionaries(
        st.sampled_from(["time_format", "reference_time", "group_id", "time_units"]),
        _mostly(st.sampled_from(["relative", "delta", "us", "relative_to_epoch"]), json_values),
        max_size=3),
        "configuration": _mostly(st.fixed_dictionaries(
            {"time_units": _mostly(st.sampled_from(["ms", "us", "weeks"]), json_values)}),
            json_values),
        "event_fields": _mostly(st.just(["relative_time", "category", "event", "data"]),
                                json_values)})
document = st.fixed_dictionaries({"traces": _mostly(st.lists(trace, max_size=3), json_values)},
                                 optional={"qlog_version": json_values})


def _ok_frame(df):
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[: len(schema.COLUMNS)]) == list(schema.COLUMNS)


@FUZZ
@given(st.binary(max_size=300))
def test_qlog_any_bytes(data):
    try:
        _ok_frame(qlog.parse_qlog(data, name="fuzz.qlog"))
    except TraceFormatError as exc:
        assert exc.path == "fuzz.qlog"


@FUZZ
@given(document)
def test_qlog_json_shaped_documents(doc):
    try:
        text = json.dumps(doc)
    except (ValueError, OverflowError):
        return
    try:
        _ok_frame(qlog.parse_qlog(text, name="doc.qlog"))
    except TraceFormatError as exc:
        assert exc.path == "doc.qlog"


@FUZZ
@given(st.lists(event | json_values, max_size=6), st.booleans())
def test_qlog_json_seq_records(events, with_rs):
    header = {"qlog_format": "JSON-SEQ", "qlog_version": "draft-02",
              "trace": {"common_fields": {"time_format": "relative"}}}
    sep = "\x1e" if with_rs else ""
    text = "".join(sep + json.dumps(r) + "\n" for r in [header, *events])
    try:
        _ok_frame(qlog.parse_qlog(text, name="s.sqlog"))
    except TraceFormatError as exc:
        assert exc.path == "s.sqlog" and exc.line is not None


@FUZZ
@given(st.lists(st.tuples(st.integers(-5, 2**64) | st.text(max_size=3),
                          st.sampled_from(["+", "-", "#", "d", "x", ""]),
                          st.lists(st.integers(-5, 2**64) | st.text(max_size=3), max_size=3)),
                max_size=8),
       st.booleans())
def test_mahimahi_lines(lines, header):
    text = ("# base timestamp: 100\n" if header else "") + "\n".join(
        f"{t} {op} {' '.join(map(str, rest))}" for t, op, rest in lines)
    try:
        _ok_frame(mahimahi.parse_mahimahi(text, name="link.log"))
    except TraceFormatError as exc:
        assert exc.path == "link.log"


@FUZZ
@given(st.binary(max_size=200))
def test_mahimahi_any_bytes(data):
    try:
        _ok_frame(mahimahi.parse_mahimahi(data, name="link.log"))
    except TraceFormatError as exc:
        assert exc.path == "link.log"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_csv_any_text(tmp_path, text):
    p = tmp_path / "f.csv"
    p.write_text(text)
    try:
        _ok_frame(export.read_csv(p))
    except TraceFormatError as exc:
        assert exc.path == str(p)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_parquet_any_bytes(tmp_path, data):
    p = tmp_path / "f.parquet"
    p.write_bytes(b"PAR1" + data + b"PAR1")
    try:
        _ok_frame(export.read_parquet(p))
    except TraceFormatError as exc:
        assert exc.path == str(p)
