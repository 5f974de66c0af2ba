"""PerformanceMonitor: tables from the trace, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wtlab import ConfigError
from wtlab.trace import Recorder
from wtlab.trace.monitor import PerformanceMonitor


def _hand_trace() -> Recorder:
    rec = Recorder()
    rec.event(0.0, "cwnd_changed", cwnd=10_000)
    for i in range(10):  # 10 x 1000 bytes over 0.0 .. 0.9 s
        rec.event(i * 0.1, "packet_sent", pn=i, bytes=1000, payload_bytes=900)
    rec.event(0.5, "cwnd_changed", cwnd=20_000)
    for i, rtt in zip(range(8), [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1, 0.2], strict=True):
        rec.event(0.1 * i + 0.05, "rtt_sample", latest_rtt_s=rtt)
        rec.event(0.1 * i + 0.05, "packet_acked", pn=i, bytes=1000, payload_bytes=900)
    rec.event(0.95, "packet_lost", pn=8, bytes=1000)
    rec.event(0.95, "packet_lost", pn=9, bytes=1000)
    rec.event(1.0, "pto_expired")
    # messages: 0 delivered (0.1 s), 1 delivered on a datagram (0.3 s), 2 expired, 3 acked only
    rec.event(0.0, "message_sent", pn=0, stream_id=4, bytes=500)
    rec.event(0.1, "message_delivered", pn=0, stream_id=4, bytes=500)
    rec.event(0.2, "message_sent", pn=1, bytes=300)
    rec.event(0.5, "message_delivered", pn=1, bytes=300)
    rec.event(0.3, "message_sent", pn=2, stream_id=4, bytes=200)
    rec.event(0.6, "message_expired", pn=2, stream_id=4, bytes=200)
    rec.event(0.4, "message_sent", pn=3, stream_id=8, bytes=100)
    rec.event(0.6, "message_acked", pn=3, stream_id=8, bytes=100)
    rec.event(0.7, "stream_data_received", stream_id=8, bytes=100)
    rec.event(0.35, "message_retransmitted", pn=2, stream_id=4, bytes=200)
    rec.event(0.45, "message_retransmitted", pn=2, stream_id=4, bytes=200)
    rec.event(0.8, "packet_received", pn=0, bytes=400)
    return rec


def test_summary_matches_hand_computation():
    s = PerformanceMonitor(_hand_trace()).summary()
    assert len(s) == 1
    r = s.iloc[0]
    assert (r["packets_sent"], r["bytes_sent"]) == (10, 10_000)
    assert (r["packets_acked"], r["bytes_acked"], r["packets_lost"], r["bytes_lost"]) == (
        8, 8000, 2, 2000)
    assert r["loss_rate"] == pytest.approx(0.2)
    assert (r["start_s"], r["end_s"]) == (0.0, 1.0)
    # goodput: acknowledged payload over the window [0, 1] s; packet basis by its name
    assert r["goodput_bps"] == pytest.approx(8 * 900 * 8 / 1.0)
    assert r["goodput_packet_bps"] == pytest.approx(64_000)
    assert r["payload_per_packet_bytes"] == 900
    rtts = np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1, 0.2], dtype=np.float32).astype(float)
    assert r["rtt_mean_s"] == pytest.approx(rtts.mean())
    assert r["rtt_p95_s"] == pytest.approx(np.percentile(rtts, 95))
    assert r["rtt_min_s"] == pytest.approx(0.1)
    assert r["jitter_s"] == pytest.approx(np.abs(np.diff(rtts)).mean())
    assert r["mean_cwnd_bytes"] == pytest.approx(15_000)  # 10k for 0.5 s, 20k for 0.5 s
    assert (r["cwnd_min_bytes"], r["cwnd_max_bytes"], r["cwnd_last_bytes"]) == (
        10_000, 20_000, 20_000)
    assert r["pto_count"] == 1
    assert r["messages_retransmitted"] == 2
    assert r["bytes_received"] == 400 and r["packets_received"] == 1
    assert (r["messages_sent"], r["messages_delivered"], r["messages_expired"]) == (4, 3, 1)
    assert r["message_latency_p50_s"] == pytest.approx(0.2)  # latencies 0.1, 0.3, 0.2
    assert r["message_latency_max_s"] == pytest.approx(0.3)


def test_messages_and_per_stream():
    mon = PerformanceMonitor(_hand_trace())
    m = mon.messages().set_index("message_id")
    assert m.loc[0, "outcome"] == "delivered" and m.loc[0, "latency_s"] == pytest.approx(0.1)
    assert pd.isna(m.loc[1, "stream_id"]) and m.loc[1, "latency_s"] == pytest.approx(0.3)
    assert m.loc[2, "outcome"] == "expired" and pd.isna(m.loc[2, "latency_s"])
    assert m["retransmissions"].tolist() == [0, 0, 2, 0]
    assert m.loc[3, "outcome"] == "acked" and m.loc[3, "latency_s"] == pytest.approx(0.2)
    ps = mon.per_stream()
    by = {(None if pd.isna(r.stream_id) else int(r.stream_id)): r for r in ps.itertuples()}
    assert set(by) == {4, 8, None}
    assert (by[4].messages_sent, by[4].messages_delivered, by[4].messages_expired) == (2, 1, 1)
    assert by[4].message_bytes_delivered == 500
    assert by[4].delivered_bps == pytest.approx(500 * 8 / 0.6)  # first 0.0, last 0.6
    assert by[8].stream_bytes_received == 100 and by[8].message_latency_mean_s == \
        pytest.approx(0.2)
    assert by[None].messages_delivered == 1 and by[None].message_bytes_sent == 300


def test_match_flows_false_joins_sender_and_receiver_flows():
    rec = Recorder()
    rec.event(0.0, "message_sent", flow=0, pn=7, stream_id=2, bytes=10)
    rec.event(0.25, "message_delivered", flow=1, pn=7, stream_id=2, bytes=10)
    assert PerformanceMonitor(rec).messages()["outcome"].astype(str).tolist() == [
        "pending", "delivered"]
    m = PerformanceMonitor(rec, match_flows=False).messages()
    assert len(m) == 1 and m["latency_s"].iloc[0] == pytest.approx(0.25)


def test_timeseries_bins():
    ts = PerformanceMonitor(_hand_trace()).timeseries(0.5)
    assert ts["time_s"].tolist() == [0.0, 0.5, 1.0]
    assert ts["sent_bps"].tolist() == pytest.approx([5000 * 8 / 0.5, 5000 * 8 / 0.5, 0])
    assert ts["goodput_bps"].tolist() == pytest.approx([4500 * 8 / 0.5, 2700 * 8 / 0.5, 0])
    assert ts["packets_lost"].tolist() == [0, 2, 0]
    assert ts["cwnd_bytes"].tolist() == [10_000, 20_000, 20_000]
    assert ts["messages_delivered"].tolist() == [1, 1, 0]
    with pytest.raises(ConfigError):
        PerformanceMonitor(_hand_trace()).timeseries(0)


def test_real_trace_monitor_agrees_with_rows(live_run):
    _, rec = live_run
    df = rec.to_pandas()
    s = PerformanceMonitor(rec).summary().iloc[0]
    assert s["bytes_acked"] == df.loc[df["kind"] == "packet_acked", "bytes"].sum()
    # 400 kB of payload crossed; the last acks may still be in flight at close
    assert s["bytes_sent"] >= 400_000 and s["bytes_acked"] >= 0.9 * 400_000
    assert s["packets_lost"] == (df["kind"] == "packet_lost").sum()
    assert 0 < s["rtt_p50_s"] <= s["rtt_p95_s"] < 1.0
    ts = PerformanceMonitor(rec).timeseries(0.05)
    acked = df[df["kind"] == "packet_acked"]
    assert ts["goodput_bps"].sum() * 0.05 / 8 == pytest.approx(acked["payload_bytes"].sum())
    assert 0 < acked["payload_bytes"].sum() < s["bytes_acked"]  # payload is inside packets
    assert ts["cwnd_bytes"].dropna().between(s["cwnd_min_bytes"], s["cwnd_max_bytes"]).all()


def test_empty_trace_gives_empty_tables_with_columns():
    from wtlab.trace import monitor

    mon = PerformanceMonitor(Recorder())
    assert list(mon.summary().columns) == monitor.SUMMARY_COLUMNS
    assert list(mon.per_stream().columns) == monitor.PER_STREAM_COLUMNS
    assert list(mon.timeseries(1.0).columns) == monitor.TIMESERIES_COLUMNS
    assert len(mon.summary()) == len(mon.per_stream()) == len(mon.messages()) == 0
    full = PerformanceMonitor(_hand_trace())
    assert list(full.summary().columns) == monitor.SUMMARY_COLUMNS
    assert list(full.per_stream().columns) == monitor.PER_STREAM_COLUMNS
