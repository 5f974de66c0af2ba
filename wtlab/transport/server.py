"""``wtlab.serve`` and ``wtlab serve``: the embedded WebTransport server.

::

    async with wtlab.serve(port=0) as server:          # or: server = await wtlab.serve(...)
        url = server.url("/echo")                      # https://127.0.0.1:<port>/echo
        async with wtlab.connect(url, cert_hashes=[server.cert_sha256]) as session:
            ...

    @server.route("/mine")                             # or serve(routes={"/mine": handler})
    async def mine(session):                           # one task per session; when it
        stream = await session.accept_bidi()           # returns, the session is closed
        ...

Built-in routes (see :mod:`wtlab.transport.handlers`): ``/echo``, ``/sink``,
``/source?bytes=N``. Unknown paths are answered 404; a session beyond
``limits.max_sessions`` is answered 429. A session that exceeds
``limits.max_streams_per_session`` (peer streams open at once) or
``limits.max_buffered_bytes_per_session`` (received, not yet read) is closed
with code ``CLOSE_STREAM_LIMIT`` (0x4c01) or ``CLOSE_BUFFER_LIMIT`` (0x4c02);
the server keeps serving the others.

Without ``cert``/``key`` the server uses a self-signed certificate made once per
process: ECDSA P-256 valid 13 days (what browsers accept through
``serverCertificateHashes``), or RSA with ``cert_kind="rsa"`` (fixed-length
signatures, for deterministic emulated runs). ``server.cert_sha256`` is its
SHA-256 (hex).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aioquic.buffer import Buffer
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import (
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)

from wtlab.errors import ConfigError, SessionClosed, StreamReset
from wtlab.transport import protocol as P
from wtlab.transport.certs import CertificatePair, default_certificate, load_certificate
from wtlab.transport.client import MAX_DATAGRAM_FRAME_SIZE, QUIC_MAX_DATA, QUIC_MAX_STREAM_DATA
from wtlab.transport.driver import (
    CLOSE_BUFFER_LIMIT,
    CLOSE_STREAM_LIMIT,
    Connection,
    Endpoint,
    attach_controller,
    check_idle_timeout,
    check_max_datagram_size,
    make_controller,
)
from wtlab.transport.ecn_udp import open_endpoint
from wtlab.transport.session import Session

logger = logging.getLogger("wtlab.transport")

Handler = Callable[[Session], Awaitable[Any]]
CLOSE_HANDLER_ERROR = 0x4C00
__all__ = ["CLOSE_BUFFER_LIMIT", "CLOSE_HANDLER_ERROR", "CLOSE_STREAM_LIMIT", "Limits", "Server",
           "cli_main", "serve"]


@dataclass
class Limits:
    """Per-server limits. Streams are counted while open; buffered bytes are
    bytes received on a session's streams and datagrams and not yet read."""

    max_sessions: int = 1000
    max_streams_per_session: int = 1000
    max_buffered_bytes_per_session: int = 64 * 1024 * 1024
    #: ``latest`` dialect only: the session data window granted to the peer
    #: (WT_INITIAL_MAX_DATA, re-granted with WT_MAX_DATA as data arrives).
    session_window_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_streams_per_session", "max_buffered_bytes_per_session",
                     "session_window_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"Limits.{name}={value!r} must be a positive integer")


class _ServerProtocol(asyncio.DatagramProtocol):
    """One UDP socket; routes datagrams to connections by destination connection ID."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.endpoints: dict[bytes, Endpoint] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.cid_length = 8

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        if data and not data[0] & 0x80:  # short header: the fast path
            ep = self.endpoints.get(data[1:1 + self.cid_length])
            if ep is not None:
                ep.datagram_received(data, addr, ecn)
            return
        buf = Buffer(data=data)
        try:
            header = pull_quic_header(buf, host_cid_length=self.cid_length)
        except ValueError:
            return
        config = self.server.quic_config
        if (header.packet_type != QuicPacketType.VERSION_NEGOTIATION
                and header.version is not None
                and header.version not in config.supported_versions):
            self.transport.sendto(encode_quic_version_negotiation(
                source_cid=header.destination_cid, destination_cid=header.source_cid,
                supported_versions=config.supported_versions), addr)
            return
        ep = self.endpoints.get(header.destination_cid)
        if ep is None and len(data) >= 1200 and header.packet_type == QuicPacketType.INITIAL:
            ep = self.server._new_endpoint(header.destination_cid)
            self.endpoints[header.destination_cid] = ep
            ep.cids.add(header.destination_cid)
            self.endpoints[ep.quic.host_cid] = ep
            ep.cids.add(ep.quic.host_cid)
        if ep is not None:
            ep.datagram_received(data, addr, ecn)

    # transports that read the ECN field (virtual network, wtlab.transport.ecn_udp)
    datagram_received_ecn = datagram_received

    def _cid_issued(self, ep: Endpoint, cid: bytes) -> None:
        self.endpoints[cid] = ep

    def _cid_retired(self, ep: Endpoint, cid: bytes) -> None:
        if self.endpoints.get(cid) is ep:
            del self.endpoints[cid]

    def _terminated(self, ep: Endpoint) -> None:
        for cid in list(ep.cids):
            if self.endpoints.get(cid) is ep:
                del self.endpoints[cid]
        self.server._endpoints.discard(ep)


class Server:
    """A running (or about to run) WebTransport server. Create it with :func:`serve`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4433, *, cert: str | None = None,
                 key: str | None = None, routes: dict[str, Handler] | None = None,
                 congestion_control: Any = "default", recorder: Any = None, flow: int = 0,
                 limits: Limits | None = None, cert_kind: str = "ecdsa",
                 dialect: str = "auto", builtin_routes: bool = True,
                 idle_timeout_s: float = 60.0, max_datagram_size: int = 1200,
                 full_packets: bool = True, ecn: bool = False) -> None:
        from wtlab.cc.aioquic import check_full_packets
        from wtlab.transport import handlers

        check_max_datagram_size(max_datagram_size)
        self.full_packets = check_full_packets(full_packets)
        if (cert is None) != (key is None):
            raise ConfigError("give both cert and key (PEM files), or neither for a self-signed one")
        if not isinstance(port, int) or not 0 <= port < 65536:
            raise ConfigError(f"port={port!r} must be in 0..65535 (0 picks a free port)")
        if dialect not in P.DIALECTS:
            raise ConfigError(f"unknown dialect {dialect!r}; use one of {P.DIALECTS}")
        self.host = host
        self._requested_port = port
        self.port: int = port
        self.limits = limits or Limits()
        self.congestion_control = congestion_control
        self.recorder = recorder
        self.flow = flow
        self.dialect = dialect
        self.ecn = bool(ecn)  # live: a socket that carries the ECN field (wtlab.transport.ecn_udp)
        self.certificate: CertificatePair = (
            load_certificate(cert, key) if cert is not None and key is not None
            else default_certificate(cert_kind))
        # validate the controller name now, not on the first connection
        make_controller(congestion_control, 1200, None, 0)
        self.routes: dict[str, Handler] = {}
        if builtin_routes:
            self.routes.update({"/echo": handlers.echo, "/sink": self._sink, "/source": handlers.source})
        for path, handler in (routes or {}).items():
            self.add_route(path, handler)
        self.sink_totals: list[dict[str, int]] = []
        self.limit_hits = 0
        self.sessions_served = 0
        self.sessions_rejected = 0
        self._sessions: set[Session] = set()
        self._tasks: set[asyncio.Task] = set()
        self._endpoints: set[Endpoint] = set()
        self._proto: _ServerProtocol | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._next_flow = flow
        self.quic_config = QuicConfiguration(
            is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
            max_data=QUIC_MAX_DATA, max_stream_data=QUIC_MAX_STREAM_DATA,
            idle_timeout=check_idle_timeout(idle_timeout_s), max_datagram_size=max_datagram_size,
        )
        self.quic_config.certificate = self.certificate.certificate
        self.quic_config.private_key = self.certificate.private_key
        self._flow_limits = P.FlowLimits(
            max_sessions=self.limits.max_sessions,
            max_data=self.limits.session_window_bytes,
            max_streams_bidi=min(self.limits.max_streams_per_session, 1 << 20),
            max_streams_uni=min(self.limits.max_streams_per_session, 1 << 20),
        )

    async def _sink(self, session: Session) -> None:
        from wtlab.transport import handlers

        await handlers.sink(session, totals=self.sink_totals)

    # ------------------------------------------------------------------ routes
    def add_route(self, path: str, handler: Handler) -> None:
        """Serve ``handler(session)`` for sessions opened on ``path`` (query string ignored)."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"route {path!r} must be a path starting with '/'")
        if not callable(handler):
            raise ConfigError(f"handler for {path!r} is not callable; give an async function")
        self.routes[path] = handler

    def route(self, path: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add_route`."""
        def deco(handler: Handler) -> Handler:
            self.add_route(path, handler)
            return handler
        return deco

    # ---------------------------------------------------------------- lifetime
    @property
    def cert_sha256(self) -> str:
        """SHA-256 of the certificate (hex), for ``cert_hashes`` / ``serverCertificateHashes``."""
        return self.certificate.sha256

    def url(self, path: str = "/echo") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{path if path.startswith('/') else '/' + path}"

    async def start(self) -> Server:
        if self._transport is not None:
            return self
        self._proto = _ServerProtocol(self)
        try:
            transport, _ = await open_endpoint(
                lambda: self._proto, ecn=self.ecn, local_addr=(self.host, self._requested_port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.host}:{self._requested_port} ({exc}); "
                              "pick another port (0 picks a free one)") from None
        self._transport = transport  # type: ignore[assignment]
        sockname = transport.get_extra_info("sockname")
        if sockname:
            self.port = int(sockname[1])
        return self

    def __await__(self):
        return self.start().__await__()

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    def close(self) -> None:
        """Close every connection (CONNECTION_CLOSE) and stop listening."""
        for ep in list(self._endpoints):
            ep.close()
        self._endpoints.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        tasks = list(self._tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        return {"connections": len(self._endpoints), "sessions": len(self._sessions),
                "sessions_served": self.sessions_served,
                "sessions_rejected": self.sessions_rejected, "limit_hits": self.limit_hits}

    # ---------------------------------------------------------- connections
    def _new_endpoint(self, original_dcid: bytes) -> Endpoint:
        quic = Connection(configuration=self.quic_config,
                              original_destination_connection_id=original_dcid)
        flow = self._next_flow
        self._next_flow += 1
        controller = make_controller(self.congestion_control, quic._max_datagram_size,
                                     self.recorder, flow)
        rec = self.recorder
        if rec is not None and not getattr(rec, "clock_fixed", True):
            rec.t0 = asyncio.get_running_loop().time()  # times count from the first session
            rec.clock_fixed = True
        attach_controller(quic, controller, self.recorder, flow, self.full_packets)
        wt = P.WebTransportConnection(quic, dialect=self.dialect, limits=self._flow_limits)
        proto = self._proto
        ep = Endpoint(quic, wt, sendto=proto.transport.sendto, controller=controller,
                      recorder=self.recorder, flow=flow,
                      sendto_ecn=getattr(proto.transport, "sendto_ecn", None))
        ep.server = self  # type: ignore[attr-defined]
        ep.max_streams_per_session = self.limits.max_streams_per_session
        ep.on_session_request = self._on_session_request
        ep.on_cid_issued = proto._cid_issued
        ep.on_cid_retired = proto._cid_retired
        ep.on_terminated = proto._terminated
        self._endpoints.add(ep)
        return ep

    def _on_session_request(self, ep: Endpoint, ev: P.SessionRequested) -> None:
        sid = ev.session_id
        path, _, query = ev.path.partition("?")
        handler = self.routes.get(path)
        wt = ep.wt
        if handler is None or len(self._sessions) >= self.limits.max_sessions:
            wt.reject(sid, 404 if handler is None else 429)
            self.sessions_rejected += 1
            if handler is not None:
                self.limit_hits += 1
            ep.schedule_transmit()
            return
        dialect = wt.sessions[sid].dialect
        session = Session(ep, sid, path=path, headers=ev.headers, dialect=dialect,
                          max_buffered_bytes=self.limits.max_buffered_bytes_per_session)
        session.query = {k: v[-1] for k, v in parse_qs(query).items()}
        ep.sessions[sid] = session
        self._sessions.add(session)
        self.sessions_served += 1
        for wev in wt.accept(sid):
            ep.dispatch(wev)
        ep.schedule_transmit()
        task = asyncio.get_running_loop().create_task(self._run(handler, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, handler: Handler, session: Session) -> None:
        try:
            await handler(session)
        except (SessionClosed, StreamReset, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a user handler failed: close its session, keep serving
            logger.exception("handler for %s failed", session.path)
            if not session.closed:
                try:
                    await session.close(CLOSE_HANDLER_ERROR, f"handler error: {exc}"[:200])
                except Exception:
                    pass
        finally:
            self._sessions.discard(session)
            if not session.closed:
                try:
                    await session.close()
                except Exception:
                    pass


def serve(host: str = "127.0.0.1", port: int = 4433, *, cert: str | None = None,
          key: str | None = None, routes: dict[str, Handler] | None = None,
          congestion_control: Any = "default", recorder: Any = None, flow: int = 0,
          limits: Limits | None = None, cert_kind: str = "ecdsa",
          dialect: str = "auto", idle_timeout_s: float = 60.0,
          max_datagram_size: int = 1200, full_packets: bool = True, ecn: bool = False) -> Server:
    """A WebTransport server: ``async with serve(...) as server`` or ``server = await serve(...)``.

    ``port=0`` picks a free port (read ``server.port``). ``routes`` maps paths to
    ``async def handler(session)``; they extend the built-in ``/echo``, ``/sink``
    and ``/source``. ``recorder`` receives the trace of every connection, each
    with its own ``flow`` id starting at ``flow``. ``idle_timeout_s`` is the QUIC idle
    timeout of every connection. ``max_datagram_size`` (1200..1472) and
    ``full_packets`` are :func:`wtlab.connect`'s, for what this server sends. ``ecn``:
    carry the IP header's ECN field on the socket where the system allows it (see
    :func:`wtlab.transport.connect`).
    """
    return Server(host, port, cert=cert, key=key, routes=routes,
                  congestion_control=congestion_control, recorder=recorder, flow=flow,
                  limits=limits, cert_kind=cert_kind, dialect=dialect,
                  idle_timeout_s=idle_timeout_s, max_datagram_size=max_datagram_size,
                  full_packets=full_packets, ecn=ecn)


def cli_main(argv: list[str]) -> int:
    """``wtlab serve [--host H] [--port P] [--cert F --key F] [--page [--page-port N]]``."""
    parser = argparse.ArgumentParser(prog="wtlab serve", description="Run the WebTransport "
                                     "server (routes /echo, /sink, /source?bytes=N).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--cert", help="certificate (PEM); default: a fresh self-signed one")
    parser.add_argument("--key", help="private key (PEM) of --cert")
    parser.add_argument("--cert-kind", choices=("ecdsa", "rsa"), default="ecdsa")
    parser.add_argument("--congestion-control", default="default")
    parser.add_argument("--page", action="store_true",
                        help="also serve a browser echo page over plain HTTP on loopback")
    parser.add_argument("--page-port", type=int, default=8080)
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    args = parser.parse_args(argv)

    async def run() -> None:
        server = await serve(args.host, args.port, cert=args.cert, key=args.key,
                             congestion_control=args.congestion_control, cert_kind=args.cert_kind)
        print(f"wtlab serve: listening on {server.url('/')} (routes: "
              f"{' '.join(sorted(server.routes))})", flush=True)
        print(f"certificate SHA-256: {server.cert_sha256}", flush=True)
        page = None
        if args.page:
            try:
                from wtlab.transport.webpage import serve_page
            except ImportError:
                print("wtlab serve: the browser page is not available in this build", flush=True)
            else:
                page = serve_page(args.host, args.page_port, server.url("/echo"),
                                  server.cert_sha256)
                page_port = getattr(page, "port", args.page_port)
                print(f"browser page: http://{args.host}:{page_port}/", flush=True)
        try:
            if args.duration is not None:
                await asyncio.sleep(args.duration)
            else:
                await asyncio.Event().wait()
        finally:
            if page is not None:
                page.close()
            server.close()
            await server.wait_closed()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0
