"""One definition per number: wtlab.trace.metrics, and every door that reports a run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import wtlab
import wtlab.model
from wtlab.lab import Experiment, compare
from wtlab.net.emulate import emulate
from wtlab.net.path import Path
from wtlab.trace import Recorder
from wtlab.trace import metrics as M


def test_cwnd_mean_is_time_weighted_not_event_weighted():
    # 10 packets for 9 s, then 100 packets for 1 s, with the events bunched in that last
    # second: the time-weighted mean is (10 x 9 + 100 x 1) / 10 = 19 packets, where a
    # mean over events would be ~90
    rec = Recorder()
    mss = 1200
    rec.event(0.0, "cwnd_changed", cwnd=10 * mss)
    for i in range(100):
        rec.event(9.0 + i * 0.01, "packet_acked", pn=i, bytes=mss, payload_bytes=1160,
                  cwnd=100 * mss)
    df = rec.to_pandas()
    mean = M.flow_metrics(df, from_s=0.0, to_s=10.0, labels={0: "x"})["mean_cwnd_bytes"].iloc[0]
    assert mean / mss == pytest.approx(19.0)
    assert df["cwnd"].dropna().mean() / mss > 85  # what an event mean would have said


def test_time_weighted_mean_of_a_window_inside_the_steps():
    t = np.array([0.0, 2.0, 5.0])
    v = np.array([1.0, 3.0, 10.0])
    assert M.time_weighted_mean(t, v, 1.0, 4.0) == pytest.approx((1 * 1 + 3 * 2) / 3)
    assert M.time_weighted_mean(t, v, 6.0, 8.0) == 10.0
    assert math.isnan(M.time_weighted_mean(t[:0], v[:0], 0, 1))


def test_goodput_counts_payload_and_other_bases_are_named():
    rec = Recorder()
    for i in range(10):  # 10 packets of 1200 B carrying 1160 B each, acked in [0, 1] s
        rec.event(i * 0.1, "packet_sent", pn=i, bytes=1200, payload_bytes=1160)
        rec.event(i * 0.1 + 0.05, "packet_acked", pn=i, bytes=1200, payload_bytes=1160)
    rec.event(0.5, "rtt_sample", latest_rtt_s=0.05)
    m = M.flow_metrics(rec.to_pandas(), from_s=0.0, to_s=1.0, capacity_bps=1e6,
                       base_rtt_s=0.04).iloc[0]
    assert m["goodput_bps"] == pytest.approx(10 * 1160 * 8)
    assert m["goodput_packet_bps"] == pytest.approx(10 * 1200 * 8)
    assert m["wire_bps"] == pytest.approx(10 * (1200 + 28) * 8)
    assert m["utilisation"] == pytest.approx(10 * 1228 * 8 / 1e6)
    assert m["payload_per_packet_bytes"] == 1160
    assert m["queueing_delay_mean_s"] == pytest.approx(0.01, abs=1e-6)
    assert m["loss_rate"] == 0.0 and m["note"] == ""


def test_a_flow_that_sent_nothing_has_nan_figures_and_a_note():
    m = M.flow_metrics(Recorder().to_pandas(), from_s=0.0, to_s=1.0, labels={0: "cubic"})
    row = m.iloc[0]
    assert math.isnan(row["goodput_bps"]) and math.isnan(row["loss_rate"])
    assert "sent no packet" in row["note"]
    s = M.run_metrics(Recorder().to_pandas(), m, to_s=1.0, capacity_bps=1e6)
    assert math.isnan(s["goodput_bps"]) and "jain_index" not in s and s["note"]


def test_jain_only_with_several_flows():
    assert math.isnan(M.jain_index([5.0]))
    assert M.jain_index([1.0, 1.0]) == 1.0 and M.jain_index([1.0, 0.0]) == 0.5


def test_every_column_is_defined_once_with_a_unit_and_meaning():
    names = [m.name for m in M.FLOW_METRICS + M.MESSAGE_METRICS + M.ECN_METRICS
             + M.DETAIL_METRICS]
    assert len(names) == len(set(names))
    for m in M.METRICS:
        assert m.meaning and (m.unit or m.name in {
            "flow", "cc", "utilisation", "loss_rate", "pto_count", "note", "jain_index",
            "flows", "messages_retransmitted", "rtt_samples", "short_packet_share",
            "mark_rate", "ecn_state"}), m


def test_runs_that_deliver_nothing_give_nan_and_a_note_not_a_key_error():
    # 0.5 s RTT, 1 s run: the connection set-up alone takes longer than the run
    cmp = compare(Experiment(path=dict(rate_bps=10e6, rtt_s=0.5)), ccs=["reno"], duration_s=1)
    row = cmp.table.iloc[0]
    assert math.isnan(row["goodput_bps"]) and "set up" in row["note"]
    with pytest.raises(wtlab.ConfigError, match="80 seconds"):
        compare(Experiment(path=dict(rate_bps=10e6, rtt_s=80)), ccs=["reno"], duration_s=1)


# ---------------------------------------------------------- every door, one number
PATH = dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=1.0)
FIGURES = ["goodput_bps", "utilisation", "mean_cwnd_bytes"]


def test_the_same_model_run_gives_the_same_figures_through_every_door(tmp_path):
    seed, dur = 3, 4.0
    direct = wtlab.model.run(PATH, cc="cubic", duration_s=dur, seed=seed)
    exp = Experiment(path=PATH, cc="cubic", seed=seed).run(dur)
    cmp = compare(Experiment(path=PATH, seed=seed), ccs=["cubic"], duration_s=dur)
    res = wtlab.sweep({"algo": ["cubic"], "rate_mbps": [10], "rtt_ms": [40], "loss_pct": [0],
                       "buffer_bdp": [1.0], "seed": [seed], "duration_s": [dur]},
                      out=tmp_path / "s", workers=1, progress=False)
    a = direct.metrics().iloc[0]
    b = exp.metrics().iloc[0]
    c = cmp.results["cubic"].metrics().iloc[0]
    s = res.summary.iloc[0]
    for fig in FIGURES:
        assert a[fig] == b[fig] == c[fig], fig  # the same rows, the same function
    assert direct.summary()["goodput_bps"] == exp.summary()["goodput_bps"] == s["goodput_bps"]
    assert cmp.table.iloc[0]["utilisation"] == s["utilisation"] == direct.summary()["utilisation"]
    assert s["mean_cwnd_bytes"] == a["mean_cwnd_bytes"]


def test_model_and_emulator_agree_on_the_same_figures():
    # clean path, steady state: the model (no handshake, no framing) within 5 % of the
    # full stack on every figure, both measured by the same functions over [1, 5] s
    path = Path.symmetric(**PATH, seed=1)
    emu = emulate(path, cc="cubic", until_s=5.0)
    mod = wtlab.model.run(path, cc="cubic", duration_s=5.0)
    e = emu.metrics(from_s=1.0).iloc[0]
    m = mod.metrics(from_s=1.0).iloc[0]
    for fig in FIGURES:
        assert m[fig] == pytest.approx(e[fig], rel=0.05), fig
    assert Experiment(path=PATH, seed=1, engine="emulate").run(5.0).metrics(
        from_s=1.0).iloc[0]["goodput_bps"] == pytest.approx(e["goodput_bps"], rel=1e-9)


def test_comparison_trace_has_a_cc_column_and_metrics_a_run_column():
    cmp = compare(Experiment(path=PATH, seed=1), ccs=["reno", "cubic"], duration_s=2)
    tr = cmp.trace()
    assert list(tr["cc"].cat.categories) == ["reno", "cubic"]
    m = cmp.metrics(from_s=0.5)
    assert list(m["run"]) == ["reno", "cubic"]
    assert isinstance(cmp.summary(), pd.DataFrame)


def test_an_imported_trace_has_goodput_from_its_frames(tmp_path):
    # another stack's qlog: packet_sent events list their frames; the STREAM and DATAGRAM
    # lengths are the payload, and the receiver's ACK frame decides what was acknowledged
    import json

    from wtlab.trace import read_qlog

    def ev(t, name, data):
        return "\x1e" + json.dumps({"time": t, "name": name, "data": data}) + "\n"

    frames = [{"frame_type": "stream", "stream_id": 0, "offset": 0, "length": 1000},
              {"frame_type": "datagram", "length": 100}]
    text = "\x1e" + json.dumps({"qlog_version": "0.4", "qlog_format": "JSON-SEQ",
                                "trace": {"vantage_point": {"type": "client"}}}) + "\n"
    for pn in range(4):
        text += ev(pn * 10.0, "quic:packet_sent",
                   {"header": {"packet_type": "1RTT", "packet_number": pn},
                    "raw": {"length": 1200}, "frames": frames})
    text += ev(50.0, "quic:packet_received",
               {"header": {"packet_type": "1RTT", "packet_number": 7},
                "frames": [{"frame_type": "ack", "acked_ranges": [[0, 2]]}]})
    path = tmp_path / "other.sqlog"
    path.write_text(text)
    df = read_qlog(path)
    m = M.flow_metrics(df, from_s=0.0, to_s=0.1).iloc[0]
    assert m["packets_acked"] == 3 and m["payload_per_packet_bytes"] == 1100
    assert m["goodput_bps"] == pytest.approx(3 * 1100 * 8 / 0.1)
    assert m["goodput_packet_bps"] == pytest.approx(3 * 1200 * 8 / 0.1)
