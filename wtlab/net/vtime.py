"""A virtual-time asyncio event loop: real asyncio code, simulated clock, no sockets.

:class:`VirtualTimeLoop` is an ordinary :class:`asyncio.SelectorEventLoop` with two
changes:

* its selector never sleeps: ``select(timeout)`` moves the virtual clock forward to the
  next scheduled callback (exactly to its ``when``) or the next datagram delivery,
  whichever is first, delivers the datagrams due and returns at once, so a run takes
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
* with ``timer_granularity_s`` > 0, each virtual host sleeps as a live asyncio loop on
  Linux does (whole milliseconds, woken early by its own datagrams only), so a sender
  and a receiver on two simulated machines do not wake each other;
* when nothing is scheduled and nothing is ready, virtual time could never move again;
  the loop raises :class:`SimulationStalled` rather than hang.

The loop does not need to own the thread: :meth:`VirtualTimeLoop.run_in_place` runs it
from inside another running loop (a Jupyter kernel's) by swapping the thread's running
loop for the duration of the call.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import math
import selectors
import socket
from asyncio import events
from collections.abc import Callable
from typing import Any

from wtlab.errors import ConfigError, WtlabError

#: the virtual host whose code is running (its timers share one sleep); None outside hosts
current_host: contextvars.ContextVar[Any] = contextvars.ContextVar("wtlab_virtual_host",
                                                                   default=None)
TICK_S = 1e-9  # timers fire this long after their deadline (see _VirtualSelector.select)


class SimulationStalled(WtlabError, RuntimeError):
    """Virtual time cannot advance: nothing is scheduled and nothing is ready.

    Some coroutine waits for an event no simulated component will ever produce
    (e.g. a reply from a peer that is not running).
    """


class _VirtualSelector(selectors.BaseSelector):
    """A selector with no file descriptors whose ``select`` advances the virtual clock.

    It jumps to whichever comes first: the next scheduled callback or the next datagram
    the virtual network will deliver; datagrams are delivered here, as a real selector
    reports readable sockets.
    """

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
        now = loop._now_s
        io = loop.network
        io_at = io._next_io_s() if io is not None else math.inf
        if loop._ready or loop._stopping:
            if io_at <= now:
                io._deliver_due()  # datagrams that arrived while callbacks were running
            return []  # callbacks are waiting: time stands still
        scheduled = loop._scheduled
        timer_at = scheduled[0]._when if scheduled else math.inf
        if timeout is None and io_at == math.inf:
            raise SimulationStalled(
                f"virtual time stalled at t={now:.6f} s: no callback is scheduled and "
                "none is ready, so nothing can ever happen again; a coroutine is waiting for "
                "something no simulated endpoint will send (is the peer running?)"
            )
        # Jump to the deadline plus one tick (timeout = when - now would lose bits). The
        # tick is why a timer that re-arms itself at "now" cannot spin forever: a real
        # clock is never read exactly at a deadline either, and aioquic's loss timer
        # (sent_time + delay <= now - ...) relies on that.
        target = max(min(timer_at, io_at), now) + TICK_S
        if target > now:
            loop._now_s = target
        if io_at <= timer_at:
            io._deliver_due()
        return []

    def get_map(self):
        return self._map

    def close(self) -> None:
        self._map.clear()


class _Host:
    """One host's sleep: its timers (a heap of (deadline, seq, handle)) and its wake-up."""

    __slots__ = ("timers", "wake", "wake_at")

    def __init__(self) -> None:
        self.timers: list[tuple[float, int, events.TimerHandle]] = []
        self.wake: events.TimerHandle | None = None  # the exact callback that wakes it
        self.wake_at = math.inf  # when it should wake (the handle may be earlier: lazy)


def _no_os(what: str) -> ConfigError:
    return ConfigError(
        f"{what} is not available on a virtual-time loop (it would reach the operating "
        "system); use UDP via loop.create_datagram_endpoint on the virtual network, or run "
        "this code on a normal asyncio loop"
    )


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on a virtual clock whose UDP goes to a virtual network.

    ``network`` is the object answering ``create_datagram_endpoint`` and ``getaddrinfo``
    (a :class:`wtlab.net.network.VirtualNetwork` sets itself) and delivering datagrams
    (``_next_io_s()``, ``_deliver_due()``); without one those raise
    :class:`wtlab.ConfigError`.

    ``timer_granularity_s``: 0 (default here) runs every timer at its deadline (plus the
    tick). A positive value reproduces how a live asyncio loop on Linux sleeps, one
    sleep per *host* (the :data:`current_host` of the code that armed the timer; code
    outside any host shares one): epoll's timeout is whole milliseconds, rounded up, so
    a host's timers run late by up to that much, except that a datagram delivered to
    that host wakes it earlier (:meth:`wake_host`), and every timer of that host due by
    then runs with it. Datagrams for other hosts do not wake it, as they would not wake
    another machine. The virtual network uses 1 ms, so paced senders send the bursts
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
        self._hosts: dict[Any, _Host] = {}
        self._timer_seq = 0
        selector = _VirtualSelector()
        super().__init__(selector=selector)
        selector.loop = self

    # -- timers: exact, or rounded per host like epoll -------------------------------
    def call_at(self, when, callback, *args, context=None):
        """Schedule ``callback`` at virtual time ``when``. With a timer granularity, the
        timer belongs to the host of ``context`` (or of the running code) and runs when
        that host wakes (see the class docstring)."""
        g = self.timer_granularity_s
        if not g:
            return super().call_at(when, callback, *args, context=context)
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        timer = events.TimerHandle(when, callback, args, self, context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        key = current_host.get() if context is None else context.get(current_host)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host()
        self._timer_seq += 1
        timers = host.timers
        heapq.heappush(timers, (when, self._timer_seq, timer))
        if len(timers) > 64:
            live = [e for e in timers if not e[2]._cancelled]
            if len(live) < len(timers) // 2:
                heapq.heapify(live)
                host.timers = live
        # the host is running code now, so it goes to sleep now: its wake is counted from here
        self._rearm_host(host, self._now_s)
        return timer

    def call_exact_at(self, when: float, callback: Callable, *args: Any) -> events.TimerHandle:
        """Schedule ``callback`` at exactly ``when`` (no host, no rounding): for the
        simulation's own events, such as the end of ``run(until=...)``."""
        return super().call_at(when, callback, *args)

    def wake_host(self, key: Any) -> None:
        """A datagram reached host ``key`` now: run its timers that are due and count its
        next sleep from now (what epoll returning early does on a live host)."""
        host = self._hosts.get(key)
        if host is None or not host.timers:
            return
        now = self._now_s
        if host.timers[0][0] <= now:
            self._run_due(host, now)
        self._rearm_host(host, now)

    def _rearm_host(self, host: _Host, now: float) -> None:
        timers = host.timers
        while timers and timers[0][2]._cancelled:
            heapq.heappop(timers)
        if not timers:
            host.wake_at = math.inf
            return  # a pending wake-up finds nothing to do
        first = timers[0][0]
        if first <= now:
            at = now
        else:
            g = self.timer_granularity_s
            at = now + math.ceil((first - now) / g - 1e-9) * g
        host.wake_at = at
        wake = host.wake
        if wake is not None and not wake._cancelled:
            if wake._when <= at:
                return  # it wakes early, finds wake_at later and sleeps again (lazy)
            wake.cancel()
        host.wake = super().call_at(at, self._on_wake, host)

    def _on_wake(self, host: _Host) -> None:
        host.wake = None
        now = self._now_s
        if now < host.wake_at:
            # its sleep was recounted from a later wake-up: this one is stale
            if host.wake_at < math.inf:
                host.wake = super().call_at(host.wake_at, self._on_wake, host)
            return
        self._run_due(host, now)
        self._rearm_host(host, now)

    def _run_due(self, host: _Host, now: float) -> None:
        timers = host.timers
        due = []
        while timers and timers[0][0] <= now:
            due.append(heapq.heappop(timers)[2])
        for timer in due:  # timers armed by these run at the next wake, not in this loop
            if not timer._cancelled:
                timer._run()

    def close(self) -> None:
        self._hosts.clear()
        super().close()

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
