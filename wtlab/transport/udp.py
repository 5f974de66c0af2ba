"""UDP sockets for the live drivers: large kernel buffers, batch draining, and the loopback
check the server and the relay apply before binding.

asyncio reads one datagram per readable socket per loop iteration. A server with
one socket and many connections then sees each connection's packets spread over
many iterations, so no connection gets to absorb a burst before transmitting.
:class:`BatchReader` reads what else is already queued in the kernel (bounded
per call) right after asyncio hands over a datagram.

On a virtual-time loop (no real socket behind the transport) both are no-ops.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections.abc import Callable
from typing import Any

#: kernel receive/send buffer asked for (Linux doubles it for bookkeeping): about 200 ms of
#: what a busy server processes. Larger only delays the losses of a sustained overload
#: (loss-based congestion control fills any buffer) and lengthens every round trip.
SOCKET_BUFFER_BYTES = 4 << 20
#: datagrams read per readiness callback at most (besides the one asyncio read)
DRAIN_BATCH = 64
#: on a real socket, the shortest wait the pacer imposes on a flow paced faster than this
#: [s], which then sends in bursts: the resolution at which an idle asyncio loop wakes
#: (epoll's timeout is in milliseconds); see :func:`wtlab.cc.aioquic.set_pacing_granularity`
LIVE_PACING_GRANULARITY_S = 1e-3
_MAX_UDP_PAYLOAD = 65535
# Linux's privileged variants (not named in Python's socket module)
_SO_RCVBUFFORCE = 33 if sys.platform.startswith("linux") else None
_SO_SNDBUFFORCE = 32 if sys.platform.startswith("linux") else None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) names this machine's loopback only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def pacing_granularity_s(transport: Any) -> float:
    """:data:`LIVE_PACING_GRANULARITY_S` for a transport with a real socket behind it, 0 on
    the virtual network (whose clock does not move while code runs)."""
    return LIVE_PACING_GRANULARITY_S if transport.get_extra_info("socket") is not None else 0.0


def grow_buffers(transport: Any, size_bytes: int = SOCKET_BUFFER_BYTES) -> tuple[int, int]:
    """Ask for ``size_bytes`` kernel buffers both ways; returns what the OS granted
    (receive, send), (0, 0) without a real socket.

    The OS caps an ordinary request at ``net.core.rmem_max`` / ``wmem_max``; a process
    allowed to (CAP_NET_ADMIN) gets the full size, as quic-go does it.
    """
    tsock = transport.get_extra_info("socket")
    if tsock is None:
        return 0, 0
    for option, forced in ((socket.SO_RCVBUF, _SO_RCVBUFFORCE),
                           (socket.SO_SNDBUF, _SO_SNDBUFFORCE)):
        try:
            tsock.setsockopt(socket.SOL_SOCKET, option, size_bytes)
        except OSError:
            pass
        if forced is not None and tsock.getsockopt(socket.SOL_SOCKET, option) < size_bytes:
            try:
                tsock.setsockopt(socket.SOL_SOCKET, forced, size_bytes)
            except OSError:
                pass  # not permitted: keep what the cap allowed
    try:
        return (tsock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                tsock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    except OSError:
        return 0, 0


def batch_reader(transport: Any) -> BatchReader | None:
    """A :class:`BatchReader` for ``transport``, or None where the transport reads its own
    batches (wtlab's ECN transport, which must see each datagram's codepoint)."""
    if hasattr(transport, "sendto_ecn"):
        return None
    return BatchReader(transport)


class BatchReader:
    """Reads datagrams already queued on a transport's socket, without blocking."""

    def __init__(self, transport: Any, batch: int = DRAIN_BATCH) -> None:
        tsock = transport.get_extra_info("socket")
        # a duplicate descriptor of the same socket: asyncio's wrapper cannot receive
        self._sock = tsock.dup() if tsock is not None else None
        if self._sock is not None:
            self._sock.setblocking(False)
        self.batch = batch

    def drain(self, handle: Callable[[bytes, Any], None],
              on_error: Callable[[OSError], None] | None = None) -> int:
        """Hand up to ``batch`` queued datagrams to ``handle(data, addr)``; returns how many.

        A socket error met on the way (e.g. ICMP port unreachable on a connected
        socket, which reading consumes) goes to ``on_error``, as asyncio would report it.
        """
        sock = self._sock
        if sock is None:
            return 0
        recvfrom = sock.recvfrom
        n = 0
        while n < self.batch:
            try:
                data, addr = recvfrom(_MAX_UDP_PAYLOAD)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if on_error is not None:
                    on_error(exc)
                break
            n += 1
            handle(data, addr)
        return n

    def close(self) -> None:
        """Close the socket this reader drains (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class BatchedDatagramProtocol(asyncio.DatagramProtocol):
    """A UDP endpoint that, each time asyncio hands it a datagram, also takes what else
    the kernel has queued (asyncio alone hands over one datagram per loop iteration), so
    every connection absorbs its burst before any of them transmits.

    Subclasses implement :meth:`handle_datagram`; ``error_received`` gets the socket
    errors met while draining, as asyncio would report them. Transports that read the
    ECN field (the virtual network, :mod:`wtlab.transport.ecn_udp`) call
    ``datagram_received_ecn`` and read in batches themselves (then there is no reader).
    """

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.reader: BatchReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport, grow its socket buffers and open the batch reader."""
        self.transport = transport  # type: ignore[assignment]
        grow_buffers(transport)
        self.reader = batch_reader(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Close the batch reader's socket."""
        if self.reader is not None:
            self.reader.close()

    def datagram_received(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        """Handle this datagram, then the ones already queued behind it."""
        self.handle_datagram(data, addr, ecn)
        if self.reader is not None:
            self.reader.drain(self.handle_datagram, self.error_received)

    datagram_received_ecn = datagram_received

    def handle_datagram(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        """One datagram from ``addr`` with ECN codepoint ``ecn`` (0: Not-ECT)."""
        raise NotImplementedError

