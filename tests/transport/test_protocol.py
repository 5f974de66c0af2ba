"""The sans-IO layer alone: two aioquic connections pumped in memory, a fake clock, no sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.transport.pair import Pair
from wtlab.errors import ConfigError, InvalidURL
from wtlab.transport import protocol as P
from wtlab.transport.certs import default_certificate, generate_certificate
from wtlab.transport.driver import check_url


@pytest.mark.parametrize("dialect", ["draft02", "draft07", "latest"])
def test_streams_datagrams_and_close_in_memory(dialect):
    pair = Pair(client_dialect=dialect)
    sid = pair.open_session()
    assert pair.server.sessions[sid].dialect == dialect
    # client bidi: the server sees the data (no HTTP/3 frame parsing of WT data)
    bidi = pair.client.open_stream(sid, uni=False)
    pair.client.send_stream_data(bidi, b"\x00\x01 not an h3 frame", end_stream=True)
    # server bidi and uni towards the client: the client-side aioquic pitfall is routed around
    sbidi = pair.server.open_stream(sid, uni=False)
    pair.server.send_stream_data(sbidi, b"\x41\x00 from server")
    suni = pair.server.open_stream(sid, uni=True)
    pair.server.send_stream_data(suni, b"uni", end_stream=True)
    pair.client.send_datagram(sid, b"dgram")
    pair.pump()
    data = {e.stream_id: e for e in pair.of(pair.server_events, P.StreamData)}
    assert data[bidi].data == b"\x00\x01 not an h3 frame" and data[bidi].end_stream
    assert data[bidi].new
    got = {}
    for e in pair.of(pair.client_events, P.StreamData):
        got[e.stream_id] = got.get(e.stream_id, b"") + e.data
    assert got[sbidi] == b"\x41\x00 from server" and got[suni] == b"uni"
    assert [e.data for e in pair.of(pair.server_events, P.DatagramReceived)] == [b"dgram"]
    assert pair.cq._close_event is None  # no H3_FRAME_ERROR or any other close
    # close with a code and reason: the peer gets it (DATA-framed or bare per dialect)
    pair.server.close_session(sid, 1234, "server says bye")
    pair.pump()
    (closed,) = pair.of(pair.client_events, P.SessionClosed)
    assert (closed.code, closed.reason) == (1234, "server says bye")
    assert sid not in pair.client.sessions and sid not in pair.server.sessions


def test_auto_dialect_follows_the_server():
    for server_dialect, expected in [("draft02", "draft02"), ("draft07", "draft07"),
                                     ("latest", "latest"), ("auto", "latest")]:
        pair = Pair(server_dialect=server_dialect)
        sid = pair.open_session()
        assert pair.client.sessions[sid].dialect == expected
        assert pair.server.sessions[sid].dialect == expected


def test_rejection_carries_the_status():
    pair = Pair()
    pair.pump()
    sid = pair.client.connect("/nope", "127.0.0.1:4433")
    pair.pump()
    pair.server.reject(sid, 404)
    pair.pump()
    (rej,) = pair.of(pair.client_events, P.SessionRejected)
    assert rej.status == 404


def test_stream_reset_and_stop_sending_codes_round_trip():
    pair = Pair()
    sid = pair.open_session()
    s = pair.client.open_stream(sid, uni=False)
    pair.client.send_stream_data(s, b"x")
    pair.pump()
    pair.client.reset_stream(s, 77)
    pair.server.stop_stream(s, 88)
    pair.pump()
    (reset,) = pair.of(pair.server_events, P.StreamResetReceived)
    (stop,) = pair.of(pair.client_events, P.StopSendingReceived)
    assert reset.code == 77 and stop.code == 88


def test_latest_flow_control_capsules():
    pair = Pair(client_dialect="latest", limits=P.FlowLimits(max_streams_bidi=1, max_data=100))
    sid = pair.open_session()
    assert pair.client.can_open_stream(sid, uni=False)
    s = pair.client.open_stream(sid, uni=False)
    assert not pair.client.can_open_stream(sid, uni=False)  # only one granted
    assert pair.client.send_credit(sid) == 100
    pair.client.send_stream_data(s, b"y" * 100, end_stream=True)
    assert pair.client.send_credit(sid) == 0
    pair.pump()
    assert not pair.client.can_open_stream(sid, uni=False)  # the server's side is still open
    pair.server.send_stream_data(s, b"", end_stream=True)
    pair.pump()
    # the server re-granted data and, the stream being finished both ways, one more stream
    assert pair.of(pair.client_events, P.CreditAvailable)
    assert pair.client.send_credit(sid) > 0
    assert pair.client.can_open_stream(sid, uni=False)


def test_bare_and_framed_capsules_are_both_understood():
    close = P.encode_close_capsule(5, "why")
    for wire in (close, P._frame(0, close)):  # pywebtransport style, then RFC 9297 style
        pair = Pair(client_dialect="draft02")
        sid = pair.open_session()
        pair.sq.send_stream_data(sid, wire)
        pair.pump()
        (closed,) = pair.of(pair.client_events, P.SessionClosed)
        assert (closed.code, closed.reason) == (5, "why")


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_error_code_mapping_round_trips(code):
    h3 = P.app_error_to_h3(code)
    assert P.WT_APP_ERROR_FIRST <= h3 <= P.WT_APP_ERROR_LAST
    assert (h3 - 0x21) % 0x1F != 0  # never a reserved (GREASE) codepoint
    assert P.h3_error_to_app(h3) == code


def test_error_code_out_of_range():
    with pytest.raises(ConfigError):
        P.app_error_to_h3(2**32)
    assert P.h3_error_to_app(0x10C) == 0x10C  # plain HTTP/3 codes pass through


def test_check_url():
    assert check_url("https://127.0.0.1:4433/echo?x=1") == (
        "127.0.0.1", 4433, "/echo?x=1", "127.0.0.1:4433")
    assert check_url("https://[::1]:5/") == ("::1", 5, "/", "[::1]:5")
    assert check_url("https://example.org") == ("example.org", 443, "/", "example.org:443")
    for bad in ("http://a:1/", "https://:1/", "https://a:0/", "ftp://a/", "https://u:p@a:1/"):
        with pytest.raises(InvalidURL):
            check_url(bad)


def test_certificates():
    pair = generate_certificate(kind="ecdsa", days=13)
    validity = pair.certificate.not_valid_after_utc - pair.certificate.not_valid_before_utc
    assert validity.days <= 14
    assert len(pair.sha256) == 64
    assert default_certificate() is default_certificate()  # cached per process
    rsa_a, rsa_b = generate_certificate(kind="rsa"), default_certificate("rsa")
    assert rsa_a.certificate.signature_hash_algorithm.name == "sha256"
    assert len(rsa_a.certificate.signature) == len(rsa_b.certificate.signature) == 256
    with pytest.raises(ConfigError):
        generate_certificate(kind="ecdsa", days=30)
    with pytest.raises(ConfigError):
        generate_certificate(kind="dsa")
