"""A raw aioquic client for hardening tests: it sends what a well-behaved client never would.

``async with Attacker(server) as a`` opens a QUIC connection (aioquic's own asyncio
client, HTTP/3 SETTINGS from aioquic's ``H3Connection``) to a running wtlab server;
``a.send(stream_id, raw_bytes)`` writes any bytes on any stream, ``a.session(path)``
sends a well-formed extended CONNECT. Everything the server sends back is collected
in ``a.events`` (QUIC and HTTP/3 events).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from aioquic.asyncio import connect as aioquic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (
    ConnectionTerminated,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)

import wtlab


def frame(frame_type: int, payload: bytes, declared: int | None = None) -> bytes:
    """An HTTP/3 frame (or bare capsule); ``declared`` lies about the payload length."""
    return (encode_uint_var(frame_type)
            + encode_uint_var(len(payload) if declared is None else declared) + payload)


async def until(cond: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> Any:
    """Poll ``cond`` (bounded) until it is true; fail naming ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or cond}")
        await asyncio.sleep(0.005)


class _Raw(QuicConnectionProtocol):
    with_h3 = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # aioquic's HTTP/3 opens the control and QPACK streams (and sends SETTINGS) at once
        self.h3 = H3Connection(self._quic, enable_webtransport=True) if self.with_h3 else None
        self.h3_streams: set[int] = set()  # our streams whose answers HTTP/3 should parse
        self.events: list[Any] = []

    def quic_event_received(self, event: Any) -> None:
        self.events.append(event)
        if isinstance(event, StreamDataReceived | StreamReset):
            sid = event.stream_id
            if sid & 2 and sid & 1 or sid in self.h3_streams:  # server uni streams, requests
                try:
                    self.events.extend(self.h3.handle_event(event))
                except Exception as exc:  # a test client: record, do not crash the loop
                    self.events.append(exc)


class Attacker:
    """See the module docstring. ``server`` is a running ``wtlab.transport.Server``."""

    def __init__(self, server: wtlab.transport.Server, *, h3: bool = True, **config: Any) -> None:
        """``h3=False``: no HTTP/3 streams of aioquic's (the test writes its own)."""
        self.server = server
        cfg = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                verify_mode=ssl.CERT_NONE, max_datagram_frame_size=65536,
                                max_data=64 << 20, max_stream_data=16 << 20)
        for key, value in config.items():
            setattr(cfg, key, value)
        proto = type("_RawProto", (_Raw,), {"with_h3": h3})
        self._cm = aioquic_connect("127.0.0.1", server.port, configuration=cfg,
                                   create_protocol=proto, wait_connected=True)
        self.proto: _Raw | None = None

    async def __aenter__(self) -> Attacker:
        self.proto = await asyncio.wait_for(self._cm.__aenter__(), 10)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._cm.__aexit__(None, None, None)

    @property
    def quic(self):
        return self.proto._quic

    @property
    def events(self) -> list[Any]:
        return self.proto.events

    def bidi(self, parse_answer: bool = False) -> int:
        """The next bidirectional stream; ``parse_answer``: the server's answer on it is
        HTTP/3 (a response), parsed into ``events``."""
        sid = self.quic.get_next_available_stream_id()
        if parse_answer:
            self.proto.h3_streams.add(sid)
        return sid

    def uni(self) -> int:
        return self.quic.get_next_available_stream_id(is_unidirectional=True)

    def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self.quic.send_stream_data(stream_id, data, end)
        self.proto.transmit()

    def send_chunks(self, stream_id: int, chunk: bytes, count: int) -> None:
        for _ in range(count):
            self.quic.send_stream_data(stream_id, chunk)
        self.proto.transmit()

    def connect_headers(self, path: str = "/echo", authority: str | None = None,
                        extra: list[tuple[bytes, bytes]] | None = None) -> list:
        auth = authority if authority is not None else f"127.0.0.1:{self.server.port}"
        return [(b":method", b"CONNECT"), (b":scheme", b"https"),
                (b":authority", auth.encode()), (b":path", path.encode()),
                (b":protocol", b"webtransport"), *(extra or [])]

    def request(self, path: str = "/echo", **kw: Any) -> int:
        """Send an extended CONNECT; returns its stream (the session id if accepted)."""
        sid = self.bidi()
        self.send_headers(sid, self.connect_headers(path, **kw))
        return sid

    def send_headers(self, stream_id: int, headers: list, end: bool = False) -> None:
        """HEADERS through aioquic's encoder; the answer on this stream is parsed."""
        self.proto.h3_streams.add(stream_id)
        self.proto.h3.send_headers(stream_id, headers, end)
        self.proto.transmit()

    def status(self, stream_id: int) -> int | None:
        for ev in self.events:
            if isinstance(ev, HeadersReceived) and ev.stream_id == stream_id:
                return int(dict(ev.headers)[b":status"])
        return None

    async def response(self, stream_id: int, timeout_s: float = 5.0) -> int:
        return await until(lambda: self.status(stream_id), timeout_s,
                           f"a response on stream {stream_id}")

    async def session(self, path: str = "/echo") -> int:
        sid = self.request(path)
        status = await self.response(sid)
        assert status == 200, f"CONNECT {path} answered {status}"
        return sid

    def reset_code(self, stream_id: int) -> int | None:
        for ev in self.events:
            if isinstance(ev, StreamReset) and ev.stream_id == stream_id:
                return ev.error_code
        return None

    def stop_code(self, stream_id: int) -> int | None:
        for ev in self.events:
            if isinstance(ev, StopSendingReceived) and ev.stream_id == stream_id:
                return ev.error_code
        return None

    def closed(self) -> ConnectionTerminated | None:
        return next((ev for ev in self.events if isinstance(ev, ConnectionTerminated)), None)

    def endpoint(self):
        """The server's Endpoint of this connection (None once the server forgot it)."""
        peer_cid = self.quic._peer_cid.cid
        return next((ep for ep in self.server._endpoints if peer_cid in ep.cids), None)


async def echo_works(server: wtlab.transport.Server, payload: bytes = b"still served") -> bool:
    """A normal client, served alongside: one bidirectional echo."""
    async with wtlab.connect(server.url("/echo"), cert_hashes=[server.cert_sha256],
                             timeout=10) as session:
        stream = await session.open_bidi()
        stream.write(payload)
        stream.write_eof()
        return await asyncio.wait_for(stream.read(), 10) == payload
