"""Flows and workloads on the virtual network (wtlab's WebTransport client and server), and
the same workloads live on loopback."""

from __future__ import annotations

import pandas as pd
import pytest

import wtlab
from wtlab.errors import ConfigError
from wtlab.net.emulate import emulate
from wtlab.net.link import LinkSpec
from wtlab.net.network import VirtualNetwork
from wtlab.net.path import Path
from wtlab.trace.metrics import jain_index
from wtlab.trace.recorder import Recorder
from wtlab.transport import workloads as wl


def path(rate_bps=10e6, rtt_s=0.04, loss=None, buffer="1bdp", seed=1):
    return Path(down=LinkSpec(rate_bps=rate_bps, delay_s=rtt_s / 2, loss=loss, buffer=buffer),
                up=LinkSpec(rate_bps=rate_bps, delay_s=rtt_s / 2, loss=loss, buffer=buffer),
                seed=seed)


def frame_hash(df: pd.DataFrame) -> int:
    return int(pd.util.hash_pandas_object(df, index=True).sum())


def run_all_workloads(seed=1, loss=None):
    net = VirtualNetwork(path(loss=loss, seed=seed))
    flows = [
        net.add_flow("cubic", wl.Bulk(size_bytes=600_000, direction="up")),
        net.add_flow("reno", wl.Bulk(size_bytes=400_000, direction="down"), start_s=0.3),
        net.add_flow("bbr", wl.Messages(rate_hz=50, size_bytes=800, count=40)),
        net.add_flow("reno", wl.Messages(rate_hz=50, size_bytes=800, count=40, over="datagram")),
        net.add_flow("cubic", wl.RequestResponse(request_bytes=100, response_bytes=15_000,
                                                 count=6)),
        net.add_flow("bbr", wl.Video(fps=25, frame_bytes=3000, keyframe_bytes=12000,
                                     duration_s=1.6)),
    ]
    net.run(until=60.0, stop=lambda: all(f.done for f in flows))
    return net, flows


def test_every_workload_runs_in_virtual_time():
    net, flows = run_all_workloads()
    assert all(f.done and f.summary is not None for f in flows)
    up, down, msgs, dgrams, rpc, video = (f.summary for f in flows)
    assert up["transferred_bytes"] == 600_000 and down["transferred_bytes"] == 400_000
    # six flows share 10 Mbit/s: no flow can beat the link
    assert 0 < up["transfer_rate_bps"] < 10e6 and 0 < down["transfer_rate_bps"] < 10e6
    assert msgs["sent"] == msgs["delivered"] == 40  # reliable: every stream message arrives
    # one-way latency of a message is at least the 20 ms propagation delay
    assert msgs["latency_p50_s"] >= 0.02 and msgs["latency_p99_s"] < 1.0
    assert dgrams["sent"] == 40 and 0 < dgrams["delivered"] <= 40
    # a request/response takes at least one RTT plus the response's serialisation
    assert rpc["delivered"] == 6 and rpc["latency_p50_s"] >= 0.04 + 15_000 * 8 / 10e6
    assert video["sent"] == 40 and video["delivered"] + video["dropped"] == 40
    df = net.recorder.to_pandas()
    # each flow's rows carry its id; message rows come from the workloads
    counts = df[df["kind"] == "message_delivered"].groupby("flow").size()
    assert counts[2] == 40 and counts[4] == 6
    # the sender's controller recorded its states under the flow's id
    assert set(df[df["flow"] == 2]["state"].astype(str)) & {"startup", "probe_bw", "drain"}
    table = net.summaries()
    assert list(table["flow"]) == [0, 1, 2, 3, 4, 5] and table["done"].all()
    net.close()


def test_flows_are_deterministic_for_a_seed():
    a, _ = run_all_workloads(seed=4, loss=0.01)
    b, _ = run_all_workloads(seed=4, loss=0.01)
    da, db = a.recorder.to_pandas(), b.recorder.to_pandas()
    assert (da["kind"] == "packet_lost").any()
    assert frame_hash(da) == frame_hash(db)
    a.close()
    b.close()


def test_step_one_ack_then_one_loss_of_a_flow():
    """What a teacher does: step to the next ack, look at the window, step to the next loss."""
    net = VirtualNetwork(path(rate_bps=10e6, rtt_s=0.04, loss=0.02, seed=2))
    flow = net.add_flow("reno", wl.Bulk(duration_s=5.0, direction="down"))
    ack = net.step(kinds="packet_acked")
    assert ack["flow"] == 0 and ack["state"] == "slow_start"
    cwnd_after_ack = flow.controller.cwnd
    assert cwnd_after_ack >= ack["cwnd"]
    loss = net.step(kinds="packet_lost")
    assert loss["time_s"] > ack["time_s"]
    # Reno halves on the first loss of a recovery period (the row shows the state after it)
    change = net.step(kinds="cwnd_changed")
    assert change["state"] == "recovery" and change["ssthresh"] == change["cwnd"]
    assert flow.controller.snapshot()["ssthresh"] is not None
    net.run(until=net.now + 0.5)
    assert net.now >= 0.5
    other = net.add_flow("cubic", wl.Bulk(duration_s=2.0, direction="down"))
    row = net.step(kinds=["packet_acked"], flow=other.id)
    assert row["flow"] == 1 and row["kind"] == "packet_acked"
    net.close()


def test_emulate_runs_several_controllers_on_one_bottleneck():
    res = emulate(path(rate_bps=20e6, rtt_s=0.04), cc=["cubic", "bbr"], until_s=4.0)
    m = res.metrics(from_s=1.0)
    assert list(m["flow"]) == [0, 1]
    assert 0.8 <= res.summary(from_s=1.0)["utilisation"] <= 1.0
    assert 0.5 <= jain_index(m["goodput_bps"]) <= 1.0
    # the default bulk downloads were still running at 4 s: goodput counts bytes so far
    table = res.summaries()
    assert not table["done"].any() and (table["partial_bytes"] > 1_000_000).all()
    assert table["transfer_rate_bps"].sum() == pytest.approx(20e6, rel=0.3)
    sp = res.speed()
    assert sp["packets"] > 5000 and sp["virtual_s"] == pytest.approx(4.0, abs=1e-6)
    with pytest.raises(ConfigError, match="entries for 3 flows"):
        emulate(path(), cc=["reno", "bbr"], flows=3)


def test_workload_parameters_are_checked():
    with pytest.raises(ConfigError, match="exactly one of size_bytes"):
        wl.Bulk()
    with pytest.raises(ConfigError, match="direction"):
        wl.Bulk(size_bytes=10, direction="sideways")
    with pytest.raises(ConfigError, match="size_bytes"):
        wl.Messages(size_bytes=4, count=1)
    with pytest.raises(ConfigError, match="unknown workload"):
        wl.create({"workload": "ftp"})
    assert isinstance(wl.create({"workload": "video", "fps": 10}), wl.Video)


async def test_the_same_workloads_run_live_on_loopback():
    rec = Recorder()
    for i, work in enumerate([wl.Messages(rate_hz=100, size_bytes=500, count=20),
                              wl.RequestResponse(count=4, response_bytes=5000),
                              wl.Bulk(size_bytes=300_000, direction="down")]):
        sctx, cctx = wl.WorkloadContext(rec, i), wl.WorkloadContext(rec, i)
        async with wtlab.serve(port=0, routes=work.routes(sctx), cert_kind="rsa") as server:
            async with wtlab.connect(server.url(work.route()), cert_hash_policy="relaxed",
                                     cert_hashes=[server.cert_sha256]) as session:
                summary = await work.client(session, cctx)
        got = sctx.summary() if work.sender == "client" else summary
        assert got["delivered"] >= 1
        if isinstance(work, wl.Messages):
            assert got["delivered"] == 20 and 0 < got["latency_p50_s"] < 1.0
        if isinstance(work, wl.Bulk):
            assert summary["transferred_bytes"] == 300_000 and summary["transfer_rate_bps"] > 0
    df = rec.to_pandas()
    assert (df["kind"] == "message_sent").sum() >= 25


def test_a_controller_written_in_a_cell_runs_in_virtual_time():
    from wtlab.cc import Controller

    class Aimd(Controller):
        """+1 packet per window of acks, x0.7 on loss."""

        name = "aimd-test"

        def on_ack(self, now, packet, rtt):
            self.state = "additive_increase"
            self.cwnd += self.max_datagram_size * packet.sent_bytes // self.cwnd

        def on_congestion_event(self, now, sent_time):
            self.cwnd = max(int(self.cwnd * 0.7), self.min_cwnd)
            self.ssthresh = self.cwnd

    res = emulate(path(rate_bps=10e6, rtt_s=0.04, loss=0.01), cc=Aimd, until_s=3.0)
    df = res.trace()
    assert "additive_increase" in set(df["state"].astype(str))
    assert res.flows[0].cc == "Aimd" and isinstance(res.flows[0].controller, Aimd)
    assert res.metrics(from_s=1.0)["goodput_bps"].iloc[0] > 100_000


def test_flows_with_different_rtts_share_one_bottleneck():
    net = VirtualNetwork(path(rate_bps=10e6, rtt_s=0.02))
    near = net.add_flow("cubic", wl.Bulk(duration_s=3.0, direction="down"))
    far = net.add_flow("cubic", wl.Bulk(duration_s=3.0, direction="down"), extra_delay_s=0.03)
    net.run(until=3.0)
    df = net.recorder.to_pandas()
    rtt = df[df["kind"] == "rtt_sample"].groupby("flow")["latest_rtt_s"].min()
    assert 0.020 <= rtt[near.id] < 0.024
    assert 0.080 <= rtt[far.id] < 0.084  # 20 ms path + 2 x 30 ms of its own
    assert net.path.down.stats.offered > 1000  # both used the one shared link
    with pytest.raises(ConfigError, match="extra_delay_s"):
        net.add_client(extra_delay_s=-1)
    net.close()


def test_one_path_object_serves_run_after_run():
    p = path(rate_bps=10e6, rtt_s=0.04, loss=0.01, seed=9)
    first = emulate(p, cc="cubic", until_s=2.0)
    second = emulate(p, cc="cubic", until_s=2.0)  # p's links already moved to t = 2 s
    assert second.path is not p and first.path is p
    assert frame_hash(first.trace()) == frame_hash(second.trace())
    third = emulate(p, cc="bbr", until_s=2.0)  # a notebook swapping the controller
    assert (third.trace()["state"].astype(str) == "startup").any()
