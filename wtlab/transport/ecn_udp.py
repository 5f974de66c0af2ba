"""UDP sockets that carry the ECN field, for asyncio (Linux: IP_TOS / IP_RECVTOS).

asyncio's datagram transport reads with ``recvfrom`` and never sees the IP header's
ECN bits, nor can it set them per datagram. :func:`create_ecn_endpoint` opens a
socket with ``IP_RECVTOS`` (and ``IPV6_RECVTCLASS``) and a transport that reads with
``recvmsg``, so each datagram arrives with its codepoint, and writes with the codepoint
the sender chose (``IP_TOS`` / ``IPV6_TCLASS``, set only when it changes). Protocols
that define ``datagram_received_ecn(data, addr, codepoint)`` get the codepoint (wtlab's
client, server and relay do); others get ``datagram_received(data, addr)``.

Where the operating system does not carry the field (:func:`ecn_supported` probes it
once on loopback: the socket options exist and a marked datagram arrives marked), the
callers fall back to asyncio's own endpoint, without ECN: the session still works and
its controller records ECN as ``failed`` ("this socket cannot set or read the ECN
field"). Only loopback is probed; nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import Any

__all__ = ["EcnDatagramTransport", "create_ecn_endpoint", "ecn_supported", "open_endpoint"]

_IP_TOS = getattr(socket, "IP_TOS", None)
_IP_RECVTOS = getattr(socket, "IP_RECVTOS", None)
_IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", None)
_IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", None)
_ANC_SIZE = socket.CMSG_SPACE(4) * 2 if hasattr(socket, "CMSG_SPACE") else 0
_MAX_DATAGRAM = 65535
_READ_BATCH = 64  # datagrams read per wake-up before yielding to the loop
_supported: bool | None = None


def _codepoint(ancdata: list) -> int:
    for level, ctype, data in ancdata:
        if level == socket.IPPROTO_IP and ctype in (_IP_TOS, _IP_RECVTOS) and data:
            return data[0] & 3
        if level == socket.IPPROTO_IPV6 and ctype == _IPV6_TCLASS and len(data) >= 4:
            return int.from_bytes(data[:4], "little") & 3
    return 0


def _enable_recv(sock: socket.socket) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVTCLASS, 1)
        try:  # IPv4-mapped traffic on a dual-stack socket reports IP_TOS
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTOS, 1)
        except OSError:
            pass
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTOS, 1)


def _set_tos(sock: socket.socket, codepoint: int) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_TCLASS, codepoint)
        try:
            sock.setsockopt(socket.IPPROTO_IP, _IP_TOS, codepoint)
        except OSError:
            pass
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_TOS, codepoint)


def ecn_supported() -> bool:
    """True if this system's UDP sockets can set and read the ECN field (probed once, on
    127.0.0.1: an ECT(0) datagram must arrive with ECT(0) in its ancillary data)."""
    global _supported
    if _supported is not None:
        return _supported
    ok = False
    if None not in (_IP_TOS, _IP_RECVTOS) and hasattr(socket.socket, "recvmsg"):
        a = b = None
        try:
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b.bind(("127.0.0.1", 0))
            b.settimeout(1.0)
            _enable_recv(b)
            _set_tos(a, 0b10)
            a.sendto(b"wtlab-ecn-probe", b.getsockname())
            _, anc, _, _ = b.recvmsg(64, _ANC_SIZE)
            ok = _codepoint(anc) == 0b10
        except OSError:
            ok = False
        finally:
            for s in (a, b):
                if s is not None:
                    s.close()
    _supported = ok
    return ok


class EcnDatagramTransport(asyncio.DatagramTransport):
    """An asyncio datagram transport whose datagrams carry an ECN codepoint.

    ``sendto_ecn(data, addr, codepoint)`` sends with that codepoint; ``sendto`` with
    not-ECT. Received datagrams go to ``protocol.datagram_received_ecn(data, addr,
    codepoint)`` when the protocol has it. Writes that find the socket buffer full are
    queued and sent when it drains, as asyncio's own transport does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: Any,
                 remote: Any = None) -> None:
        super().__init__()
        self._loop = loop
        self._sock = sock
        self._protocol = protocol
        self._remote = remote
        self._closing = False
        self._tos = 0
        self._buffer: deque[tuple[bytes, Any, int]] = deque()
        self._extra = {"socket": sock, "sockname": sock.getsockname(),
                       "peername": remote}
        self._rx_ecn = getattr(protocol, "datagram_received_ecn", None)
        loop.add_reader(sock.fileno(), self._read_ready)

    # -- reading -----------------------------------------------------------------
    def _read_ready(self) -> None:
        sock = self._sock
        for _ in range(_READ_BATCH):
            if self._closing:
                return
            try:
                data, anc, _flags, addr = sock.recvmsg(_MAX_DATAGRAM, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            if self._remote is not None and addr is None:
                addr = self._remote
            rx = self._rx_ecn
            if rx is not None:
                rx(data, addr, _codepoint(anc))
            else:
                self._protocol.datagram_received(data, addr)

    # -- writing -----------------------------------------------------------------
    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sendto_ecn(data, addr, 0)

    def sendto_ecn(self, data: bytes, addr: Any, codepoint: int) -> None:
        """Send ``data`` to ``addr`` (ignored on a connected endpoint) with ECN
        ``codepoint`` (0..3) in the IP header; queued in order while the socket buffer is
        full, dropped once the transport is closing."""
        if self._closing:
            return
        if self._buffer:
            self._buffer.append((bytes(data), addr, codepoint))
        elif not self._send(data, addr, codepoint):
            self._buffer.append((bytes(data), addr, codepoint))
            self._loop.add_writer(self._sock.fileno(), self._write_ready)

    def _send(self, data: bytes, addr: Any, codepoint: int) -> bool:
        """Send now; False if the socket buffer is full (the caller queues it)."""
        sock = self._sock
        try:
            if codepoint != self._tos:
                _set_tos(sock, codepoint)
                self._tos = codepoint
            if self._remote is not None:
                sock.send(data)
            else:
                sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._protocol.error_received(exc)
        return True

    def _write_ready(self) -> None:
        buf = self._buffer
        while buf:
            data, addr, codepoint = buf[0]
            if not self._send(data, addr, codepoint):
                return
            buf.popleft()
        self._loop.remove_writer(self._sock.fileno())

    # -- the rest of asyncio.DatagramTransport ---------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        fd = self._sock.fileno()
        self._loop.remove_reader(fd)
        if self._buffer:
            self._loop.remove_writer(fd)
            self._buffer.clear()
        self._loop.call_soon(self._finish_close)

    def _finish_close(self) -> None:
        try:
            self._protocol.connection_lost(None)
        finally:
            self._sock.close()

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        """Bytes of datagrams queued, waiting for the socket buffer to drain."""
        return sum(len(d) for d, _, _ in self._buffer)

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol
        self._rx_ecn = getattr(protocol, "datagram_received_ecn", None)

    def get_protocol(self) -> Any:
        return self._protocol


async def create_ecn_endpoint(protocol_factory: Any, *, local_addr: Any = None,
                              remote_addr: Any = None, family: int = 0
                              ) -> tuple[EcnDatagramTransport, Any]:
    """``loop.create_datagram_endpoint`` with a socket that carries the ECN field.

    Raises OSError if the socket cannot be made (callers fall back to asyncio's own
    endpoint; check :func:`ecn_supported` first to avoid trying where it cannot work).
    """
    loop = asyncio.get_running_loop()
    if not family:
        addr = remote_addr or local_addr
        family = socket.AF_INET6 if addr is not None and ":" in str(addr[0]) else \
            socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        _enable_recv(sock)
        if local_addr is not None:
            sock.bind(local_addr)
        remote = None
        if remote_addr is not None:
            infos = await loop.getaddrinfo(remote_addr[0], remote_addr[1], family=family,
                                           type=socket.SOCK_DGRAM)
            remote = infos[0][4]
            sock.connect(remote)
    except BaseException:
        sock.close()
        raise
    protocol = protocol_factory()
    transport = EcnDatagramTransport(loop, sock, protocol, remote)
    protocol.connection_made(transport)
    return transport, protocol


async def open_endpoint(protocol_factory: Any, *, ecn: bool, **kwargs: Any) -> tuple[Any, Any]:
    """The datagram endpoint wtlab's client and server use: with ``ecn`` on a real event
    loop whose system carries the ECN field, an :class:`EcnDatagramTransport`; otherwise
    ``loop.create_datagram_endpoint`` (the virtual network's endpoints carry the field
    anyway; elsewhere the session runs without ECN)."""
    loop = asyncio.get_running_loop()
    if ecn and getattr(loop, "network", None) is None and ecn_supported():
        try:
            return await create_ecn_endpoint(protocol_factory, **kwargs)
        except OSError:
            pass  # fall back to asyncio's endpoint, without ECN
    return await loop.create_datagram_endpoint(protocol_factory, **kwargs)
