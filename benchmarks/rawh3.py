"""A minimal WebTransport (draft-02) client and server written directly on aioquic.

This is the baseline of ``benchmarks/transport.py``: what a careful user gets
from aioquic 1.7.2's own asyncio layer (``QuicConnectionProtocol``, which
transmits after every received datagram) and ``H3Connection``, with no
framework on top. It is deliberately small, and just complete enough to be
fair: bounded send buffering (``drain``), streams and datagrams.

Both ends speak the bench protocol shared by every contender:

- ``/echo``: a bidirectional stream is echoed on itself (FIN answers FIN), a
  unidirectional stream on a new unidirectional stream, a datagram as a datagram;
- ``/sink``: each bidirectional stream is read to its FIN and answered with one
  JSON object (``SinkReport``) and FIN; datagrams are counted per session.

The server also works with Chromium (``sec-webtransport-http3-draft: draft02``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import asdict, dataclass

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import (
    DatagramReceived,
    H3Event,
    HeadersReceived,
    WebTransportStreamDataReceived,
)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import stream_is_unidirectional
from aioquic.quic.events import ProtocolNegotiated, QuicEvent, StreamDataReceived

# Send-side bound per stream (bytes not yet sent once) and for queued datagrams.
STREAM_HIGH_WATER_BYTES = 1 << 20
DATAGRAM_HIGH_WATER = 256
MAX_DATAGRAM_FRAME_SIZE = 65536


@dataclass
class SinkReport:
    """What ``/sink`` answers on a stream: the stream's bytes and the session's datagrams."""

    bytes: int
    datagrams: int
    datagram_bytes: int
    datagram_span_s: float  # first to last datagram received, server clock

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> SinkReport:
        return cls(**json.loads(data))


class DatagramCounter:
    """Counts datagrams a session received and when the first and last arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.size_bytes = 0
        self.first_s = 0.0
        self.last_s = 0.0

    def add(self, size: int) -> None:
        now = time.perf_counter()
        if self.count == 0:
            self.first_s = now
        self.last_s = now
        self.count += 1
        self.size_bytes += size

    def report(self, stream_bytes: int) -> SinkReport:
        return SinkReport(stream_bytes, self.count, self.size_bytes, self.last_s - self.first_s)


def quic_config(*, is_client: bool, congestion_control: str = "reno") -> QuicConfiguration:
    config = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=H3_ALPN,
        max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
        congestion_control_algorithm=congestion_control,
    )
    if is_client:
        config.verify_mode = 0  # ssl.CERT_NONE: loopback benchmark server, self-signed
    return config


# --------------------------------------------------------------------------- server


class RawServerProtocol(QuicConnectionProtocol):
    """One QUIC connection on the server: routes extended CONNECTs to /echo or /sink."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._h3: H3Connection | None = None
        self._routes: dict[int, str] = {}  # session id -> path
        self._uni_out: dict[int, int] = {}  # incoming uni stream -> its echo stream
        self._sink_bytes: dict[int, int] = {}
        self._datagrams: dict[int, DatagramCounter] = {}
        self.settings_log: list[dict[int, int]] = []

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._h3 = H3Connection(self._quic, enable_webtransport=True)
        if self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                self._h3_event_received(h3_event)

    def _h3_event_received(self, event: H3Event) -> None:
        h3 = self._h3
        if isinstance(event, HeadersReceived):
            headers = dict(event.headers)
            if (headers.get(b":method") == b"CONNECT"
                    and headers.get(b":protocol") == b"webtransport"):
                path = headers.get(b":path", b"/").split(b"?")[0].decode()
                if path in ("/echo", "/sink"):
                    self._routes[event.stream_id] = path
                    self._datagrams[event.stream_id] = DatagramCounter()
                    h3.send_headers(event.stream_id, [
                        (b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")])
                else:
                    h3.send_headers(event.stream_id, [(b":status", b"404")], end_stream=True)
            else:
                h3.send_headers(event.stream_id, [(b":status", b"400")], end_stream=True)
        elif isinstance(event, WebTransportStreamDataReceived):
            route = self._routes.get(event.session_id)
            if route == "/echo":
                self._echo(event)
            elif route == "/sink":
                n = self._sink_bytes.get(event.stream_id, 0) + len(event.data)
                self._sink_bytes[event.stream_id] = n
                if event.stream_ended:
                    del self._sink_bytes[event.stream_id]
                    if not stream_is_unidirectional(event.stream_id):
                        report = self._datagrams[event.session_id].report(n)
                        self._quic.send_stream_data(event.stream_id, report.encode(), True)
        elif isinstance(event, DatagramReceived):
            route = self._routes.get(event.stream_id)
            if route == "/echo":
                h3.send_datagram(event.stream_id, event.data)
            elif route == "/sink":
                self._datagrams[event.stream_id].add(len(event.data))

    def _echo(self, event: WebTransportStreamDataReceived) -> None:
        if not stream_is_unidirectional(event.stream_id):
            self._quic.send_stream_data(event.stream_id, event.data, event.stream_ended)
            return
        out = self._uni_out.get(event.stream_id)
        if out is None:
            out = self._h3.create_webtransport_stream(event.session_id, is_unidirectional=True)
            self._uni_out[event.stream_id] = out
        self._quic.send_stream_data(out, event.data, event.stream_ended)
        if event.stream_ended:
            del self._uni_out[event.stream_id]


async def raw_serve(host: str, port: int, certfile: str, keyfile: str,
                    *, congestion_control: str = "reno"):
    """Start the raw server; returns aioquic's QuicServer (``close()`` to stop)."""
    config = quic_config(is_client=False, congestion_control=congestion_control)
    config.load_cert_chain(certfile, keyfile)
    return await serve(host, port, configuration=config, create_protocol=RawServerProtocol)


# --------------------------------------------------------------------------- client


class RawStream:
    """A WebTransport stream on the raw client: writes go straight to aioquic."""

    def __init__(self, protocol: RawClientProtocol, stream_id: int) -> None:
        self._protocol = protocol
        self.stream_id = stream_id
        self._chunks: deque[bytes] = deque()
        self._eof = False
        self._waiter: asyncio.Future | None = None

    # receive side (fed by the protocol)
    def _feed(self, data: bytes, end: bool) -> None:
        if data:
            self._chunks.append(data)
        if end:
            self._eof = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        """The next chunk, or b"" at the end of the stream."""
        while not self._chunks:
            if self._eof:
                return b""
            self._waiter = self._protocol._loop.create_future()
            await self._waiter
        return self._chunks.popleft()

    async def read_all(self) -> bytes:
        parts = []
        while chunk := await self.read():
            parts.append(chunk)
        return b"".join(parts)

    # send side
    def write(self, data: bytes, end_stream: bool = False) -> None:
        self._protocol._quic.send_stream_data(self.stream_id, data, end_stream)
        self._protocol._transmit_soon()

    def write_eof(self) -> None:
        self.write(b"", True)

    def unsent_bytes(self) -> int:
        sender = self._protocol._quic._streams[self.stream_id].sender
        return sender._buffer_stop - sender.highest_offset

    async def drain(self) -> None:
        """Wait while more than STREAM_HIGH_WATER_BYTES are not yet sent once (as wtlab)."""
        while self.unsent_bytes() > STREAM_HIGH_WATER_BYTES:
            await self._protocol._wait_progress()


class RawClientProtocol(QuicConnectionProtocol):
    """Client side: one WebTransport session per connection."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._h3 = H3Connection(self._quic, enable_webtransport=True)
        self.session_id: int | None = None
        self._session_waiter: asyncio.Future | None = None
        self._streams: dict[int, RawStream] = {}
        self._incoming_uni: asyncio.Queue[RawStream] = asyncio.Queue()
        self._datagrams: asyncio.Queue[bytes] = asyncio.Queue()
        self._progress: asyncio.Future | None = None

    async def open_session(self, authority: str, path: str) -> None:
        stream_id = self._quic.get_next_available_stream_id()
        self.session_id = stream_id
        self._session_waiter = self._loop.create_future()
        self._h3.send_headers(stream_id, [
            (b":method", b"CONNECT"), (b":scheme", b"https"),
            (b":authority", authority.encode()), (b":path", path.encode()),
            (b":protocol", b"webtransport"), (b"sec-webtransport-http3-draft02", b"1"),
        ])
        self.transmit()
        status = await self._session_waiter
        if status != 200:
            raise ConnectionError(f"raw client: session rejected with status {status}")

    def open_bidi(self) -> RawStream:
        stream_id = self._h3.create_webtransport_stream(self.session_id)
        stream = self._streams[stream_id] = RawStream(self, stream_id)
        self._transmit_soon()
        return stream

    def open_uni(self) -> RawStream:
        stream_id = self._h3.create_webtransport_stream(self.session_id, is_unidirectional=True)
        stream = self._streams[stream_id] = RawStream(self, stream_id)
        self._transmit_soon()
        return stream

    async def accept_uni(self) -> RawStream:
        return await self._incoming_uni.get()

    def send_datagram(self, data: bytes) -> None:
        self._quic.send_datagram_frame(encode_uint_var(self.session_id // 4) + data)
        self._transmit_soon()

    async def drain_datagrams(self) -> None:
        while len(self._quic._datagrams_pending) > DATAGRAM_HIGH_WATER:
            await self._wait_progress()

    def datagrams_pending(self) -> int:
        return len(self._quic._datagrams_pending)

    async def receive_datagram(self) -> bytes:
        return await self._datagrams.get()

    async def _wait_progress(self) -> None:
        if self._progress is None or self._progress.done():
            self._progress = self._loop.create_future()
        await self._progress

    def datagram_received(self, data, addr) -> None:
        super().datagram_received(data, addr)
        if self._progress is not None and not self._progress.done():
            self._progress.set_result(None)

    def quic_event_received(self, event: QuicEvent) -> None:
        # aioquic's client-side H3Connection would parse data on our own bidi
        # WebTransport streams as HTTP/3 frames: route it around the H3 layer.
        if isinstance(event, StreamDataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._feed(event.data, event.end_stream)
                return
        for h3_event in self._h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and h3_event.stream_id == self.session_id:
                status = int(dict(h3_event.headers).get(b":status", b"0"))
                if self._session_waiter is not None and not self._session_waiter.done():
                    self._session_waiter.set_result(status)
            elif isinstance(h3_event, WebTransportStreamDataReceived):
                stream = self._streams.get(h3_event.stream_id)
                if stream is None:
                    stream = self._streams[h3_event.stream_id] = RawStream(self, h3_event.stream_id)
                    self._incoming_uni.put_nowait(stream)
                stream._feed(h3_event.data, h3_event.stream_ended)
            elif isinstance(h3_event, DatagramReceived):
                self._datagrams.put_nowait(h3_event.data)
        if self._progress is not None and not self._progress.done():
            self._progress.set_result(None)


def raw_connect(host: str, port: int, *, congestion_control: str = "reno"):
    """``async with raw_connect(host, port) as client:`` then ``await client.open_session(...)``."""
    config = quic_config(is_client=True, congestion_control=congestion_control)
    return connect(host, port, configuration=config, create_protocol=RawClientProtocol)
