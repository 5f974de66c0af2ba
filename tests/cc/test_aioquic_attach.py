"""attach(): a wtlab controller drives a real aioquic connection pair in memory."""

from __future__ import annotations

import json
import math

import pytest
from aioquic.quic.congestion.base import create_congestion_control

import wtlab.cc.aioquic as wa
from wtlab.cc import create
from wtlab.errors import ConfigError
from wtlab.trace import Recorder

from .pair import Pair, make_pair


def test_attach_reno_bulk_trace_has_every_kind():
    client, server = make_pair()
    rec = Recorder()
    cc = wa.attach(client, "reno", recorder=rec, flow=3)
    assert client._loss.congestion_window == cc.cwnd == 10 * client._max_datagram_size
    pair = Pair(client, server, delay_s=0.02)
    pair.run(300_000)
    df = rec.to_pandas()
    kinds = set(df["kind"].astype(str))
    for kind in ("packet_sent", "packet_acked", "rtt_sample", "cwnd_changed", "ack_received"):
        assert kind in kinds, kind
    assert (df["flow"] == 3).all()
    # Every acked pn was sent before, and acked once.
    sent = df[df["kind"] == "packet_sent"]
    acked = df[df["kind"] == "packet_acked"]
    assert acked["pn"].is_unique
    assert set(acked["pn"]) <= set(sent["pn"])
    # The RTT columns mirror aioquic's own estimator (20 ms each way -> ~40 ms).
    rtt = df[df["kind"] == "rtt_sample"]
    assert rtt["latest_rtt_s"].iloc[-1] == pytest.approx(0.04, abs=0.002)
    assert rtt["srtt_s"].iloc[-1] == pytest.approx(client._loss._rtt_smoothed, rel=1e-6)
    # Slow start without loss: cwnd grew by the acked bytes.
    assert df["cwnd"].max() > 10 * 1200 + 100_000
    assert cc.cwnd == client._loss.congestion_window
    # ACK frames carry ranges and ack delay.
    extra = json.loads(df[df["kind"] == "ack_received"]["extra"].iloc[-1])
    assert extra["ranges"] and "ack_delay_s" in extra and extra["epoch"] == "application"
    # Pure ACK packets (not in flight) are logged too, with their flags.
    flagged = sent["extra"].dropna().map(json.loads)
    assert any(not e["in_flight"] for e in flagged)
    # All in flight was acked: bytes_in_flight bookkeeping matches aioquic's.
    assert cc.bytes_in_flight == client._loss.bytes_in_flight


def test_attach_with_losses_records_triggers_and_reduces_cwnd():
    client, server = make_pair()
    rec = Recorder()
    cc = wa.attach(client, "reno", recorder=rec)
    dropped = set(range(60, 64)) | {150}  # datagram counts to drop on the way to the server
    pair = Pair(client, server, delay_s=0.01, drop=lambda n, _d: n in dropped)
    pair.run(400_000)
    df = rec.to_pandas()
    lost = df[df["kind"] == "packet_lost"]
    assert len(lost) >= 4
    triggers = {json.loads(e)["trigger"] for e in lost["extra"]}
    assert triggers <= {"packet_threshold", "time_threshold", "pto"}
    assert "packet_threshold" in triggers
    assert cc.ssthresh is not None  # a congestion event happened
    states = set(df[df["kind"] == "state_changed"]["state"].astype(str))
    assert "recovery" in states
    assert cc.bytes_in_flight == client._loss.bytes_in_flight


def test_attach_twice_and_after_sending_is_refused():
    client, server = make_pair()
    wa.attach(client, "reno")
    with pytest.raises(ConfigError, match="already"):
        wa.attach(client, "reno")
    client2, _ = make_pair()
    client2.connect(("127.0.0.1", 4433), now=0.0)
    client2.datagrams_to_send(0.0)
    with pytest.raises(ConfigError, match="before the connection sends"):
        wa.attach(client2, "reno")


def test_attach_is_per_instance():
    from aioquic.quic.recovery import QuicPacketRecovery

    client, _ = make_pair()
    other, _ = make_pair()
    wa.attach(client, "reno")
    assert "on_ack_received" in vars(client._loss)
    assert "on_ack_received" not in vars(other._loss)
    assert type(other._loss._cc).__name__ == "RenoCongestionControl"
    assert QuicPacketRecovery.on_ack_received is not client._loss.on_ack_received


def test_pacer_follows_controller_rate():
    client, _ = make_pair()
    cc = create("reno")
    wa.attach(client, cc)
    cc.pacing_rate_bps = 12_000_000.0  # as a rate-based controller would set it
    client._loss._pacer.refresh()
    assert client._loss._pacer.packet_time == pytest.approx(1200 * 8 / 12e6)


def test_wtlab_names_in_aioquic_registry():
    shim = create_congestion_control("wtlab-reno", max_datagram_size=1200)
    assert isinstance(shim, wa.ControllerShim)
    assert shim.congestion_window == 12000
    client, server = make_pair(client_cc="wtlab-reno")
    Pair(client, server).run(100_000)
    assert client._loss._cc.controller.cwnd > 12000


def test_bbr_pacing_governs_aioquic():
    """BBR over a 20 Mbit/s in-memory path: its pacing rate, not ack clocking, sets the pace."""
    client, server = make_pair()
    rec = Recorder()
    cc = wa.attach(client, "bbr", recorder=rec)
    pair = Pair(client, server, delay_s=0.01, rate_bps=20e6)
    pair.run(2_500_000, until_s=10.0)
    df = rec.to_pandas()
    changes = df[df["kind"] == "state_changed"]
    order = list(changes["state"].astype(str))
    assert order[:2] == ["drain", "probe_bw"]
    # Drain empties the startup queue in a few RTTs only if the pacer obeys BBR's
    # drain rate (aioquic's own pacer lets ack clocking through: drain took ~1 s).
    drain_s = changes["time_s"].iloc[1] - changes["time_s"].iloc[0]
    assert drain_s < 0.15
    assert cc.btlbw_bps == pytest.approx(20e6, rel=0.05)
    assert cc.rtprop_s == pytest.approx(0.02, rel=0.05)
    # In ProbeBW the queue stays small: srtt well under twice the propagation RTT.
    probe = df[(df["kind"] == "rtt_sample") & (df["state"] == "probe_bw")]
    assert len(probe) > 20 and probe["srtt_s"].iloc[-1] < 1.5 * 0.0205
    # The pacer's packet time is BBR's rate.
    pacer = client._loss._pacer
    assert pacer.packet_time == pytest.approx(client._max_datagram_size * 8 / cc.pacing_rate_bps)
    assert (df["kind"] == "pacing_changed").sum() >= 3


def test_cubic_attached_reacts_to_losses():
    client, server = make_pair()
    rec = Recorder()
    cc = wa.attach(client, "cubic", recorder=rec)
    pair = Pair(client, server, delay_s=0.01, drop=lambda n, _d: n % 97 == 0 and n > 50)
    pair.run(600_000)
    assert cc.w_max is not None and cc.ssthresh is not None
    df = rec.to_pandas()
    assert (df["kind"] == "packet_lost").sum() >= 3
    assert cc.bytes_in_flight == client._loss.bytes_in_flight


def blackout(start_s, end_s, pair_ref):
    """Drop every client->server datagram sent while the fake clock is in [start, end)."""
    return lambda n, _d: start_s <= pair_ref[0].now < end_s


@pytest.mark.parametrize("name", ["reno", "bbr"])
def test_pto_and_persistent_congestion_are_logged_and_survived(name):
    client, server = make_pair()
    rec = Recorder()
    cc = wa.attach(client, name, recorder=rec)
    ref: list = []
    pair = Pair(client, server, delay_s=0.01, rate_bps=20e6, buffer_bytes=100_000,
                drop=blackout(0.4, 1.4, ref))
    ref.append(pair)
    pair.run(4_000_000, until_s=20.0)
    df = rec.to_pandas()
    pto = df[df["kind"] == "pto_expired"]
    assert len(pto) >= 2
    counts = [json.loads(e)["pto_count"] for e in pto["extra"]]
    assert counts[:2] == [1, 2]  # exponential backoff, as aioquic counts it
    lost = df[df["kind"] == "packet_lost"]
    triggers = [json.loads(e)["trigger"] for e in lost["extra"]]
    assert "pto" in triggers
    # Losses spanning more than 3 PTOs with nothing acked: persistent congestion.
    assert (df["kind"] == "persistent_congestion").sum() >= 1
    assert cc.bytes_in_flight == client._loss.bytes_in_flight
    # After the blackout the transfer finished at close to the link rate.
    after = df[(df["kind"] == "packet_acked") & (df["time_s"] > 2.2)]
    span = after["time_s"].iloc[-1] - after["time_s"].iloc[0]
    rate = after["bytes"].sum() * 8 / span
    assert span > 0.5 and rate > 0.7 * 20e6, rate


@pytest.mark.parametrize("name", ["reno", "cubic", "bbr", "bbr3"])
def test_every_builtin_runs_a_transfer_inside_aioquic(name):
    client, server = make_pair()
    rec = Recorder()
    cc = wa.attach(client, name, recorder=rec)
    pair = Pair(client, server, delay_s=0.01, rate_bps=20e6, buffer_bytes=60_000)
    pair.run(1_500_000, until_s=10.0)
    assert pair.received >= 1_500_000
    assert pair.now < 1.5  # 1.5 MB over 20 Mbit/s is 0.6 s plus slow start / startup
    df = rec.to_pandas()
    assert (df["kind"] == "packet_acked").sum() > 1000
    assert cc.bytes_in_flight == client._loss.bytes_in_flight
    if name.startswith("bbr"):
        assert cc.btlbw_bps == pytest.approx(20e6, rel=0.1)


def test_aioquic_qlog_sees_the_wtlab_window():
    from aioquic.quic.logger import QuicLogger

    client, server = make_pair()
    logger = QuicLogger()
    trace = logger.start_trace(is_client=True, odcid=client.original_destination_connection_id)
    client._quic_logger = trace
    client._loss._quic_logger = trace
    cc = wa.attach(client, "bbr")
    Pair(client, server, delay_s=0.01, rate_bps=20e6).run(300_000)
    events = [e for e in trace.to_dict()["events"] if e["name"] == "recovery:metrics_updated"]
    cwnds = [e["data"]["cwnd"] for e in events if "cwnd" in e["data"]]
    assert cwnds and cwnds[-1] == cc.cwnd
    assert any("pacing_rate" in e["data"] for e in events)


def test_virtual_clock_landing_on_the_loss_timer_does_not_spin():
    # With no slack the fake clock lands exactly on aioquic's loss timer; in this run
    # aioquic re-arms it at the same float (sent + d - d < sent) and, without the
    # hook's ulp step, the loop spins at t = 0.129 s until max_steps.
    dropped = set(range(60, 64)) | {150}
    client, server = make_pair()
    cc = wa.attach(client, "reno")
    pair = Pair(client, server, delay_s=0.01, drop=lambda n, _d: n in dropped, timer_slack_s=0.0)
    pair.run(400_000, max_steps=50_000)
    assert pair.received >= 400_000 and cc.ssthresh is not None


def test_aioquic_internals_the_seam_relies_on_are_there():
    # Every aioquic private attribute or code path wtlab.cc.aioquic touches: if aioquic
    # renames or restructures one, this fails here rather than silently elsewhere.
    import inspect

    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.recovery import QuicPacketRecovery

    client, _ = make_pair()
    rec = client._loss
    assert isinstance(rec, QuicPacketRecovery)
    for name in ("_cc", "_pacer", "_pto_count", "_rtt_initialized", "_rtt_first_sample_time",
                 "_rtt_min", "_rtt_smoothed", "_rtt_variance", "spaces"):
        assert hasattr(rec, name), name
    for name in ("_detect_loss", "_in_persistent_congestion", "_get_loss_space",
                 "get_probe_timeout", "on_ack_received", "on_loss_detection_timeout",
                 "on_packet_sent"):
        assert callable(getattr(rec, name)), name
    for name in ("_max_datagram_size", "_pacing_at", "_handshake_complete"):
        assert hasattr(client, name), name
    assert callable(client._write_datagram_frame)
    assert callable(client._write_stream_frame)
    # aioquic asks for persistent congestion through the method the seam replaces ...
    assert "self._in_persistent_congestion(" in inspect.getsource(QuicPacketRecovery._detect_loss)
    # ... and sizes its packets from congestion_window - bytes_in_flight (full_packets)
    src = inspect.getsource(QuicConnection.datagrams_to_send)
    assert "self._loss.congestion_window - self._loss.bytes_in_flight" in src
    assert "get_probe_timeout(self" in inspect.getsource(QuicPacketRecovery) or \
        "def get_probe_timeout" in inspect.getsource(QuicPacketRecovery)


def _short_share(full_packets):
    client, server = make_pair()
    rec = Recorder()
    wa.attach(client, "cubic", recorder=rec, full_packets=full_packets)
    # a 1-BDP buffer keeps CUBIC window-limited (losses, recovery, growth)
    Pair(client, server, delay_s=0.02, rate_bps=10e6, buffer_bytes=50_000).run(3_000_000,
                                                                                until_s=30.0)
    df = rec.to_pandas()
    data = df[(df["kind"] == "packet_sent") & (df["payload_bytes"].astype(float) > 0)]
    return (data["bytes"] < 0.9 * client._max_datagram_size).mean(), len(data)


def test_full_packets_keep_a_window_limited_sender_from_sending_short_packets():
    share_fill, n_fill = _short_share(False)
    share_full, n_full = _short_share(True)
    assert share_fill > 0.10  # aioquic fills each window's last bytes with a short packet
    assert share_full < 0.01  # only the transfer's last packet, if that
    assert n_full < n_fill  # the same bytes in fewer packets
    with pytest.raises(ConfigError, match="full_packets"):
        wa.attach(make_pair()[0], "reno", full_packets="yes")


def test_persistent_congestion_duration_uses_the_pto_when_the_run_began():
    # After an outage a queue outlived, the acks of the packets it held bring RTT samples
    # as long as the outage and the current PTO balloons: the run of lost packets (sent
    # over 5 s, when the PTO was 0.1 s) must still count as persistent congestion.
    from types import SimpleNamespace

    client, _ = make_pair()
    rec = Recorder()
    cc = wa.attach(client, "reno", recorder=rec)
    recovery = client._loss
    recovery._rtt_initialized = True
    recovery._rtt_first_sample_time = 0.5
    recovery._rtt_smoothed, recovery._rtt_variance = 10.0, 2.0  # inflated by the outage

    def run(pto_at_send):
        return [SimpleNamespace(packet_number=100 + i, sent_time=1.0 + i, is_ack_eliciting=True,
                                wtlab_pto_s=pto_at_send) for i in range(6)]

    assert recovery.get_probe_timeout() * 3 > 5.0  # the current estimate would refuse it
    assert recovery._in_persistent_congestion(packets=run(0.1))
    detail = json.loads(recovery._wtlab_shim.pc_detail)
    assert detail["duration_s"] == pytest.approx(0.3) and detail["span_s"] > 0.3
    recovery._wtlab_shim.on_persistent_congestion()
    assert cc.cwnd == 2 * 1200
    row = rec.to_pandas().iloc[-2]  # persistent_congestion, then cwnd_changed
    assert row["kind"] == "persistent_congestion" and json.loads(row["extra"])["span_s"] > 0.3
    # a packet sent before any PTO was known: the current estimate decides, as in aioquic
    assert not recovery._in_persistent_congestion(packets=run(float("inf")))
    # a gap in packet numbers (something in between may have been acked) breaks the run
    gapped = run(0.1)
    for i, p in enumerate(gapped):
        p.packet_number = 100 + 2 * i
    assert recovery._in_persistent_congestion(packets=gapped) is False


def test_a_packet_without_room_for_a_stream_frame_gets_none_from_aioquic():
    # The seam's shortcut in _write_stream_frame answers 0 without asking aioquic when
    # fewer than MIN_STREAM_FRAME_BYTES are left: that must be what aioquic itself does
    # (nothing written, nothing taken from the stream), and with one byte more it must
    # write a frame, else the constant is wrong and a stream could be starved.
    from aioquic import tls
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.packet import QuicPacketType
    from aioquic.quic.packet_builder import QuicPacketBuilder

    from wtlab.cc.aioquic import MIN_STREAM_FRAME_BYTES

    client, _ = make_pair()
    client.connect(("127.0.0.1", 4433), now=0.0)
    sid = client.get_next_available_stream_id()
    client.send_stream_data(sid, b"x" * 5000)
    stream = client._streams[sid]
    crypto = client._cryptos[tls.Epoch.INITIAL]

    def offer(room: int) -> tuple[int, int]:
        builder = QuicPacketBuilder(host_cid=client.host_cid, peer_cid=bytes(8),
                                    version=client._version, is_client=True,
                                    max_datagram_size=1200)
        builder.start_packet(QuicPacketType.INITIAL, crypto)
        builder._flight_capacity = builder._buffer.tell() + crypto.aead_tag_size + room
        assert builder.remaining_flight_space == room
        start = builder._buffer.tell()
        used = QuicConnection._write_stream_frame(client, builder,
                                                  client._spaces[tls.Epoch.INITIAL],
                                                  stream, max_offset=1 << 30)
        return used, builder._buffer.tell() - start

    for room in range(MIN_STREAM_FRAME_BYTES):
        assert offer(room) == (0, 0)
        assert list(stream.sender._pending) == [range(0, 5000)]
    used, written = offer(MIN_STREAM_FRAME_BYTES + 1)
    assert used == 1 and written == MIN_STREAM_FRAME_BYTES + 1



def _paced_sends(pacer, *, step_s: float, duration_s: float) -> list[float]:
    """Send times of a sender that comes round every ``step_s`` and sends what the pacer
    lets go (a CPU-bound loop), over ``duration_s`` of a fake clock."""
    sent, now = [], 0.0
    while now < duration_s:
        while pacer.next_send_time(now) is None:
            pacer.update_after_send(now)
            sent.append(now)
        now += step_s
    return sent


@pytest.mark.parametrize("rate_based", [False, True])
def test_pacing_granularity_sends_bursts_at_the_same_long_run_rate(rate_based):
    client, _ = make_pair()
    cc = create("reno")
    wa.attach(client, cc)
    pacer = client._loss._pacer
    if rate_based:
        cc.pacing_rate_bps = 8 * 20e6  # 20 MB/s: a packet every 60 us
        pacer.refresh()
    else:
        pacer.update_rate(congestion_window=200 * 1200, smoothed_rtt=0.012)  # 20 MB/s
    packet_s = pacer.packet_time
    assert packet_s == pytest.approx(60e-6)
    step_s = 55e-6  # the loop comes round a little faster than a packet time
    on_time = _paced_sends(pacer, step_s=step_s, duration_s=0.5)
    wa.set_pacing_granularity(client, 1e-3)
    pacer.bucket_time = pacer.evaluation_time = 0.0
    lumpy = _paced_sends(pacer, step_s=step_s, duration_s=0.5)
    # on time, every pass of the loop sends one packet (aioquic's own rule lets one go
    # on any credit, so it then runs at the loop's rate; a rate-based controller's
    # needs a whole packet's) ...
    assert len(set(on_time)) == len(on_time)
    assert len(on_time) == pytest.approx(0.5 / (step_s if not rate_based else packet_s),
                                         rel=0.01)
    # ... with 1 ms, a pass in about 18 sends a burst of about 17, the bursts 1 ms apart,
    # at the pacing rate (aioquic's rule sends the last packet of a burst on partial
    # credit: a few per cent more)
    assert len(lumpy) == pytest.approx(0.5 / packet_s, rel=0.01 if rate_based else 0.05)
    assert len(lumpy) <= len(on_time) + 1
    bursts = sorted(set(lumpy))
    assert len(bursts) <= 0.1 * len(lumpy)
    gaps = [b - a for a, b in zip(bursts, bursts[1:], strict=False)]
    assert min(gaps) >= 1e-3 - 1e-9
    assert max(gaps) <= 1e-3 + step_s + 1e-9


def test_pacing_granularity_bounds_a_burst_after_idle_and_is_checked():
    client, _ = make_pair()
    wa.attach(client, create("reno"))
    pacer = client._loss._pacer
    pacer.update_rate(congestion_window=200 * 1200, smoothed_rtt=0.012)
    wa.set_pacing_granularity(client, 1e-3)
    # after a long idle period the bucket is full: aioquic's allowance (16 packets here)
    # or the granularity plus two packets, whichever is more (aioquic's rule lets the last
    # go on partial credit: 18.7 packets' worth is 19 packets)
    burst = 0
    while pacer.next_send_time(10.0) is None:
        pacer.update_after_send(10.0)
        burst += 1
    cap_s = max(pacer.bucket_max, 1e-3 + 2 * pacer.packet_time)
    assert burst == math.ceil(cap_s / pacer.packet_time) == 19
    # and the next packet waits the granularity, though credit for one comes sooner
    assert pacer.next_send_time(10.0) == pytest.approx(10.0 + 1e-3)
    assert pacer.next_send_time(10.0005) == pytest.approx(10.0 + 1e-3)
    # a flow paced slower than the granularity is paced as without it
    slow, _ = make_pair()
    wa.attach(slow, create("reno"))
    plain = slow._loss._pacer
    pacer.update_rate(congestion_window=20 * 1200, smoothed_rtt=0.1)  # 5 ms a packet
    plain.update_rate(congestion_window=20 * 1200, smoothed_rtt=0.1)
    for now in (20.0, 20.0, 20.0, 20.001, 20.004, 20.0051, 20.011, 20.02):
        assert pacer.next_send_time(now) == plain.next_send_time(now)
        if pacer.next_send_time(now) is None:
            pacer.update_after_send(now)
            plain.update_after_send(now)
        assert pacer.bucket_time == plain.bucket_time
    for bad in (-1e-3, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="granularity_s"):
            wa.set_pacing_granularity(client, bad)
