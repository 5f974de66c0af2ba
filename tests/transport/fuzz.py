"""A hypothesis state machine that abuses the sans-IO WebTransport layer of a server.

The client of an in-memory :class:`~tests.transport.pair.Pair` keeps one healthy
session with one open stream; beside it, the machine writes whatever it likes on
the same QUIC connection, in any order and any split: request streams with real and
absurd HEADERS, DATA frames, bare and framed capsules of any declared length,
WebTransport streams for real and made-up sessions, unknown stream types,
datagrams, resets and STOP_SENDINGs, well-formed CONNECTs the server accepts or
rejects. After every step:

* no exception has escaped the server's ``handle_event`` (it would fail the step);
* what the server's WebTransport layer holds (``held_bytes``) is within its budget;
* either the healthy session still delivers (a ping on its stream reaches the
  server), or the server closed the connection itself with an HTTP/3, QPACK or QUIC
  error code that names the peer's fault (never an internal error).

``tests/transport/test_fuzz_protocol.py`` runs it briefly; ``benchmarks/fuzz.py``
runs it long.
"""

from __future__ import annotations

import pylsqpack
from aioquic.buffer import encode_uint_var
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.transport.pair import Pair
from wtlab.transport import protocol as P

LIMITS = P.FlowLimits(max_sessions=4, max_data=64 * 1024, max_streams_bidi=16,
                      max_streams_uni=16, max_header_bytes=1024, max_early_bytes=8192)
CAPSULE_SLACK = 4 + 1024 + 32  # the largest capsule this layer collects, with its header
PREFIX_MAX = 16  # two varints of a stream header
# codes with which the server may close the connection on a peer's fault
PEER_FAULT_CODES = set(range(0x3, 0x11)) | {0x101, *range(0x103, 0x111), 0x200, 0x201, 0x202}

varints = st.one_of(st.integers(0, 63), st.integers(0, 2**14 - 1), st.integers(0, 2**30 - 1),
                    st.integers(0, 2**62 - 1))
small_bytes = st.binary(max_size=300)
frame_types = st.one_of(st.sampled_from([0x0, 0x1, 0x3, 0x5, 0x7, 0xD, 0x21, 0x41, 0x2843,
                                         0x78AE, *P._CAPSULE_MAX_BYTES]), varints)
capsule_types = st.one_of(st.sampled_from([0x0, 0x2843, 0x78AE, 0x3F00, *P._CAPSULE_MAX_BYTES]),
                          varints)
paths = st.sampled_from(["/echo", "/x", "/", "/a?b=c", "/" + "p" * 100])
header_names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)


def _encode_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    # a fresh encoder without a dynamic table: a block any decoder can read on its own
    _, block = pylsqpack.Encoder().encode(0, headers)
    return block


@st.composite
def header_blocks(draw) -> bytes:
    headers = [(b":method", b"CONNECT"), (b":scheme", b"https"),
               (b":authority", b"127.0.0.1:4433"), (b":path", draw(paths).encode()),
               (b":protocol", b"webtransport")]
    for _ in range(draw(st.integers(0, 40))):
        headers.append((draw(header_names).encode(), draw(st.binary(max_size=80)).replace(
            b"\r", b"").replace(b"\n", b"").replace(b"\0", b"").strip()))
    return _encode_headers(headers)


@st.composite
def pieces(draw, session_ids: list[int]) -> bytes:
    """One element of what goes on a bidirectional stream."""
    kind = draw(st.sampled_from(["headers", "declared", "data", "capsule", "wt", "raw"]))
    if kind == "headers":
        block = draw(header_blocks())
        return encode_uint_var(0x1) + encode_uint_var(len(block)) + block
    if kind == "declared":  # a frame header that may lie about its length
        return (encode_uint_var(draw(frame_types)) + encode_uint_var(draw(varints))
                + draw(small_bytes))
    if kind == "data":  # capsules inside a DATA frame (length honest or not)
        body = (encode_uint_var(draw(capsule_types)) + encode_uint_var(draw(varints))
                + draw(small_bytes))
        declared = draw(st.one_of(st.just(len(body)), varints))
        return encode_uint_var(0x0) + encode_uint_var(declared) + body
    if kind == "capsule":  # a bare capsule, pywebtransport style
        payload = draw(small_bytes)
        declared = draw(st.one_of(st.just(len(payload)), varints))
        return encode_uint_var(draw(capsule_types)) + encode_uint_var(declared) + payload
    if kind == "wt":  # a WebTransport stream header for a real or made-up session
        sid = draw(st.one_of(st.sampled_from(session_ids or [0]), varints))
        return encode_uint_var(0x41) + encode_uint_var(sid) + draw(small_bytes)
    return draw(small_bytes)


class ServerAbuse(RuleBasedStateMachine):
    """See the module docstring (the healthy session speaks ``DIALECT``)."""

    DIALECT = "draft02"

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair(client_dialect=self.DIALECT, limits=LIMITS)
        self.healthy = self.pair.open_session("/healthy")
        self.healthy_stream = self.pair.client.open_stream(self.healthy, uni=False)
        self.pings = 0
        self.streams: list[int] = []  # attacker streams still writable
        self.sessions: list[int] = [self.healthy]
        self.closed_code: int | None = None
        self.max_held = 0
        self._ping()

    # ----------------------------------------------------------------- helpers
    @property
    def cq(self):
        return self.pair.cq

    @property
    def server(self) -> P.WebTransportConnection:
        return self.pair.server

    def _write(self, sid: int, data: bytes, end: bool = False) -> None:
        try:
            self.cq.send_stream_data(sid, data, end)
        except (ValueError, AssertionError, RuntimeError):
            pass  # the client's own aioquic refuses (stream reset or finished): not the server

    def _pump(self) -> None:
        self.pair.pump(rounds=40)
        for ev in self.pair.server_events:
            if isinstance(ev, P.SessionRequested) and ev.session_id in self.server.sessions:
                if len(self.sessions) < LIMITS.max_sessions and ev.path != "/x":
                    for wev in self.server.accept(ev.session_id):
                        assert isinstance(wev, P.WtEvent)
                    self.sessions.append(ev.session_id)
                else:
                    self.server.reject(ev.session_id, 429)
        self.pair.server_events.clear()
        self.pair.client_events.clear()
        self.pair.pump(rounds=10)
        self.pair.server_events.clear()
        self.max_held = max(self.max_held, self.server.held_bytes())
        close = self.pair.sq._close_event
        if close is not None and self.closed_code is None:
            self.closed_code = close.error_code

    def _ping(self) -> None:
        self.pings += 1
        self._write(self.healthy_stream, b"ping %d;" % self.pings)
        self.pair.pump(rounds=20)
        got = [ev for ev in self.pair.server_events
               if isinstance(ev, P.StreamData) and ev.stream_id == self.healthy_stream]
        self.pair.server_events.clear()
        if self.pair.sq._close_event is None:
            assert got, "the healthy session stopped delivering"

    # ------------------------------------------------------------------- rules
    @precondition(lambda self: self.closed_code is None)
    @rule(parts=st.lists(st.data(), min_size=1, max_size=4), fin=st.booleans(),
          split=st.integers(1, 64))
    def new_bidi(self, parts, fin, split) -> None:
        sid = self.cq.get_next_available_stream_id()
        wire = b"".join(p.draw(pieces(self.sessions)) for p in parts)
        for i in range(0, max(1, len(wire)), split):  # the server sees every split
            self._write(sid, wire[i:i + split])
            self.pair.pump(rounds=2)
        if fin:
            self._write(sid, b"", True)
        else:
            self.streams.append(sid)
        self._pump()

    @precondition(lambda self: self.closed_code is None and self.streams)
    @rule(data=st.data())
    def more_on_stream(self, data) -> None:
        sid = data.draw(st.sampled_from(self.streams))
        self._write(sid, data.draw(pieces(self.sessions)), data.draw(st.booleans()))
        self._pump()

    @precondition(lambda self: self.closed_code is None)
    @rule(stream_type=st.one_of(st.sampled_from([0x54, 0x21, 0x1F * 7 + 0x21]), varints),
          session=varints, payload=small_bytes, use_real=st.booleans(), fin=st.booleans())
    def new_uni(self, stream_type, session, payload, use_real, fin) -> None:
        if stream_type in (0x0, 0x1, 0x2, 0x3):
            stream_type = 0x21  # second control/QPACK streams: covered by the SETTINGS tests
        sid = self.cq.get_next_available_stream_id(is_unidirectional=True)
        sess = self.sessions[-1] if use_real else session
        self._write(sid, encode_uint_var(stream_type) + encode_uint_var(sess) + payload, fin)
        self._pump()

    @precondition(lambda self: self.closed_code is None and self.streams)
    @rule(data=st.data(), code=varints.filter(lambda c: c < 2**62), stop=st.booleans())
    def abort_stream(self, data, code, stop) -> None:
        sid = data.draw(st.sampled_from(self.streams))
        self.streams.remove(sid)
        try:
            if stop:
                self.cq.stop_stream(sid, code)
            else:
                self.cq.reset_stream(sid, code)
        except (ValueError, AssertionError):
            pass
        self._pump()

    @precondition(lambda self: self.closed_code is None)
    @rule(prefix=varints, payload=small_bytes)
    def datagram(self, prefix, payload) -> None:
        try:
            self.cq.send_datagram_frame(encode_uint_var(prefix) + payload[:1000])
        except Exception:  # noqa: BLE001 - the client's aioquic may refuse
            pass
        self._pump()

    @precondition(lambda self: self.closed_code is None and len(self.sessions) > 1)
    @rule(data=st.data())
    def close_a_session(self, data) -> None:
        sid = data.draw(st.sampled_from(self.sessions[1:]))
        self.sessions.remove(sid)
        code = data.draw(st.integers(0, 2**32 - 1))
        self._write(sid, P._frame(0, P.encode_close_capsule(code, "fuzz")), True)
        self._pump()

    @rule(rounds=st.integers(1, 50))
    def time_passes(self, rounds) -> None:
        """Always possible (also once the connection is closed): timers and retransmissions."""
        self.pair.now += 0.01 * rounds
        for quic in (self.cq, self.pair.sq):
            at = quic.get_timer()
            if at is not None and at <= self.pair.now:
                quic.handle_timer(now=self.pair.now)
        self._pump()

    # -------------------------------------------------------------- invariants
    @invariant()
    def held_bytes_within_budget(self) -> None:
        server = self.server
        if server is None:
            return
        bound = (LIMITS.max_early_bytes
                 + len(server._requests) * (LIMITS.max_header_bytes + CAPSULE_SLACK)
                 + len(server._prefix) * PREFIX_MAX)
        assert 0 <= server.held_bytes() <= bound, (server.held_bytes(), bound)

    @invariant()
    def healthy_or_closed_for_a_reason(self) -> None:
        if self.closed_code is not None:
            assert self.closed_code in PEER_FAULT_CODES, hex(self.closed_code)
            return
        self._ping()


class ServerAbuseLatest(ServerAbuse):
    """The same, with WebTransport flow control (capsules that grant credit)."""

    DIALECT = "latest"


__all__ = ["LIMITS", "ServerAbuse", "ServerAbuseLatest"]
