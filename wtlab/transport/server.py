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
``/source?bytes=N``. Unknown paths are answered 404.

What a peer can make the server do is bounded by :class:`~wtlab.transport.limits.Limits`
(listed, with defaults, in ``wtlab serve --help``): connections, handshakes and sessions
are capped (globally and per client IP address; a session request beyond a cap is
answered 429), every byte the server buffers for a peer is counted against its
session, its connection and the server's total, and QUIC flow-control windows slide
instead of growing. A session that exceeds ``max_streams_per_session`` (peer streams
open at once) or ``max_buffered_bytes_per_session`` (received, not yet read) is
closed with ``CLOSE_STREAM_LIMIT`` (0x4c01) or ``CLOSE_BUFFER_LIMIT`` (0x4c02); a
connection over its byte budget (or the server over its total) is closed with
H3_EXCESSIVE_LOAD (0x107). The server keeps serving the others.

Address validation: with ``retry="auto"`` (default) new clients must answer a QUIC
Retry once many handshakes are in progress (``"always"``: every time; ``"never"``).
A handshake that does not finish within ``limits.handshake_timeout_s`` is dropped;
an INITIAL that cannot be decrypted leaves no state at all.

Browser-grade checks, off unless asked for: ``authorities`` (the ``:authority``
of a request must name this server: ``"certificate"`` for the names in its
certificate, or a list of ``host`` / ``host:port``; else 421) and ``origins``
(an allow-list of ``Origin`` values, e.g. ``["http://127.0.0.1:8080"]``; a
request from another origin is answered 403; requests without ``Origin``, i.e.
not from a browser, are not affected). The server listens on loopback only
unless ``allow_non_loopback=True`` (``--allow-non-loopback``), which warns.

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
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from aioquic.buffer import Buffer
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import (
    QuicFrameType,
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from cryptography import x509

from wtlab.errors import ConfigError, SessionClosed, StreamReset
from wtlab.transport import protocol as P
from wtlab.transport.admission import (
    QUIC_CONNECTION_REFUSED,
    RETRY_POLICIES,
    Admission,
    Answer,
    Refuse,
    Take,
    client_ip,
)
from wtlab.transport.certs import CertificatePair, default_certificate, load_certificate
from wtlab.transport.client import MAX_DATAGRAM_FRAME_SIZE
from wtlab.transport.driver import (
    CLOSE_BUFFER_LIMIT,
    CLOSE_STREAM_LIMIT,
    Endpoint,
    attach_controller,
    attach_ecn,
    check_idle_timeout,
    check_max_datagram_size,
    make_controller,
    pace_for,
)
from wtlab.transport.ecn_udp import open_endpoint
from wtlab.transport.limits import DESCRIPTIONS, Limits
from wtlab.transport.server_connection import ServerConnection
from wtlab.transport.session import Session
from wtlab.transport.udp import BatchedDatagramProtocol, is_loopback

logger = logging.getLogger("wtlab.transport")

Handler = Callable[[Session], Awaitable[Any]]
CLOSE_HANDLER_ERROR = 0x4C00
H3_INTERNAL_ERROR = 0x102
H3_UNI_STREAMS = 3  # the peer's control and QPACK streams use uni stream credit too
__all__ = ["CLOSE_BUFFER_LIMIT", "CLOSE_HANDLER_ERROR", "CLOSE_STREAM_LIMIT", "Limits", "Server",
           "cli_main", "serve"]


def _split_authority(text: str) -> tuple[str, int | None]:
    """(host, port or None) of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(text)
    return host.lower().rstrip("."), int(port) if port else None


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a certificate is for (its SANs, else its CN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return [str(n) for n in names]


def _allowed_authorities(authorities: Any, cert: x509.Certificate
                         ) -> list[tuple[str, int | None]] | None:
    if authorities is None:
        return None
    if authorities == "certificate":
        authorities = certificate_names(cert)
    if isinstance(authorities, str) or not isinstance(authorities, Iterable):
        raise ConfigError(f"authorities={authorities!r}: give None, 'certificate' or a list of "
                          "host or host:port names")
    out = []
    for name in authorities:
        try:
            out.append(_split_authority(str(name)))
        except ValueError:
            raise ConfigError(f"authority {name!r} is not host or host:port") from None
    if not out:
        raise ConfigError("authorities is empty; give None (no check) or at least one name")
    return out


def _allowed_origins(origins: Any) -> frozenset[str] | None:
    if origins is None:
        return None
    if isinstance(origins, str) or not isinstance(origins, Iterable):
        raise ConfigError(f"origins={origins!r}: give None or a list such as "
                          "['http://127.0.0.1:8080']")
    out = set()
    for origin in origins:
        text = str(origin).strip().rstrip("/").lower()
        if "://" not in text:
            raise ConfigError(f"origin {origin!r} is not scheme://host[:port]")
        out.add(text)
    if not out:
        raise ConfigError("origins is empty; give None (no check) or at least one origin")
    return frozenset(out)


def _refuse(ep: Endpoint, reason: str) -> None:
    """Close a connection still in its handshake with CONNECTION_REFUSED and ``reason``.

    A transport-level close: before the handshake is done an application close would
    reach the client as a bare APPLICATION_ERROR, without the reason.
    """
    ep.quic.close(error_code=QUIC_CONNECTION_REFUSED, frame_type=QuicFrameType.PADDING,
                  reason_phrase=reason)
    ep.close(QUIC_CONNECTION_REFUSED, reason)


class _ServerProtocol(BatchedDatagramProtocol):
    """One UDP socket; routes datagrams to connections by destination connection ID."""

    def __init__(self, server: Server) -> None:
        super().__init__()
        self.server = server
        self.endpoints: dict[bytes, Endpoint] = {}
        self.cid_length = 8
        self.garbage_initials = 0

    def handle_datagram(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        try:
            self._one(data, addr, ecn)
        except Exception:  # a bug must cost one connection, never the server's socket
            logger.exception("datagram from %s could not be handled", addr)
            ep = self._endpoint_of(data)
            if ep is not None and not ep.terminated:
                try:
                    ep.close(H3_INTERNAL_ERROR, "server error")
                except Exception:
                    ep._terminate()

    def _endpoint_of(self, data: bytes) -> Endpoint | None:
        if data and not data[0] & 0x80:
            return self.endpoints.get(data[1:1 + self.cid_length])
        try:
            return self.endpoints.get(pull_quic_header(
                Buffer(data=data), host_cid_length=self.cid_length).destination_cid)
        except ValueError:
            return None

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors about a client: its connection times out on its own

    def _one(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        if data and not data[0] & 0x80:  # short header: the fast path
            ep = self.endpoints.get(data[1:1 + self.cid_length])
            if ep is not None:
                ep.datagram_received(data, addr, ecn)
                self.server._after_datagram(ep)
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
        if ep is not None:
            ep.datagram_received(data, addr, ecn)
            self.server._after_datagram(ep)
            return
        if len(data) >= 1200 and header.packet_type == QuicPacketType.INITIAL:
            self._new_connection(header, data, addr, ecn)

    def _new_connection(self, header: Any, data: bytes, addr: Any, ecn: int = 0) -> None:
        server = self.server
        loop = asyncio.get_running_loop()
        decision = server.admission.decide(header, addr, loop.time())
        if decision is None:
            return
        if isinstance(decision, Answer):
            self.transport.sendto(decision.packet, addr)
            return
        retry_cid = decision.retry_source_cid if isinstance(decision, Take) else None
        quic, controller = server._new_quic(decision.original_destination_cid, retry_cid)
        pace_for(quic, self.transport)
        # ECN before the first datagram, so its codepoint counts (the Endpoint keeps it)
        seam = attach_ecn(quic, controller, getattr(self.transport, "sendto_ecn", None),
                          loop.time())
        if seam is not None and ecn:
            seam.receive_datagram(data, addr, loop.time(), ecn)
        else:
            quic.receive_datagram(data, addr, now=loop.time())
        if not quic.decrypted_anything():
            self.garbage_initials += 1  # nothing valid: keep nothing, answer nothing
            return
        ep = server._new_endpoint(quic, controller, addr)
        for cid in (header.destination_cid, quic.host_cid):
            self.endpoints[cid] = ep
            ep.cids.add(cid)
        ep.process_events()
        if isinstance(decision, Refuse):
            _refuse(ep, decision.reason)
            return
        ep.schedule_transmit()
        server._after_datagram(ep)

    def _cid_issued(self, ep: Endpoint, cid: bytes) -> None:
        self.endpoints[cid] = ep

    def _cid_retired(self, ep: Endpoint, cid: bytes) -> None:
        if self.endpoints.get(cid) is ep:
            del self.endpoints[cid]

    def _terminated(self, ep: Endpoint) -> None:
        for cid in list(ep.cids):
            if self.endpoints.get(cid) is ep:
                del self.endpoints[cid]
        self.server._forget_endpoint(ep)


class Server:
    """A running (or about to run) WebTransport server. Create it with :func:`serve`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4433, *, cert: str | None = None,
                 key: str | None = None, routes: dict[str, Handler] | None = None,
                 congestion_control: Any = "default", recorder: Any = None, flow: int = 0,
                 limits: Limits | None = None, cert_kind: str = "ecdsa",
                 dialect: str = "auto", builtin_routes: bool = True,
                 idle_timeout_s: float = 60.0, retry: str = "auto",
                 authorities: Any = None, origins: Any = None,
                 allow_non_loopback: bool = False, max_datagram_size: int = 1200,
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
        if retry not in RETRY_POLICIES:
            raise ConfigError(f"retry={retry!r}: use one of {RETRY_POLICIES}")
        if limits is not None and not isinstance(limits, Limits):
            raise ConfigError(f"limits={limits!r} must be a wtlab.transport.Limits")
        if not isinstance(host, str) or not host:
            raise ConfigError(f"host={host!r} must be an address such as 127.0.0.1")
        if not is_loopback(host):
            if not allow_non_loopback:
                raise ConfigError(
                    f"host={host!r} is not a loopback address: the server would accept sessions "
                    "from other machines. Listen on 127.0.0.1 or ::1, or pass "
                    "allow_non_loopback=True (wtlab serve --allow-non-loopback) if you mean it")
            warnings.warn(
                f"wtlab server listening on {host}, not loopback: any host that can reach this "
                "machine can open sessions (echo, sink, source and your routes); consider "
                "origins=[...] and authorities='certificate'", UserWarning, stacklevel=3)
        self.host = host
        self._requested_port = port
        self.port: int = port
        self.limits = limits or Limits()
        self.congestion_control = congestion_control
        self.recorder = recorder
        self.flow = flow
        self.dialect = dialect
        self.retry = retry
        self.ecn = bool(ecn)  # live: a socket carrying the ECN field (transport.ecn_udp)
        self.certificate: CertificatePair = (
            load_certificate(cert, key) if cert is not None and key is not None
            else default_certificate(cert_kind))
        self.authorities = _allowed_authorities(authorities, self.certificate.certificate)
        self.origins = _allowed_origins(origins)
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
        self.handshake_timeouts = 0
        self.budget_closes = 0
        self._sessions: set[Session] = set()
        self._sessions_per_ip: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self._endpoints: set[Endpoint] = set()
        self._proto: _ServerProtocol | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._next_flow = flow
        lim = self.limits
        self.admission = Admission(lim, retry)
        #: bytes buffered for peers in the whole server (sessions and WebTransport layer)
        self.ledger = P.BufferLedger()
        self.quic_config = QuicConfiguration(
            is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
            max_data=lim.connection_window_bytes, max_stream_data=lim.stream_window_bytes,
            idle_timeout=check_idle_timeout(idle_timeout_s), max_datagram_size=max_datagram_size,
        )
        self.quic_config.certificate = self.certificate.certificate
        self.quic_config.private_key = self.certificate.private_key
        self._flow_limits = P.FlowLimits(
            max_sessions=min(lim.max_sessions_per_connection, lim.max_sessions),
            max_data=lim.session_window_bytes,
            max_streams_bidi=lim.max_streams_per_session,
            max_streams_uni=lim.max_streams_per_session,
            max_header_bytes=lim.max_header_bytes,
            max_early_bytes=lim.max_early_bytes_per_connection,
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
        """The ``https://host:port/path`` URL of a route on this server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{path if path.startswith('/') else '/' + path}"

    async def start(self) -> Server:
        """Bind the UDP socket and start serving (``wtlab.serve`` does it); returns the server.
        :class:`~wtlab.errors.ConfigError` if the address cannot be bound.
        """
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
        """Wait until every session task has ended (after :meth:`close`)."""
        tasks = list(self._tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        """Counts of what the server holds and what it refused (all integers).

        ``buffered_bytes``: bytes held for peers (received and not yet read, plus what
        the WebTransport layer keeps) in the whole server, the figure
        ``limits.max_buffered_bytes`` bounds; ``handshakes``: connections not yet
        through their handshake; ``garbage_initials``: INITIALs that decrypted to
        nothing (no state kept); the admission counts (``retries_sent``, ...).
        """
        adm = self.admission
        out = {"connections": len(self._endpoints), "sessions": len(self._sessions),
               "sessions_served": self.sessions_served,
               "sessions_rejected": self.sessions_rejected, "limit_hits": self.limit_hits,
               "buffered_bytes": self.ledger.total, "handshakes": adm.handshakes,
               "handshake_timeouts": self.handshake_timeouts,
               "budget_closes": self.budget_closes,
               "garbage_initials": self._proto.garbage_initials if self._proto else 0}
        out.update(adm.counts)
        return out

    def reassembly_bytes(self) -> int:
        """Out-of-order bytes QUIC holds for all connections (walks every stream)."""
        return sum(ep.quic.reassembly_bytes() for ep in self._endpoints)

    # ---------------------------------------------------------- connections
    def _new_quic(self, original_dcid: bytes, retry_cid: bytes | None
                  ) -> tuple[ServerConnection, Any]:
        lim = self.limits
        quic = ServerConnection(configuration=self.quic_config,
                                original_destination_connection_id=original_dcid,
                                retry_source_connection_id=retry_cid,
                                max_streams_bidi=lim.max_streams_per_session
                                + lim.max_sessions_per_connection,
                                max_streams_uni=lim.max_streams_per_session + H3_UNI_STREAMS)
        controller = make_controller(self.congestion_control, quic._max_datagram_size,
                                     self.recorder, self._next_flow)
        attach_controller(quic, controller, self.recorder, self._next_flow, self.full_packets)
        return quic, controller

    def _new_endpoint(self, quic: ServerConnection, controller: Any, addr: Any) -> Endpoint:
        flow = self._next_flow
        self._next_flow += 1
        rec = self.recorder
        if rec is not None and not getattr(rec, "clock_fixed", True):
            rec.t0 = asyncio.get_running_loop().time()  # times count from the first session
            rec.clock_fixed = True
        wt = P.WebTransportConnection(quic, dialect=self.dialect, limits=self._flow_limits,
                                      ledger=self.ledger)
        proto = self._proto
        ep = Endpoint(quic, wt, sendto=proto.transport.sendto, controller=controller,
                      recorder=self.recorder, flow=flow,
                      sendto_ecn=getattr(proto.transport, "sendto_ecn", None))
        ep.server = self  # type: ignore[attr-defined]
        ep.peer_ip = client_ip(addr)  # type: ignore[attr-defined]
        ep.max_streams_per_session = self.limits.max_streams_per_session
        ep.on_session_request = self._on_session_request
        ep.on_cid_issued = proto._cid_issued
        ep.on_cid_retired = proto._cid_retired
        ep.on_terminated = proto._terminated
        self._endpoints.add(ep)
        self.admission.opened(ep.peer_ip)
        ep.handshake.add_done_callback(lambda fut: self._handshake_over(ep))
        ep.handshake_timer = ep.loop.call_later(  # type: ignore[attr-defined]
            self.limits.handshake_timeout_s, self._handshake_timeout, ep)
        return ep

    def _handshake_over(self, ep: Endpoint) -> None:
        timer = getattr(ep, "handshake_timer", None)
        if timer is not None:
            timer.cancel()
        if not ep.terminated:
            self.admission.handshake_done()
            ep.handshaking = False  # type: ignore[attr-defined]

    def _handshake_timeout(self, ep: Endpoint) -> None:
        if not ep.terminated and not ep.handshake.done():
            self.handshake_timeouts += 1
            _refuse(ep, f"handshake not done within {self.limits.handshake_timeout_s:g} s")

    def _forget_endpoint(self, ep: Endpoint) -> None:
        if ep not in self._endpoints:
            return
        self._endpoints.discard(ep)
        handshaking = getattr(ep, "handshaking", True)
        if handshaking:
            timer = getattr(ep, "handshake_timer", None)
            if timer is not None:
                timer.cancel()
        self.admission.closed(ep.peer_ip, handshaking)  # type: ignore[attr-defined]
        ep.wt.release()  # what the WebTransport layer still held leaves the server's total

    def _after_datagram(self, ep: Endpoint) -> None:
        """Budgets checked after each datagram: close the connection that broke one."""
        if ep.terminated:
            return
        wt = ep.wt
        reason = wt.close_reason
        if reason is None:
            lim = self.limits
            held = wt.buffered_bytes()
            if held > lim.max_buffered_bytes_per_connection:
                reason = (P.H3_EXCESSIVE_LOAD, f"connection holds {held} bytes, over "
                          f"max_buffered_bytes_per_connection={lim.max_buffered_bytes_per_connection}")
            elif self.ledger.total > lim.max_buffered_bytes:
                reason = (P.H3_EXCESSIVE_LOAD, f"server holds {self.ledger.total} bytes, over "
                          f"max_buffered_bytes={lim.max_buffered_bytes}")
            else:
                return
        self.budget_closes += 1
        logger.info("closing connection from %s: %s", getattr(ep, "peer_ip", "?"), reason[1])
        ep.close(*reason)

    def _on_session_request(self, ep: Endpoint, ev: P.SessionRequested) -> None:
        sid = ev.session_id
        path, _, query = ev.path.partition("?")
        handler = self.routes.get(path)
        wt = ep.wt
        lim = self.limits
        ip = getattr(ep, "peer_ip", "")
        status = 0
        if handler is None:
            status = 404
        elif not self._authority_ok(ev.authority):
            status = 421
        elif not self._origin_ok(ev.headers):
            status = 403
        elif (len(self._sessions) >= lim.max_sessions
              or len(ep.sessions) >= lim.max_sessions_per_connection
              or self._sessions_per_ip.get(ip, 0) >= lim.max_sessions_per_address):
            status = 429
        if status:
            wt.reject(sid, status)
            self.sessions_rejected += 1
            if status == 429:
                self.limit_hits += 1
            ep.schedule_transmit()
            return
        dialect = wt.sessions[sid].dialect
        session = Session(ep, sid, path=path, headers=ev.headers, dialect=dialect,
                          max_buffered_bytes=lim.max_buffered_bytes_per_session)
        session.query = {k: v[-1] for k, v in parse_qs(query).items()}
        ep.sessions[sid] = session
        self._sessions.add(session)
        self._sessions_per_ip[ip] = self._sessions_per_ip.get(ip, 0) + 1
        self.sessions_served += 1
        for wev in wt.accept(sid):
            ep.dispatch(wev)
        ep.schedule_transmit()
        task = asyncio.get_running_loop().create_task(self._run(handler, session, ip))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _authority_ok(self, authority: str) -> bool:
        if self.authorities is None:
            return True
        try:
            host, port = _split_authority(authority)
        except ValueError:
            return False
        return any(host == h and (p is None or p == port) for h, p in self.authorities)

    def _origin_ok(self, headers: tuple[tuple[bytes, bytes], ...]) -> bool:
        if self.origins is None:
            return True
        origin = next((v for k, v in headers if k == b"origin"), None)
        if origin is None:
            return True  # not a browser: Origin protects users of web pages
        return origin.decode("utf-8", "replace").strip().rstrip("/").lower() in self.origins

    async def _run(self, handler: Handler, session: Session, ip: str = "") -> None:
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
            left = self._sessions_per_ip.get(ip, 0) - 1
            if left > 0:
                self._sessions_per_ip[ip] = left
            else:
                self._sessions_per_ip.pop(ip, None)
            if not session.closed:
                try:
                    await session.close()
                except Exception:
                    pass


def serve(host: str = "127.0.0.1", port: int = 4433, *, cert: str | None = None,
          key: str | None = None, routes: dict[str, Handler] | None = None,
          congestion_control: Any = "default", recorder: Any = None, flow: int = 0,
          limits: Limits | None = None, cert_kind: str = "ecdsa",
          dialect: str = "auto", idle_timeout_s: float = 60.0, retry: str = "auto",
          authorities: Any = None, origins: Any = None,
          allow_non_loopback: bool = False, max_datagram_size: int = 1200,
          full_packets: bool = True, ecn: bool = False) -> Server:
    """A WebTransport server: ``async with serve(...) as server`` or ``server = await serve(...)``.

    ``port=0`` picks a free port (read ``server.port``). ``routes`` maps paths to
    ``async def handler(session)``; they extend the built-in ``/echo``, ``/sink``
    and ``/source``. ``recorder`` receives the trace of every connection, each
    with its own ``flow`` id starting at ``flow``. ``idle_timeout_s`` is the QUIC idle
    timeout of every connection. ``limits`` (:class:`~wtlab.transport.limits.Limits`)
    bounds what peers may use; ``retry`` ("auto", "always", "never") is the QUIC
    address-validation policy; ``authorities`` / ``origins`` turn on the browser-grade
    request checks; ``allow_non_loopback`` permits listening beyond loopback (see the
    module docstring). ``max_datagram_size`` (1200..1472) and ``full_packets`` are
    :func:`wtlab.connect`'s, for what this server sends. ``ecn``:
    carry the IP header's ECN field on the socket where the system allows it (see
    :func:`wtlab.transport.connect`).
    """
    return Server(host, port, cert=cert, key=key, routes=routes,
                  congestion_control=congestion_control, recorder=recorder, flow=flow,
                  limits=limits, cert_kind=cert_kind, dialect=dialect,
                  idle_timeout_s=idle_timeout_s, retry=retry, authorities=authorities,
                  origins=origins, allow_non_loopback=allow_non_loopback,
                  max_datagram_size=max_datagram_size, full_packets=full_packets, ecn=ecn)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit; wtlab raises
        raise ConfigError(f"serve: {message}; see 'wtlab serve --help'")


def _parser() -> argparse.ArgumentParser:
    defaults = Limits()
    parser = _ArgumentParser(
        prog="wtlab serve",
        description="Run the WebTransport server (routes /echo, /sink, /source?bytes=N).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (loopback unless --allow-non-loopback)")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--cert", help="certificate (PEM); default: a fresh self-signed one")
    parser.add_argument("--key", help="private key (PEM) of --cert")
    parser.add_argument("--cert-kind", choices=("ecdsa", "rsa"), default="ecdsa")
    parser.add_argument("--congestion-control", default="default")
    parser.add_argument("--retry", choices=RETRY_POLICIES, default="auto",
                        help="QUIC Retry (address validation): auto = under handshake pressure")
    parser.add_argument("--authority", action="append", metavar="NAME",
                        help="accept only requests whose :authority is NAME (host or host:port; "
                             "'certificate' for the certificate's names); repeatable (421 else)")
    parser.add_argument("--origin", action="append", metavar="ORIGIN",
                        help="accept browser requests only from ORIGIN, e.g. "
                             "http://127.0.0.1:8080; repeatable (403 else)")
    parser.add_argument("--allow-non-loopback", action="store_true",
                        help="allow --host beyond loopback (other machines can then connect)")
    parser.add_argument("--idle-timeout", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--page", action="store_true",
                        help="also serve a browser echo page over plain HTTP on loopback")
    parser.add_argument("--page-port", type=int, default=8080)
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    group = parser.add_argument_group(
        "limits", "What peers may use (see wtlab.transport.limits). A session request beyond a "
        "session limit is answered 429; a session over its byte budget is closed with "
        "0x4c02, one with too many streams with 0x4c01; a connection over its byte budget "
        "(or the server over its total) is closed with H3_EXCESSIVE_LOAD.")
    for name, text in DESCRIPTIONS.items():
        seconds = name.endswith("_s")
        group.add_argument(Limits.option(name), dest=name, type=float if seconds else int,
                           default=None, metavar="SECONDS" if seconds else "N",
                           help=f"{text} (default {getattr(defaults, name)})")
    return parser


def cli_main(argv: list[str]) -> int:
    """``wtlab serve [--host H] [--port P] [--cert F --key F] [--page] [limits...]``."""
    args = _parser().parse_args(argv)
    overrides = {name: getattr(args, name) for name in DESCRIPTIONS
                 if getattr(args, name) is not None}
    limits = Limits(**overrides)
    authorities = None
    if args.authority:
        authorities = "certificate" if args.authority == ["certificate"] else args.authority
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server = Server(args.host, args.port, cert=args.cert, key=args.key,
                        congestion_control=args.congestion_control, cert_kind=args.cert_kind,
                        limits=limits, retry=args.retry, authorities=authorities,
                        origins=args.origin, allow_non_loopback=args.allow_non_loopback,
                        idle_timeout_s=args.idle_timeout)
    for w in caught:
        print(f"wtlab serve: WARNING: {w.message}", file=sys.stderr, flush=True)

    async def run() -> None:
        await server.start()
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
