"""qlog from other stacks: quic-go (string and integer ACK ranges), picoquic (single and
multipath), aioquic, mvfst, the IETF drafts before and after -12; acknowledgements equal
what each file's own ACK frames and packets_acked events say; errors say where."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from wtlab import TraceFormatError
from wtlab.trace import qlog, schema
from wtlab.trace.qlog_read import QlogValueError

from .helpers import acked_by_file

DATA = Path(__file__).parent / "data"
SAMPLES = ["quicgo_string_ranges.sqlog", "quicgo_current.sqlog", "quicgo_draft02.sqlog",
           "picoquic_draft00.qlog", "picoquic_multipath.qlog", "aioquic_03.qlog",
           "mvfst.qlog", "ietf_draft13.sqlog", "ietf_current.qlog", "ietf_current.sqlog",
           "draft00_uppercase.qlog"]


def _acked(df: pd.DataFrame) -> dict[tuple[int, str, int], int]:
    """{(path, space, pn): bytes} of the imported packet_acked rows."""
    out = {}
    rows = df[df["kind"] == "packet_acked"]
    paths = rows["path_id"] if "path_id" in rows else pd.Series(0, index=rows.index)
    for pn, nbytes, extra, path in zip(rows["pn"], rows["bytes"], rows["extra"], paths,
                                       strict=True):
        d = json.loads(extra) if extra else {}
        space = d.get("space", d.get("packet_number_space", d.get("packet_num_space",
                                                                   "application_data")))
        space = {"application_data": "app", "application": "app", "InitialSpace": "initial",
                 "AppDataSpace": "app", "HandshakeSpace": "handshake"}.get(space, space)
        key = (int(path), space, int(pn))
        assert key not in out, f"{key} acknowledged twice"
        out[key] = int(nbytes)
    return out


@pytest.mark.parametrize("name", SAMPLES)
def test_acknowledged_packets_and_bytes_are_what_the_file_says(name):
    df = qlog.read_qlog(DATA / name)
    want = acked_by_file(DATA / name)
    assert _acked(df) == want
    if name not in ("picoquic_draft00.qlog", "ietf_current.sqlog", "draft00_uppercase.qlog",
                    "quicgo_draft02.sqlog"):
        assert want, "a sample that acknowledges nothing tests nothing"


def test_quic_go_string_ranges_count():
    df = qlog.read_qlog(DATA / "quicgo_string_ranges.sqlog")
    acked = df[df["kind"] == "packet_acked"]
    # [["0","1"],["3"]] then [["0","3"]]: 0, 1, 3 then 2 (each once), plus the Initial
    assert acked["pn"].tolist() == [0, 0, 1, 3, 2]
    assert acked["bytes"].sum() == 1252 + 1200 + 1200 + 900 + 1100
    m = df[df["kind"] == "metrics_updated"].iloc[0]
    assert m["cwnd"] == 14520 and m["bytes_in_flight"] == 1100  # numbers given as text
    assert df.loc[df["kind"] == "packet_lost", "pn"].tolist() == [4]


def test_picoquic_multipath_keeps_paths_apart():
    df = qlog.read_qlog(DATA / "picoquic_multipath.qlog")
    assert (df["flow"].astype(int) == df["path_id"].astype(int)).all()
    assert set(df["path_id"]) == {0, 1}
    cw = df[df["kind"] == "metrics_updated"]
    assert cw.loc[cw["flow"] == 0, "cwnd"].tolist() == [15360, 18240]
    assert cw.loc[cw["flow"] == 1, "cwnd"].tolist() == [15360, 16800, 18224]
    assert cw.loc[cw["flow"] == 1, "srtt_s"].dropna().tolist() == pytest.approx([0.015])
    acked = df[df["kind"] == "packet_acked"]
    # a PATH_ACK for path 1 carried by a packet of path 0 acknowledges path 1's packets
    assert sorted(acked.loc[acked["flow"] == 1, "pn"]) == [0, 1, 2]
    assert sorted(acked.loc[acked["flow"] == 0, "pn"]) == [0, 0, 1, 2]  # handshake + 1RTT
    meta = df.attrs["meta"]["qlog"]["flows"]
    assert [(f["flow"], f["path_id"]) for f in meta] == [(0, 0), (1, 1)]


def test_mvfst_packet_ack_sizes_and_aggregate_loss():
    df = qlog.read_qlog(DATA / "mvfst.qlog")
    acked = df[df["kind"] == "packet_acked"]
    assert acked["bytes"].tolist() == [1232, 1300, 1300]
    lost = df[df["kind"] == "packet_lost"]
    assert len(lost) == 1 and json.loads(lost["extra"].iloc[0])["lost_bytes"] == 700
    assert "quic:transport_summary" in set(df["kind"].astype(str))


def test_draft13_and_pre12_names_read_alike():
    new = qlog.read_qlog(DATA / "ietf_draft13.sqlog")
    kinds = new["kind"].astype(str).tolist()
    assert kinds.count("pto_expired") == 1 and "quic:timer_updated" in kinds  # set: kept
    assert new.loc[new["kind"] == "stream_data_sent", "bytes"].tolist() == [1200]
    assert new.loc[new["kind"] == "datagram_sent", "bytes"].tolist() == [90]
    assert new.loc[new["kind"] == "stream_opened", "stream_id"].tolist() == [0]
    assert new.loc[new["kind"] == "stream_closed", "stream_id"].tolist() == [0]
    m = new[new["kind"] == "metrics_updated"].iloc[0]
    assert m["pacing_rate_bps"] == 4032000 and m["srtt_s"] == pytest.approx(0.0238)
    old = qlog.read_qlog(DATA / "ietf_current.qlog")  # loss_timer_updated, length
    assert old.loc[old["kind"] == "stream_data_sent", "bytes"].tolist() == [500]


def test_unknown_events_are_kept_whole():
    for name in SAMPLES:
        df = qlog.read_qlog(DATA / name, derive_acks=False)
        n_events = len(acked_for_count := [e for e in _events(DATA / name)])
        extra_rows = sum(max(0, len(e[2].get("packet_numbers") or [0]) - 1)
                         for e in acked_for_count if e[1].endswith("packets_acked"))
        assert len(df) == n_events + extra_rows, name


def _events(path):
    from .helpers import _qlog_events

    return _qlog_events(path)


def test_byte_order_mark_is_accepted(tmp_path):
    for name in ("aioquic_03.qlog", "quicgo_current.sqlog"):
        raw = (DATA / name).read_bytes()
        p = tmp_path / name
        p.write_bytes(b"\xef\xbb\xbf" + raw)
        pd.testing.assert_frame_equal(qlog.read_qlog(p), qlog.read_qlog(DATA / name))
    mine = tmp_path / "mine.sqlog"
    from .helpers import synthetic_recorder

    qlog.write_qlog(synthetic_recorder(20), mine)
    bom = tmp_path / "bom.sqlog"
    bom.write_bytes(b"\xef\xbb\xbf" + mine.read_bytes())
    pd.testing.assert_frame_equal(qlog.read_qlog(bom), qlog.read_qlog(mine))


def _big_trace(n, bad_at, bad_value):
    events = [{"time": i * 0.1, "name": "quic:packet_sent",
               "data": {"header": {"packet_type": "1RTT", "packet_number": i},
                        "raw": {"length": 1200}}} for i in range(n)]
    events[bad_at]["data"]["header"]["packet_number"] = bad_value
    return events


def test_bad_value_names_file_event_and_field_json(tmp_path):
    p = tmp_path / "bad.qlog"
    p.write_text(json.dumps({"traces": [{"events": _big_trace(3200, 3000, "12x")}]}))
    with pytest.raises(QlogValueError) as err:
        qlog.read_qlog(p)
    e = err.value
    assert isinstance(e, TraceFormatError)
    assert e.path == str(p) and e.event == "trace 0 event 3000"
    assert e.field == "data.header.packet_number" and "'12x'" in str(e)
    assert str(p) in str(e) and "event 3000" in str(e)


def test_bad_value_names_line_in_json_seq(tmp_path):
    p = tmp_path / "bad.sqlog"
    header = {"file_schema": "urn:ietf:params:qlog:file:sequential",
              "serialization_format": "application/qlog+json-seq", "trace": {}}
    recs = [header, *_big_trace(50, 40, -3)]
    p.write_text("".join("\x1e" + json.dumps(r) + "\n" for r in recs))
    with pytest.raises(QlogValueError) as err:
        qlog.read_qlog(p)
    assert err.value.line == 42 and err.value.field == "data.header.packet_number"
    assert f"{p}:42:" in str(err.value)


@pytest.mark.parametrize("data,field", [
    ({"congestion_window": "lots"}, "data.congestion_window"),
    ({"smoothed_rtt": [1]}, "data.smoothed_rtt"),
])
def test_bad_metric_values_name_their_field(tmp_path, data, field):
    p = tmp_path / "m.qlog"
    ev = {"time": 1, "name": "quic:recovery_metrics_updated", "data": data}
    p.write_text(json.dumps({"traces": [{"events": [ev]}]}))
    with pytest.raises(QlogValueError) as err:
        qlog.read_qlog(p)
    assert err.value.field == field and err.value.event == "trace 0 event 0"


def test_stacks_into_one_frame():
    """quic-go, picoquic, aioquic, mvfst and wtlab's own traces in one DataFrame, each
    with its acknowledged bytes."""
    from .helpers import synthetic_recorder

    frames = []
    for i, name in enumerate(["quicgo_string_ranges.sqlog", "picoquic_multipath.qlog",
                              "aioquic_03.qlog", "mvfst.qlog"]):
        df = qlog.read_qlog(DATA / name)
        frames.append(df.assign(source=name, flow=df["flow"].astype(int) + 10 * i))
    mine = synthetic_recorder(30).to_pandas().assign(source="wtlab")
    frames.append(mine)
    all_ = schema.concat(frames)
    acked = all_[all_["kind"] == "packet_acked"].groupby("source")["bytes"].sum()
    assert (acked > 0).all() and len(acked) == 5
    assert acked["quicgo_string_ranges.sqlog"] == sum(
        acked_by_file(DATA / "quicgo_string_ranges.sqlog").values())
