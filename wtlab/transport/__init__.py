"""WebTransport over HTTP/3 on aioquic: a client, a server, and the sans-IO layer below.

Example (a notebook cell or ``asyncio.run``)::

    import wtlab

    async with wtlab.serve(port=0) as server:
        async with wtlab.connect(server.url("/echo"), cert_hashes=[server.cert_sha256],
                                 congestion_control="reno") as session:
            stream = await session.open_bidi()
            stream.write(b"hello")
            stream.write_eof()
            assert await stream.read() == b"hello"
            session.send_datagram(b"ping")
            assert await session.receive_datagram() == b"ping"
            print(session.stats()["srtt_s"])

Layers: :mod:`wtlab.transport.protocol` (sans-IO WebTransport on aioquic's
``QuicConnection`` + ``H3Connection``), :mod:`wtlab.transport.driver` (asyncio
driver, all I/O through the running loop), :mod:`wtlab.transport.session`
(``Session`` and ``Stream``), :mod:`wtlab.transport.client` (``connect``),
:mod:`wtlab.transport.server` (``serve``, ``wtlab serve``),
:mod:`wtlab.transport.handlers` (``/echo``, ``/sink``, ``/source``),
:mod:`wtlab.transport.certs` (self-signed certificates). What a server grants its
peers: :mod:`wtlab.transport.limits` (``Limits``), enforced by
:mod:`wtlab.transport.admission` (connection caps, QUIC Retry) and
:mod:`wtlab.transport.server_connection` (bounded flow-control windows);
:mod:`wtlab.transport.udp` sizes socket buffers and drains datagrams in batches.
"""

from wtlab.transport.client import connect
from wtlab.transport.server import Limits, Server, serve
from wtlab.transport.session import Session, Stream

__all__ = ["Limits", "Server", "Session", "Stream", "connect", "serve"]
