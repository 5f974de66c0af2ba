"""The IETF export follows the drafts it names; the legacy export is qlog 0.3 as qvis
reads it. Checked by tests/trace/qlog_draft.py, written from the drafts' text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtlab.trace import Recorder, qlog

from . import qlog_draft
from .helpers import synthetic_recorder, trace_strategy


def _all_kinds() -> Recorder:
    rec = Recorder()
    t = 0.0
    for kind, fields in [
        ("packet_sent", {"pn": 0, "bytes": 1252}),
        ("ack_received", {"pn": 0, "extra": {"ranges": [[0, 0]], "ack_delay_s": 0.001,
                                             "epoch": "initial"}}),
        ("packet_acked", {"pn": 0, "bytes": 1252}),
        ("rtt_sample", {"latest_rtt_s": 0.02, "srtt_s": 0.02, "min_rtt_s": 0.02,
                        "rttvar_s": 0.01}),
        ("cwnd_changed", {"cwnd": 13252, "bytes_in_flight": 0, "ssthresh": 9000}),
        ("pacing_changed", {"pacing_rate_bps": 5_000_000.0}),
        ("pacing_changed", {"pacing_rate_bps": 1234.5}),  # not an integer: wtlab keeps it
        ("state_changed", {"state": "recovery"}),
        ("packet_sent", {"pn": 1, "bytes": 1200}),
        ("packet_lost", {"pn": 1, "bytes": 1200, "extra": {"trigger": "packet_threshold"}}),
        ("pto_expired", {"extra": {"pto_count": 1}}),
        ("stream_opened", {"stream_id": 0}),
        ("stream_opened", {"stream_id": 1}),
        ("stream_opened", {}),  # no stream id: a wtlab event
        ("stream_data_sent", {"stream_id": 0, "bytes": 500}),
        ("stream_data_received", {"stream_id": 1, "bytes": 700}),
        ("stream_reset", {"stream_id": 1}),
        ("stream_closed", {"stream_id": 0}),
        ("datagram_sent", {"bytes": 90}),
        ("datagram_received", {"bytes": 80}),
        ("persistent_congestion", {}),
        ("metrics_updated", {"min_rtt_s": float("inf")}),  # no JSON-able metric
        ("message_sent", {"pn": 3, "stream_id": 4, "bytes": 100}),
        ("packet_received", {"pn": 7, "bytes": 45}),
    ]:
        t += 0.001
        rec.event(t, kind, **fields)
    return rec


TRACES = {"all kinds": _all_kinds, "multi-flow": lambda: synthetic_recorder(60, flows=3)}


@pytest.mark.parametrize("seq", [False, True])
@pytest.mark.parametrize("which", sorted(TRACES))
def test_ietf_export_conforms(tmp_path, which, seq):
    p = qlog.write_qlog(TRACES[which](), tmp_path / ("t.sqlog" if seq else "t.qlog"))
    assert qlog_draft.problems_ietf(p.read_text()) == []


def test_ietf_export_of_a_live_trace_conforms(live_run, tmp_path):
    _, rec = live_run
    for name in ("t.qlog", "t.sqlog"):
        p = qlog.write_qlog(rec, tmp_path / name)
        assert qlog_draft.problems_ietf(p.read_text()) == []


@settings(max_examples=30, deadline=None)
@given(rec=trace_strategy(), seq=st.booleans())
def test_ietf_export_of_any_trace_conforms(tmp_path_factory, rec, seq):
    p = qlog.write_qlog(rec, tmp_path_factory.mktemp("c") / ("t.sqlog" if seq else "t.qlog"))
    assert qlog_draft.problems_ietf(p.read_text()) == []


@pytest.mark.parametrize("seq", [False, True])
def test_legacy_export_is_what_qvis_reads(tmp_path, seq, live_run):
    _, rec = live_run
    for trace in (_all_kinds(), rec):
        p = qlog.write_qlog(trace, tmp_path / ("t.sqlog" if seq else "t.qlog"),
                            flavour="legacy")
        assert qlog_draft.problems_legacy(p.read_text()) == []


def test_the_checker_finds_what_the_old_writer_did(tmp_path):
    """The check is not vacuous: the retired names and fields are caught."""
    rec = _all_kinds()
    good = json.loads(qlog.write_qlog(rec, tmp_path / "t.qlog").read_text())
    evs = good["traces"][0]["events"]
    for ev in evs:
        if ev["name"] == "quic:timer_updated":
            ev["name"] = "quic:loss_timer_updated"
        if ev["name"] == "quic:stream_data_moved":
            ev["data"]["length"] = ev["data"].pop("raw")["length"]
        if ev["name"] == "quic:stream_state_updated":
            ev["data"].pop("stream_side")
    problems = qlog_draft.problems_ietf(json.dumps(good))
    assert any("loss_timer_updated" in p for p in problems)
    assert any("['length']" in p for p in problems)
    assert any("stream_side" in p for p in problems)
    legacy = json.loads(qlog.write_qlog(rec, tmp_path / "l.qlog", flavour="legacy")
                        .read_text())
    for ev in legacy["traces"][0]["events"]:
        if ev["name"] == "recovery:metrics_updated" and "congestion_window" in ev["data"]:
            ev["data"]["cwnd"] = ev["data"].pop("congestion_window")
    assert any("cwnd" in p for p in qlog_draft.problems_legacy(json.dumps(legacy)))


def test_field_values_follow_the_definitions(tmp_path):
    doc = json.loads(qlog.write_qlog(_all_kinds(), tmp_path / "t.qlog").read_text())
    assert doc["traces"][0]["event_schemas"] == [qlog.QUIC_EVENTS_URI, qlog.WTLAB_EVENTS_URI]
    assert qlog.QUIC_EVENTS_URI == "urn:ietf:params:qlog:events:quic-13"
    evs = doc["traces"][0]["events"]
    by = {}
    for ev in evs:
        by.setdefault(ev["name"], []).append(ev)
    first = by["quic:packet_sent"][0]["data"]
    assert first["header"] == {"packet_type": "initial", "packet_number": 0}  # ACKed there
    assert first["raw"] == {"length": 1252}
    assert by["quic:packet_sent"][1]["data"]["header"]["packet_type"] == "1RTT"
    ack = by["quic:packet_received"][0]["data"]
    assert ack["header"] == {"packet_type": "initial"}
    assert ack["frames"] == [{"frame_type": "ack", "ack_delay": 1.0, "acked_ranges": [[0, 0]]}]
    assert by["quic:packets_acked"][0]["data"] == {"packet_number_space": "initial",
                                                    "packet_numbers": [0]}
    metrics = [e["data"] for e in by["quic:recovery_metrics_updated"]]
    assert metrics[0] == {"min_rtt": 20.0, "smoothed_rtt": 20.0, "latest_rtt": 20.0,
                          "rtt_variance": 10.0}
    assert metrics[1] == {"congestion_window": 13252, "bytes_in_flight": 0, "ssthresh": 9000}
    assert metrics[2] == {"pacing_rate": 5000000}
    lost = by["quic:packet_lost"][0]["data"]
    assert lost == {"header": {"packet_type": "1RTT", "packet_number": 1},
                    "trigger": "reordering_threshold"}
    assert by["quic:timer_updated"][0]["data"] == {"timer_type": "pto",
                                                    "event_type": "expired"}
    states = [e["data"] for e in by["quic:stream_state_updated"]]
    assert states[0] == {"stream_id": 0, "new": "open", "stream_side": "sending"}
    assert states[1]["stream_side"] == "receiving"  # a server-initiated stream
    assert by["quic:stream_data_moved"][0]["data"] == {
        "stream_id": 0, "from": "application", "to": "transport", "raw": {"length": 500}}
    assert by["quic:datagram_data_moved"][1]["data"] == {
        "from": "transport", "to": "application", "raw": {"length": 80}}
    assert {"wtlab:stream_opened", "wtlab:persistent_congestion", "wtlab:pacing_changed",
            "wtlab:metrics_updated", "wtlab:message_sent"} <= set(by)


def test_legacy_names_and_integer_fields(tmp_path):
    doc = json.loads(qlog.write_qlog(_all_kinds(), tmp_path / "t.qlog", flavour="legacy")
                     .read_text())
    assert list(doc)[:2] == ["qlog_version", "qlog_format"] and doc["qlog_version"] == "0.3"
    evs = doc["traces"][0]["events"]
    metrics = [e["data"] for e in evs if e["name"] == "recovery:metrics_updated"]
    assert {"congestion_window": 13252, "bytes_in_flight": 0, "ssthresh": 9000} in metrics
    assert {"pacing_rate": 5000000} in metrics
    lost = next(e["data"] for e in evs if e["name"] == "recovery:packet_lost")
    assert lost["header"]["packet_number"] == 1
    names = {e["name"] for e in evs}
    assert {"transport:packet_sent", "transport:packets_acked", "recovery:loss_timer_updated",
            "transport:data_moved", "recovery:congestion_state_updated"} <= names


@pytest.mark.parametrize("name", ["quicgo_string_ranges.sqlog", "quicgo_current.sqlog",
                                  "picoquic_multipath.qlog", "draft00_uppercase.qlog",
                                  "aioquic_03.qlog", "mvfst.qlog", "ietf_draft13.sqlog"])
def test_other_stacks_traces_export_conforming(tmp_path, name):
    """Imported traces (upper-case packet types, ACK ranges as text, ...) are written in
    the draft's spelling, and still read back row for row."""
    from pathlib import Path

    import pandas as pd

    df = qlog.read_qlog(Path(__file__).parent / "data" / name)
    for suffix in (".qlog", ".sqlog"):
        p = qlog.write_qlog(df, tmp_path / f"t{suffix}")
        assert qlog_draft.problems_ietf(p.read_text()) == []
        back = qlog.read_qlog(p)
        pd.testing.assert_frame_equal(back.sort_values(["time_s", "flow"], kind="stable")
                                      .reset_index(drop=True),
                                      df.drop(columns=[c for c in ("path_id",) if c in df])
                                      .sort_values(["time_s", "flow"], kind="stable")
                                      .reset_index(drop=True), check_categorical=False)
