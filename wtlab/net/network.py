"""The virtual network: real asyncio endpoints over a simulated path, in virtual time.

A :class:`VirtualNetwork` owns a :class:`~wtlab.net.vtime.VirtualTimeLoop` and a
topology: one server host and any number of client hosts, each client reaching the
server over a path (``path.up``: client to server, ``path.down``: server to client).
Clients that share one path object share its links, so they share one bottleneck
queue (FIFO, one buffer). Datagrams cross a link through the link model's
``transmit(now, size_bytes) -> arrival times`` (``()`` if dropped); ``size_bytes`` is
the UDP payload plus ``overhead_bytes`` (28: IPv4 + UDP headers), so a link's rate is
a rate of IP packets, as on a real bottleneck.

Flows (wtlab's WebTransport client and server, a workload, a controller each)::

    from wtlab.net import Path, VirtualNetwork
    from wtlab.transport.workloads import Bulk, Messages
    net = VirtualNetwork(Path.symmetric(rate_bps="10mbit", rtt_s="40ms", loss="1%",
                                        buffer_bdp=1, seed=1))
    a = net.add_flow("cubic", Bulk(duration_s=10, direction="down"))
    b = net.add_flow("bbr", Bulk(duration_s=10, direction="down"), start_s=2.0)
    net.step(kinds="packet_acked", flow=a.id)   # one ack: time_s, cwnd, srtt_s, state...
    a.controller.snapshot()                     # the controller right after it
    net.step(kinds="packet_lost")               # then one loss
    net.run(until=10.0)                         # the rest
    net.recorder.to_pandas(); net.summaries(); net.close()

The low-level API runs any asyncio code (aioquic's, wtlab's transport, your own) on
the simulated network::

    net = VirtualNetwork(path, seed=1)
    net.spawn(server_main(), host=net.server_host)      # binds 127.0.0.1:4433
    net.spawn(client_main(), host=net.add_client())     # dials 127.0.0.1:4433
    net.run(until=10.0)                                  # virtual seconds
    net.step()                                           # next trace row, as a dict

Addresses: the server host is ``127.0.0.1`` (names ``"server"`` and ``"localhost"``
resolve to it), client hosts ``127.0.1.<n>``. They never touch the operating system.
A datagram is delivered with the source address in the receiving socket's family: an
IPv6 (dual-stack) socket sees ``("::ffff:127.0.0.1", port, 0, 0)``, which is what
aioquic's client expects after dialling the IPv4-mapped address.

Timers: each host sleeps the way a live asyncio loop on Linux does, on its own
(``timer_granularity_s``, default 1 ms: epoll's rounding): its timers run at their
deadline rounded up to the granularity, or earlier when a datagram reaches that host
(deliveries are exact; the host's due timers run with them). A datagram for one host
does not wake another, as it would not wake another machine. So a paced sender sends
the bursts it sends live; ``timer_granularity_s=0`` makes every timer exact (slower,
and unlike any live run). Code runs "on" a host through its context
(:data:`wtlab.net.vtime.current_host`): tasks started by :meth:`VirtualNetwork.spawn`
and every datagram delivery carry the host they belong to.

Receive batching (``rx_coalesce_s``, default 0: every datagram is delivered exactly at
its arrival time), as under a NIC's interrupt moderation: a datagram reaching a socket
less than ``rx_coalesce_s`` after the previous delivery to that socket waits, and is
delivered with the others that arrived meanwhile, ``rx_coalesce_s`` after that delivery.
A datagram after a quiet spell is delivered at its exact arrival time; none waits longer
than ``rx_coalesce_s``. The receiver then answers once per batch, which makes high-rate
runs cheaper (about 20% at 100 Mbit/s with 0.5 ms), but it also aggregates ACKs, and
BBRv1 notices: at 20 Mbit/s its mean queueing delay rose from 6 to 32 ms with 0.5 ms.
Leave it at 0 for fidelity work.

Determinism: given the same seeded link models and the same code, a run produces the
same trace: deliveries due at the same instant keep their send order, and the loop
has no wall-clock input. (Use RSA certificates: ECDSA signatures vary in length.)

Trace rows written by the network itself (into ``recorder``, flow = the client's flow
id): ``link_drop`` (``extra``: direction and, when the link tells, the cause) always;
``link_delivery`` for every delivered datagram when ``record_link="all"``;
``ecn_marked`` (``extra``: direction, and the queue of a DualPI2 link) for every
datagram a link marked CE, unless ``record_link=None``.

ECN: a virtual socket carries the ECN field. ``transport.sendto_ecn(data, addr,
codepoint)`` sends with a codepoint (``sendto``: not-ECT); the links may mark or
erase it (:mod:`wtlab.net.link`); the receiving protocol gets it through
``protocol.datagram_received_ecn(data, addr, codepoint)`` when it has that method
(wtlab's client and server do), else the plain ``datagram_received``. Links whose
arrival times are provisional (``link.deferred``: DualPI2) are asked again
(``link.confirm``) when a datagram's time comes, and the datagram waits if it moved.
"""

from __future__ import annotations

import contextvars
import heapq
import math
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from wtlab.errors import ConfigError
from wtlab.net.vtime import SimulationStalled, VirtualTimeLoop, current_host
from wtlab.trace import schema
from wtlab.trace.recorder import Recorder, row_dicts
from wtlab.trace.schema import NAN, NO_BYTES_U32, NO_PN, NO_STREAM

SERVER_HOST = "127.0.0.1"
IP_UDP_OVERHEAD_BYTES = 28  # IPv4 (20) + UDP (8)


def _norm_ip(host: str) -> str:
    """IPv4 text of an address given as IPv4 or IPv4-mapped IPv6."""
    if host.startswith("::ffff:"):
        return host[7:]
    return host


class VirtualDatagramTransport:
    """A UDP socket on the virtual network (asyncio ``DatagramTransport`` interface)."""

    __slots__ = ("_net", "host", "port", "family", "_protocol", "_closing", "_remote",
                 "flow", "_extra", "_sockname", "_rx_last")

    def __init__(self, net: VirtualNetwork, host: str, port: int, family: int,
                 protocol: Any, remote: tuple[str, int] | None) -> None:
        self._net = net
        self.host = host
        self.port = port
        self.family = family
        self._protocol = protocol
        self._closing = False
        self._remote = remote
        self._rx_last = -math.inf  # when the network last delivered to this socket
        self.flow = net._host_flow.get(host, 0)
        if family == socket.AF_INET6:
            self._sockname = ("::ffff:" + host, port, 0, 0)
        else:
            self._sockname = (host, port)
        self._extra = {"sockname": self._sockname, "peername": None, "socket": None}

    # asyncio.DatagramTransport ------------------------------------------------
    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sendto_ecn(data, addr, 0)  # Not-ECT

    def sendto_ecn(self, data: bytes, addr: Any, ecn: int) -> None:
        """``sendto`` with the ECN codepoint ``ecn`` in the (virtual) IP header."""
        if self._closing:
            return
        if addr is None:
            if self._remote is None:
                raise ConfigError("sendto() without an address on an unconnected virtual socket")
            dst = self._remote
        else:
            dst = (_norm_ip(addr[0]), addr[1])
        self._net._send(self, data, dst, ecn)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._net._close_endpoint(self)
        self._net.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Any:
        return self._protocol

    def can_write_eof(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<VirtualDatagramTransport {self.host}:{self.port}>"


class Flow:
    """One flow of a :class:`VirtualNetwork` (see :meth:`VirtualNetwork.add_flow`)."""

    def __init__(self, *, id: int, cc: str, workload: Any, host: str, controller: Any,
                 server: Any, ctx: Any, start_s: float) -> None:
        self.id = id
        self.cc = cc
        self.workload = workload
        self.host = host
        self.controller = controller  # the sender's controller: inspect it while stepping
        self.server = server
        self.ctx = ctx
        self.start_s = start_s
        self.task: Any = None
        self.session: Any = None
        self.summary: dict | None = None  # the workload's summary once it finished

    @property
    def done(self) -> bool:
        """Whether the flow's workload has finished."""
        return self.task is not None and self.task.done()

    def __repr__(self) -> str:
        return (f"<Flow {self.id} {self.cc} {self.workload.name} "
                f"{'done' if self.done else 'running'}>")


def _plain(cc: Any) -> Any:
    """The receiving end's controller: same algorithm, fresh instance (it only acks)."""
    from wtlab.cc import Controller

    if isinstance(cc, Controller):
        return type(cc)
    return cc


async def _sleep_until(loop: Any, t: float) -> None:
    import asyncio

    await asyncio.sleep(max(0.0, t - loop.time()))


class VirtualNetwork:
    """A simulated network with a virtual clock, driving real asyncio endpoints.

    ``path`` is any object with ``up`` and ``down`` link models (``transmit(now,
    size_bytes)``), e.g. :class:`wtlab.net.path.Path`; it is the default path of every
    client host. A Path that already carried traffic is replaced by ``path.new()`` (same
    specs and seed, empty, at time 0), so one Path object can be reused run after run;
    ``net.path`` is the one in use (its links hold this run's counters). ``recorder`` receives every trace row of the run (a new
    :class:`~wtlab.trace.recorder.Recorder` if None). ``record_link``: ``"drops"``
    (default) records ``link_drop`` rows, ``"all"`` also ``link_delivery``, ``None``
    neither.

    Call :meth:`close` when done (or use ``with VirtualNetwork(...) as net``): it lets
    every pending task finish its cleanup on the loop; a network merely dropped leaves
    that to the garbage collector, which may print "Exception ignored" notes.
    """

    def __init__(self, path: Any = None, *, recorder: Recorder | None = None,
                 record_link: str | None = "drops",
                 overhead_bytes: int = IP_UDP_OVERHEAD_BYTES, meta: dict | None = None,
                 timer_granularity_s: float = 0.001, rx_coalesce_s: float = 0.0) -> None:
        if record_link not in (None, "drops", "all"):
            raise ConfigError(f"record_link={record_link!r}; use 'drops', 'all' or None")
        if overhead_bytes < 0:
            raise ConfigError(f"overhead_bytes={overhead_bytes} must be >= 0")
        self.path = _fresh(path)
        self.loop = VirtualTimeLoop(network=self, timer_granularity_s=timer_granularity_s)
        self.recorder = recorder if recorder is not None else Recorder(t0=0.0, meta=meta)
        self.flows: list[Flow] = []
        self.record_link = record_link
        self.overhead_bytes = int(overhead_bytes)
        if not (rx_coalesce_s >= 0 and math.isfinite(rx_coalesce_s)):
            raise ConfigError(f"rx_coalesce_s={rx_coalesce_s!r} must be >= 0 (0: exact)")
        self.rx_coalesce_s = float(rx_coalesce_s)
        self.server_host = SERVER_HOST
        self._hosts: dict[str, Any] = {SERVER_HOST: None}  # client host -> its path
        self._host_flow: dict[str, int] = {}
        self._extra_delay: dict[str, float] = {}  # client host -> one-way access delay
        self._names: dict[str, str] = {"server": SERVER_HOST, "localhost": SERVER_HOST}
        self._endpoints: dict[tuple[str, int], VirtualDatagramTransport] = {}
        self._next_port: dict[str, int] = {}
        self._heap: list[tuple] = []  # (arrival_s, seq, dst, data, src_addr) in flight
        self._seq = 0
        self._host_ctx: dict[str, contextvars.Context] = {}
        self._tasks: list[Any] = []
        self.errors: list[BaseException] = []
        self._cursor = 0
        self._pending_rows: deque[dict] = deque()
        self.delivered_datagrams = 0
        self.dropped_datagrams = 0
        self.loop.set_exception_handler(self._exception_handler)

    # -- topology -----------------------------------------------------------------
    def add_client(self, *, path: Any = None, flow: int | None = None,
                   name: str | None = None, extra_delay_s: float = 0.0) -> str:
        """Add a client host; returns its address. ``path`` defaults to the network's
        path (shared links: one bottleneck); ``flow`` is the trace flow id of its rows;
        ``extra_delay_s`` is a one-way delay added in each direction to this client's
        datagrams after they leave the path's link (the shared queue sees them when they
        are sent; upstream, a real access link would delay them before it), so flows with
        different RTTs can share one bottleneck."""
        if not (extra_delay_s >= 0 and math.isfinite(extra_delay_s)):
            raise ConfigError(f"extra_delay_s={extra_delay_s!r} must be >= 0 seconds")
        n = len(self._hosts)  # server is host 0
        if n > 250:
            raise ConfigError("at most 250 client hosts per virtual network")
        host = f"127.0.1.{n}"
        p = _fresh(path) if path is not None else self.path
        if p is None:
            raise ConfigError("no path: pass path= to VirtualNetwork(...) or add_client(...)")
        self._hosts[host] = p
        self._host_flow[host] = n - 1 if flow is None else int(flow)
        if extra_delay_s:
            self._extra_delay[host] = float(extra_delay_s)
        if name:
            self._names[name] = host
        return host

    def add_flow(self, cc: Any = "cubic", workload: Any = None, *, start_s: float = 0.0,
                 path: Any = None, name: str | None = None,
                 extra_delay_s: float = 0.0, max_datagram_size: int = 1200,
                 full_packets: bool = True) -> Flow:
        """Add a flow: a client host with its own WebTransport session to its own server
        port, running ``workload`` (default: bulk upload until the run stops) under
        controller ``cc`` (a name, class or instance).

        The controller is used at the end that sends the workload's data (the client for
        uploads and messages, the server for downloads and responses); that end's trace
        rows (packets, acks, losses, cwnd, RTT) go to the recorder as rows of this flow's
        id, together with the workload's message rows. Flows on the same path share its
        bottleneck; ``extra_delay_s`` (one way, each direction) gives this flow a longer
        RTT than the path's. ``max_datagram_size`` (1200..1472 bytes of UDP payload; 1472
        fills a 1500-byte MTU) is the size of both ends' QUIC packets; ``full_packets``
        (default True) makes both ends send only whole packets while the congestion
        window is the limit (see :func:`wtlab.cc.aioquic.attach`). Returns the
        :class:`Flow` (``flow.controller``, ``flow.summary``).
        """
        from wtlab.cc import create as create_controller
        from wtlab.transport import workloads as wl
        from wtlab.transport.client import connect
        from wtlab.transport.driver import check_max_datagram_size
        from wtlab.transport.server import Server

        check_max_datagram_size(max_datagram_size)

        work = wl.create(workload if workload is not None else wl.Bulk(duration_s=1e6))
        fid = len(self.flows)
        host = self.add_client(path=path, flow=fid, name=name, extra_delay_s=extra_delay_s)
        rec = self.recorder
        controller = create_controller(cc, max_datagram_size=max_datagram_size, recorder=rec,
                                       flow=fid)
        at_server = work.sender == "server"
        ctx = wl.WorkloadContext(recorder=rec, flow=fid)
        server = Server(host=SERVER_HOST, port=4433 + fid, routes=work.routes(ctx),
                        congestion_control=controller if at_server else _plain(cc),
                        recorder=rec if at_server else None, flow=fid, cert_kind="rsa",
                        max_datagram_size=max_datagram_size, full_packets=full_packets)
        flow = Flow(id=fid, cc=cc if isinstance(cc, str) else type(controller).__name__,
                    workload=work, host=host, controller=controller, server=server, ctx=ctx,
                    start_s=float(start_s))
        started = self.spawn(server.start(), name=f"server-{fid}")

        async def run_client() -> dict:
            await started
            loop = self.loop
            if start_s > loop.time():
                await _sleep_until(loop, start_s)
            async with connect(server.url(work.route()),
                               congestion_control=_plain(cc) if at_server else controller,
                               cert_hashes=[server.cert_sha256], cert_hash_policy="relaxed",
                               recorder=None if at_server else rec, flow=fid,
                               max_datagram_size=max_datagram_size,
                               full_packets=full_packets) as session:
                flow.session = session
                result = await work.client(session, ctx)
            flow.summary = result
            return result

        flow.task = self.spawn(run_client(), host=host, name=f"flow-{fid}")
        self.flows.append(flow)
        return flow

    def summaries(self):
        """One row per flow: its controller, workload and summary (so far), as a DataFrame."""
        import pandas as pd

        rows = []
        for f in self.flows:
            s = f.summary if f.summary is not None else f.ctx.summary()
            rows.append({"flow": f.id, "cc": f.cc, "workload": f.workload.name,
                         "done": f.summary is not None, **s})
        return pd.DataFrame(rows)

    @property
    def now(self) -> float:
        """The virtual clock, seconds."""
        return self.loop.time()

    # -- running code ---------------------------------------------------------------
    def spawn(self, coro: Awaitable, *, host: str | None = None, name: str | None = None):
        """Start ``coro`` as a task whose sockets belong to ``host`` (default: server)."""
        host = self.server_host if host is None else host
        if host not in self._hosts:
            close = getattr(coro, "close", None)
            if close is not None:
                close()
            raise ConfigError(f"unknown virtual host {host!r}; add it with add_client()")
        ctx = contextvars.copy_context()
        ctx.run(current_host.set, host)
        task = self.loop.create_task(coro, name=name, context=ctx)
        self._tasks.append(task)
        return task

    def run(self, until: float | None = None, *, stop: Callable[[], bool] | None = None) -> float:
        """Run the simulation up to virtual time ``until`` (seconds; None: until every
        spawned task has finished) or until ``stop()`` is true. Returns the clock.

        Errors raised inside endpoints or tasks are re-raised here.
        """
        loop = self.loop
        sentinel = None
        if until is not None:
            if until < loop.time():
                return loop.time()
            sentinel = loop.call_exact_at(until, _noop)
            done = (lambda: loop.time() >= until) if stop is None else (
                lambda: loop.time() >= until or stop())
        else:
            tasks = self._tasks
            done = (lambda: all(t.done() for t in tasks)) if stop is None else (
                lambda: all(t.done() for t in tasks) or stop())
        try:
            # SimulationStalled propagates: some task waits for what will never come
            loop.run_in_place(lambda: bool(self.errors) or done())
        finally:
            if sentinel is not None:
                sentinel.cancel()
            # step() continues with the events after this run
            self._cursor = len(self.recorder)
            self._pending_rows.clear()
        self._raise_errors()
        return loop.time()

    def run_coroutine(self, coro: Awaitable, *, host: str | None = None,
                      until: float | None = None):
        """Run ``coro`` on the network (as a task on ``host``) and return its result."""
        task = self.spawn(coro, host=host)
        if until is None:
            self.run(stop=task.done)
        else:
            self.run(until=until, stop=task.done)
        self._raise_errors()
        if not task.done():
            raise ConfigError(f"coroutine did not finish by t={until} s (virtual)")
        return task.result()

    def _raise_errors(self) -> None:
        if self.errors:
            err = self.errors[0]
            self.errors.clear()
            raise err
        for t in self._tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                self._tasks.remove(t)
                raise exc

    def _exception_handler(self, loop: Any, context: dict) -> None:
        exc = context.get("exception")
        if exc is None:
            exc = RuntimeError(context.get("message", "error in virtual-time loop"))
        self.errors.append(exc)

    # -- stepping ------------------------------------------------------------------
    def step(self, kinds: Iterable[str] | None = None, *, flow: int | None = None,
             max_time_s: float | None = None) -> dict | None:
        """Advance to the next trace event and return it as a dict (schema columns).

        ``kinds`` (a kind or several) and ``flow`` (a flow id) restrict the rows returned
        (others are skipped, still recorded); returns None if the run ends (or
        ``max_time_s`` passes) first. Rows come in
        the order they were recorded; one loop callback may record several (an ACK
        frame acking three packets), which the next calls return one by one without
        running the loop. ``run()`` consumes rows: a later ``step()`` returns events
        after it.
        """
        wanted = None if kinds is None else {kinds} if isinstance(kinds, str) else set(kinds)
        loop = self.loop
        while True:
            while self._pending_rows:
                row = self._pending_rows.popleft()
                if (wanted is None or row["kind"] in wanted) and (
                        flow is None or row["flow"] == flow):
                    return row
            rec = self.recorder
            start = len(rec)
            if self._cursor < start:
                self._fetch_rows()
                continue
            if max_time_s is not None and loop.time() >= max_time_s:
                return None
            try:
                loop.run_in_place(
                    lambda rec=rec, start=start: len(rec) > start or bool(self.errors)
                    or (max_time_s is not None and loop.time() >= max_time_s))
            except SimulationStalled:
                if self._cursor < len(rec):
                    self._fetch_rows()
                    continue
                return None
            self._raise_errors()
            self._fetch_rows()
            if not self._pending_rows and max_time_s is not None and loop.time() >= max_time_s:
                return None

    def skip_recorded(self) -> None:
        """Treat every row recorded so far as returned: the next :meth:`step` returns an
        event recorded after this call (a view that read the rows itself uses it)."""
        self._cursor = len(self.recorder)
        self._pending_rows.clear()

    def _fetch_rows(self) -> None:
        rec = self.recorder
        n = len(rec)
        start = self._cursor
        if start >= n:
            return
        self._cursor = n
        self._pending_rows.extend(row_dicts(rec.to_pandas(start, n)))

    # -- address resolution and endpoints (called by the loop) ------------------------
    def _getaddrinfo(self, host: Any, port: Any, family: int, type_: int):
        if host is None:
            host = SERVER_HOST
        h = self._names.get(host, host)
        h = _norm_ip(h)
        if h not in self._hosts:
            raise socket.gaierror(socket.EAI_NONAME,
                                  f"{host!r} is not a host of this virtual network")
        port = int(port or 0)
        proto = socket.IPPROTO_UDP
        if family == socket.AF_INET6:
            return [(socket.AF_INET6, type_, proto, "", ("::ffff:" + h, port, 0, 0))]
        return [(socket.AF_INET, type_, proto, "", (h, port))]

    def _open_endpoint(self, protocol_factory: Callable, local_addr: Any, remote_addr: Any,
                       family: int):
        host = None
        port = 0
        if local_addr is not None:
            lhost = local_addr[0]
            port = int(local_addr[1] or 0)
            cur = current_host.get()
            if lhost in (None, "", "::", "0.0.0.0"):
                pass
            elif cur is not None and port == 0 and (lhost == "::1" or lhost.startswith("127.")
                                                     or lhost.startswith("::ffff:127.")):
                pass  # a client binding loopback for an ephemeral port: its own host
            else:
                lhost = _norm_ip(self._names.get(lhost, lhost))
                if lhost == "::1":
                    lhost = SERVER_HOST
                if lhost not in self._hosts:
                    raise ConfigError(f"cannot bind {local_addr!r}: no such virtual host")
                host = lhost
            if not family:
                family = socket.AF_INET6 if ":" in str(local_addr[0]) else socket.AF_INET
        if host is None:
            host = current_host.get() or SERVER_HOST
        remote = None
        if remote_addr is not None:
            rhost = _norm_ip(self._names.get(remote_addr[0], remote_addr[0]))
            remote = (rhost, int(remote_addr[1]))
            if not family:
                family = socket.AF_INET6 if ":" in str(remote_addr[0]) else socket.AF_INET
        if not family:
            family = socket.AF_INET
        if port == 0:
            port = self._next_port.get(host, 50000)
            while (host, port) in self._endpoints:
                port += 1
            self._next_port[host] = port + 1
        elif (host, port) in self._endpoints:
            raise OSError(98, f"virtual address {host}:{port} already in use")
        protocol = protocol_factory()
        transport = VirtualDatagramTransport(self, host, port, family, protocol, remote)
        self._endpoints[(host, port)] = transport
        protocol.connection_made(transport)
        return transport, protocol

    def _close_endpoint(self, ep: VirtualDatagramTransport) -> None:
        if self._endpoints.get((ep.host, ep.port)) is ep:
            del self._endpoints[(ep.host, ep.port)]

    # -- moving datagrams -----------------------------------------------------------
    def _send(self, src: VirtualDatagramTransport, data: bytes, dst: tuple[str, int],
              ecn: int = 0) -> None:
        now = self.loop._now_s
        src_host = src.host
        dst_host = dst[0]
        if dst_host == src_host:
            arrivals: tuple = (now,)
            link = None
        elif src_host == SERVER_HOST:
            path = self._hosts.get(dst_host)
            if path is None:
                self._drop(now, src, data, "no_route")
                return
            link = path.down
            arrivals = link.transmit(now, len(data) + self.overhead_bytes, ecn) if ecn else \
                link.transmit(now, len(data) + self.overhead_bytes)
        elif dst_host == SERVER_HOST:
            link = self._hosts[src_host].up
            arrivals = link.transmit(now, len(data) + self.overhead_bytes, ecn) if ecn else \
                link.transmit(now, len(data) + self.overhead_bytes)
        else:
            raise ConfigError(
                f"no route from {src_host} to {dst_host}: clients reach only the server"
            )
        if not arrivals:
            self.dropped_datagrams += 1
            if self.record_link is not None:
                flow = src.flow if src_host != SERVER_HOST else self._host_flow.get(dst_host, 0)
                cause = getattr(link, "last_drop_cause", None)
                rec = self.recorder
                rec.append(now, schema.K_LINK_DROP, 0, flow, NO_PN, NO_STREAM, len(data),
                           NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN, NAN, NAN,
                           NAN)
                extra = {"dir": "down" if src_host == SERVER_HOST else "up"}
                if cause is not None:
                    extra["cause"] = str(cause)
                rec.set_extra(len(rec) - 1, extra)
            return
        ticket = None
        if link is not None:
            if ecn:
                out = link.last_ecn
                if out == 3 and ecn != 3:
                    self._record_mark(now, src, dst_host, link, data)
                ecn = out
            if link.deferred:
                ticket = link.last_ticket
        extra_s = 0.0
        if self._extra_delay:
            extra_s = self._extra_delay.get(dst_host if src_host == SERVER_HOST else src_host)
            if extra_s:
                arrivals = tuple(t + extra_s for t in arrivals)
        heap = self._heap
        src_addr = (src_host, src.port)
        if ecn or ticket is not None:
            meta = (ecn, link if ticket is not None else None, ticket, extra_s or 0.0)
            for t in arrivals:
                self._seq += 1
                heapq.heappush(heap, (t, self._seq, dst, data, src_addr, meta))
            return
        for t in arrivals:
            self._seq += 1
            heapq.heappush(heap, (t, self._seq, dst, data, src_addr))

    def _record_mark(self, now: float, src: Any, dst_host: str, link: Any, data: bytes) -> None:
        """An ``ecn_marked`` row: ``link`` set CE on this datagram."""
        if self.record_link is None:
            return
        src_host = src.host
        flow = src.flow if src_host != SERVER_HOST else self._host_flow.get(dst_host, 0)
        rec = self.recorder
        rec.append(now, schema.K_ECN_MARKED, 0, flow, NO_PN, NO_STREAM, len(data),
                   NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN, NAN, NAN, NAN)
        extra = {"dir": "down" if src_host == SERVER_HOST else "up"}
        queue = getattr(link, "last_queue", None)
        if queue is not None:
            extra["queue"] = queue
        rec.set_extra(len(rec) - 1, extra)

    def _drop(self, now: float, src: Any, data: bytes, cause: str) -> None:
        self.dropped_datagrams += 1

    def _context_of(self, host: str) -> contextvars.Context:
        """The context code of ``host`` runs in (its timers and sockets are its own)."""
        ctx = self._host_ctx.get(host)
        if ctx is None:
            ctx = contextvars.Context()
            ctx.run(current_host.set, host)
            self._host_ctx[host] = ctx
        return ctx

    def _next_io_s(self) -> float:
        """Virtual time of the next datagram delivery (the loop's selector asks)."""
        heap = self._heap
        return heap[0][0] if heap else math.inf

    def _deliver_due(self) -> None:
        """Deliver every datagram due by now (called by the loop's selector), each in its
        receiving host's context, then wake those hosts (their due timers run)."""
        heap = self._heap
        loop = self.loop
        now = loop._now_s
        endpoints = self._endpoints
        rec = self.recorder if self.record_link == "all" else None
        pop = heapq.heappop
        coalesce = self.rx_coalesce_s
        woken: list[str] = []
        while heap and heap[0][0] <= now:
            entry = pop(heap)
            t, seq, dst, data, src_addr = entry[:5]
            ecn = 0
            if len(entry) > 5:
                ecn, link, ticket, extra_s = entry[5]
                if ticket is not None:
                    # a provisional arrival (DualPI2's C queue): has it moved?
                    t2 = link.confirm(ticket, t - extra_s) + extra_s
                    if t2 > now:
                        heapq.heappush(heap, (t2, seq, dst, data, src_addr, entry[5]))
                        continue
            ep = endpoints.get(dst)
            if ep is None or ep._closing:
                continue  # nobody listening: the datagram vanishes, as UDP does
            if coalesce:
                last = ep._rx_last
                if last != now and now < last + coalesce:
                    # the socket was served less than rx_coalesce_s ago: hold this one
                    # for the next batch (same seq: FIFO order is kept)
                    held = (last + coalesce, seq, dst, data, src_addr)
                    if len(entry) > 5:
                        held += ((ecn, None, None, 0.0),)
                    heapq.heappush(heap, held)
                    continue
                ep._rx_last = now
            self.delivered_datagrams += 1
            host = dst[0]
            if rec is not None:
                flow = ep.flow if host != SERVER_HOST else self._host_flow.get(src_addr[0], 0)
                rec.append(now, schema.K_LINK_DELIVERY, 0, flow, NO_PN, NO_STREAM, len(data),
                           NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN, NAN, NAN,
                           NAN)
            if ep.family == socket.AF_INET6:
                addr = ("::ffff:" + src_addr[0], src_addr[1], 0, 0)
            else:
                addr = src_addr
            ctx = self._host_ctx.get(host)
            if ctx is None:
                ctx = self._context_of(host)
            try:
                proto = ep._protocol
                if ecn:
                    rx = getattr(proto, "datagram_received_ecn", None)
                    if rx is not None:
                        ctx.run(rx, data, addr, ecn)
                    else:
                        ctx.run(proto.datagram_received, data, addr)
                else:
                    ctx.run(proto.datagram_received, data, addr)
            except BaseException as exc:  # noqa: BLE001 - surfaced by run()/step()
                self.errors.append(exc)
            if host not in woken:
                woken.append(host)
        for host in woken:  # (timers run in their own contexts, errors go to the handler)
            loop.wake_host(host)

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        """Cancel every task still running on the network (clients, servers, their
        handlers), let them finish their cleanup, and close the loop."""
        import asyncio

        loop = self.loop
        if loop.is_closed():
            return
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        try:
            loop.run_in_place(lambda: all(t.done() for t in pending), max_iterations=1000)
        except SimulationStalled:
            pass
        loop.close()

    def __enter__(self) -> VirtualNetwork:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _noop() -> None:
    pass


def _fresh(path: Any) -> Any:
    """``path``, or ``path.new()`` (same specs and seed, empty, at time 0) if it already
    carried traffic: links only move forward in time, and a second run on the same
    Path object (a notebook comparing controllers) must start where the first did."""
    if path is None or not callable(getattr(path, "new", None)):
        return path
    for name in ("up", "down"):
        stats = getattr(getattr(path, name, None), "stats", None)
        if stats is not None and stats.offered:
            return path.new()
    return path
