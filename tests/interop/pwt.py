"""pywebtransport 0.8.1 as the "stack no one here wrote": an echo server and client configs.

The echo server mirrors wtlab's ``/echo`` route: bidirectional streams are echoed
on the same stream, unidirectional streams on a new unidirectional stream,
datagrams as datagrams. It also records the HTTP/3 SETTINGS each peer sent, so a
test can say which WebTransport draft the peer spoke.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pywebtransport import (
    ClientConfig,
    ServerApp,
    ServerConfig,
    WebTransportSession,
    WebTransportStream,
)
from pywebtransport.protocol import h3_engine as _pwt_h3_engine
from pywebtransport.stream import WebTransportReceiveStream

from tests.interop.certs import CertFiles

# pywebtransport logs every handler error with a traceback at ERROR; keep test output readable.
logging.getLogger("pywebtransport").setLevel(logging.CRITICAL)

# Generous WebTransport flow-control limits: pywebtransport's defaults are 0 (no streams at all).
# The session data window is 1 GiB: with 64 MiB, a 100 MB one-stream transfer between
# pywebtransport 0.8.1's own client and server stalled (its 30 s write timeout) in 2 of 3 runs
# once the window had to be extended with WT_MAX_DATA capsules. With 1 GiB it still stalls
# now and then (its 60 s read timeout, about 1 run in 5 on a loaded machine).
WT_LIMITS = dict(
    initial_max_data=1 << 30,
    initial_max_streams_bidi=1000,
    initial_max_streams_uni=1000,
    stream_flow_control_increment_bidi=1000,
    stream_flow_control_increment_uni=1000,
)

# SETTINGS received by any pywebtransport engine in this process, in arrival order.
RECEIVED_SETTINGS: list[dict[int, int]] = []
_original_parse_settings = _pwt_h3_engine._parse_settings


def _recording_parse_settings(*, data: bytes) -> dict[int, int]:
    settings = _original_parse_settings(data=data)
    RECEIVED_SETTINGS.append(dict(settings))
    return settings


_pwt_h3_engine._parse_settings = _recording_parse_settings


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free a moment ago (pywebtransport treats port 0 as 'default')."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class PwtServer:
    host: str
    port: int
    sha256: bytes
    app: ServerApp
    sessions: int = 0
    paths: list[str] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)

    def url(self, path: str = "/echo") -> str:
        return f"https://{self.host}:{self.port}{path}"


async def _echo_stream(stream) -> None:
    # Echo chunk by chunk so large transfers never sit whole in memory.
    with contextlib.suppress(Exception):
        while True:
            data = await stream.read(size=65536)
            if not data:
                break
            await stream.write(data=data, wait_flush=False)
        await stream.close()


async def _echo_uni(session: WebTransportSession, stream: WebTransportReceiveStream) -> None:
    with contextlib.suppress(Exception):
        out = await session.create_unidirectional_stream()
        while True:
            data = await stream.read(size=65536)
            if not data:
                break
            await out.write(data=data, wait_flush=False)
        await out.close()


async def _echo_datagrams(session: WebTransportSession) -> None:
    with contextlib.suppress(Exception):
        transport = await session.create_datagram_transport()
        while True:
            data = await transport.receive()
            await transport.send(data=data)


@contextlib.asynccontextmanager
async def pwt_echo_server(cert: CertFiles, host: str = "127.0.0.1",
                          **limits) -> AsyncIterator[PwtServer]:
    """A running pywebtransport server with ``/echo`` on a free port.

    ``limits`` override ``WT_LIMITS`` (e.g. a small ``initial_max_data`` to make
    pywebtransport grant credit with WT_MAX_DATA capsules).
    """
    port = free_udp_port(host)
    config = ServerConfig(
        bind_host=host,
        bind_port=port,
        certfile=str(cert.certfile),
        keyfile=str(cert.keyfile),
        max_streams_per_connection=100_000,
        max_incoming_streams=100_000,
        **{**WT_LIMITS, **limits},
    )
    app = ServerApp(config=config)
    server = PwtServer(host=host, port=port, sha256=cert.sha256, app=app)

    @app.route(path="/echo")
    async def echo(session: WebTransportSession) -> None:
        server.sessions += 1
        server.paths.append(session.path)
        server.headers.append(dict(session.headers))
        tasks = {asyncio.create_task(_echo_datagrams(session))}
        try:
            async for stream in session.incoming_streams():
                if isinstance(stream, WebTransportStream):
                    tasks.add(asyncio.create_task(_echo_stream(stream)))
                elif isinstance(stream, WebTransportReceiveStream):
                    tasks.add(asyncio.create_task(_echo_uni(session, stream)))
            await session.wait_closed()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async with app:
        await app.server.listen(host=host, port=port)
        try:
            yield server
        finally:
            pass  # app.__aexit__ closes the server and its sessions


def pwt_client_config(**overrides) -> ClientConfig:
    """A pywebtransport client config that trusts any certificate (loopback test servers)."""
    kw = dict(WT_LIMITS, verify_mode=ssl.CERT_NONE, connect_timeout=10.0, max_streams=100_000)
    kw.update(overrides)
    return ClientConfig(**kw)
