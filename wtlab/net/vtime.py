"""A virtual-time asyncio event loop: real asyncio code, simulated clock, no sockets.

:class:`VirtualTimeLoop` is an ordinary :class:`asyncio.SelectorEventLoop` with two
changes:

* its selector never sleeps: ``select(timeout)`` moves the virtual clock forward to the
  next scheduled callback (exactly to its ``when``) and returns at once, so a run takes
  as long as the computation it contains, not as long as the time it simulates;
* ``loop.time()`` reads that clock, and the loop's I/O entry points are answered by a
  virtual network (:class:`wtlab.net.network.VirtualNetwork`) instead of the operating
  system: ``create_datagram_endpoint`` returns a virtual UDP transport attached to the
  simulated path, ``getaddrinfo`` resolves the network's host names. Every other way to
  reach the operating system (TCP, pipes, subprocesses, readers on file descriptors,
  executor threads) raises :class:`wtlab.ConfigError`: a virtual-time run never opens a
  real socket.

What a user can rely on:

* code that does its I/O and timing through the running loop (``loop.time()``,
  ``call_at``/``call_later``, ``asyncio.sleep``, ``wait_for``, ``create_datagram_endpoint``)
  runs unchanged; aioquic's QUIC connection protocol and wtlab's WebTransport client and
  server are such code;
* the clock starts at ``start_s`` (default 0.0) and only moves forward, in ``select``,
  straight to the next timer's deadline plus ``TICK_S`` (1 ns): callbacks run 1 ns after
  the time they asked for, so code that re-arms a timer at the current time always makes
  progress (aioquic's loss timer needs this; a real clock behaves the same way);
* when nothing is scheduled and nothing is ready, virtual time could never move again;
  the loop raises :class:`SimulationStalled` rather than hang.

The loop does not need to own the thread: :meth:`VirtualTimeLoop.run_in_place` runs it
from inside another running loop (a Jupyter kernel's) by swapping the thread's running
loop for the duration of the call.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import selectors
import socket
from asyncio import events
from collections.abc import Callable
from typing import Any

from wtlab.errors import ConfigError, WtlabError

TICK_S = 1e-9  # timers fire this long after their deadline (see _VirtualSelector.select)


class SimulationStalled(WtlabError, RuntimeError):
    """Virtual time cannot advance: nothing is scheduled and nothing is ready.

    Some coroutine waits for an event no simulated component will ever produce
    (e.g. a reply from a peer that is not running).
    """


class _VirtualSelector(selectors.BaseSelector):
    """A selector with no file descriptors whose ``select`` advances the virtual clock."""

    def __init__(self) -> None:
        self.loop: VirtualTimeLoop | None = None
        self._map: dict[Any, selectors.SelectorKey] = {}

    def register(self, fileobj, events_mask, data=None):  # pragma: no cover - guarded by loop
        raise ConfigError(
            "a virtual-time loop has no file descriptors to watch; "
            "do I/O through loop.create_datagram_endpoint on the virtual network"
        )

    def unregister(self, fileobj):  # pragma: no cover - nothing is ever registered
        raise KeyError(fileobj)

    def select(self, timeout: float | None = None):
        loop = self.loop
        if timeout is None:
            raise SimulationStalled(
                f"virtual time stalled at t={loop._now_s:.6f} s: no callback is scheduled and "
                "none is ready, so nothing can ever happen again; a coroutine is waiting for "
                "something no simulated endpoint will send (is the peer running?)"
            )
        if loop._ready or loop._stopping:
            return []  # callbacks are waiting: time stands still
        scheduled = loop._scheduled
        if scheduled:
            now = loop._now_s
            wake = scheduled[0]._when
            g = loop.timer_granularity_s
            if g and wake > now:
                # epoll waits whole milliseconds (CPython rounds the timeout up), so a live
                # loop wakes late for timers, but at once when a datagram becomes readable
                wake = now + math.ceil((wake - now) / g - 1e-9) * g
                io = min(loop.io_deadline, loop.run_deadline)
                if now < io < wake:
                    wake = io
            # Jump to the deadline plus one tick (timeout = when - now would lose bits). The
            # tick is why a timer that re-arms itself at "now" cannot spin forever: a real
            # clock is never read exactly at a deadline either, and aioquic's loss timer
            # (sent_time + delay <= now - ...) relies on that.
            target = max(wake, now) + TICK_S
            if target > now:
                loop._now_s = target
        return []

    def get_map(self):
        return self._map

    def close(self) -> None:
        self._map.clear()


def _no_os(what: str) -> ConfigError:
    return ConfigError(
        f"{what} is not available on a virtual-time loop (it would reach the operating "
        "system); use UDP via loop.create_datagram_endpoint on the virtual network, or run "
        "this code on a normal asyncio loop"
    )


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on a virtual clock whose UDP goes to a virtual network.

    ``network`` is the object answering ``create_datagram_endpoint`` and ``getaddrinfo``
    (a :class:`wtlab.net.network.VirtualNetwork` sets itself); without one those raise
    :class:`wtlab.ConfigError`.

    ``timer_granularity_s``: 0 (default here) runs every timer at its deadline (plus the
    tick). A positive value reproduces how a live asyncio loop on Linux sleeps: epoll's
    timeout is whole milliseconds, rounded up, so timers run late by up to that much,
    except that a datagram arriving earlier wakes the loop (and every timer due by then
    runs with it). The virtual network uses 1 ms, so paced senders send the small bursts
    they send live.
    """

    def __init__(self, *, start_s: float = 0.0, network: Any = None,
                 timer_granularity_s: float = 0.0) -> None:
        if not (timer_granularity_s >= 0 and math.isfinite(timer_granularity_s)):
            self._closed = True  # BaseEventLoop.__del__ looks at it
            raise ConfigError(f"timer_granularity_s={timer_granularity_s!r} must be >= 0")
        self._now_s = float(start_s)
        self.network = network
        self.timer_granularity_s = float(timer_granularity_s)
        #: virtual time of the next datagram delivery (set by the network): wakes the
        #: loop before a rounded-up timer, as a readable socket wakes epoll
        self.io_deadline = math.inf
        #: where a run(until=...) stops: reached exactly, not rounded
        self.run_deadline = math.inf
        selector = _VirtualSelector()
        super().__init__(selector=selector)
        selector.loop = self

    # -- clock ----------------------------------------------------------------
    def time(self) -> float:
        return self._now_s

    # -- no self-pipe: nothing ever blocks, so nothing needs waking ----------------
    def _make_self_pipe(self) -> None:
        self._ssock = self._csock = None

    def _close_self_pipe(self) -> None:
        pass

    def _write_to_self(self) -> None:
        pass

    # -- running inside another loop's thread (Jupyter) -----------------------------
    def run_in_place(self, until: Callable[[], bool], *, max_iterations: int | None = None) -> int:
        """Run loop iterations until ``until()`` is true; returns the iterations run.

        Works even while another event loop runs in this thread (a notebook kernel):
        the thread's running loop is swapped for this one during the call.
        """
        self._check_closed()
        outer = events._get_running_loop()
        events._set_running_loop(self)
        run_once = self._run_once
        n = 0
        try:
            while not until():
                if max_iterations is not None and n >= max_iterations:
                    break
                run_once()
                n += 1
        finally:
            events._set_running_loop(outer)
        return n

    def next_deadline(self) -> float | None:
        """Virtual time of the next scheduled callback (None if none), ignoring cancelled."""
        scheduled = self._scheduled
        while scheduled and scheduled[0]._cancelled:
            self._timer_cancelled_count -= 1
            heapq.heappop(scheduled)._scheduled = False
        return scheduled[0]._when if scheduled else None

    # -- I/O answered by the virtual network ---------------------------------------
    def _need_network(self, what: str):
        if self.network is None:
            raise ConfigError(
                f"{what} on a virtual-time loop needs a virtual network; create the loop "
                "through wtlab.net.VirtualNetwork"
            )
        return self.network

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None,
                                       *, family=0, proto=0, flags=0, reuse_port=None,
                                       allow_broadcast=None, sock=None):
        net = self._need_network("create_datagram_endpoint")
        if sock is not None:
            # aioquic's own connect() builds and binds a socket before asking the loop;
            # take its family and port, then close it: no packet ever goes through it.
            fam = sock.family
            try:
                name = sock.getsockname()
            finally:
                sock.close()
            family = fam
            local_addr = (name[0], name[1])
        return net._open_endpoint(protocol_factory, local_addr, remote_addr, family)

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        net = self._need_network("getaddrinfo")
        return net._getaddrinfo(host, port, family, type or socket.SOCK_DGRAM)

    async def getnameinfo(self, sockaddr, flags=0):
        return (str(sockaddr[0]), str(sockaddr[1]))

    def run_in_executor(self, executor, func, *args):
        raise _no_os("run_in_executor (threads do not run in virtual time)")

    async def create_connection(self, *args, **kwargs):
        raise _no_os("create_connection (TCP)")

    async def create_server(self, *args, **kwargs):
        raise _no_os("create_server (TCP)")

    async def create_unix_connection(self, *args, **kwargs):
        raise _no_os("create_unix_connection")

    async def create_unix_server(self, *args, **kwargs):
        raise _no_os("create_unix_server")

    async def sock_connect(self, *args, **kwargs):
        raise _no_os("sock_connect")

    async def sock_recv(self, *args, **kwargs):
        raise _no_os("sock_recv")

    async def sock_sendall(self, *args, **kwargs):
        raise _no_os("sock_sendall")

    def add_reader(self, fd, callback, *args):
        raise _no_os("add_reader")

    def add_writer(self, fd, callback, *args):
        raise _no_os("add_writer")

    async def subprocess_exec(self, *args, **kwargs):
        raise _no_os("subprocess_exec")

    async def subprocess_shell(self, *args, **kwargs):
        raise _no_os("subprocess_shell")
