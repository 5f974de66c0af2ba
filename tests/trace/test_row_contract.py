"""The trace's row contract (wtlab.trace.schema), checked row kind by row kind on the same
scenario run by both engines: the fast model and the full-stack emulator (aioquic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wtlab.lab import Experiment
from wtlab.net.link import LinkSpec
from wtlab.net.loss import DropIndices
from wtlab.net.path import Path


def scenario() -> Path:
    # 10 Mbit/s, 40 ms, packets 150 and 400 of the data direction lost: fast retransmits
    down = LinkSpec(rate_bps=10e6, delay_s=0.02, loss=DropIndices([150, 400]), buffer="2bdp")
    up = LinkSpec(rate_bps=10e6, delay_s=0.02, buffer="2bdp")
    return Path(down=down, up=up, seed=1)


@pytest.fixture(scope="module", params=["model", "emulate"])
def run(request):
    exp = Experiment(path=scenario(), cc="reno", seed=1, engine=request.param)
    stepper = exp.stepper()
    lost = stepper.step(kinds="packet_lost")
    cc = stepper.controllers[0]
    seen = (dict(lost), (cc.cwnd, cc.ssthresh, cc.state))
    stepper.run(3.0)
    df = stepper.trace()
    stepper.close()
    return request.param, df[df["flow"] == 0].reset_index(drop=True), seen


def rows(df, kind):
    return df[df["kind"] == kind]


def test_packet_rows_carry_size_and_payload(run):
    _, df, _ = run
    sent = rows(df, "packet_sent")
    data = sent[sent["payload_bytes"] > 0]
    assert len(data) > 300
    assert (data["payload_bytes"] < data["bytes"]).all()  # headers and tag around payload
    assert (data["bytes"] <= 1200).all() and data["bytes"].max() == 1200
    # bytes in flight after a data packet's send include that packet
    assert (data["bytes_in_flight"] >= data["bytes"]).all()
    acked = rows(df, "packet_acked").set_index("pn")
    first = data.drop_duplicates("pn").set_index("pn")
    common = acked.index.intersection(first.index)
    assert len(common) > 300
    assert (acked.loc[common, "bytes"] == first.loc[common, "bytes"]).all()
    assert (acked.loc[common, "payload_bytes"] == first.loc[common, "payload_bytes"]).all()


def test_ack_received_sums_what_its_frame_acknowledged(run):
    _, df, _ = run
    kinds = df["kind"].astype(str).to_numpy()
    acked_bytes = acked_payload = 0
    checked = 0
    for i in range(len(df)):
        if kinds[i] == "packet_acked":
            acked_bytes += int(df["bytes"].iloc[i])
            acked_payload += int(df["payload_bytes"].iloc[i])
        elif kinds[i] == "ack_received":
            row = df.iloc[i]
            if checked > 20 and row["time_s"] > 0.5:
                assert row["bytes"] == acked_bytes and row["payload_bytes"] == acked_payload
            checked += 1
            acked_bytes = acked_payload = 0
    assert checked > 100


def test_loss_rows_show_the_state_after_the_reduction_and_name_their_trigger(run):
    _, df, (lost_row, controller) = run
    lost = rows(df, "packet_lost")
    assert len(lost) >= 2
    triggers = {json.loads(x)["trigger"] for x in lost["extra"]}
    assert triggers <= {"packet_threshold", "time_threshold", "pto"} and triggers
    first = lost.index[0]
    before = df.loc[:first - 1, "cwnd"].dropna().iloc[-1]
    assert df.loc[first, "cwnd"] == pytest.approx(before / 2, abs=1200)  # Reno halved
    assert df.loc[first, "state"] == "recovery"
    # the stepped controller shows what the row the stepper returned shows
    assert controller == (lost_row["cwnd"], lost_row["ssthresh"], lost_row["state"])
    changed = df[(df["kind"] == "cwnd_changed") & (df.index > first)].iloc[0]
    assert changed["cwnd"] == df.loc[first, "cwnd"]


def test_rtt_sample_rows_hold_the_sample(run):
    _, df, _ = run
    rtt = rows(df, "rtt_sample")
    assert len(rtt) > 100 and rtt["latest_rtt_s"].notna().all()
    assert (rtt["latest_rtt_s"] >= 0.040).all()
    assert np.all(rtt["min_rtt_s"] <= rtt["latest_rtt_s"] + 1e-6)


def test_both_engines_write_the_same_row_kinds_with_the_same_meanings():
    kinds = {}
    for engine in ("model", "emulate"):
        r = Experiment(path=scenario(), cc="reno", seed=1, engine=engine).run(2.0)
        df = r.trace()
        kinds[engine] = set(df["kind"].astype(str))
        # the same figures from the same definitions: close on this clean-ish path
        kinds[engine + "_goodput"] = r.metrics(from_s=1.0)["goodput_bps"].iloc[0]
    core = {"packet_sent", "packet_acked", "packet_lost", "ack_received", "rtt_sample",
            "cwnd_changed", "state_changed"}
    assert core <= kinds["model"] and core <= kinds["emulate"]
    assert kinds["model_goodput"] == pytest.approx(kinds["emulate_goodput"], rel=0.1)
