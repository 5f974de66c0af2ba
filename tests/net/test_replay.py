"""Replay against a recorded server: derive the path and the workload from a recording, run
the client again with another controller in virtual time."""

from __future__ import annotations

import pandas as pd
import pytest

import wtlab
from wtlab.errors import ConfigError
from wtlab.lab.replay import LossAtTimes, derive_path, record_workload, replay
from wtlab.net.emulate import emulate
from wtlab.net.link import LinkSpec
from wtlab.net.path import Path
from wtlab.net.relay import Relay
from wtlab.trace.recorder import Recorder
from wtlab.transport.workloads import Bulk, WorkloadContext


def frame_hash(df: pd.DataFrame) -> int:
    return int(pd.util.hash_pandas_object(df, index=True).sum())


@pytest.fixture(scope="module")
def recorded():
    """A CUBIC upload of 2 MB over 8 Mbit/s, 30 ms RTT, 1.5-BDP buffer, 0.5% random loss on
    the data direction: CUBIC fills the buffer between losses, so the path is observable."""
    path = Path(up=LinkSpec(rate_bps=8e6, delay_s=0.015, loss=0.005, buffer="1.5bdp"),
                down=LinkSpec(rate_bps=8e6, delay_s=0.015, buffer="1.5bdp"), seed=5)
    res = emulate(path, cc="cubic", workload=Bulk(size_bytes=2_000_000, direction="up"),
                  until_s=60.0)
    assert res.flows[0].summary["transferred_bytes"] == 2_000_000
    return res, path


def test_derived_path_matches_the_true_one(recorded):
    res, path = recorded
    d = derive_path(res.trace(), direction="up")
    # min RTT: propagation (30 ms) plus one packet's serialisation and aioquic's ack delay
    assert 0.030 <= d.min_rtt_s <= 0.036
    # capacity (wire bytes per second of the fastest 200 ms window): a sender that fills
    # the link between losses shows its rate; +-15% for acks clustering at window edges
    assert d.capacity_bps == pytest.approx(8e6, rel=0.15)
    # random losses: the link dropped these for "loss", the rest are queue overflows
    true_random = path.up.stats.dropped_loss
    assert true_random > 5
    assert len(d.random_loss_times_s) == pytest.approx(true_random, rel=0.5)
    assert d.random_loss_times_s == tuple(sorted(d.random_loss_times_s))
    assert d.payload_bytes >= 2_000_000


def test_replay_with_another_controller_is_deterministic(recorded):
    res, _ = recorded
    a = replay(res.recorder, cc="bbr")
    b = replay(res.recorder, cc="bbr")
    assert a.workload.size_bytes == 2_000_000 and a.workload.direction == "up"
    assert a.emulation.flows[0].summary["transferred_bytes"] == 2_000_000
    assert frame_hash(a.trace()) == frame_hash(b.trace())
    cmp = a.compare()
    assert list(cmp.index) == ["recorded", "replayed"]
    assert cmp.loc["replayed", "cc"] == "bbr"
    # the replayed path has the recorded base RTT
    assert cmp.loc["replayed", "rtt_mean_s"] >= a.derived.min_rtt_s * 0.95
    # and the controller really changed: BBR's trace has its states
    states = set(a.trace()["state"].astype(str))
    assert states & {"startup", "drain", "probe_bw"}


def test_schedule_mode_delivers_no_faster_than_recorded(recorded):
    res, _ = recorded
    rp = replay(res.recorder, cc="cubic", capacity="schedule", loss="none")
    rec_span = res.flows[0].summary["duration_s"]
    rep_span = rp.emulation.flows[0].summary["duration_s"]
    # the schedule is the recorded delivery: the same bytes cannot arrive much sooner
    assert rep_span >= 0.9 * rec_span


def test_loss_at_times_model():
    lose = LossAtTimes((1.0, 1.0005, 3.0, 3.1)).make(None)
    got = [lose(t, 1200) for t in (0.5, 0.9999, 1.0002, 1.001, 2.0, 3.5, 3.6, 4.0)]
    # one loss per recorded time, on the first packet at or after it; 3.0 and 3.1 both
    # passed without a packet in between, so they collapse into the loss at 3.5
    assert got == [False, False, True, True, False, True, False, False]


def test_replay_needs_a_sender_trace():
    rec = Recorder()
    rec.event(0.0, "message_sent", pn=0, bytes=10)
    with pytest.raises(ConfigError, match="packet_sent"):
        replay(rec)
    with pytest.raises(ConfigError, match="Recorder or a trace DataFrame"):
        replay("trace.parquet")


async def test_replay_a_live_session_recorded_through_the_relay():
    """Live: wtlab client -> impairment relay (6 Mbit/s, 2 x 10 ms) -> wtlab server on
    loopback, CUBIC upload of 1.5 MB recorded at the client; then replayed with BBR."""
    rec = Recorder()
    work = Bulk(size_bytes=1_500_000, direction="up")
    record_workload(rec, work)
    async with wtlab.serve(port=0, routes=work.routes(WorkloadContext())) as server:
        async with Relay(target=("127.0.0.1", server.port), rate_bps=6e6, delay_s=0.01,
                         buffer="40kb", seed=1) as relay:
            host, port = relay.address
            url = f"https://{host}:{port}{work.route()}"
            async with wtlab.connect(url, cert_hashes=[server.cert_sha256],
                                     congestion_control="cubic", recorder=rec) as session:
                summary = await work.client(session, WorkloadContext(recorder=rec))
    assert summary["transferred_bytes"] == 1_500_000
    d = derive_path(rec.to_pandas(), direction="up")
    # live timing rides on a shared machine's loop: RTT >= the relay's 20 ms, capacity within
    # 25% of 6 Mbit/s (late loop turns bunch acks; the 200 ms window dilutes that)
    assert 0.020 <= d.min_rtt_s < 0.035
    print(f"live recording: min RTT {d.min_rtt_s * 1000:.1f} ms, capacity "
          f"{d.capacity_bps / 1e6:.2f} Mbit/s (relay: 20 ms, 6 Mbit/s)")
    assert d.capacity_bps == pytest.approx(6e6, rel=0.25)
    rp = replay(rec, cc="bbr")  # virtual time, inside this test's running loop
    assert rp.emulation.flows[0].summary["transferred_bytes"] == 1_500_000
    assert rp.compare().loc["replayed", "cc"] == "bbr"


async def test_replay_an_aioquic_qlog(tmp_path):
    """An imported qlog written by aioquic itself (its own Reno, no wtlab code in the
    connection) of a live raw-QUIC upload through the impairment relay on loopback
    (aioquic's qlog clock is the wall clock, so the recording must be live)."""
    import asyncio
    import json

    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.asyncio.server import QuicServer
    from aioquic.quic import events
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.logger import QuicLogger

    from wtlab.trace.qlog import read_qlog
    from wtlab.transport.certs import default_certificate

    size = 500_000
    loop = asyncio.get_running_loop()

    class Sink(QuicConnectionProtocol):
        def quic_event_received(self, event):
            if isinstance(event, events.StreamDataReceived) and event.end_stream:
                self._quic.send_stream_data(event.stream_id, b"ok", end_stream=True)
                self.transmit()

    class Client(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.done = loop.create_future()

        def quic_event_received(self, event):
            if isinstance(event, events.StreamDataReceived) and event.end_stream:
                self.done.set_result(True)

    pair = default_certificate("rsa")
    scfg = QuicConfiguration(is_client=False, alpn_protocols=["x"],
                             certificate=pair.certificate, private_key=pair.private_key)
    stransport, _ = await loop.create_datagram_endpoint(
        lambda: QuicServer(configuration=scfg, create_protocol=Sink),
        local_addr=("127.0.0.1", 0))
    logger = QuicLogger()
    try:
        async with Relay(target=stransport.get_extra_info("sockname")[:2], rate_bps=5e6,
                         delay_s=0.015, buffer="20kb", seed=3) as relay:
            ccfg = QuicConfiguration(is_client=True, alpn_protocols=["x"], verify_mode=0,
                                     server_name="localhost", quic_logger=logger)
            quic = QuicConnection(configuration=ccfg)
            ctransport, proto = await loop.create_datagram_endpoint(
                lambda: Client(quic), local_addr=("127.0.0.1", 0))
            proto.connect(relay.address)
            await asyncio.wait_for(proto.wait_connected(), 10)
            quic.send_stream_data(quic.get_next_available_stream_id(), bytes(size),
                                  end_stream=True)
            proto.transmit()
            await asyncio.wait_for(proto.done, 30)
            proto.close()
            await proto.wait_closed()
            ctransport.close()
    finally:
        stransport.close()
    qlog = tmp_path / "client.qlog"
    qlog.write_text(json.dumps(logger.to_dict()))

    frame = read_qlog(qlog, derive_acks=True)
    d = derive_path(frame, direction="up")
    print(f"aioquic qlog: min RTT {d.min_rtt_s * 1000:.1f} ms, capacity "
          f"{d.capacity_bps / 1e6:.2f} Mbit/s (relay: 30 ms, 5 Mbit/s)")
    assert 0.030 <= d.min_rtt_s < 0.045  # 30 ms propagation, live loop latency on top
    assert d.capacity_bps == pytest.approx(5e6, rel=0.25)
    meta = {"workload": Bulk(size_bytes=size, direction="up").describe()}
    rp = replay(frame, cc="bbr", meta=meta)  # virtual time, inside this running loop
    assert rp.emulation.flows[0].summary["transferred_bytes"] == size
    assert rp.derived.min_rtt_s == d.min_rtt_s


def test_a_loss_during_set_up_is_not_replayed(recorded):
    """Found with notebook 04: a handshake-era packet lost on the path (the recorded
    sender repaired it by PTO, no congestion response) was replayed as the loss of a data
    packet in slow start, which ended the replayed slow start at a tenth of the window."""
    res, _ = recorded
    df = res.trace()
    d0 = derive_path(df, direction="up")
    sent = df[df["kind"] == "packet_sent"]
    first = sent.iloc[0]
    assert first["payload_bytes"] < 1000  # a set-up packet, sent before any data
    extra = pd.DataFrame([{**first.to_dict(), "kind": "packet_lost",
                           "time_s": first["time_s"] + 0.1,
                           "extra": '{"trigger": "pto"}'}])
    df2 = pd.concat([df, extra], ignore_index=True).sort_values("time_s", kind="stable")
    d = derive_path(df2, direction="up")
    assert d.setup_losses == d0.setup_losses + 1
    assert d.random_loss_times_s == d0.random_loss_times_s
