"""The fast flow model: RFC 9002 mechanics, determinism, trace schema, workloads, flows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import wtlab
import wtlab.model
from wtlab.cc import Controller, register
from wtlab.net import Link, Path
from wtlab.net.loss import DropIndices


def _hash(df: pd.DataFrame) -> int:
    return int(pd.util.hash_pandas_object(df, index=False).sum())


def test_same_seed_same_trace_other_seed_differs():
    path = {"rate_bps": "10mbit", "rtt_s": "40ms", "loss": "1%", "buffer_bdp": 1.0}
    a = wtlab.model.run(path, cc="cubic", duration_s=3, seed=5)
    b = wtlab.model.run(path, cc="cubic", duration_s=3, seed=5)
    c = wtlab.model.run(path, cc="cubic", duration_s=3, seed=6)
    assert len(a.recorder) > 1000
    assert _hash(a.trace()) == _hash(b.trace())
    assert a.goodput_bps == b.goodput_bps
    assert _hash(a.trace()) != _hash(c.trace())


def test_given_path_object_is_not_consumed():
    path = Path.symmetric(rate_bps="10mbit", rtt_s="40ms", loss="1%", seed=3)
    a = wtlab.model.run(path, cc="reno", duration_s=2)
    b = wtlab.model.run(path, cc="reno", duration_s=2)  # a fresh copy each time
    assert a.goodput_bps == b.goodput_bps
    assert path.down.stats.offered == 0


def test_trace_schema_kinds_and_time_order():
    r = wtlab.model.run({"rate_bps": "10mbit", "rtt_s": "40ms", "loss": "1%"}, cc="reno",
                        duration_s=3, seed=1)
    df = r.trace()
    kinds = set(df["kind"].astype(str))
    for k in ("packet_sent", "packet_acked", "packet_lost", "rtt_sample", "cwnd_changed",
              "ack_received"):
        assert k in kinds, k
    assert df["time_s"].is_monotonic_increasing  # rows come in virtual-time order
    sent = df[df["kind"] == "packet_sent"]
    assert sent["pn"].is_monotonic_increasing and sent["pn"].iloc[0] == 0
    assert len(sent) == r.metrics()["packets_sent"].iloc[0]
    acked = df[df["kind"] == "packet_acked"]
    lost = df[df["kind"] == "packet_lost"]
    # every packet is acked, declared lost, or still in flight at the end: never two of these
    assert not set(acked["pn"]) & set(lost["pn"])
    assert len(acked) + len(lost) <= len(sent)
    rtt = df[df["kind"] == "rtt_sample"]
    # RTT samples never below the propagation RTT (40 ms) plus serialization
    assert rtt["latest_rtt_s"].min() >= 0.040
    assert r.recorder.meta["engine"] == "model" and r.recorder.meta["algorithm"] == "reno"


def test_single_loss_is_found_by_packet_threshold_and_halves_reno():
    # one packet lost on the wire, nothing else: exactly one congestion event
    path = Path(down=Link(rate_bps=10e6, delay_s=0.02, loss=DropIndices([60]),
                          buffer="4bdp", rtt_s=0.04),
                up=Link(rate_bps=10e6, delay_s=0.02), seed=1)
    r = wtlab.model.run(path, cc="reno", duration_s=2)
    f = r.flows[0]
    m = r.metrics().iloc[0]
    assert m["packets_lost"] == 1
    assert f["loss_by_trigger"] == {"packet": 1, "time": 0, "pto": 0}
    df = r.trace()
    at = df.index[df["kind"] == "packet_lost"][0]
    lost = df.loc[at]
    before = df.loc[:at - 1, "cwnd"].dropna().iloc[-1]  # the window the loss found
    # row contract: the loss row shows the state after the reduction, as the
    # cwnd_changed row that follows it and the controller do
    assert lost["cwnd"] == before // 2 and lost["state"] == "recovery"
    assert lost["extra"] == '{"trigger": "packet_threshold"}'
    changed = df[(df["time_s"] == lost["time_s"]) & (df["kind"] == "cwnd_changed")]
    assert changed["cwnd"].iloc[-1] == before // 2
    assert changed["state"].iloc[-1] == "recovery"
    # every packet but the lost one was acked or is still in flight at the end
    assert m["packets_acked"] + m["packets_lost"] <= m["packets_sent"]


def test_tail_loss_needs_the_time_threshold_or_pto():
    # the last packet of a short transfer is lost: nothing after it can trigger the
    # packet threshold, so the time threshold or a PTO must recover it
    size = 20 * 1160
    path = Path(down=Link(rate_bps=10e6, delay_s=0.02, loss=DropIndices([19])),
                up=Link(rate_bps=10e6, delay_s=0.02), seed=1)
    r = wtlab.model.run(path, cc="reno", duration_s=3,
                        workload={"kind": "bulk", "size_bytes": size})
    f = r.flows[0]
    df = r.trace()
    assert df.loc[df["kind"] == "packet_acked", "payload_bytes"].sum() == size
    assert f["done_s"] is not None and f["done_s"] < 1.0
    by = f["loss_by_trigger"]
    assert by["time"] + by["pto"] >= 1 and by["packet"] == 0


def test_outage_gives_pto_backoff_then_persistent_congestion_then_recovery():
    path = {"rate_bps": "10mbit", "rtt_s": "40ms", "outages": [(1.0, 3.0)]}
    r = wtlab.model.run(path, cc="reno", duration_s=6, seed=1)
    df = r.trace()
    pto = df.loc[df["kind"] == "pto_expired", "time_s"].to_numpy()
    assert len(pto) >= 3
    gaps = np.diff(pto[:4])
    assert np.all(gaps[1:] > 1.8 * gaps[:-1])  # exponential backoff (x2, within slack)
    assert (df["kind"] == "persistent_congestion").any()
    pc_t = df.loc[df["kind"] == "persistent_congestion", "time_s"].iloc[0]
    assert pc_t > 3.0
    pc_row = df[df["kind"] == "persistent_congestion"].iloc[0]
    assert pc_row["cwnd"] == 2 * 1200  # collapsed to the minimum window
    late_acks = df[(df["kind"] == "packet_acked") & (df["time_s"] > 4.0)]
    assert len(late_acks) > 500  # the flow recovered after the outage


class _FixedRate(Controller):
    """A test controller: a huge window and a fixed pacing rate."""

    name = "fixed-rate-test"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.cwnd = 10_000_000
        self.pacing_rate_bps = 2e6

    def on_congestion_event(self, now, sent_time):
        pass


def test_pacing_rate_of_the_controller_is_honoured():
    register("fixed-rate-test", _FixedRate)
    r = wtlab.model.run({"rate_bps": "50mbit", "rtt_s": "20ms", "buffer_bdp": None},
                        cc="fixed-rate-test", duration_s=4, seed=1)
    sent = r.trace().query("kind == 'packet_sent' and time_s > 1")
    rate = sent["bytes"].sum() * 8 / (sent["time_s"].max() - sent["time_s"].min())
    assert rate == pytest.approx(2e6, rel=0.03)


def test_cwnd_over_srtt_pacing_spreads_a_window():
    # aioquic's pacer: packets of one window go out spread over ~srtt, not in one burst
    r = wtlab.model.run({"rate_bps": "100mbit", "rtt_s": "50ms", "buffer_bdp": None},
                        cc="reno", duration_s=0.5, seed=1)
    sent = r.trace().query("kind == 'packet_sent'")
    first_rtt = sent[sent["time_s"] < sent["time_s"].iloc[0] + 0.05]
    # 10 initial packets, a bucket of at most 16: the first window is not sent at one instant
    assert first_rtt["time_s"].nunique() > 3


def test_message_workload_latency_and_delivery():
    r = wtlab.model.run({"rate_bps": "10mbit", "rtt_s": "40ms"}, cc="cubic", duration_s=3,
                        seed=1, workload={"kind": "messages", "rate_hz": 50,
                                          "size_bytes": 3000})
    m = r.metrics().iloc[0]
    assert m["messages_sent"] == pytest.approx(50 * (3 - r.flows[0]["data_start_s"]), abs=2)
    assert m["messages_delivered"] >= m["messages_sent"] - 2  # the last ones are in flight
    # 3 packets: one-way delay 20 ms + 3 x 0.96 ms serialization (+ pacing), well under 1 RTT
    assert 0.020 < m["message_latency_p50_s"] < 0.030
    df = r.trace()
    assert (df["kind"] == "message_delivered").sum() == m["messages_delivered"]


def test_message_workload_recovers_lost_chunks():
    r = wtlab.model.run({"rate_bps": "10mbit", "rtt_s": "40ms", "loss": "2%"}, cc="cubic",
                        duration_s=4, seed=2, workload={"kind": "messages", "rate_hz": 40,
                                                        "size_bytes": 5000})
    m = r.metrics().iloc[0]
    assert m["packets_lost"] > 0
    assert m["messages_delivered"] >= m["messages_sent"] - 3
    assert m["message_latency_p99_s"] > m["message_latency_p50_s"]  # losses cost a retransmit


def test_two_flows_share_one_bottleneck():
    r = wtlab.model.run({"rate_bps": "20mbit", "rtt_s": "40ms", "buffer_bdp": 2.0},
                        cc="cubic", flows=2, duration_s=20, seed=1)
    assert len(r.flows) == 2
    s = r.summary()
    assert s["jain_index"] >= 0.9
    assert s["utilisation"] >= 0.9
    df = r.trace()
    assert set(df["flow"].unique()) == {0, 1}


def test_mixed_controllers_per_flow():
    r = wtlab.model.run({"rate_bps": "20mbit", "rtt_s": "40ms"}, cc=["reno", "bbr"],
                        duration_s=3, seed=1)
    assert [f["cc"] for f in r.flows] == ["reno", "bbr"]
    m = r.metrics()
    assert m["cc"].tolist() == ["reno", "bbr"] and (m["goodput_bps"] > 0).all()
    assert "jain_index" in r.summary()


def test_rfc9000_ack_policy_acks_every_second_packet_and_every_acks_each():
    path = {"rate_bps": "10mbit", "rtt_s": "40ms"}
    a = wtlab.model.run(path, cc="cubic", duration_s=3, seed=1, ack_policy="rfc9000")
    f = a.flows[0]
    assert f["acks_sent"] == pytest.approx(a.metrics()["packets_sent"].iloc[0] / 2, rel=0.1)
    b = wtlab.model.run(path, cc="cubic", duration_s=3, seed=1)  # aioquic: ~1 per ms
    assert b.flows[0]["acks_sent"] < 3 * 1000
    c = wtlab.model.run(path, cc="cubic", duration_s=3, seed=1, ack_policy="every")
    mc = c.metrics().iloc[0]  # one ACK per packet that arrived (none for the lost ones)
    assert mc["packets_acked"] <= c.flows[0]["acks_sent"] <= mc["packets_sent"] - mc["packets_lost"]
    assert c.flows[0]["acks_sent"] > 1.8 * f["acks_sent"]
    with pytest.raises(wtlab.ConfigError, match="'every'"):
        wtlab.model.run(path, duration_s=1, ack_policy="sometimes")


def test_bad_arguments_are_typed():
    with pytest.raises(wtlab.ConfigError, match="duration_s"):
        wtlab.model.run({"rate_bps": "10mbit"}, duration_s=0)
    with pytest.raises(wtlab.ConfigError, match="flows"):
        wtlab.model.run({"rate_bps": "10mbit"}, flows=0)
    with pytest.raises(wtlab.UnknownAlgorithm):
        wtlab.model.run({"rate_bps": "10mbit"}, cc="no-such")
    with pytest.raises(wtlab.ConfigError, match="workload"):
        wtlab.model.run({"rate_bps": "10mbit"}, workload={"kind": "video"})
    with pytest.raises(wtlab.ConfigError, match="path"):
        wtlab.model.run("10mbit")


def test_no_recording_same_dynamics():
    path = {"rate_bps": "10mbit", "rtt_s": "40ms", "loss": "1%"}
    a = wtlab.model.run(path, cc="cubic", duration_s=3, seed=4)
    b = wtlab.model.run(path, cc="cubic", duration_s=3, seed=4, record=False)
    assert b.recorder is None and b.engine["events"] == 0
    # recording does not change what it measures: the same protocol state and link counts
    assert a.flows == b.flows and a.engine["link"] == b.engine["link"]
    with pytest.raises(wtlab.ConfigError, match="record=False"):
        b.metrics()


def test_running_in_slices_gives_the_same_trace():
    # run(until) may be called repeatedly (a notebook stepping through time): slicing the
    # run must not change it, with two flows and random loss
    from wtlab.cc import create
    from wtlab.model import FlowModel
    from wtlab.trace import Recorder

    def build():
        p = Path.symmetric(rate_bps=50e6, rtt_s=0.03, loss=0.01, buffer_bdp=0.5, seed=3)
        rec = Recorder()
        ccs = [create(n, recorder=rec, flow=i) for i, n in enumerate(["cubic", "bbr"])]
        return FlowModel(p.down, p.up, ccs, base_rtt_s=0.031, recorder=rec), rec

    whole, rec_whole = build()
    whole.run(2.0)
    sliced, rec_sliced = build()
    t = 0.0
    while t < 2.0:
        t = min(2.0, t + 0.0137)
        sliced.run(t)
    a, b = rec_whole.to_pandas(), rec_sliced.to_pandas()
    assert len(a) > 10_000
    assert _hash(a) == _hash(b)
    assert a["time_s"].is_monotonic_increasing
