"""A real aioquic transfer on loopback: qlog files (aioquic's QuicFileLogger) and a Recorder.

The client and server are aioquic's own asyncio ``serve``/``connect`` on 127.0.0.1; the
client's congestion control is a wtlab controller attached with ``wtlab.cc.aioquic.attach``
so the same transfer yields a wtlab trace too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived
from aioquic.quic.logger import QuicFileLogger

from wtlab.trace import Recorder
from wtlab.transport.certs import generate_certificate

ALPN = ["wtlab-trace-test"]


def _certificate():
    pair = generate_certificate(hostnames=("localhost",))
    return pair.certificate, pair.private_key


class _Sink(QuicConnectionProtocol):
    """Server: counts bytes on each stream; at its end answers with the count."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._got: dict[int, int] = {}

    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived):
            n = self._got.get(event.stream_id, 0) + len(event.data)
            self._got[event.stream_id] = n
            if event.end_stream:
                self._quic.send_stream_data(event.stream_id, str(n).encode(), end_stream=True)
                self.transmit()


class _Client(QuicConnectionProtocol):
    recorder: Recorder | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.recorder is not None:
            from wtlab.cc.aioquic import attach

            attach(self._quic, "reno", recorder=self.recorder, flow=0)
        self._answers: dict[int, asyncio.Future] = {}
        self._buf: dict[int, bytes] = {}

    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived):
            self._buf[event.stream_id] = self._buf.get(event.stream_id, b"") + event.data
            if event.end_stream and event.stream_id in self._answers:
                self._answers[event.stream_id].set_result(self._buf[event.stream_id])

    async def upload(self, payload: bytes) -> bytes:
        sid = self._quic.get_next_available_stream_id()
        fut = asyncio.get_running_loop().create_future()
        self._answers[sid] = fut
        self._quic.send_stream_data(sid, payload, end_stream=True)
        self.transmit()
        return await asyncio.wait_for(fut, timeout=20)


async def transfer(qlog_dir: Path, *, size_bytes: int = 300_000,
                   recorder: Recorder | None = None) -> list[bytes]:
    """Upload ``size_bytes`` twice over one connection; returns the server's answers."""
    cert, key = _certificate()
    scfg = QuicConfiguration(is_client=False, alpn_protocols=ALPN,
                             quic_logger=QuicFileLogger(str(qlog_dir)))
    scfg.certificate, scfg.private_key = cert, key
    server = await serve("127.0.0.1", 0, configuration=scfg, create_protocol=_Sink)
    port = server._transport.get_extra_info("sockname")[1]
    ccfg = QuicConfiguration(is_client=True, alpn_protocols=ALPN, verify_mode=False,
                             server_name="localhost", quic_logger=QuicFileLogger(str(qlog_dir)))
    _Client.recorder = recorder
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    if recorder is not None:
        recorder.t0 = t0
    try:
        async with connect("127.0.0.1", port, configuration=ccfg,
                           create_protocol=_Client) as client:
            answers = [await client.upload(bytes(size_bytes)),
                       await client.upload(b"x" * (size_bytes // 3))]
            client.close()
            await client.wait_closed()
    finally:
        server.close()
        _Client.recorder = None
    return answers
