"""``wtlab.connect``: open a WebTransport session over HTTP/3.

::

    async with wtlab.connect("https://127.0.0.1:4433/echo", cert_hashes=[sha256]) as session:
        stream = await session.open_bidi()
        stream.write(b"hello"); stream.write_eof()
        print(await stream.read())

``connect(...)`` may also be awaited (``session = await wtlab.connect(...)``);
then ``await session.close()`` when done. One session per QUIC connection.

Errors come up front where they can: a malformed URL, a bad ``ca_file`` or hash
is a ConfigError before any packet; nothing listening on the port fails within a
round trip where the OS reports it (ICMP port unreachable: the client's UDP
socket is connected to the server's address, so the error reaches it) instead of
after the timeout. Whatever goes wrong inside the connection ends it with a
typed error; nothing is left to asyncio's exception handler.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from cryptography.hazmat.primitives.serialization import Encoding

from wtlab.errors import (
    CertificateError,
    ConfigError,
    ConnectTimeout,
    ProtocolError,
    SessionRejected,
)
from wtlab.transport import protocol as P
from wtlab.transport.certs import CERT_HASH_POLICIES, hash_pinning_problem, load_ca_file
from wtlab.transport.driver import (
    Connection,
    Endpoint,
    attach_controller,
    check_idle_timeout,
    check_max_datagram_size,
    check_url,
    make_controller,
    pace_for,
)
from wtlab.transport.ecn_udp import open_endpoint
from wtlab.transport.session import Session
from wtlab.transport.udp import BatchedDatagramProtocol

_QUIC_INTERNAL_ERROR = 0x1
# TLS alerts (RFC 8446) that mean "your certificate is not acceptable".
_CERT_ALERTS = {42, 43, 44, 45, 46, 48, 49}
QUIC_MAX_DATA = 16 * 1024 * 1024
QUIC_MAX_STREAM_DATA = 8 * 1024 * 1024
MAX_DATAGRAM_FRAME_SIZE = 65536
H3_REQUEST_CANCELLED = 0x10C


class _ClientProtocol(BatchedDatagramProtocol):
    def __init__(self) -> None:
        super().__init__()
        self.endpoint: Endpoint | None = None

    def handle_datagram(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        ep = self.endpoint
        if ep is not None and not ep.terminated:
            try:
                ep.datagram_received(data, addr, ecn)
            except Exception as exc:  # never into asyncio's handler: end the connection
                ep.close(_QUIC_INTERNAL_ERROR, f"client error: {type(exc).__name__}: {exc}"[:200])

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: nothing listens there. Only meaningful before the handshake.
        ep = self.endpoint
        if ep is not None and not ep.handshake.done() and isinstance(exc, ConnectionRefusedError):
            ep.handshake.set_exception(exc)


def _normalize_hashes(cert_hashes: Iterable[Any] | None) -> list[bytes] | None:
    if cert_hashes is None:
        return None
    if isinstance(cert_hashes, (str, bytes)):
        cert_hashes = [cert_hashes]
    out = []
    for h in cert_hashes:
        if isinstance(h, Mapping):  # W3C style {"algorithm": "sha-256", "value": ...}
            if str(h.get("algorithm", "sha-256")).lower() != "sha-256":
                raise ConfigError("only sha-256 certificate hashes are supported")
            h = h.get("value")
        if isinstance(h, (bytes, bytearray, memoryview)) and len(h) == 32:
            out.append(bytes(h))
            continue
        if isinstance(h, str):
            text = h.replace(":", "").strip().lower()
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
            if len(raw) == 32:
                out.append(raw)
                continue
        raise ConfigError(f"certificate hash {h!r} is not a SHA-256 digest "
                          "(give 64 hex digits or 32 bytes)")
    if not out:
        raise ConfigError("cert_hashes is empty; give at least one SHA-256 hash or None")
    return out


def _normalize_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None
                       ) -> list[tuple[bytes, bytes]]:
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for k, v in items:
        kb = k.encode() if isinstance(k, str) else bytes(k)
        vb = v.encode() if isinstance(v, str) else bytes(v)
        kb = kb.lower()
        if kb.startswith(b":"):
            raise ConfigError(f"header {k!r}: pseudo-headers are set by wtlab; remove it")
        out.append((kb, vb))
    return out


async def _open(url: str, *, congestion_control: Any, cert_hashes: Any, ca_file: str | None,
                verify: bool, headers: Any, timeout: float, recorder: Any, flow: int,
                dialect: str, idle_timeout_s: float, cert_hash_policy: str,
                max_datagram_size: int = 1200, full_packets: bool = True,
                ecn: bool = False) -> Session:
    host, port, path, authority = check_url(url)  # before any packet
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ConfigError(f"timeout={timeout!r} must be a positive number of seconds")
    if dialect not in P.DIALECTS:
        raise ConfigError(f"unknown dialect {dialect!r}; use one of {P.DIALECTS}")
    check_idle_timeout(idle_timeout_s)
    check_max_datagram_size(max_datagram_size)
    from wtlab.cc.aioquic import check_full_packets

    check_full_packets(full_packets)
    if cert_hash_policy not in CERT_HASH_POLICIES:
        raise ConfigError(f"cert_hash_policy={cert_hash_policy!r}: use one of "
                          f"{CERT_HASH_POLICIES}")
    hashes = _normalize_hashes(cert_hashes)
    extra_headers = _normalize_headers(headers)
    config = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
        server_name=host, max_data=QUIC_MAX_DATA, max_stream_data=QUIC_MAX_STREAM_DATA,
        idle_timeout=idle_timeout_s, max_datagram_size=max_datagram_size,
    )
    if hashes is not None or not verify:
        config.verify_mode = ssl.CERT_NONE  # checked against cert_hashes after the handshake
    else:
        config.verify_mode = ssl.CERT_REQUIRED
        if ca_file is not None:
            # read and parsed here, handed over as data: the handshake cannot fail on it
            config.load_verify_locations(cadata=load_ca_file(ca_file))
    controller = make_controller(congestion_control, config.max_datagram_size, recorder, flow)

    loop = asyncio.get_running_loop()
    if recorder is not None and not getattr(recorder, "clock_fixed", True):
        recorder.t0 = loop.time()  # trace times count from this session's start
        recorder.clock_fixed = True
    deadline = loop.time() + timeout

    def remaining() -> float:
        return max(0.0, deadline - loop.time())

    try:
        ip = ipaddress.ip_address(host)
        addr_host = str(ip)
    except ValueError:
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM), remaining())
        except TimeoutError:
            raise ConnectTimeout(f"resolving {host!r} took longer than {timeout}s") from None
        except OSError as exc:
            raise ConnectTimeout(f"cannot resolve {host!r}: {exc}; check the host name") from None
        # IPv4 first: wtlab's server (and most test servers) listen on 127.0.0.1
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        addr_host = infos[0][4][0]
        ip = ipaddress.ip_address(addr_host)
    if ip.version == 6:
        family, addr = socket.AF_INET6, (addr_host, port, 0, 0)
        local = ("::1", 0) if ip.is_loopback else ("::", 0)
    else:
        family, addr = socket.AF_INET, (addr_host, port)
        local = ("127.0.0.1", 0) if ip.is_loopback else ("0.0.0.0", 0)

    quic = Connection(configuration=config)
    attach_controller(quic, controller, recorder, flow, full_packets)
    wt = P.WebTransportConnection(quic, dialect=dialect)
    # connected to the server's address: ICMP errors (port unreachable) reach the socket
    transport, proto = await open_endpoint(_ClientProtocol, ecn=ecn, local_addr=local,
                                           remote_addr=addr, family=family)
    pace_for(quic, transport)
    ep = Endpoint(quic, wt, sendto=transport.sendto, controller=controller, recorder=recorder,
                  flow=flow, sendto_ecn=getattr(transport, "sendto_ecn", None))
    ep.on_close_transport = transport.close
    proto.endpoint = ep  # type: ignore[attr-defined]

    def fail(exc: Exception) -> Exception:
        ep.close(H3_REQUEST_CANCELLED, "")
        transport.close()
        return exc

    quic.connect(addr, now=loop.time())
    ep.transmit()
    where = f"{host}:{port}"
    try:
        await asyncio.wait_for(asyncio.shield(ep.handshake), remaining())
    except TimeoutError:
        raise fail(ConnectTimeout(f"no QUIC handshake with {where} within {timeout}s; is a "
                                  "WebTransport server listening there (UDP)?")) from None
    except ConnectionRefusedError:
        raise fail(ConnectTimeout(f"nothing is listening at {where} (UDP port unreachable); "
                                  "start the server or check the port")) from None
    except ConnectionError:
        code, reason = ep.close_error or (0, "")
        transport.close()
        if 0x100 <= code <= 0x1FF and (code - 0x100 in _CERT_ALERTS or "certif" in reason.lower()):
            raise CertificateError(
                f"TLS rejected the server certificate of {where}: {reason or hex(code)}; pass "
                "cert_hashes=[sha256] for a self-signed certificate, ca_file=..., or "
                "verify=False") from None
        raise ProtocolError(f"QUIC handshake with {where} failed: {reason} (0x{code:x})") from None

    if hashes is not None:
        cert = quic.tls._peer_certificate
        der = cert.public_bytes(Encoding.DER) if cert is not None else b""
        digest = hashlib.sha256(der).digest()
        if digest not in hashes:
            raise fail(CertificateError(
                f"the certificate of {where} has SHA-256 {digest.hex()}, which is not in "
                "cert_hashes; use the hash the server printed"))
        problem = hash_pinning_problem(cert) if cert_hash_policy == "browser" else None
        if problem is not None:
            raise fail(CertificateError(
                f"the certificate of {where} matches cert_hashes but {problem}, so a browser "
                "would refuse it; serve an ECDSA P-256 certificate valid <= 14 days (wtlab's "
                "default), or pass cert_hash_policy='relaxed' to accept it anyway"))

    try:
        await asyncio.wait_for(asyncio.shield(ep.settings), remaining())
    except TimeoutError:
        raise fail(ConnectTimeout(f"{where} sent no HTTP/3 SETTINGS within {timeout}s")) from None
    except ConnectionError:
        transport.close()
        raise ProtocolError(f"{where} closed the connection before HTTP/3 started: "
                            f"{ep.close_error}") from None
    if not wt.peer_supports_webtransport():
        raise fail(ProtocolError(f"{where} does not offer WebTransport (its HTTP/3 SETTINGS lack "
                                 "H3_DATAGRAM and a WebTransport setting)"))

    session_id = wt.connect(path, authority, extra_headers)
    negotiated = wt.sessions[session_id].dialect
    session = Session(ep, session_id, path=path, dialect=negotiated)
    ep.sessions[session_id] = session
    fut = ep.session_waiters[session_id] = loop.create_future()
    ep.transmit()
    try:
        ev = await asyncio.wait_for(asyncio.shield(fut), remaining())
    except TimeoutError:
        raise fail(ConnectTimeout(f"{where} did not answer the WebTransport CONNECT within "
                                  f"{timeout}s")) from None
    except ConnectionError:
        transport.close()
        raise ProtocolError(f"{where} closed the connection during session setup: "
                            f"{ep.close_error}") from None
    if isinstance(ev, P.SessionRejected):
        ep.sessions.pop(session_id, None)
        if ev.status:
            raise fail(SessionRejected(ev.status))
        raise fail(SessionRejected(0, f"server refused the WebTransport session without a "
                                      f"status ({ev.reason}); check the URL and server limits"))
    session.headers = ev.headers
    if recorder is not None:
        recorder.meta.setdefault("transport", {"url": url, "dialect": negotiated})
    return session


class connect:  # noqa: N801 - reads as a function: wtlab.connect(url)
    """Open a WebTransport session: ``async with wtlab.connect(url) as session`` or
    ``session = await wtlab.connect(url)``.

    Parameters: ``congestion_control`` (a wtlab controller name, class or
    instance, or a W3C hint "default"/"throughput"/"low-latency");
    ``cert_hashes`` (SHA-256 digests of an accepted self-signed certificate,
    as hex or bytes; replaces CA verification, like a browser's
    ``serverCertificateHashes``); ``ca_file`` / ``verify``; ``headers`` (extra
    request headers); ``timeout`` (seconds for the whole setup);
    ``recorder`` / ``flow`` (trace events of this connection go to that
    :class:`wtlab.trace.Recorder` as rows of ``flow``); ``dialect`` ("auto",
    "draft02", "draft07" or "latest"; see :mod:`wtlab.transport.protocol`);
    ``idle_timeout_s`` (the QUIC idle timeout: a path silent that long ends the
    session with SessionClosed); ``cert_hash_policy``: ``"browser"`` (default) also
    refuses, as browsers do, a hashed certificate that is not ECDSA P-256, not
    currently valid or valid for more than 14 days; ``"relaxed"`` checks the hash only
    (e.g. wtlab's RSA certificates for deterministic emulation); ``max_datagram_size``
    (the QUIC packets this end sends, UDP payload bytes, 1200..1472: 1472 fills a
    1500-byte MTU, as TCP's 1448-byte segments do); ``full_packets`` (True: while the
    congestion window is the limit, send only whole packets, as TCP and deployed QUIC
    stacks do; False: aioquic's own, a short packet fills the window's last bytes);
    ``ecn`` (on a live socket, carry the IP header's ECN field where the system allows
    it, Linux: the controller's marking, ACK_ECN counts, validation; elsewhere the session
    runs without ECN. The virtual network always carries it).

    Raises InvalidURL or ConfigError (before any packet: URL, hashes, ``ca_file``),
    ConnectTimeout, CertificateError, SessionRejected (with ``.status``), ProtocolError.
    """

    def __init__(self, url: str, *, congestion_control: Any = "default",
                 cert_hashes: Any = None, ca_file: str | None = None, verify: bool = True,
                 headers: Any = None, timeout: float = 10.0, recorder: Any = None, flow: int = 0,
                 dialect: str = "auto", idle_timeout_s: float = 60.0,
                 cert_hash_policy: str = "browser", max_datagram_size: int = 1200,
                 full_packets: bool = True, ecn: bool = False) -> None:
        check_url(url)
        check_max_datagram_size(max_datagram_size)
        self._kw = dict(congestion_control=congestion_control, cert_hashes=cert_hashes,
                        ca_file=ca_file, verify=verify, headers=headers, timeout=timeout,
                        recorder=recorder, flow=flow, dialect=dialect,
                        idle_timeout_s=idle_timeout_s, cert_hash_policy=cert_hash_policy,
                        max_datagram_size=max_datagram_size, full_packets=full_packets,
                        ecn=bool(ecn))
        self._url = url
        self._session: Session | None = None

    def __await__(self):
        return _open(self._url, **self._kw).__await__()

    async def __aenter__(self) -> Session:
        self._session = await _open(self._url, **self._kw)
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
