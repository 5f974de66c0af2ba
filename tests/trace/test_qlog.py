"""qlog: round trips (both flavours, JSON and JSON-SEQ), real aioquic qlog, samples, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtlab import ConfigError, TraceFormatError
from wtlab.trace import Recorder, qlog

from .helpers import acked_by_file, sort_rows, synthetic_recorder, trace_strategy

DATA = Path(__file__).parent / "data"
FORMATS = [("ietf", ".qlog"), ("ietf", ".sqlog"), ("legacy", ".qlog"), ("legacy", ".sqlog")]


def _round_trip(rec, tmp_path, flavour, suffix):
    p = qlog.write_qlog(rec, tmp_path / f"t{suffix}", flavour=flavour)
    return qlog.read_qlog(p)


@pytest.mark.parametrize("flavour,suffix", FORMATS)
def test_round_trip_synthetic_multi_flow(tmp_path, flavour, suffix):
    rec = synthetic_recorder(150, flows=3)
    back = _round_trip(rec, tmp_path, flavour, suffix)
    pd.testing.assert_frame_equal(sort_rows(back), sort_rows(rec.to_pandas()),
                                  check_categorical=False)


@settings(max_examples=40, deadline=None)
@given(rec=trace_strategy(), fmt=st.sampled_from(FORMATS))
def test_round_trip_any_trace(tmp_path_factory, rec, fmt):
    tmp = tmp_path_factory.mktemp("q")
    back = _round_trip(rec, tmp, *fmt)
    assert len(back) == len(rec)
    pd.testing.assert_frame_equal(sort_rows(back), sort_rows(rec.to_pandas()),
                                  check_categorical=False)


@pytest.mark.parametrize("flavour,suffix", FORMATS)
def test_round_trip_real_recorded_trace(live_run, tmp_path, flavour, suffix):
    _, rec = live_run
    df = rec.to_pandas()
    kinds = set(df["kind"].astype(str)[df["kind"].notna()])
    assert {"packet_sent", "packet_acked", "rtt_sample", "ack_received", "cwnd_changed"} <= kinds
    back = _round_trip(rec, tmp_path, flavour, suffix)
    pd.testing.assert_frame_equal(sort_rows(back), sort_rows(df), check_categorical=False)


def test_written_names_and_headers(tmp_path):
    rec = Recorder()
    rec.event(0.001, "packet_sent", pn=0, bytes=1200)
    rec.event(0.002, "cwnd_changed", cwnd=13200, bytes_in_flight=0, state="slow_start")
    rec.event(0.003, "packet_lost", pn=0, bytes=1200, extra={"trigger": "time_threshold"})
    rec.event(0.004, "state_changed", state="recovery")
    rec.event(0.005, "message_sent", pn=1, stream_id=4, bytes=100)
    rec.event(0.006, "packet_lost", pn=2, bytes=1200, extra={"trigger": "packet_threshold"})
    rec.event(0.007, "pacing_changed", pacing_rate_bps=2_500_000.0)
    rec.event(0.008, "pto_expired", extra={"pto_count": 1})
    ietf = json.loads(qlog.write_qlog(rec, tmp_path / "a.qlog").read_text())
    assert list(ietf)[:2] == ["file_schema", "serialization_format"]
    assert ietf["file_schema"] == "urn:ietf:params:qlog:file:contained"
    assert ietf["traces"][0]["event_schemas"][0] == "urn:ietf:params:qlog:events:quic-13"
    evs = ietf["traces"][0]["events"]
    assert [e["name"] for e in evs] == [
        "quic:packet_sent", "quic:recovery_metrics_updated", "quic:packet_lost",
        "quic:congestion_state_updated", "wtlab:message_sent", "quic:packet_lost",
        "quic:recovery_metrics_updated", "quic:timer_updated"]
    assert evs[0]["data"]["header"]["packet_number"] == 0 and evs[0]["time"] == 1.0
    assert evs[1]["data"]["congestion_window"] == 13200
    assert evs[2]["data"]["trigger"] == "time_threshold"
    assert evs[5]["data"]["trigger"] == "reordering_threshold"
    assert evs[3]["data"]["new"] == "recovery"
    assert evs[6]["data"]["pacing_rate"] == 2500000
    old = json.loads(qlog.write_qlog(rec, tmp_path / "b.qlog", flavour="legacy").read_text())
    assert old["qlog_version"] == "0.3" and old["qlog_format"] == "JSON"
    names = [e["name"] for e in old["traces"][0]["events"]]
    assert names[:4] == ["transport:packet_sent", "recovery:metrics_updated",
                         "recovery:packet_lost", "recovery:congestion_state_updated"]
    assert names[-1] == "recovery:loss_timer_updated"
    legacy_metrics = old["traces"][0]["events"][1]["data"]
    assert legacy_metrics == {"congestion_window": 13200, "bytes_in_flight": 0}
    assert type(old["traces"][0]["events"][6]["data"]["pacing_rate"]) is int
    seq = (tmp_path / "c.sqlog")
    qlog.write_qlog(rec, seq)
    raw = seq.read_text()
    records = [json.loads(r) for r in raw.split("\x1e") if r.strip()]
    assert raw.startswith("\x1e") and len(records) == 1 + len(rec)
    assert all(r.endswith("\n") and r.count("\n") == 1 for r in raw.split("\x1e")[1:])
    assert records[0]["trace"]["event_schemas"][0].startswith("urn:ietf:params:qlog:events:quic")
    assert records[0]["file_schema"] == "urn:ietf:params:qlog:file:sequential"
    # contained JSON: one event per line, still one JSON document
    lines = (tmp_path / "a.qlog").read_text().splitlines()
    assert sum(line.startswith('{"time":') for line in lines) == len(rec)


def test_write_is_atomic(tmp_path):
    target = tmp_path / "keep.qlog"
    target.write_text("old")
    with pytest.raises(Exception):  # noqa: B017 - any error from the bad argument
        qlog.write_qlog(object(), target)
    with pytest.raises(Exception):  # noqa: B017
        qlog.write_qlog(synthetic_recorder(5), target, flavour="nope")
    bad = synthetic_recorder(5).to_pandas()
    bad.loc[2, "time_s"] = float("nan")
    with pytest.raises(ConfigError, match="finite time_s"):
        qlog.write_qlog(bad, target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.qlog"]


def test_real_aioquic_qlog_imports(live_run):
    qdir, rec = live_run
    files = sorted(qdir.glob("*.qlog"))
    assert files, "aioquic's QuicFileLogger wrote no qlog"
    for f in files:
        doc = json.loads(f.read_text())
        events = [e for tr in doc["traces"] for e in tr["events"]]
        df = qlog.read_qlog(f, derive_acks=False)
        assert len(df) == len(events)  # one row per event: nothing dropped
        counts = df["kind"].astype(str).value_counts()
        n_sent = sum(e["name"] == "transport:packet_sent" for e in events)
        n_metrics = sum(e["name"] == "recovery:metrics_updated" for e in events)
        assert counts["packet_sent"] == n_sent > 10
        assert counts["metrics_updated"] == n_metrics
        cwnds = [e["data"]["cwnd"] for e in events if e["name"] == "recovery:metrics_updated"
                 and "cwnd" in e["data"]]
        got = df.loc[df["kind"] == "metrics_updated", "cwnd"].dropna().tolist()
        assert got == cwnds
        t = sorted(e["time"] for e in events)
        assert df["time_s"].min() == 0.0
        assert df["time_s"].max() == pytest.approx((t[-1] - t[0]) / 1000, abs=1e-6)
        sizes = [e["data"]["raw"]["length"] for e in events if e["name"] ==
                 "transport:packet_sent"]
        assert df.loc[df["kind"] == "packet_sent", "bytes"].tolist() == sizes
        # unknown events kept whole, with their data in extra
        dg = df[df["kind"] == "transport:datagrams_sent"]
        assert len(dg) == sum(e["name"] == "transport:datagrams_sent" for e in events) > 0
        assert json.loads(dg["extra"].iloc[0])["count"] == 1
        # by default, acknowledgements are what the file's own ACK frames say
        with_acks = qlog.read_qlog(f)
        acked = with_acks[with_acks["kind"] == "packet_acked"]
        want = acked_by_file(f)
        assert len(acked) == len(want) > 10
        assert int(acked["bytes"].sum()) == sum(want.values())


def test_aioquic_sample():
    df = qlog.read_qlog(DATA / "aioquic_03.qlog", derive_acks=False)
    assert df["kind"].astype(str).tolist() == [
        "transport:datagrams_sent", "packet_sent", "metrics_updated", "packet_received",
        "metrics_updated", "packet_lost", "metrics_updated"]
    assert df["time_s"].tolist() == pytest.approx([0, 0.0005, 0.0006, 0.0125, 0.0126, 0.05,
                                                   0.05], abs=1e-6)
    m = df[df["kind"] == "metrics_updated"]
    assert m["cwnd"].tolist() == [12000, 13252, 6626]
    assert m["srtt_s"].iloc[1] == pytest.approx(0.012) and m["rttvar_s"].iloc[1] == \
        pytest.approx(0.006)
    assert m["ssthresh"].iloc[2] == 6626 and json.loads(m["extra"].iloc[2]) == {
        "cubic-wmax": 13252}
    lost = df[df["kind"] == "packet_lost"]
    assert lost["pn"].tolist() == [9]


def test_picoquic_draft00_sample_microseconds():
    df = qlog.read_qlog(DATA / "picoquic_draft00.qlog")
    assert len(df) == 9
    m = df[df["kind"] == "metrics_updated"]
    assert m["time_s"].tolist() == pytest.approx([0.0015, 0.04525])
    assert m["srtt_s"].iloc[1] == pytest.approx(0.0305) and m["min_rtt_s"].iloc[1] == \
        pytest.approx(0.030)
    sent = df[df["kind"] == "packet_sent"]
    assert sent["bytes"].tolist() == [1252, 1440] and sent["pn"].tolist() == [0, 1]
    lost = df[df["kind"] == "packet_lost"]
    assert lost["pn"].tolist() == [7]
    assert json.loads(lost["extra"].iloc[0])["trigger"] == "time_threshold"
    assert df.loc[df["kind"] == "state_changed", "state"].tolist() == ["recovery"]
    assert "transport:spin_bit_updated" in set(df["kind"].astype(str))


def test_quicgo_draft02_sample():
    df = qlog.read_qlog(DATA / "quicgo_draft02.sqlog")
    assert df.attrs["meta"]["qlog"]["qlog_version"] == "draft-02"
    m = df[df["kind"] == "metrics_updated"]
    assert m["cwnd"].iloc[0] == 39040 and m["srtt_s"].iloc[1] == pytest.approx(0.02104)
    assert json.loads(m["extra"].iloc[0]) == {"packets_in_flight": 1}
    assert df["time_s"].iloc[0] == pytest.approx(0.00001)
    assert df.loc[df["kind"] == "packet_lost", "pn"].tolist() == [4]
    assert (df["kind"] == "pto_expired").sum() == 1
    assert df["kind"].astype(str).iloc[0] == "transport:parameters_set"


def test_ietf_samples():
    df = qlog.read_qlog(DATA / "ietf_current.qlog")
    acked = df[df["kind"] == "packet_acked"]
    assert acked["pn"].tolist() == [10, 11]
    m = df[df["kind"] == "metrics_updated"].iloc[0]
    assert (m["cwnd"], m["ssthresh"], m["bytes_in_flight"]) == (14400, 9600, 0)
    assert m["pacing_rate_bps"] == 4608000.0 and m["min_rtt_s"] == pytest.approx(0.0245)
    kinds = df["kind"].astype(str).tolist()
    assert {"stream_opened", "stream_data_sent", "datagram_received", "state_changed",
            "quic:loss_timer_updated", "quic:connection_closed"} <= set(kinds)
    assert df.loc[df["kind"] == "stream_data_sent", "bytes"].tolist() == [500]
    seq = qlog.read_qlog(DATA / "ietf_current.sqlog")
    assert seq["flow"].tolist() == [0, 1, 0, 1, 0]  # group ids conn-a, conn-b
    assert seq.loc[seq["kind"] == "packet_lost", "flow"].tolist() == [1]


@pytest.mark.parametrize("text,line", [
    ("", 1),
    ("{", 1),
    ('{"traces": 5}', 1),
    ('{"traces": [{"events": [{"time": "soon", "name": "x:y"}]}]}', None),
    ('{"traces": [{"events": [{"time": 1, "name": "transport:packet_sent", '
     '"data": {"header": {"packet_number": 1.5}}}]}]}', None),
    ('\x1e{"qlog_format": "JSON-SEQ", "trace": {}}\n\x1e{"time": 1, "name": "a:b"}\n'
     '\x1e{"time": 2, "name"\n', 3),
    ('\x1e{"time": 1, "name": "a:b"}\n', 1),
    ('{"traces": [{"event_fields": ["relative_time", "category", "event", "data"], '
     '"events": [[0, "transport"]]}]}', None),
])
def test_malformed_raises_trace_format_error(tmp_path, text, line):
    p = tmp_path / "bad.qlog"
    p.write_text(text)
    with pytest.raises(TraceFormatError) as err:
        qlog.read_qlog(p)
    assert err.value.path == str(p) and str(p) in str(err.value)
    if line is not None:
        assert err.value.line == line


def test_draft00_uppercase_names_and_text_times():
    df = qlog.read_qlog(DATA / "draft00_uppercase.qlog")
    assert df["kind"].astype(str).tolist() == [
        "packet_sent", "packet_received", "metrics_updated", "packet_lost",
        "HTTP:FRAME_CREATED"]
    assert df["time_s"].tolist() == pytest.approx([0, 0.025, 0.026, 0.070, 0.071])
    assert df["pn"].tolist()[:2] == [0, 0] and df["bytes"].tolist()[:2] == [1280, 1200]
    m = df.iloc[2]
    assert m["cwnd"] == 14000 and m["srtt_s"] == pytest.approx(0.025)
    assert df["pn"].iloc[3] == 3


def test_relative_times_are_kept_and_deltas_summed():
    hdr = {"file_schema": "urn:ietf:params:qlog:file:sequential",
           "serialization_format": "application/qlog+json-seq",
           "trace": {"common_fields": {"group_id": "c1", "reference_time": {
               "wall_clock_time": "2026-07-25T03:00:00Z"}}}}
    ev = {"time": 1.5, "name": "quic:packet_sent",
          "data": {"header": {"packet_number": 1}, "raw": {"length": 1200}}}
    text = "".join("\x1e" + json.dumps(r) + "\n" for r in (hdr, ev, {**ev, "time": 4.0}))
    assert qlog.parse_qlog(text)["time_s"].tolist() == pytest.approx([0.0015, 0.004])
    delta = {"traces": [{"common_fields": {"time_format": "relative_to_previous_event"},
                         "events": [{**ev, "time": 2.0}, {**ev, "time": 3.0}]}]}
    assert qlog.parse_qlog(json.dumps(delta))["time_s"].tolist() == pytest.approx(
        [0.002, 0.005])


def test_derive_acks_from_ack_frames():
    df = qlog.read_qlog(DATA / "aioquic_03.qlog", derive_acks=True)
    acked = df[df["kind"] == "packet_acked"]
    assert acked["pn"].tolist() == [0] and acked["bytes"].tolist() == [1252]
    assert acked["time_s"].iloc[0] == pytest.approx(0.0125)
    assert json.loads(acked["extra"].iloc[0]) == {"derived_from": "ack_frame",
                                                  "space": "initial"}
    # right after the packet that carried the ACK frame
    i = acked.index[0]
    assert df["kind"].iloc[i - 1] == "packet_received"
    # a trace without ACK frames is returned unchanged
    plain = qlog.read_qlog(DATA / "ietf_current.qlog")
    pd.testing.assert_frame_equal(qlog.derive_acks(plain), plain)


def test_derived_acks_agree_with_the_recorder_of_the_same_connection(live_run):
    from wtlab.trace import PerformanceMonitor

    qdir, rec = live_run
    client = [f for f in qdir.glob("*.qlog")
              if json.loads(f.read_text())["traces"][0]["vantage_point"]["type"] == "client"]
    assert len(client) == 1
    mine = PerformanceMonitor(rec).summary().iloc[0]
    theirs = PerformanceMonitor(qlog.read_qlog(client[0], derive_acks=True)).summary().iloc[0]
    # two independent logs of one connection: wtlab's hooks and aioquic's own qlog
    assert theirs["bytes_sent"] == mine["bytes_sent"]
    assert theirs["packets_lost"] == mine["packets_lost"]
    assert theirs["bytes_acked"] == pytest.approx(mine["bytes_acked"], rel=0.01)


def test_ack_received_rows_become_ack_frames_qvis_reads(live_run, tmp_path):
    _, rec = live_run
    df = rec.to_pandas()
    acks = df[df["kind"] == "ack_received"]
    assert len(acks) > 0
    for flavour, name in (("ietf", "quic:packet_received"), ("legacy", "transport:packet_received")):
        doc = json.loads(qlog.write_qlog(rec, tmp_path / f"{flavour}.qlog",
                                         flavour=flavour).read_text())
        evs = [e for e in doc["traces"][0]["events"] if e["name"] == name]
        assert len(evs) == len(acks)
        first = json.loads(acks["extra"].iloc[0])
        frame = evs[0]["data"]["frames"][0]
        assert frame["frame_type"] == "ack" and frame["acked_ranges"] == first["ranges"]
        assert frame["ack_delay"] == pytest.approx(first["ack_delay_s"] * 1000)


def _general_reader(monkeypatch):
    from wtlab.trace import qlog_read

    monkeypatch.setattr(qlog_read, "_columnar", lambda text: None)


@settings(max_examples=25, deadline=None)
@given(rec=trace_strategy(), fmt=st.sampled_from(FORMATS))
def test_column_wise_reader_equals_the_general_one(tmp_path_factory, rec, fmt):
    from wtlab.trace import qlog_columns, qlog_read

    p = qlog.write_qlog(rec, tmp_path_factory.mktemp("q") / f"t{fmt[1]}", flavour=fmt[0])
    data = p.read_bytes()
    fast = qlog_read.parse_qlog(data)
    orig = qlog_read._columnar
    try:
        qlog_read._columnar = lambda text: None
        slow = qlog_read.parse_qlog(data)
    finally:
        qlog_read._columnar = orig
    pd.testing.assert_frame_equal(fast, slow, check_categorical=False)
    assert fast.attrs["meta"]["qlog"]["written_by_wtlab"]
    # and the column-wise path did read it (it declines only what it cannot handle)
    floats = rec.to_pandas().select_dtypes("float32").to_numpy()
    if len(rec) and not np.isinf(floats).any():  # "inf" texts: the general reader's job
        assert qlog_columns.read_wtlab_qlog(data) is not None


def test_column_wise_reader_on_live_and_multi_flow(live_run, tmp_path, monkeypatch):
    from wtlab.trace import qlog_columns

    _, rec = live_run
    for trace, formats in ((rec, FORMATS), (synthetic_recorder(100, flows=3), FORMATS[:2])):
        for flavour, suffix in formats:
            p = qlog.write_qlog(trace, tmp_path / f"t{suffix}", flavour=flavour)
            assert qlog_columns.read_wtlab_qlog(p.read_bytes()) is not None
            fast = qlog.read_qlog(p)
            with monkeypatch.context() as m:
                _general_reader(m)
                slow = qlog.read_qlog(p)
            pd.testing.assert_frame_equal(fast, slow, check_categorical=False)
            pd.testing.assert_frame_equal(sort_rows(fast), sort_rows(trace.to_pandas()),
                                          check_categorical=False)


def test_writer_memory_does_not_grow_with_the_trace(tmp_path):
    """Streaming: peak memory while writing 4x the events stays near that of 1x (the
    Recorder is decoded chunk by chunk)."""
    import gc
    import tracemalloc

    from wtlab.trace import qlog_write
    from wtlab.trace.schema import K_PACKET_ACKED, K_PACKET_SENT

    def peak(n: int) -> int:
        rec = Recorder()
        nan = float("nan")
        for i in range(n):
            rec.append(i * 1e-5, K_PACKET_SENT if i & 1 else K_PACKET_ACKED, 1, 0, i, -1,
                       1200, 120000, 60000, 0xFFFFFFFF, 0.05, 0.04, 0.05, 0.01, nan, nan)
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        qlog.write_qlog(rec, tmp_path / "m.sqlog")
        got = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return got

    chunk = qlog_write.CHUNK_ROWS
    small, large = peak(chunk), peak(4 * chunk)
    assert large < 1.5 * small, (small, large)


def test_packet_types_as_they_were(live_run, tmp_path):
    """The Initial is not 1RTT: an imported packet keeps its type; wtlab's own packets are
    typed by the ACK frame that acknowledged them."""
    _, rec = live_run
    doc = json.loads(qlog.write_qlog(rec, tmp_path / "l.qlog").read_text())
    sent = [e for e in doc["traces"][0]["events"] if e["name"] == "quic:packet_sent"]
    assert sent[0]["data"]["header"] == {"packet_type": "initial", "packet_number": 0}
    assert {e["data"]["header"]["packet_type"] for e in sent[5:]} == {"1RTT"}
    imported = qlog.read_qlog(DATA / "aioquic_03.qlog")
    again = json.loads(qlog.write_qlog(imported, tmp_path / "i.qlog").read_text())
    types = {e["data"]["header"]["packet_number"]: e["data"]["header"]["packet_type"]
             for e in again["traces"][0]["events"] if e["name"] == "quic:packet_sent"}
    assert types == {0: "initial"}
    lost = [e for e in again["traces"][0]["events"] if e["name"] == "quic:packet_lost"]
    assert lost[0]["data"]["header"] == {"packet_type": "1RTT", "packet_number": 9}
    acked = [e for e in again["traces"][0]["events"] if e["name"] == "quic:packets_acked"]
    assert acked[0]["data"]["packet_number_space"] == "initial"
    pd.testing.assert_frame_equal(qlog.read_qlog(tmp_path / "i.qlog"), imported,
                                  check_categorical=False)


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="vantage"):
        qlog.write_qlog(synthetic_recorder(3), tmp_path / "x.qlog", vantage="satellite")
    assert not list(tmp_path.iterdir())
