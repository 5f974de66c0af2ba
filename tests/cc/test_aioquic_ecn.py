"""The ECN seam inside aioquic (wtlab.cc.aioquic_ecn), on two real QuicConnections in memory.

The first test fails loudly when an aioquic release moves an internal the seam wraps;
the others follow a CE mark from the path to the sender's controller, and check RFC
9000 section 13.4.2's validation against a bleaching path and a lying peer.
"""

from __future__ import annotations

import heapq
import inspect
import json

from aioquic.quic import connection as qc
from aioquic.quic import packet as qp
from aioquic.quic import recovery as qr
from aioquic.quic.events import StreamDataReceived

from tests.cc.pair import CLIENT_ADDR, SERVER_ADDR, make_pair
from wtlab.cc.aioquic import attach
from wtlab.cc.aioquic_ecn import enable_ecn
from wtlab.cc.ecn import CE, ECT0, ECT1, NOT_ECT
from wtlab.trace import Recorder


def test_aioquic_internals_the_seam_wraps_are_where_it_expects():
    """If this fails, aioquic changed: update wtlab/cc/aioquic_ecn.py (its table)."""
    client, server = make_pair()
    handlers = client._QuicConnection__frame_handlers
    assert isinstance(handlers, dict)
    for frame_type in (0x02, 0x03):
        handler, epochs = handlers[frame_type]
        assert handler.__name__ == "_handle_ack_frame"
        assert list(inspect.signature(handler).parameters) == ["context", "frame_type", "buf"]
    assert qp.QuicFrameType.ACK_ECN == 0x03
    assert list(inspect.signature(client._payload_received).parameters) == [
        "context", "plain", "crypto_frame_required"]
    assert list(inspect.signature(client._write_ack_frame).parameters) == [
        "builder", "space", "now"]
    assert list(inspect.signature(qp.push_ack_frame).parameters) == [
        "buf", "rangeset", "delay", "capacity"]
    assert list(inspect.signature(qp.pull_ack_frame).parameters) == ["buf"]
    assert isinstance(qc.ACK_FRAME_CAPACITY, int)
    assert list(inspect.signature(client._loss.on_packet_sent).parameters) == [
        "packet", "space"]
    for name in ("_on_ack_delivery", "_write_ping_frame", "_local_ack_delay_exponent",
                 "_quic_logger", "_spaces", "datagrams_to_send", "receive_datagram"):
        assert hasattr(client, name), name
    space = qr.QuicPacketSpace()
    for name in ("ack_at", "ack_queue", "largest_received_time", "largest_received_packet",
                 "is_application_data"):
        assert hasattr(space, name), name
    src = inspect.getsource(qc.QuicConnection.receive_datagram)
    # the seam's immediate CE ACK relies on aioquic keeping an ack_at already set, and on
    # an overdue ACK (ack_at < now) bypassing the pacer
    assert "space.ack_at is None" in src and "_payload_received(" in src
    assert "space.ack_at is None or space.ack_at >= now" in inspect.getsource(
        qc.QuicConnection._write_application)


def _run(path, *, total=400_000, client_cc="reno+ecn", lie=None, until_s=30.0):
    """Client uploads ``total`` bytes; ``path(direction, n, codepoint)`` returns the
    codepoint delivered (or None: drop). Returns (client seam, server seam, recorder)."""
    client, server = make_pair()
    rec = Recorder()
    attach(client, client_cc, recorder=rec)
    attach(server, "reno")
    seams = {"client": enable_ecn(client), "server": enable_ecn(server)}
    conns = {"client": client, "server": server}
    now = 0.0
    transit: list = []
    seq = 0
    counter = {"client": 0, "server": 0}
    client.connect(SERVER_ADDR, now=now)
    stream_id = None
    received = 0
    for _ in range(400_000):
        if lie is not None:
            lie(seams["server"])
        for side, to in (("client", "server"), ("server", "client")):
            conn = conns[side]
            if not conn._network_paths:
                continue
            datagrams = conn.datagrams_to_send(now)
            cp = seams[side].tx_codepoint
            for data, _ in datagrams:
                counter[side] += 1
                out = path(side, counter[side], cp)
                if out is None:
                    continue
                seq += 1
                heapq.heappush(transit, (now + 0.01, seq, to, data, out))
        if stream_id is None and client._handshake_complete:
            stream_id = client.get_next_available_stream_id()
            client.send_stream_data(stream_id, bytes(total), end_stream=True)
            continue
        while (ev := server.next_event()) is not None:
            if isinstance(ev, StreamDataReceived):
                received += len(ev.data)
        if received >= total and not transit:
            return seams["client"], seams["server"], rec
        times = [t for t in (client.get_timer(), server.get_timer()) if t is not None]
        if transit:
            times.append(transit[0][0])
        now = max(now, min(times) + 1e-9)
        assert now < until_s, f"stalled at {received}/{total}"
        while transit and transit[0][0] <= now:
            _, _, to, data, cp = heapq.heappop(transit)
            addr = CLIENT_ADDR if to == "server" else SERVER_ADDR
            seams[to].receive_datagram(data, addr, now, cp)
        for conn in (client, server):
            t = conn.get_timer()
            if t is not None and t <= now:
                conn.handle_timer(now)
    raise AssertionError("too many steps")


def test_ce_marks_travel_from_the_path_to_the_controller():
    marked = []

    def path(direction, n, cp):
        if direction == "client" and cp == ECT0 and n % 25 == 0:
            marked.append(n)
            return CE
        return cp

    cs, ss, rec = _run(path)
    assert cs.validator.state == "capable"
    # the server counted every mark and reported it in ACK_ECN frames
    app = ss.counts.counts[2]
    assert app[2] == len(marked) > 5
    assert ss.acks_ecn_sent > 0
    # the sender learned exactly those marks and its controller reacted, without a loss
    controller = cs.quic._loss._wtlab_shim.controller
    assert cs.validator.ce_total == len(marked) == controller.ce_marks
    df = rec.to_pandas()
    assert (df.kind == "packet_lost").sum() == 0
    rows = df[df.kind == "ecn_counts"]
    last = json.loads(rows.extra.iloc[-1])
    assert last["ce"] == len(marked) and last["ect0"] + last["ce"] >= app[0]
    first_mark = rows[rows.extra.str.contains('"ce_increase": 1')].index[0]
    assert (df.loc[first_mark:, "state"] == "recovery").any()
    states = df[df.kind == "ecn_validation"].extra.tolist()
    assert any('"new": "capable"' in s for s in states)


def test_a_path_that_bleaches_ecn_disables_it():
    cs, ss, rec = _run(lambda direction, n, cp: NOT_ECT)
    assert cs.validator.state == "failed" and cs.tx_codepoint == NOT_ECT
    assert "without ECN counts" in cs.validator.reason
    assert ss.acks_ecn_sent == 0  # nothing ECN-marked ever arrived
    df = rec.to_pandas()
    assert df[df.kind == "ecn_validation"].extra.str.contains('"new": "failed"').any()
    assert (df.kind == "ecn_counts").sum() == 0


def test_a_peer_reporting_impossible_counts_disables_ecn():
    lied = []

    def lie(server_seam):
        app = server_seam.counts.counts[2]
        if app[0] > 20 and not lied:  # once data flows: report ECT(1) it never got
            app[1] += 3
            lied.append(True)

    cs, _, _ = _run(lambda direction, n, cp: cp, lie=lie)
    assert lied and cs.validator.state == "failed" and "ECT(1)" in cs.validator.reason


def test_a_ce_mark_makes_the_ack_due_at_once():
    client, server = make_pair()
    attach(client, "reno+ecn")
    attach(server, "reno")
    seam_c, seam_s = enable_ecn(client), enable_ecn(server)
    client.connect(SERVER_ADDR, now=0.0)
    for data, _ in client.datagrams_to_send(0.0):
        assert seam_c.tx_codepoint == ECT0  # the handshake tests the path
        seam_s.receive_datagram(data, CLIENT_ADDR, 0.001, CE)
    initial = server._spaces[next(iter(server._spaces))]
    assert 0.0009 < initial.ack_at < 0.001  # overdue at once, not 0.001 + the ACK delay
    assert seam_s.counts.report(0)[2] >= 1
    datagrams = server.datagrams_to_send(0.001)
    assert datagrams and seam_s.acks_ecn_sent >= 1


def test_l4s_sender_marks_ect1():
    seen = set()

    def path(direction, n, cp):
        if direction == "client":
            seen.add(cp)
        return cp

    cs, ss, _ = _run(path, client_cc="prague", total=150_000)
    assert ECT1 in seen and ECT0 not in seen and cs.validator.state == "capable"
    assert ss.counts.counts[2][1] > 0
