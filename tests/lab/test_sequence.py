"""The time-sequence graph on a known scenario: one packet lost, fast retransmit.

Reno over an unbuffered-limit 10 Mbit/s, 40 ms path; the link drops exactly its 41st data
packet (``DropIndices([40])``) and nothing else. RFC 9002's packet threshold declares it
lost when the packet three numbers later is acknowledged; NewReno halves the window and
sends nothing new until the bytes in flight fall below it; the first packet it then
sends carries the lost bytes. The figure must show exactly that: one loss marker at the
ack of pn + 3, at the lost packet's offset, and one retransmission at the same offset,
sent at the first moment the window had room again.
"""

from __future__ import annotations

import numpy as np
import pytest

from wtlab.lab import Experiment
from wtlab.lab.plots import sequence_figure
from wtlab.net.loss import DropIndices
from wtlab.trace import metrics as M


def _trace_xy(fig, name):
    tr = next(t for t in fig.data if t.name == name)
    return np.asarray(tr.x, dtype=float), np.asarray(tr.y, dtype=float)


def test_fast_retransmit_is_where_and_when_expected():
    exp = Experiment(path=dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=None,
                               loss=DropIndices([40])), cc="reno", seed=1)
    df = exp.run(0.6).trace()
    lost_rows = df[df["kind"] == "packet_lost"]
    assert len(lost_rows) == 1
    pn = int(lost_rows["pn"].iloc[0])
    sent = df[df["kind"] == "packet_sent"]
    acked = df[df["kind"] == "packet_acked"]
    # the lost packet's offset: the payload of every packet sent before it
    payload = sent["payload_bytes"].to_numpy(dtype=float)
    offset = payload[:pn].sum()
    t_loss_expected = float(acked[acked["pn"] == pn + 3]["time_s"].iloc[0])  # packet threshold
    after = df[(df.index > lost_rows.index[0]) & df["cwnd"].notna()]  # after the reduction
    room = (after["cwnd"].astype(float) - after["bytes_in_flight"].astype(float)).to_numpy()
    t_room = float(after["time_s"].to_numpy()[np.flatnonzero(room >= 41)[0]])
    row = after.iloc[np.flatnonzero(room >= 41)[0]]
    packet_time_s = float(row["srtt_s"]) * 1228 / float(row["cwnd"])  # pacing, cwnd / srtt

    fig = sequence_figure(df, labels={0: "reno"})
    lx, ly = _trace_xy(fig, "reno lost")
    rx, ry = _trace_xy(fig, "reno retransmitted")
    assert list(lx) == [pytest.approx(t_loss_expected)]
    assert list(ly) == [pytest.approx(offset / 1e6)]
    assert len(rx) == 1 and ry[0] == pytest.approx(offset / 1e6)
    assert t_room <= rx[0] <= t_room + packet_time_s + 1e-9
    assert rx[0] > lx[0]  # NewReno waits for the halved window
    # the graph's sends are otherwise new data, above everything sent before
    sx, sy = _trace_xy(fig, "reno sent")
    assert (np.diff(sy) > 0).all()
    seq = M.sequence_table(df)
    assert (seq["event"] == "retransmitted").sum() == 1
