"""Sans-IO WebTransport over HTTP/3, on aioquic's ``QuicConnection`` + ``H3Connection``.

:class:`WebTransportConnection` turns QUIC events into WebTransport events
(:class:`SessionRequested`, :class:`SessionEstablished`, :class:`StreamData`,
:class:`DatagramReceived`, ...) and WebTransport calls into QUIC stream and
datagram writes. It never reads a clock and never touches a socket: a driver
feeds it ``QuicConnection`` events and transmits what the connection queues.

Division of labour with aioquic's ``H3Connection``: HTTP/3 control streams,
QPACK and header encoding/decoding stay with aioquic. Everything WebTransport
is routed around it: data streams (so the client-side "Frame is truncated"
pitfall of aioquic 1.7.2 cannot happen), datagrams, and the CONNECT stream
after its HEADERS (capsules, which aioquic would discard as unknown frames).

Dialects (what goes on the wire; ``"auto"`` advertises all three and picks per peer):

* ``"draft02"``: Chromium's default. SETTINGS H3_DATAGRAM (0x33) = 1 and
  ENABLE_WEBTRANSPORT (0x2b603742) = 1, request header
  ``sec-webtransport-http3-draft02: 1``; capsules inside DATA frames; no
  WebTransport-level flow control.
* ``"draft07"``: Chromium's newer mode, WEBTRANSPORT_MAX_SESSIONS (0xc671706a);
  otherwise as draft02.
* ``"latest"``: the newer drafts with WebTransport flow control, as
  pywebtransport 0.8.1 speaks them: WT_MAX_SESSIONS (0x14e9cd29),
  WT_INITIAL_MAX_DATA (0x2b61), WT_INITIAL_MAX_STREAMS_UNI/BIDI (0x2b64/0x2b65)
  and the WT_MAX_DATA / WT_MAX_STREAMS capsules. A peer that omits the initial
  limits grants 0 (it must send capsules before we may open a stream or send
  stream data). Capsules are written bare on the CONNECT stream, as
  pywebtransport expects (it rejects DATA-framed capsules); on receipt both
  forms are accepted.

Stream and session error codes given to and reported by this layer are
WebTransport application codes (0..2**32-1); on the wire they are mapped into
the HTTP/3 error space (``0x52e4a40fa8db + code + code // 0x1e``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import H3Connection, Setting
from aioquic.h3.events import HeadersReceived
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    DatagramFrameReceived,
    HandshakeCompleted,
    QuicEvent,
)
from aioquic.quic.events import (
    StopSendingReceived as QuicStopSending,
)
from aioquic.quic.events import StreamDataReceived as QuicStreamData
from aioquic.quic.events import StreamReset as QuicStreamReset

from wtlab.errors import ConfigError

# --------------------------------------------------------------------- constants
SETTING_ENABLE_CONNECT_PROTOCOL = 0x08
SETTING_H3_DATAGRAM = 0x33
SETTING_ENABLE_WEBTRANSPORT = 0x2B603742  # draft-02
SETTING_WEBTRANSPORT_MAX_SESSIONS_DRAFT07 = 0xC671706A
SETTING_WT_MAX_SESSIONS = 0x14E9CD29
SETTING_WT_INITIAL_MAX_DATA = 0x2B61
SETTING_WT_INITIAL_MAX_STREAMS_UNI = 0x2B64
SETTING_WT_INITIAL_MAX_STREAMS_BIDI = 0x2B65

STREAM_TYPE_WEBTRANSPORT = 0x54  # unidirectional stream type
FRAME_WEBTRANSPORT_STREAM = 0x41  # bidirectional stream signal

CAPSULE_CLOSE_SESSION = 0x2843
CAPSULE_DRAIN_SESSION = 0x78AE
CAPSULE_WT_MAX_DATA = 0x190B4D3D
CAPSULE_WT_MAX_STREAMS_BIDI = 0x190B4D3F
CAPSULE_WT_MAX_STREAMS_UNI = 0x190B4D40
CAPSULE_WT_DATA_BLOCKED = 0x190B4D41
CAPSULE_WT_STREAMS_BLOCKED_BIDI = 0x190B4D43
CAPSULE_WT_STREAMS_BLOCKED_UNI = 0x190B4D44
KNOWN_CAPSULES = frozenset({
    CAPSULE_CLOSE_SESSION, CAPSULE_DRAIN_SESSION, CAPSULE_WT_MAX_DATA,
    CAPSULE_WT_MAX_STREAMS_BIDI, CAPSULE_WT_MAX_STREAMS_UNI, CAPSULE_WT_DATA_BLOCKED,
    CAPSULE_WT_STREAMS_BLOCKED_BIDI, CAPSULE_WT_STREAMS_BLOCKED_UNI,
})

H3_NO_ERROR = 0x100
H3_EXCESSIVE_LOAD = 0x107
H3_REQUEST_REJECTED = 0x10B
H3_REQUEST_CANCELLED = 0x10C
H3_MESSAGE_ERROR = 0x10E
SETTING_MAX_FIELD_SECTION_SIZE = 0x06
SETTING_QPACK_MAX_TABLE_CAPACITY = 0x01
SETTING_QPACK_BLOCKED_STREAMS = 0x07
WT_SESSION_GONE = 0x170D7B68
WT_BUFFERED_STREAM_REJECTED = 0x3994BD84
WT_APP_ERROR_FIRST = 0x52E4A40FA8DB
WT_APP_ERROR_LAST = 0x52E5AC983162
MAX_APP_ERROR = 0xFFFFFFFF

DIALECTS = ("auto", "draft02", "draft07", "latest")
_FRAME_DATA = 0x0
_FRAME_HEADERS = 0x1
_FRAME_SETTINGS = 0x4
_FRAME_MAX_PUSH_ID = 0xD
_SKIP = -1  # frame_type of a frame whose payload is discarded as it arrives
# The largest payload each capsule this layer reads may legally have: a declared length
# above it is refused on sight instead of waiting for (and buffering) the bytes.
_CAPSULE_MAX_BYTES = {
    CAPSULE_CLOSE_SESSION: 4 + 1024,  # code + reason of at most 1024 bytes
    CAPSULE_DRAIN_SESSION: 0,
    CAPSULE_WT_MAX_DATA: 8, CAPSULE_WT_MAX_STREAMS_BIDI: 8, CAPSULE_WT_MAX_STREAMS_UNI: 8,
    CAPSULE_WT_DATA_BLOCKED: 8, CAPSULE_WT_STREAMS_BLOCKED_BIDI: 8,
    CAPSULE_WT_STREAMS_BLOCKED_UNI: 8,
}
_EVENT_OVERHEAD_BYTES = 64  # what one held StreamData costs besides its data, roughly
_H3_FRAME_LIMIT_BYTES = 16 * 1024  # SETTINGS / MAX_PUSH_ID frames aioquic buffers whole


def app_error_to_h3(code: int) -> int:
    """A WebTransport application error code as an HTTP/3 error code."""
    if not 0 <= code <= MAX_APP_ERROR:
        raise ConfigError(f"WebTransport error code {code} is outside 0..2**32-1; use a smaller code")
    return WT_APP_ERROR_FIRST + code + code // 0x1E


def h3_error_to_app(code: int) -> int:
    """The WebTransport application code behind an HTTP/3 error code (or ``code``
    unchanged if it is not in the WebTransport range, e.g. a plain QUIC code)."""
    if WT_APP_ERROR_FIRST <= code <= WT_APP_ERROR_LAST and (code - 0x21) % 0x1F:
        shifted = code - WT_APP_ERROR_FIRST
        return shifted - shifted // 0x1F
    return code


def encode_capsule(capsule_type: int, payload: bytes) -> bytes:
    return encode_uint_var(capsule_type) + encode_uint_var(len(payload)) + payload


def encode_close_capsule(code: int, reason: str) -> bytes:
    if not 0 <= code <= MAX_APP_ERROR:
        raise ConfigError(f"session close code {code} is outside 0..2**32-1; use a smaller code")
    reason_bytes = reason.encode("utf-8")
    if len(reason_bytes) > 1024:
        raise ConfigError("a session close reason is at most 1024 bytes of UTF-8; shorten it")
    return encode_capsule(CAPSULE_CLOSE_SESSION, code.to_bytes(4, "big") + reason_bytes)


def _frame(frame_type: int, payload: bytes) -> bytes:
    return encode_uint_var(frame_type) + encode_uint_var(len(payload)) + payload


# ------------------------------------------------------------------------ events
@dataclass(slots=True, frozen=True)
class WtEvent:
    """Base class of WebTransport events."""


@dataclass(slots=True, frozen=True)
class SessionRequested(WtEvent):
    """(server) A client asked for a session; answer with ``accept`` or ``reject``."""

    session_id: int
    path: str
    authority: str
    headers: tuple[tuple[bytes, bytes], ...]


@dataclass(slots=True, frozen=True)
class SessionEstablished(WtEvent):
    """(client) The server answered 2xx; the session is open."""

    session_id: int
    status: int
    headers: tuple[tuple[bytes, bytes], ...]


@dataclass(slots=True, frozen=True)
class SessionRejected(WtEvent):
    """(client) The server answered with a non-2xx status (0: it reset the request)."""

    session_id: int
    status: int
    reason: str = ""


@dataclass(slots=True, frozen=True)
class SessionClosed(WtEvent):
    """The peer closed the session (capsule, FIN or reset of the CONNECT stream)."""

    session_id: int
    code: int
    reason: str


@dataclass(slots=True, frozen=True)
class SessionDraining(WtEvent):
    """The peer asked to wind the session down (DRAIN_WEBTRANSPORT_SESSION)."""

    session_id: int


@dataclass(slots=True, frozen=True)
class CreditAvailable(WtEvent):
    """(latest dialect) The peer raised a stream or data limit of the session."""

    session_id: int


@dataclass(slots=True, frozen=True)
class CapsuleReceived(WtEvent):
    """A capsule this layer does not interpret itself (or a blocked signal)."""

    session_id: int
    capsule_type: int
    payload: bytes


@dataclass(slots=True, frozen=True)
class StreamData(WtEvent):
    """Data (and/or FIN) on a WebTransport stream; ``new`` on the peer's first event."""

    session_id: int
    stream_id: int
    data: bytes
    end_stream: bool
    new: bool


@dataclass(slots=True, frozen=True)
class StreamResetReceived(WtEvent):
    session_id: int
    stream_id: int
    code: int


@dataclass(slots=True, frozen=True)
class StopSendingReceived(WtEvent):
    session_id: int
    stream_id: int
    code: int


@dataclass(slots=True, frozen=True)
class DatagramReceived(WtEvent):
    session_id: int
    data: bytes


@dataclass(slots=True, frozen=True)
class HandshakeDone(WtEvent):
    alpn: str | None


@dataclass(slots=True, frozen=True)
class SettingsReceived(WtEvent):
    settings: dict


@dataclass(slots=True, frozen=True)
class ConnectionClosed(WtEvent):
    error_code: int
    reason: str



# ------------------------------------------------------------------ state
class _H3(H3Connection):
    """aioquic's H3Connection with our SETTINGS (all dialects we speak).

    ``qpack_table=False`` (the server) grants the peer no QPACK dynamic table: a
    header block can then reference only the static table and literals, so a small
    block cannot decode into a large one (a 16 KiB block of one-byte references to a
    4 KiB table entry would decode to 64 MiB).
    """

    def __init__(self, quic: QuicConnection, extra_settings: dict[int, int],
                 qpack_table: bool = True) -> None:
        self._extra_settings = dict(extra_settings)
        if not qpack_table:
            self._extra_settings[SETTING_QPACK_MAX_TABLE_CAPACITY] = 0
            self._extra_settings[SETTING_QPACK_BLOCKED_STREAMS] = 0
        super().__init__(quic, enable_webtransport=True)
        if not qpack_table:
            import pylsqpack

            self._max_table_capacity = self._blocked_streams = 0
            self._decoder = pylsqpack.Decoder(0, 0)

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        settings.pop(Setting.DUMMY, None)
        settings.update(self._extra_settings)
        return settings


class _WtStream:
    __slots__ = ("stream_id", "session_id", "recv_done", "send_done", "local", "uni", "started")

    def __init__(self, stream_id: int, session_id: int, local: bool, uni: bool) -> None:
        self.stream_id = stream_id
        self.session_id = session_id
        self.local = local
        self.uni = uni
        self.recv_done = local and uni  # our uni stream has no receive side
        self.send_done = uni and not local  # peer's uni stream has no send side
        self.started = False  # peer stream reported to the application yet


class _Session:
    __slots__ = (
        "session_id", "state", "dialect", "path", "authority", "datagram_prefix", "streams",
        "pending", "fc", "local_max_data", "recv_bytes", "peer_max_data", "sent_bytes",
        "local_max_bidi", "local_max_uni", "peer_opened_bidi", "peer_opened_uni",
        "peer_closed_bidi", "peer_closed_uni", "peer_max_bidi", "peer_max_uni",
        "opened_bidi", "opened_uni", "window", "init_bidi", "init_uni", "close_sent",
        "blocked_sent", "early", "early_bytes",
    )

    def __init__(self, session_id: int, dialect: str) -> None:
        self.session_id = session_id
        self.state = "pending"  # pending -> open -> closed
        self.dialect = dialect
        self.path = ""
        self.authority = ""
        self.datagram_prefix = encode_uint_var(session_id // 4)
        self.streams: set[int] = set()
        self.pending: list[StreamData] = []  # peer streams that arrived before the session opened
        self.early = False  # created for streams that overtook their CONNECT request
        self.early_bytes = 0  # what ``pending`` holds, as counted against the early budget
        self.fc = dialect == "latest"
        self.local_max_data = 0
        self.recv_bytes = 0
        self.peer_max_data = 0
        self.sent_bytes = 0
        self.local_max_bidi = self.local_max_uni = 0
        self.peer_opened_bidi = self.peer_opened_uni = 0
        self.peer_closed_bidi = self.peer_closed_uni = 0
        self.peer_max_bidi = self.peer_max_uni = 0
        self.opened_bidi = self.opened_uni = 0
        self.window = 0
        self.init_bidi = self.init_uni = 0
        self.close_sent = False
        self.blocked_sent: set[tuple[str, int]] = set()


class _RequestStream:
    """Our parser for a request/CONNECT stream: HEADERS go to aioquic, the rest we read.

    What it keeps between calls is bounded: an incomplete frame header, one HEADERS
    frame of at most ``max_header_bytes``, one capsule of a type this layer reads (at
    most its legal size); DATA payloads and frames or capsules it does not read are
    consumed as they arrive.
    """

    __slots__ = ("stream_id", "buf", "frame_type", "frame_left", "capsules", "capsule_skip",
                 "headers_seen", "ended", "refused", "held")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.buf = bytearray()
        self.frame_type: int | None = None  # DATA or skipped frame being streamed
        self.frame_left = 0
        self.capsules = bytearray()  # capsule bytes carried in DATA frames, not yet parsed
        self.capsule_skip = 0  # payload bytes of an unread capsule still to discard
        self.headers_seen = False
        self.ended = False
        self.refused = False  # answered (431, or a malformed request): later data is dropped
        self.held = 0  # len(buf) + len(capsules) as last counted in the connection's total


@dataclass
class FlowLimits:
    """What this endpoint grants its peer per session in the ``latest`` dialect.

    ``max_data`` is the session's stream-data window (bytes, re-granted as data
    arrives); ``max_streams_bidi`` / ``max_streams_uni`` the number of peer
    streams open at once. ``max_sessions`` (sessions on this connection) is
    advertised in SETTINGS and bounds the sessions a server keeps for streams
    that overtook their CONNECT request. ``max_header_bytes`` and ``max_early_bytes``
    bound what the layer buffers itself (see :meth:`WebTransportConnection.held_bytes`).
    """

    max_sessions: int = 100
    max_data: int = 16 * 1024 * 1024
    max_streams_bidi: int = 256
    max_streams_uni: int = 256
    #: largest header block accepted (HEADERS frame payload and decoded field section);
    #: a server answers a larger request 431 before buffering it
    max_header_bytes: int = 16 * 1024
    #: bytes held for streams that arrive before their session is requested; beyond,
    #: such a stream is refused with WT_BUFFERED_STREAM_REJECTED
    max_early_bytes: int = 1024 * 1024


def _pull_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, new_pos) of the QUIC varint at ``pos``, or None if incomplete."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    length = 1 << (first >> 6)
    if pos + length > len(buf):
        return None
    value = first & 0x3F
    for i in range(1, length):
        value = (value << 8) | buf[pos + i]
    return value, pos + length


class BufferLedger:
    """Bytes buffered for peers over several connections (a server's total): every
    :class:`WebTransportConnection` sharing it adds what it holds and what its
    sessions hold unread."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0


class WebTransportConnection:
    """WebTransport over one HTTP/3 connection (client or server side), sans-IO.

    Feed every event from ``quic.next_event()`` to :meth:`handle_event`; it
    returns the WebTransport events. After any call, the driver must transmit
    (``quic.datagrams_to_send(now)``).

    Whatever the peer sends, what this layer holds itself stays bounded
    (:meth:`held_bytes`): see :class:`_RequestStream` and :class:`FlowLimits`. A
    peer that breaks a bound has its request answered 431, its session ended
    with H3_MESSAGE_ERROR, its early stream refused, or (an oversized frame on a
    control stream) its connection closed with H3_EXCESSIVE_LOAD.
    """

    def __init__(self, quic: QuicConnection, *, dialect: str = "auto",
                 limits: FlowLimits | None = None, ledger: BufferLedger | None = None) -> None:
        if dialect not in DIALECTS:
            raise ConfigError(f"unknown WebTransport dialect {dialect!r}; use one of {DIALECTS}")
        self.quic = quic
        self.is_client = quic.configuration.is_client
        self.dialect = dialect
        self.limits = limits or FlowLimits()
        settings: dict[int, int] = {SETTING_H3_DATAGRAM: 1, SETTING_ENABLE_CONNECT_PROTOCOL: 1}
        lim = self.limits
        max_sessions = 1 if self.is_client else lim.max_sessions
        if dialect in ("auto", "draft02"):
            settings[SETTING_ENABLE_WEBTRANSPORT] = 1
        if dialect in ("auto", "draft07"):
            settings[SETTING_WEBTRANSPORT_MAX_SESSIONS_DRAFT07] = max_sessions
        if dialect in ("auto", "latest"):
            settings[SETTING_WT_MAX_SESSIONS] = max_sessions
            settings[SETTING_WT_INITIAL_MAX_DATA] = lim.max_data
            settings[SETTING_WT_INITIAL_MAX_STREAMS_BIDI] = lim.max_streams_bidi
            settings[SETTING_WT_INITIAL_MAX_STREAMS_UNI] = lim.max_streams_uni
        if not self.is_client:
            settings[SETTING_MAX_FIELD_SECTION_SIZE] = lim.max_header_bytes
        self.h3 = _H3(quic, settings, qpack_table=self.is_client)
        self.peer_settings: dict[int, int] | None = None
        self.sessions: dict[int, _Session] = {}
        self.streams: dict[int, _WtStream] = {}
        self._requests: dict[int, _RequestStream] = {}
        self._h3_streams: set[int] = set()
        self._prefix: dict[int, bytearray] = {}  # peer streams whose type is not known yet
        # peer streams we sent STOP_SENDING on: data still in flight for them is dropped
        # (parsing it as a new stream's header would misread it as an HTTP/3 stream type)
        self._stopped: set[int] = set()
        self._early_sessions = 0  # sessions created for streams that overtook their request
        self._held = 0  # bytes this layer holds (see held_bytes)
        #: where this connection's buffered bytes are also counted (a server's total)
        self.ledger = ledger if ledger is not None else BufferLedger()
        #: bytes received and not yet read by the application, kept up to date by the
        #: asyncio layer (``Session``); part of :meth:`buffered_bytes`
        self.app_buffered_bytes = 0
        #: (error code, reason) once this layer closed the QUIC connection itself
        self.close_reason: tuple[int, str] | None = None
        self.closed = False

    # ------------------------------------------------------------- accounting
    def held_bytes(self) -> int:
        """Bytes this layer holds itself: partial frames and capsules of request streams,
        header blocks being collected, data of streams waiting for their session and
        partial stream headers."""
        return self._held

    def buffered_bytes(self) -> int:
        """:meth:`held_bytes` plus what the application has received and not yet read."""
        return self._held + self.app_buffered_bytes

    def _hold(self, nbytes: int) -> None:
        self._held += nbytes
        self.ledger.total += nbytes

    def release(self) -> None:
        """The connection is gone: take what this layer held out of the ledger."""
        self.ledger.total -= self._held
        self._held = 0

    # ------------------------------------------------------------- negotiation
    def negotiated_dialect(self) -> str:
        """The dialect to use with this peer (needs its SETTINGS when ``auto``)."""
        if self.dialect != "auto":
            return self.dialect
        peer = self.peer_settings or {}
        if SETTING_WT_MAX_SESSIONS in peer:
            return "latest"
        if SETTING_WEBTRANSPORT_MAX_SESSIONS_DRAFT07 in peer:
            return "draft07"
        return "draft02"

    def peer_supports_webtransport(self) -> bool:
        peer = self.peer_settings or {}
        return peer.get(SETTING_H3_DATAGRAM) == 1 and (
            peer.get(SETTING_ENABLE_WEBTRANSPORT) == 1
            or peer.get(SETTING_WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 0) > 0
            or peer.get(SETTING_WT_MAX_SESSIONS, 0) > 0
        )

    # ------------------------------------------------------------------ client
    def connect(self, path: str, authority: str,
                headers: list[tuple[bytes, bytes]] | None = None) -> int:
        """(client) Send the extended CONNECT; returns the session id (its stream id)."""
        dialect = self.negotiated_dialect()
        sid = self.quic.get_next_available_stream_id()
        req = [(b":method", b"CONNECT"), (b":scheme", b"https"),
               (b":authority", authority.encode()), (b":path", path.encode()),
               (b":protocol", b"webtransport")]
        if dialect == "draft02":
            req.append((b"sec-webtransport-http3-draft02", b"1"))
        req.extend(headers or [])
        self.h3.send_headers(sid, req)
        session = self._new_session(sid, dialect)
        session.path = path
        session.authority = authority
        self._requests[sid] = _RequestStream(sid)
        return sid

    # ------------------------------------------------------------------ server
    def accept(self, session_id: int, headers: list[tuple[bytes, bytes]] | None = None) -> list[WtEvent]:
        """(server) Answer 200 and open the session; returns events of streams that waited."""
        session = self.sessions[session_id]
        resp = [(b":status", b"200")]
        if session.dialect == "draft02":
            resp.append((b"sec-webtransport-http3-draft", b"draft02"))
        resp.extend(headers or [])
        self.h3.send_headers(session_id, resp)
        return self._open(session)

    def reject(self, session_id: int, status: int = 404) -> None:
        """(server) Answer a non-2xx status and forget the request (what the peer still
        sends on that stream is discarded)."""
        self._answer(session_id, status)
        session = self.sessions.get(session_id)
        if session is not None:
            self._drop_session(session, WT_SESSION_GONE)

    def _answer(self, stream_id: int, status: int) -> None:
        """(server) A final non-2xx response with FIN; the request stream is refused."""
        try:
            self.h3.send_headers(stream_id, [(b":status", str(status).encode())],
                                 end_stream=True)
        except Exception:  # the stream may be reset already: nothing to answer
            pass
        self.h3._stream.pop(stream_id, None)
        req = self._requests.get(stream_id)
        if req is not None:
            self._refuse_request(req)

    # ----------------------------------------------------------------- streams
    def can_open_stream(self, session_id: int, uni: bool) -> bool:
        s = self.sessions.get(session_id)
        if s is None or s.state != "open":
            return False
        if not s.fc:
            return True
        return s.opened_uni < s.peer_max_uni if uni else s.opened_bidi < s.peer_max_bidi

    def open_stream(self, session_id: int, uni: bool) -> int:
        """Open a WebTransport stream; check :meth:`can_open_stream` first (flow control)."""
        s = self.sessions[session_id]
        if s.state != "open":
            raise ConfigError("the session is not open; streams need an established session")
        quic = self.quic
        sid = quic.get_next_available_stream_id(is_unidirectional=uni)
        if uni:
            quic.send_stream_data(sid, encode_uint_var(STREAM_TYPE_WEBTRANSPORT)
                                  + encode_uint_var(session_id))
            s.opened_uni += 1
        else:
            quic.send_stream_data(sid, encode_uint_var(FRAME_WEBTRANSPORT_STREAM)
                                  + encode_uint_var(session_id))
            s.opened_bidi += 1
        st = _WtStream(sid, session_id, True, uni)
        st.started = True
        self.streams[sid] = st
        s.streams.add(sid)
        return sid

    def signal_streams_blocked(self, session_id: int, uni: bool) -> None:
        """(latest) Tell the peer we want more streams (WT_STREAMS_BLOCKED), once per limit."""
        s = self.sessions.get(session_id)
        if s is None or not s.fc or s.state != "open":
            return
        limit = s.peer_max_uni if uni else s.peer_max_bidi
        key = ("u" if uni else "b", limit)
        if key in s.blocked_sent:
            return
        s.blocked_sent.add(key)
        ctype = CAPSULE_WT_STREAMS_BLOCKED_UNI if uni else CAPSULE_WT_STREAMS_BLOCKED_BIDI
        self._send_capsule(s, encode_capsule(ctype, encode_uint_var(limit)))

    def signal_data_blocked(self, session_id: int) -> None:
        """(latest) Tell the peer we are out of session data credit (WT_DATA_BLOCKED)."""
        s = self.sessions.get(session_id)
        if s is None or not s.fc or s.state != "open":
            return
        key = ("d", s.peer_max_data)
        if key in s.blocked_sent:
            return
        s.blocked_sent.add(key)
        self._send_capsule(s, encode_capsule(CAPSULE_WT_DATA_BLOCKED,
                                             encode_uint_var(s.peer_max_data)))

    def send_credit(self, session_id: int) -> int:
        """Stream bytes the session may still send (a large number without flow control)."""
        s = self.sessions.get(session_id)
        if s is None:
            return 0
        if not s.fc:
            return 1 << 62
        return s.peer_max_data - s.sent_bytes

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        st = self.streams.get(stream_id)
        if st is None:
            raise ConfigError(f"stream {stream_id} is closed; open a new stream")
        if data:
            s = self.sessions[st.session_id]
            if s.fc:
                s.sent_bytes += len(data)
        self.quic.send_stream_data(stream_id, data, end_stream)
        if end_stream:
            st.send_done = True
            self._maybe_forget(st)

    def reset_stream(self, stream_id: int, code: int = 0) -> None:
        st = self.streams.get(stream_id)
        if st is None or st.send_done:
            # FIN already queued: RESET_STREAM is still valid until every byte is
            # acknowledged (RFC 9000 section 3.1), and it stops what is not yet sent.
            qs = self.quic._streams.get(stream_id)
            local = bool(stream_id & 1) != self.is_client
            if qs is not None and (local or not stream_id & 2) \
                    and not qs.sender.is_finished and qs.sender._reset_error_code is None:
                self.quic.reset_stream(stream_id, app_error_to_h3(code))
            return
        st.send_done = True
        self.quic.reset_stream(stream_id, app_error_to_h3(code))
        self._maybe_forget(st)

    def stop_stream(self, stream_id: int, code: int = 0) -> None:
        st = self.streams.get(stream_id)
        if st is None or st.recv_done:
            return
        st.recv_done = True
        self.quic.stop_stream(stream_id, app_error_to_h3(code))
        self._stopped.add(stream_id)
        self._maybe_forget(st)

    # --------------------------------------------------------------- datagrams
    def send_datagram(self, session_id: int, data: bytes) -> None:
        self.quic.send_datagram_frame(self.sessions[session_id].datagram_prefix + data)

    def max_datagram_payload(self, session_id: int) -> int:
        """Largest datagram payload that fits one QUIC packet for this session."""
        quic = self.quic
        peer_cid = len(quic._peer_cid.cid) if getattr(quic, "_peer_cid", None) else 20
        # short header + packet number + AEAD tag; DATAGRAM frame type + length varint
        overhead = 1 + peer_cid + 2 + 16 + 1 + 2
        room = quic._max_datagram_size - overhead - len(encode_uint_var(session_id // 4))
        remote = quic._remote_max_datagram_frame_size
        if remote is not None:
            room = min(room, remote - 1 - 2 - len(encode_uint_var(session_id // 4)))
        return max(0, room)

    # ----------------------------------------------------------------- session
    def close_session(self, session_id: int, code: int = 0, reason: str = "") -> None:
        """Send CLOSE_WEBTRANSPORT_SESSION, FIN the CONNECT stream, abort the session's streams."""
        s = self.sessions.get(session_id)
        if s is None or s.state == "closed":
            return
        capsule = encode_close_capsule(code, reason)
        if not s.close_sent:
            s.close_sent = True
            try:
                self._send_capsule(s, capsule, end_stream=True)
            except Exception:  # the CONNECT stream may already be reset by the peer
                pass
        self._drop_session(s, WT_SESSION_GONE)

    def drain_session(self, session_id: int) -> None:
        s = self.sessions.get(session_id)
        if s is not None and s.state == "open":
            self._send_capsule(s, encode_capsule(CAPSULE_DRAIN_SESSION, b""))

    def _send_capsule(self, s: _Session, capsule: bytes, end_stream: bool = False) -> None:
        if s.dialect == "latest":
            data = capsule  # bare, as pywebtransport expects
        else:
            data = _frame(_FRAME_DATA, capsule)
        self.quic.send_stream_data(s.session_id, data, end_stream)

    # ------------------------------------------------------------ event input
    def handle_event(self, event: QuicEvent) -> list[WtEvent]:
        """Translate one QUIC event; returns WebTransport events (possibly none)."""
        if isinstance(event, QuicStreamData):
            st = self.streams.get(event.stream_id)
            if st is not None:  # hot path: data on a known WebTransport stream
                return self._stream_data(st, event.data, event.end_stream)
            return self._other_stream_data(event)
        if isinstance(event, DatagramFrameReceived):
            data = event.data
            got = _pull_varint(data, 0)
            if got is None:
                return []
            s = self.sessions.get(got[0] * 4)
            if s is None or s.state != "open":
                return []  # unreliable: datagrams of unknown or closed sessions are dropped
            return [DatagramReceived(s.session_id, data[got[1]:])]
        if isinstance(event, QuicStreamReset):
            return self._stream_reset(event.stream_id, event.error_code)
        if isinstance(event, QuicStopSending):
            st = self.streams.get(event.stream_id)
            if st is not None:
                st.send_done = True  # aioquic has reset our sending side already
                out = [StopSendingReceived(st.session_id, st.stream_id,
                                            h3_error_to_app(event.error_code))]
                self._maybe_forget(st)
                return out
            if event.stream_id in self._requests:
                return []
            return self._to_h3(event)
        if isinstance(event, HandshakeCompleted):
            return [HandshakeDone(event.alpn_protocol)]
        if isinstance(event, ConnectionTerminated):
            self.closed = True
            out: list[WtEvent] = []
            for s in list(self.sessions.values()):
                if s.state != "closed":
                    if s.state == "pending" and self.is_client:
                        out.append(SessionRejected(s.session_id, 0, event.reason_phrase))
                    else:
                        out.append(SessionClosed(s.session_id, 0, event.reason_phrase))
                    s.state = "closed"
            out.append(ConnectionClosed(event.error_code, event.reason_phrase))
            return out
        return []

    # ------------------------------------------------------------ internals
    def _stream_data(self, st: _WtStream, data: bytes, end: bool) -> list[WtEvent]:
        s = self.sessions.get(st.session_id)
        if s is None:
            return []
        new = not st.started
        ev = StreamData(st.session_id, st.stream_id, data, end, new)
        if s.state != "open":
            if s.state == "pending":
                self._hold_early(s, st, ev)
            return []
        st.started = True
        out: list[WtEvent] = [ev]
        if s.fc and data:
            s.recv_bytes += len(data)
            if s.recv_bytes + s.window // 2 > s.local_max_data:
                s.local_max_data = s.recv_bytes + s.window
                self._send_capsule(s, encode_capsule(CAPSULE_WT_MAX_DATA,
                                                     encode_uint_var(s.local_max_data)))
        if end:
            st.recv_done = True
            self._maybe_forget(st)
        return out

    def _hold_early(self, s: _Session, st: _WtStream, ev: StreamData) -> None:
        """Keep data of a stream whose session is not open yet, within the early budget;
        beyond it, refuse that stream (WT_BUFFERED_STREAM_REJECTED) and drop what it held."""
        cost = len(ev.data) + _EVENT_OVERHEAD_BYTES
        early_total = sum(x.early_bytes for x in self.sessions.values() if x.state == "pending")
        if early_total + cost > self.limits.max_early_bytes:
            kept = [e for e in s.pending if e.stream_id != st.stream_id]
            freed = sum(len(e.data) + _EVENT_OVERHEAD_BYTES for e in s.pending) - sum(
                len(e.data) + _EVENT_OVERHEAD_BYTES for e in kept)
            s.pending = kept
            s.early_bytes -= freed
            self._hold(-freed)
            self._abort_stream(st, WT_BUFFERED_STREAM_REJECTED)
            return
        s.pending.append(ev)
        s.early_bytes += cost
        self._hold(cost)

    def _abort_stream(self, st: _WtStream, h3_code: int) -> None:
        """Forget a peer stream now: STOP_SENDING (and RESET_STREAM if bidirectional)."""
        self.streams.pop(st.stream_id, None)
        s = self.sessions.get(st.session_id)
        if s is not None:
            s.streams.discard(st.stream_id)
        if not st.recv_done:
            self._stopped.add(st.stream_id)
        self._refuse_stream(st.stream_id, st.uni, h3_code)

    def _grant_stream(self, st: _WtStream) -> None:
        """A peer-opened stream is finished both ways: grant a new one in ``latest``.

        Granting only then keeps the peer's open streams within the initial limit, which
        is what a server enforcing ``max_streams_per_session`` counts.
        """
        if st.local:
            return
        s = self.sessions.get(st.session_id)
        if s is None or not s.fc or s.state != "open":
            return
        if st.uni:
            s.peer_closed_uni += 1
            target = s.peer_closed_uni + s.init_uni
            if target - s.local_max_uni >= max(1, s.init_uni // 4):
                s.local_max_uni = target
                self._send_capsule(s, encode_capsule(CAPSULE_WT_MAX_STREAMS_UNI,
                                                     encode_uint_var(target)))
        else:
            s.peer_closed_bidi += 1
            target = s.peer_closed_bidi + s.init_bidi
            if target - s.local_max_bidi >= max(1, s.init_bidi // 4):
                s.local_max_bidi = target
                self._send_capsule(s, encode_capsule(CAPSULE_WT_MAX_STREAMS_BIDI,
                                                     encode_uint_var(target)))

    def _maybe_forget(self, st: _WtStream) -> None:
        if st.recv_done and st.send_done:
            if self.streams.pop(st.stream_id, None) is None:
                return
            s = self.sessions.get(st.session_id)
            if s is not None:
                s.streams.discard(st.stream_id)
                if not st.local and s.fc:
                    self._grant_stream(st)

    def _other_stream_data(self, event: QuicStreamData) -> list[WtEvent]:
        sid = event.stream_id
        if sid in self._h3_streams:
            out = self._to_h3(event)
            self._check_h3_stream(sid)
            return out
        req = self._requests.get(sid)
        if req is not None:
            return self._request_data(req, event.data, event.end_stream)
        uni = bool(sid & 2)
        peer_initiated = bool(sid & 1) == self.is_client
        if not peer_initiated:
            return []  # late data for a stream we forgot
        if sid in self._stopped:
            if event.end_stream:
                self._stopped.discard(sid)
            return []  # data that was in flight when we sent STOP_SENDING
        # the stream's first bytes: its type (and session id), at most two varints
        buf = self._prefix.pop(sid, None)
        if buf is None:
            buf = bytearray(event.data)
        else:
            self._hold(-len(buf))
            buf += event.data
        got = _pull_varint(buf, 0)
        if got is None:
            return self._keep_prefix(sid, buf, event.end_stream)
        kind, pos = got
        is_wt = (kind == STREAM_TYPE_WEBTRANSPORT) if uni else (kind == FRAME_WEBTRANSPORT_STREAM)
        if not is_wt:
            data = bytes(buf)
            if not uni and not self.is_client:
                req = self._requests[sid] = _RequestStream(sid)
                return self._request_data(req, data, event.end_stream)
            self._h3_streams.add(sid)
            out = self._to_h3(QuicStreamData(data=data, end_stream=event.end_stream,
                                             stream_id=sid))
            self._check_h3_stream(sid)
            return out
        got = _pull_varint(buf, pos)
        if got is None:
            return self._keep_prefix(sid, buf, event.end_stream)
        session_id, pos = got
        s = self.sessions.get(session_id)
        if s is None or s.state == "closed":
            if (s is None and not self.is_client and session_id % 4 == 0
                    and self._early_sessions < self.limits.max_sessions):
                # the stream overtook its CONNECT request: keep it until the request arrives
                self._early_sessions += 1
                s = self._new_session(session_id, self.negotiated_dialect())
                s.early = True
            else:
                if not event.end_stream:
                    self._stopped.add(sid)
                self._refuse_stream(sid, uni)
                return []
        st = _WtStream(sid, session_id, False, uni)
        self.streams[sid] = st
        s.streams.add(sid)
        if s.fc:
            if uni:
                s.peer_opened_uni += 1
            else:
                s.peer_opened_bidi += 1
        return self._stream_data(st, bytes(buf[pos:]), event.end_stream)

    def _keep_prefix(self, sid: int, buf: bytearray, end: bool) -> list[WtEvent]:
        """An incomplete stream header (at most 16 bytes): wait for the rest."""
        if not end:
            self._prefix[sid] = buf
            self._hold(len(buf))
        return []

    def _check_h3_stream(self, sid: int) -> None:
        """aioquic buffers a SETTINGS or MAX_PUSH_ID frame whole on the control stream: close
        the connection as soon as one declares an absurd length (or a buffer grows past
        it), instead of buffering it."""
        st = self.h3._stream.get(sid)
        if st is None or self.close_reason is not None:
            return
        declared = st.frame_size if st.frame_type in (_FRAME_SETTINGS, _FRAME_MAX_PUSH_ID) else 0
        if len(st.buffer) > _H3_FRAME_LIMIT_BYTES or (declared or 0) > _H3_FRAME_LIMIT_BYTES:
            self.close_connection(H3_EXCESSIVE_LOAD, f"HTTP/3 frame on stream {sid} larger than "
                                  f"{_H3_FRAME_LIMIT_BYTES} bytes")

    def close_connection(self, error_code: int, reason: str) -> None:
        """Close the QUIC connection (CONNECTION_CLOSE with an HTTP/3 error code)."""
        if self.close_reason is None:
            self.close_reason = (error_code, reason)
            self.quic.close(error_code=error_code, reason_phrase=reason)

    def _refuse_stream(self, sid: int, uni: bool, h3_code: int = WT_SESSION_GONE) -> None:
        try:
            self.quic.stop_stream(sid, h3_code)
            if not uni:
                self.quic.reset_stream(sid, h3_code)
        except ValueError:
            pass

    def _refuse_request(self, req: _RequestStream) -> None:
        """Stop reading a request stream: drop what it holds, discard what still comes."""
        req.refused = True
        self._hold(-req.held)
        req.held = 0
        req.buf = bytearray()
        req.capsules = bytearray()
        req.frame_type = None

    def _request_data(self, req: _RequestStream, data: bytes, end: bool) -> list[WtEvent]:
        if req.refused:
            if end:
                self._requests.pop(req.stream_id, None)
            return []
        out: list[WtEvent] = []
        buf = req.buf
        buf += data
        pos = 0
        n = len(buf)
        max_header = self.limits.max_header_bytes
        while pos < n and not req.refused:
            if req.frame_type is not None:  # streaming a DATA frame or discarding a frame
                take = min(req.frame_left, n - pos)
                if req.frame_type == _FRAME_DATA:
                    out.extend(self._capsule_bytes(req, buf[pos:pos + take]))
                pos += take
                req.frame_left -= take
                if req.frame_left == 0:
                    req.frame_type = None
                continue
            got = _pull_varint(buf, pos)
            if got is None:
                break
            ftype, p = got
            got = _pull_varint(buf, p)
            if got is None:
                break
            flen, p = got
            if ftype == _FRAME_HEADERS and not req.headers_seen:
                if flen > max_header:
                    out.extend(self._headers_too_large(req, flen))
                    break
                if p + flen > n:
                    break  # wait for the whole frame (at most max_header_bytes)
                payload = bytes(buf[p:p + flen])
                pos = p + flen
                req.headers_seen = True
                last = end and pos == n
                out.extend(self._to_h3(QuicStreamData(
                    data=_frame(_FRAME_HEADERS, payload), end_stream=last,
                    stream_id=req.stream_id)))
            elif ftype in _CAPSULE_MAX_BYTES:  # a bare capsule (pywebtransport style)
                if flen > _CAPSULE_MAX_BYTES[ftype]:
                    out.extend(self._malformed(req, f"capsule 0x{ftype:x} of {flen} bytes"))
                    break
                if p + flen > n:
                    break  # wait for the whole capsule (a few bytes)
                payload = bytes(buf[p:p + flen])
                pos = p + flen
                out.extend(self._capsule(req.stream_id, ftype, payload))
            else:  # DATA (capsules inside), trailers or a frame we do not read: stream it
                pos = p
                if flen:
                    req.frame_type = _FRAME_DATA if ftype == _FRAME_DATA else _SKIP
                    req.frame_left = flen
        if req.refused:
            pos = n
        if pos:
            del buf[:pos]
        if end and not req.ended:
            req.ended = True
            out.extend(self._request_ended(req.stream_id))
            self._refuse_request(req)  # gone from _requests: release what it held
            return out
        held = len(req.buf) + len(req.capsules)
        self._hold(held - req.held)
        req.held = held
        return out

    def _headers_too_large(self, req: _RequestStream, nbytes: int) -> list[WtEvent]:
        """A header block over ``max_header_bytes``: refused on sight, never buffered."""
        sid = req.stream_id
        if self.is_client:
            s = self.sessions.get(sid)
            self._refuse_request(req)
            self._refuse_stream(sid, False, H3_REQUEST_CANCELLED)
            if s is not None and s.state == "pending":
                self._drop_session(s, H3_REQUEST_CANCELLED)
                return [SessionRejected(sid, 0, f"response header block of {nbytes} bytes is "
                                                f"over {self.limits.max_header_bytes}")]
            return []
        self._answer(sid, 431)
        try:
            self.quic.stop_stream(sid, H3_REQUEST_REJECTED)
        except ValueError:
            pass
        s = self.sessions.get(sid)
        if s is not None and s.state != "closed":
            self._drop_session(s, WT_SESSION_GONE)
        return []

    def _malformed(self, req: _RequestStream, what: str) -> list[WtEvent]:
        """A capsule longer than its type allows: end the session (H3_MESSAGE_ERROR)."""
        sid = req.stream_id
        self._refuse_request(req)
        self._refuse_stream(sid, False, H3_MESSAGE_ERROR)
        self.h3._stream.pop(sid, None)
        s = self.sessions.get(sid)
        if s is None or s.state == "closed":
            return []
        was_pending = s.state == "pending"
        self._drop_session(s, WT_SESSION_GONE)
        reason = f"malformed {what} on the CONNECT stream"
        if was_pending:
            return [SessionRejected(sid, 0, reason)] if self.is_client else []
        return [SessionClosed(sid, 0, reason)]

    def _capsule_bytes(self, req: _RequestStream, chunk: bytes | bytearray) -> list[WtEvent]:
        """Capsules carried in DATA frames, parsed as they arrive: the payload of a capsule
        this layer does not read is discarded, never collected."""
        out: list[WtEvent] = []
        i, n = 0, len(chunk)
        if req.capsule_skip:
            take = min(req.capsule_skip, n)
            req.capsule_skip -= take
            i = take
        if i >= n:
            return out
        buf = req.capsules
        buf += chunk[i:]
        pos = 0
        while True:
            got = _pull_varint(buf, pos)
            if got is None:
                break
            ctype, p = got
            got = _pull_varint(buf, p)
            if got is None:
                break
            clen, p = got
            limit = _CAPSULE_MAX_BYTES.get(ctype)
            if limit is None:  # unknown capsule (or HTTP Datagram): skip its payload
                take = min(clen, len(buf) - p)
                pos = p + take
                if take < clen:
                    req.capsule_skip = clen - take
                    break
                continue
            if clen > limit:
                out.extend(self._malformed(req, f"capsule 0x{ctype:x} of {clen} bytes"))
                return out
            if p + clen > len(buf):
                break
            out.extend(self._capsule(req.stream_id, ctype, bytes(buf[p:p + clen])))
            pos = p + clen
            if req.refused:
                return out
        if pos:
            del buf[:pos]
        return out

    def _capsule(self, session_id: int, ctype: int, payload: bytes) -> list[WtEvent]:
        s = self.sessions.get(session_id)
        if s is None or s.state == "closed":
            return []
        if ctype == CAPSULE_CLOSE_SESSION:
            code = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            reason = payload[4:].decode("utf-8", errors="replace")
            was_pending = s.state == "pending"
            # RFC: answer with FIN on the CONNECT stream (no capsule of our own)
            if not s.close_sent:
                s.close_sent = True
                try:
                    self.quic.send_stream_data(session_id, b"", end_stream=True)
                except Exception:
                    pass
            self._drop_session(s, WT_SESSION_GONE)
            if was_pending and self.is_client:
                return [SessionRejected(session_id, 0, reason)]
            return [SessionClosed(session_id, code, reason)]
        if ctype == CAPSULE_DRAIN_SESSION:
            return [SessionDraining(session_id)]
        value = None
        if ctype in (CAPSULE_WT_MAX_DATA, CAPSULE_WT_MAX_STREAMS_BIDI, CAPSULE_WT_MAX_STREAMS_UNI):
            got = _pull_varint(payload, 0)
            value = got[0] if got else None
        if value is not None:
            raised = False
            if ctype == CAPSULE_WT_MAX_DATA and value > s.peer_max_data:
                s.peer_max_data = value
                raised = True
            elif ctype == CAPSULE_WT_MAX_STREAMS_BIDI and value > s.peer_max_bidi:
                s.peer_max_bidi = value
                raised = True
            elif ctype == CAPSULE_WT_MAX_STREAMS_UNI and value > s.peer_max_uni:
                s.peer_max_uni = value
                raised = True
            return [CreditAvailable(session_id)] if raised else []
        return [CapsuleReceived(session_id, ctype, payload)]

    def _request_ended(self, stream_id: int) -> list[WtEvent]:
        """FIN on a CONNECT stream: the session is over (code 0 unless a capsule said more)."""
        s = self.sessions.get(stream_id)
        self._requests.pop(stream_id, None)
        self.h3._stream.pop(stream_id, None)
        if s is None or s.state == "closed":
            return []
        was_pending = s.state == "pending"
        if not s.close_sent:
            s.close_sent = True
            try:
                self.quic.send_stream_data(stream_id, b"", end_stream=True)
            except Exception:
                pass
        self._drop_session(s, WT_SESSION_GONE)
        if was_pending and self.is_client:
            return [SessionRejected(stream_id, 0, "server ended the CONNECT stream")]
        if was_pending:
            return []
        return [SessionClosed(stream_id, 0, "")]

    def _stream_reset(self, sid: int, error_code: int) -> list[WtEvent]:
        st = self.streams.get(sid)
        if st is not None:
            st.recv_done = True
            out: list[WtEvent] = [StreamResetReceived(st.session_id, sid, h3_error_to_app(error_code))]
            self._maybe_forget(st)
            return out
        if sid in self._requests:
            self._refuse_request(self._requests.pop(sid))
            self.h3._stream.pop(sid, None)
            s = self.sessions.get(sid)
            if s is None or s.state == "closed":
                return []
            was_pending = s.state == "pending"
            self._drop_session(s, WT_SESSION_GONE)
            if was_pending and self.is_client:
                return [SessionRejected(sid, 0, f"server reset the CONNECT stream "
                                                f"(HTTP/3 error 0x{error_code:x})")]
            return [SessionClosed(sid, h3_error_to_app(error_code), "CONNECT stream reset")]
        if sid in self._prefix:
            self._hold(-len(self._prefix.pop(sid)))
            return []
        if sid in self._stopped:
            self._stopped.discard(sid)  # the peer's answer to our STOP_SENDING
            return []
        return self._to_h3(QuicStreamReset(error_code=error_code, stream_id=sid))

    def _to_h3(self, event: QuicEvent) -> list[WtEvent]:
        out: list[WtEvent] = []
        had_settings = self.peer_settings is not None
        for h3ev in self.h3.handle_event(event):
            if isinstance(h3ev, HeadersReceived):
                out.extend(self._headers(h3ev))
        if not had_settings and self.h3.received_settings is not None:
            self.peer_settings = dict(self.h3.received_settings)
            out.insert(0, SettingsReceived(self.peer_settings))
        return out

    def _headers(self, ev: HeadersReceived) -> list[WtEvent]:
        sid = ev.stream_id
        headers = tuple(ev.headers)
        if self.is_client:
            s = self.sessions.get(sid)
            if s is None or s.state != "pending":
                return []
            status_raw = dict(headers).get(b":status", b"0")
            try:
                status = int(status_raw)
            except ValueError:
                status = 0
            if 200 <= status < 300:
                return [SessionEstablished(sid, status, headers), *self._open(s)]
            self._drop_session(s, H3_REQUEST_CANCELLED)
            return [SessionRejected(sid, status, "")]
        # server: a request
        decoded = sum(len(k) + len(v) + 32 for k, v in headers)  # RFC 9114 section 4.2.2
        if decoded > self.limits.max_header_bytes:
            self._answer(sid, 431)
            s = self.sessions.get(sid)
            if s is not None:
                self._drop_session(s, WT_SESSION_GONE)
            return []
        hd = dict(headers)
        if hd.get(b":method") == b"CONNECT" and hd.get(b":protocol") == b"webtransport":
            dialect = self.dialect
            if dialect == "auto":
                if hd.get(b"sec-webtransport-http3-draft02") == b"1":
                    dialect = "draft02"
                else:
                    dialect = self.negotiated_dialect()
            s = self.sessions.get(sid)
            if s is None:
                s = self._new_session(sid, dialect)
            else:  # streams overtook the request
                s.early = False
                self._early_sessions -= 1
                s.dialect = dialect
                s.fc = dialect == "latest"
                self._init_fc(s)
            s.path = hd.get(b":path", b"/").decode("utf-8", errors="replace")
            s.authority = hd.get(b":authority", b"").decode("utf-8", errors="replace")
            return [SessionRequested(sid, s.path, s.authority, headers)]
        # plain HTTP/3 requests are not served here
        self._answer(sid, 404)
        return []

    def _new_session(self, sid: int, dialect: str) -> _Session:
        s = _Session(sid, dialect)
        self._init_fc(s)
        self.sessions[sid] = s
        return s

    def _init_fc(self, s: _Session) -> None:
        lim = self.limits
        s.window = lim.max_data
        s.local_max_data = lim.max_data
        s.init_bidi = s.local_max_bidi = lim.max_streams_bidi
        s.init_uni = s.local_max_uni = lim.max_streams_uni
        peer = self.peer_settings or {}
        s.peer_max_data = peer.get(SETTING_WT_INITIAL_MAX_DATA, 0)
        s.peer_max_bidi = peer.get(SETTING_WT_INITIAL_MAX_STREAMS_BIDI, 0)
        s.peer_max_uni = peer.get(SETTING_WT_INITIAL_MAX_STREAMS_UNI, 0)

    def _open(self, s: _Session) -> list[WtEvent]:
        if s.fc:
            # limits may have arrived after the session was created
            peer = self.peer_settings or {}
            s.peer_max_data = max(s.peer_max_data, peer.get(SETTING_WT_INITIAL_MAX_DATA, 0))
            s.peer_max_bidi = max(s.peer_max_bidi, peer.get(SETTING_WT_INITIAL_MAX_STREAMS_BIDI, 0))
            s.peer_max_uni = max(s.peer_max_uni, peer.get(SETTING_WT_INITIAL_MAX_STREAMS_UNI, 0))
        s.state = "open"
        out: list[WtEvent] = []
        pending, s.pending = s.pending, []
        self._hold(-s.early_bytes)
        s.early_bytes = 0
        for ev in pending:
            st = self.streams.get(ev.stream_id)
            if st is not None:
                out.extend(self._stream_data(st, ev.data, ev.end_stream))
        return out

    def _drop_session(self, s: _Session, code: int) -> None:
        """Forget a session and abort whatever of its streams is still open."""
        s.state = "closed"
        quic = self.quic
        for sid in list(s.streams):
            st = self.streams.pop(sid, None)
            if st is None:
                continue
            try:
                if not st.send_done:
                    quic.reset_stream(sid, code)
                if not st.recv_done:
                    quic.stop_stream(sid, code)
            except ValueError:
                pass
        s.streams.clear()
        s.pending.clear()
        self._hold(-s.early_bytes)
        s.early_bytes = 0
        if s.early:
            s.early = False
            self._early_sessions -= 1
        self.sessions.pop(s.session_id, None)

    def stats(self) -> dict[str, Any]:
        return {"sessions": len(self.sessions), "streams": len(self.streams),
                "held_bytes": self._held, "app_buffered_bytes": self.app_buffered_bytes}
