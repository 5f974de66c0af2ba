"""Live impairment relay: a UDP relay on loopback that applies wtlab's link models in real time.

A live client talks to the relay instead of the server; the relay forwards each
datagram through a :class:`~wtlab.net.link.Link` (client -> server: ``path.up``,
server -> client: ``path.down``) and sends it on when the link says it arrives.
So a live QUIC/WebTransport session on one machine meets a real bottleneck:
rate or Mahimahi trace, delay, jitter, loss, buffer, CoDel, outages, exactly
the models the virtual-time network uses::

    async with Relay(target=("127.0.0.1", 4433), rate_bps="10mbit", delay_s="25ms",
                     loss="1%") as relay:
        ...  # dial relay.address instead of the server

or from a shell::

    wtlab relay --listen 127.0.0.1:4434 --to 127.0.0.1:4433 --rate 10mbit --delay 25ms --loss 1%

Details a user may rely on:

* ``--delay`` is one-way and applies in each direction: the path's RTT is twice it.
* A datagram's size on the link is its UDP payload plus ``overhead_bytes`` (28:
  IPv4 + UDP headers), as in the virtual network, so ``--rate`` is a rate of IP
  packets.
* Link time starts when the relay starts (outages are relative to that).
* All clients share the two links (one bottleneck queue per direction). Each
  client gets its own upstream socket, so the server sees one address per client.
* Timing rides on the asyncio loop's timers: each delivery is late by the loop's
  scheduling latency (typically well under a millisecond on an idle machine; more
  on a loaded one), never early.
* The relay listens on loopback only: a ``listen`` address beyond it is refused
  (ConfigError) unless ``allow_non_loopback=True`` (``--allow-non-loopback``), which
  warns that other machines can then send through the relay to ``target``.
* ECN (``ecn=True``, the default where the system allows it: Linux's IP_RECVTOS /
  IP_TOS, :mod:`wtlab.transport.ecn_udp`): the relay reads each datagram's ECN field,
  hands it to the link (whose AQM or ``mark`` may set CE, or ``ecn="bleach"`` erase
  it) and sends the datagram on with the codepoint the link left. ``relay.ecn_counts``
  counts what it delivered per direction and codepoint, and ``recorder`` (optional)
  receives an ``ecn_marked`` row per mark. Without ECN sockets the relay carries no
  ECN field (every datagram leaves not-ECT, as a bleaching middlebox would).
* DualPI2 links give provisional arrival times (an L4S packet may overtake a classic
  one queued earlier); the relay asks the link again when a time comes.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import socket
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from wtlab.cc.ecn import CE
from wtlab.errors import ConfigError
from wtlab.net.link import LinkSpec, as_aqm, as_buffer
from wtlab.net.path import Path
from wtlab.net.traces import as_trace
from wtlab.net.units import format_duration, parse_duration, parse_fraction, parse_rate
from wtlab.transport.udp import is_loopback

IP_UDP_OVERHEAD_BYTES = 28
SOCKET_BUFFER_BYTES = 4 << 20  # absorbs bursts when the loop runs late (capped by the OS)
_EARLY_S = 1e-4  # deliver datagrams due within this much of now in one timer run


def parse_address(text: str, name: str = "address") -> tuple[str, int]:
    """``"127.0.0.1:4433"``, ``"[::1]:4433"``, ``"localhost:4433"`` -> (host, port)."""
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"{name}: {text!r} is not HOST:PORT; write e.g. 127.0.0.1:4433 "
                          "or [::1]:4433")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port_text.isdigit() or not (0 <= int(port_text) <= 65535):
        raise ConfigError(f"{name}: {text!r} is not HOST:PORT with a port 0..65535; write e.g. "
                          "127.0.0.1:4433")
    return host, int(port_text)


def _as_address(value: Any, name: str) -> tuple[str, int]:
    if isinstance(value, str):
        return parse_address(value, name)
    if isinstance(value, tuple | list) and len(value) >= 2 and isinstance(value[1], int):
        return str(value[0]), int(value[1])
    raise ConfigError(f"{name}: {value!r} is not an address; pass (host, port) or 'host:port'")


def _grow_buffers(transport: asyncio.DatagramTransport) -> None:
    """Large socket buffers: the kernel must not drop what the link model delivered."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        except OSError:
            pass


class _Client:
    __slots__ = ("addr", "transport", "pending", "last_seen", "index")

    def __init__(self, addr: Any, now: float, index: int = 0) -> None:
        self.addr = addr
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[tuple[bytes, int]] = []  # due before the upstream socket existed
        self.last_seen = now
        self.index = index  # the client's flow id in the relay's trace rows


class _Direction:
    """One link and the datagrams it will deliver, sent from one loop timer."""

    def __init__(self, relay: Relay, link: Any, send: Any, name: str = "") -> None:
        self.relay = relay
        self.link = link
        self.name = name
        self.send = send  # send(dest, data, codepoint)
        self.heap: list[tuple[float, int, Any, bytes, int, int | None]] = []
        self.seq = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = float("inf")
        self.ecn_counts = [0, 0, 0, 0]  # delivered, by codepoint (not-ECT, ECT(1), ECT(0), CE)
        self.marks = 0

    def offer(self, dest: Any, data: bytes, ecn: int = 0) -> None:
        relay = self.relay
        now = relay._loop.time()
        link = self.link
        size = len(data) + relay.overhead_bytes
        arrivals = link.transmit(now - relay._t0, size, ecn) if ecn else \
            link.transmit(now - relay._t0, size)
        if ecn and arrivals:
            out = link.last_ecn
            if out == CE and ecn != CE:
                self.marks += 1
                relay._record_mark(now, self.name, dest, data, getattr(link, "last_queue", None))
            ecn = out
        ticket = link.last_ticket if getattr(link, "deferred", False) else None
        for arrival in arrivals:
            self.seq += 1
            heapq.heappush(self.heap, (arrival + relay._t0, self.seq, dest, data, ecn, ticket))
        if arrivals and self.heap[0][0] < self.timer_at:
            self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = self.heap[0][0]
        self.timer = self.relay._loop.call_at(self.timer_at, self._fire)

    def _fire(self) -> None:
        self.timer = None
        self.timer_at = float("inf")
        heap = self.heap
        relay = self.relay
        limit = relay._loop.time() + _EARLY_S
        while heap and heap[0][0] <= limit:
            t, seq, dest, data, ecn, ticket = heapq.heappop(heap)
            if ticket is not None:
                # a provisional arrival (DualPI2's classic queue): has it moved?
                t2 = self.link.confirm(ticket, t - relay._t0) + relay._t0
                if t2 > limit:
                    heapq.heappush(heap, (t2, seq, dest, data, ecn, ticket))
                    continue
            self.ecn_counts[ecn] += 1
            self.send(dest, data, ecn)
        if heap:
            self._arm()

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.heap.clear()


class _ListenProtocol(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        self.relay._from_client(data, addr, ecn)

    datagram_received_ecn = datagram_received  # ECN sockets (wtlab.transport.ecn_udp)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        self.relay.errors += 1


class _UpstreamProtocol(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay, client: _Client) -> None:
        self.relay = relay
        self.client = client

    def datagram_received(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        self.relay._down.offer(self.client, data, ecn)

    datagram_received_ecn = datagram_received

    def error_received(self, exc: Exception) -> None:
        self.relay.errors += 1


class Relay:
    """UDP relay ``listen`` -> ``target`` applying ``path`` (or the keyword shortcuts).

    Give either ``path`` (a :class:`~wtlab.net.path.Path`: ``path.up`` carries
    client -> server, ``path.down`` server -> client) or the shortcuts
    ``rate_bps``/``trace``, ``delay_s`` (one-way), ``loss``, ``jitter_s``,
    ``buffer``, ``aqm``, ``seed``, which build a symmetric path (``buffer``
    defaults to unlimited here, as a relay's user usually sets it). ``ecn``: carry the
    ECN field where the system allows it (see the module docstring); ``recorder``: a
    :class:`wtlab.trace.Recorder` for ``ecn_marked`` rows (flow = client index).

    Use as ``async with Relay(...) as relay`` or ``await relay.start()`` /
    ``await relay.close()``. ``relay.address`` is the bound (host, port).
    """

    def __init__(self, target: tuple[str, int] | str, *, listen: tuple[str, int] | str =
                 ("127.0.0.1", 0), path: Path | None = None, rate_bps: Any = None,
                 trace: Any = None, delay_s: Any = 0.0, loss: Any = None, jitter_s: Any = 0.0,
                 buffer: Any = None, aqm: Any = "droptail", seed: int | None = None,
                 overhead_bytes: int = IP_UDP_OVERHEAD_BYTES,
                 idle_timeout_s: float = 120.0, allow_non_loopback: bool = False,
                 ecn: bool = True, recorder: Any = None) -> None:
        self.target = _as_address(target, "target")
        self.listen = _as_address(listen, "listen")
        if not is_loopback(self.listen[0]):
            if not allow_non_loopback:
                raise ConfigError(
                    f"listen: {self.listen[0]} is not a loopback address: other machines could "
                    "send through the relay. Listen on 127.0.0.1 or ::1, or pass "
                    "allow_non_loopback=True (wtlab relay --allow-non-loopback) if you mean it")
            warnings.warn(
                f"wtlab relay listening on {self.listen[0]}, not loopback: any host that can "
                f"reach this machine can send through it to {self.target[0]}:{self.target[1]}",
                UserWarning, stacklevel=2)
        if path is None:
            spec = LinkSpec(rate_bps=rate_bps, trace=trace, delay_s=delay_s, loss=loss,
                            jitter_s=jitter_s, buffer=buffer, aqm=aqm)
            path = Path(down=spec, up=spec, seed=seed)
        elif any(v is not None for v in (rate_bps, trace, loss, buffer)):
            raise ConfigError("Relay: give either path= or the link shortcuts (rate_bps=, "
                              "trace=, delay_s=, loss=, ...), not both")
        if not isinstance(overhead_bytes, int) or overhead_bytes < 0:
            raise ConfigError(f"overhead_bytes: {overhead_bytes!r} must be an integer >= 0")
        self.path = path
        self.overhead_bytes = overhead_bytes
        self.idle_timeout_s = parse_duration(idle_timeout_s, "idle_timeout_s")
        self.report_s: float | None = None  # the CLI's --report
        if self.idle_timeout_s <= 0:
            raise ConfigError("idle_timeout_s must be > 0 (seconds a client may stay silent "
                              "before its upstream socket is closed)")
        self.errors = 0
        self.ecn = bool(ecn)
        self.recorder = recorder
        self.ecn_active = False  # set by start(): the sockets carry the ECN field
        self._clients: dict[Any, _Client] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._up = _Direction(self, path.up, self._send_up, "up")
        self._down = _Direction(self, path.down, self._send_down, "down")
        self._tasks: set[asyncio.Task] = set()
        self.address: tuple[str, int] | None = None

    # lifecycle -------------------------------------------------------------------
    async def start(self) -> Relay:
        """Bind the listening socket and start relaying (``async with Relay(...)`` does it); returns
        the relay. :class:`~wtlab.errors.ConfigError` if the address cannot be bound.
        """
        if self._transport is not None:
            return self
        from wtlab.transport.ecn_udp import open_endpoint

        self._loop = asyncio.get_running_loop()
        try:
            transport, _ = await open_endpoint(
                lambda: _ListenProtocol(self), ecn=self.ecn, local_addr=self.listen)
        except OSError as exc:
            raise ConfigError(f"listen: cannot bind UDP {self.listen[0]}:{self.listen[1]} "
                              f"({exc.strerror or exc}); pick another address or port") from None
        self._transport = transport
        self.ecn_active = hasattr(transport, "sendto_ecn")
        _grow_buffers(transport)
        self.address = transport.get_extra_info("sockname")[:2]
        self._t0 = self._loop.time()
        self._spawn(self._expire_idle_clients())
        return self

    async def close(self) -> None:
        """Stop relaying: close the sockets and forget the clients."""
        self._up.close()
        self._down.close()
        for task in list(self._tasks):
            task.cancel()
        for client in self._clients.values():
            if client.transport is not None:
                client.transport.close()
        self._clients.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        await asyncio.sleep(0)  # let the transports finish closing

    async def __aenter__(self) -> Relay:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def serve_forever(self, duration_s: float | None = None,
                            report_s: float | None = None, out: Any = None) -> None:
        """Relay until cancelled (or for ``duration_s``); print a status line every
        ``report_s`` seconds to ``out`` (default stdout) if given."""
        await self.start()
        reporter = None
        if report_s:
            reporter = self._loop.create_task(self._report(report_s, out or sys.stdout))
        try:
            if duration_s is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(duration_s)
        finally:
            if reporter is not None:
                reporter.cancel()
            await self.close()

    def status_line(self, since: dict | None = None, interval_s: float | None = None) -> str:
        """One line: per direction delivered rate (since ``since``), queue delay, drops."""
        now = self._loop.time() - self._t0
        parts = [f"t={now:7.1f}s"]
        for name in ("down", "up"):
            link = getattr(self.path, name)
            st = link.stats
            part = f"{name}:"
            if since is not None and interval_s:
                delivered = st.delivered_bytes - since[name].delivered_bytes
                part += f" {delivered * 8 / interval_s / 1e6:7.2f} Mbit/s"
            part += (f" q {link.queue_delay_s(now) * 1e3:6.1f} ms, {st.delivered} pkts, "
                     f"{st.dropped} dropped")
            parts.append(part)
        return " | ".join(parts)

    async def _report(self, every_s: float, out: Any) -> None:
        last = {"down": self.path.down.stats, "up": self.path.up.stats}
        while True:
            await asyncio.sleep(every_s)
            print(self.status_line(last, every_s), file=out, flush=True)
            last = {"down": self.path.down.stats, "up": self.path.up.stats}

    @property
    def stats(self) -> dict:
        """Counters per direction (offered, delivered, dropped by cause), clients, socket errors.
        """
        return {"up": self.path.up.stats.as_dict(), "down": self.path.down.stats.as_dict(),
                "clients": len(self._clients), "socket_errors": self.errors,
                "ecn": self.ecn_active}

    @property
    def ecn_counts(self) -> dict[str, dict[str, int]]:
        """Datagrams delivered per direction and ECN codepoint, and marks applied."""
        out = {}
        for name, d in (("up", self._up), ("down", self._down)):
            c = d.ecn_counts
            out[name] = {"not-ect": c[0], "ect1": c[1], "ect0": c[2], "ce": c[3],
                         "marked": d.marks}
        return out

    def _record_mark(self, now: float, direction: str, dest: Any, data: bytes,
                     queue: str | None) -> None:
        rec = self.recorder
        if rec is None:
            return
        from wtlab.trace import schema
        from wtlab.trace.schema import NAN, NO_BYTES_U32, NO_PN, NO_STREAM

        client = dest if isinstance(dest, _Client) else None
        flow = client.index if client is not None else 0
        rec.append(now, schema.K_ECN_MARKED, 0, flow, NO_PN, NO_STREAM, len(data),
                   NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, NAN, NAN, NAN, NAN, NAN, NAN)
        extra = {"dir": direction}
        if queue is not None:
            extra["queue"] = queue
        rec.set_extra(len(rec) - 1, extra)

    # forwarding ----------------------------------------------------------------
    def _from_client(self, data: bytes, addr: Any, ecn: int = 0) -> None:
        client = self._clients.get(addr)
        now = self._loop.time()
        if client is None:
            client = self._clients[addr] = _Client(addr, now, len(self._clients))
            self._spawn(self._open_upstream(client))
        client.last_seen = now
        self._up.offer(client, data, ecn)

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire_idle_clients(self) -> None:
        """Close upstream sockets of clients silent for idle_timeout_s (NAT-like)."""
        while True:
            await asyncio.sleep(min(self.idle_timeout_s / 2, 30.0))
            limit = self._loop.time() - self.idle_timeout_s
            for addr, client in list(self._clients.items()):
                if client.last_seen < limit:
                    del self._clients[addr]
                    if client.transport is not None:
                        client.transport.close()

    async def _open_upstream(self, client: _Client) -> None:
        from wtlab.transport.ecn_udp import open_endpoint

        try:
            transport, _ = await open_endpoint(
                lambda: _UpstreamProtocol(self, client), ecn=self.ecn_active,
                remote_addr=self.target)
        except OSError:
            self.errors += 1
            self._clients.pop(client.addr, None)
            return
        _grow_buffers(transport)
        if self._transport is None:  # closed meanwhile
            transport.close()
            return
        client.transport = transport
        for data, ecn in client.pending:
            self._send_up(client, data, ecn)
        client.pending.clear()

    def _send_up(self, client: _Client, data: bytes, ecn: int = 0) -> None:
        transport = client.transport
        if transport is None:
            client.pending.append((data, ecn))
        elif not transport.is_closing():
            if ecn and self.ecn_active:
                transport.sendto_ecn(data, None, ecn)
            else:
                transport.sendto(data)

    def _send_down(self, client: _Client, data: bytes, ecn: int = 0) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if ecn and self.ecn_active:
                transport.sendto_ecn(data, client.addr, ecn)
            else:
                transport.sendto(data, client.addr)


# ---------------------------------------------------------------------------- CLI
class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit; wtlab raises
        raise ConfigError(f"relay: {message}; see 'wtlab relay --help'")


def _parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog="wtlab relay", description=(
        "UDP impairment relay on loopback: forwards LISTEN <-> TO through wtlab link models "
        "(rate or Mahimahi trace, one-way delay each way, jitter, loss, buffer, CoDel)."))
    p.add_argument("--listen", default="127.0.0.1:4434", help="HOST:PORT to receive clients on "
                   "(default 127.0.0.1:4434; port 0 picks one)")
    p.add_argument("--to", required=True, help="HOST:PORT of the server")
    p.add_argument("--rate", help="bottleneck rate both ways, e.g. 10mbit")
    p.add_argument("--trace", help="Mahimahi trace file both ways (instead of --rate)")
    p.add_argument("--down-rate", help="server->client rate (overrides --rate)")
    p.add_argument("--up-rate", help="client->server rate (overrides --rate)")
    p.add_argument("--down-trace", help="server->client Mahimahi trace")
    p.add_argument("--up-trace", help="client->server Mahimahi trace")
    p.add_argument("--delay", default="0ms", help="one-way delay each way, e.g. 25ms")
    p.add_argument("--jitter", default="0ms", help="delay jitter (uniform +-), e.g. 2ms")
    p.add_argument("--loss", default="0%", help="random loss each way, e.g. 1%%")
    p.add_argument("--down-loss", help="server->client loss (overrides --loss)")
    p.add_argument("--up-loss", help="client->server loss (overrides --loss)")
    p.add_argument("--buffer", help="bottleneck buffer: 64KB, 100p (packets) or 1bdp "
                   "(default unlimited)")
    p.add_argument("--aqm", default="droptail",
                   choices=("droptail", "codel", "red", "pie", "step", "dualpi2"))
    p.add_argument("--ecn", default="mark", choices=("mark", "drop", "bleach"),
                   help="what an AQM does to ECN-capable packets: mark CE (default), drop "
                   "them, or erase the ECN field of every packet (bleach)")
    p.add_argument("--mark", default="0%", help="random CE marks of ECN-capable packets each "
                   "way, e.g. 1%%")
    p.add_argument("--overhead", default="28", help="bytes added to each datagram's size on the "
                   "link (IP+UDP headers, default 28)")
    p.add_argument("--seed", help="random seed (default: a fresh one, printed)")
    p.add_argument("--duration", help="stop after this long, e.g. 30s (default: until Ctrl-C)")
    p.add_argument("--report", help="print rates, queue delay and drops this often, e.g. 1s")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--allow-non-loopback", action="store_true",
                   help="allow --listen beyond loopback (other machines can then use the relay)")
    return p


def _flag(name: str, func: Any, value: Any) -> Any:
    """Apply a parser; make sure the error names the flag."""
    try:
        return func(value, name)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(name) else f"{name}: {msg}") from None


def relay_from_args(argv: Sequence[str]) -> tuple[Relay, float | None, bool]:
    """Build a Relay from command-line arguments (raises ConfigError naming the flag)."""
    a = _parser().parse_args(list(argv))
    listen = _flag("--listen", parse_address, a.listen)
    target = _flag("--to", parse_address, a.to)

    def service(direction: str) -> dict:
        rate = getattr(a, f"{direction}_rate") or None
        trace = getattr(a, f"{direction}_trace") or None
        if rate and trace:
            raise ConfigError(f"--{direction}-rate and --{direction}-trace: give one of them")
        if rate:
            return {"rate_bps": _flag(f"--{direction}-rate", parse_rate, rate)}
        if trace:
            return {"trace": _flag(f"--{direction}-trace", as_trace, trace)}
        if a.rate and a.trace:
            raise ConfigError("--rate and --trace: give one of them (a trace sets the rate)")
        if a.rate:
            return {"rate_bps": _flag("--rate", parse_rate, a.rate)}
        if a.trace:
            return {"trace": _flag("--trace", as_trace, a.trace)}
        raise ConfigError("--rate: the relay needs a bottleneck; give --rate (e.g. 10mbit) or "
                          "--trace FILE")

    common = dict(delay_s=_flag("--delay", parse_duration, a.delay),
                  jitter_s=_flag("--jitter", parse_duration, a.jitter),
                  buffer=_flag("--buffer", as_buffer, a.buffer),
                  aqm=_flag("--aqm", as_aqm, a.aqm),
                  ecn={"mark": True, "drop": False, "bleach": "bleach"}[a.ecn],
                  mark=_flag("--mark", parse_fraction, a.mark))
    loss = _flag("--loss", parse_fraction, a.loss)

    def loss_of(direction: str) -> float:
        value = getattr(a, f"{direction}_loss")
        return loss if value is None else _flag(f"--{direction}-loss", parse_fraction, value)
    if not a.overhead.isdigit():
        raise ConfigError(f"--overhead: {a.overhead!r} must be a number of bytes >= 0")
    seed = None
    if a.seed is not None:
        if not a.seed.lstrip("-").isdigit():
            raise ConfigError(f"--seed: {a.seed!r} must be an integer")
        seed = int(a.seed)
    duration = None if a.duration is None else _flag("--duration", parse_duration, a.duration)
    report = None if a.report is None else _flag("--report", parse_duration, a.report)
    if report is not None and report <= 0:
        raise ConfigError("--report: give a positive interval, e.g. 1s")
    down = LinkSpec(**service("down"), loss=loss_of("down"), **common)
    up = LinkSpec(**service("up"), loss=loss_of("up"), **common)
    path = Path(down=down, up=up, seed=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        relay = Relay(target, listen=listen, path=path, overhead_bytes=int(a.overhead),
                      allow_non_loopback=a.allow_non_loopback)
    for w in caught:
        print(f"wtlab relay: WARNING: {w.message}", file=sys.stderr, flush=True)
    relay.report_s = None if a.quiet else report
    return relay, duration, a.quiet


def cli_main(argv: Sequence[str]) -> int:
    """``wtlab relay ...``: run until Ctrl-C (or ``--duration``), then print link stats."""
    relay, duration, quiet = relay_from_args(argv)

    async def run() -> None:
        await relay.start()
        if not quiet:
            host, port = relay.address
            shown = f"[{host}]" if ":" in host else host
            print(f"wtlab relay: listening on {shown}:{port} -> "
                  f"{relay.target[0]}:{relay.target[1]}", flush=True)
            print(f"  down (server->client): {relay.path.down_spec.summary()}", flush=True)
            print(f"  up   (client->server): {relay.path.up_spec.summary()}", flush=True)
            print(f"  rtt {format_duration(relay.path.rtt_s)} + queueing; seed {relay.path.seed}",
                  flush=True)
        await relay.serve_forever(duration, report_s=relay.report_s)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        if not quiet:
            for name in ("down", "up"):
                st = getattr(relay.path, name).stats
                print(f"  {name}: offered {st.offered} delivered {st.delivered} dropped "
                      f"{st.dropped} (queue {st.dropped_queue}, aqm {st.dropped_aqm}, loss "
                      f"{st.dropped_loss}, outage {st.dropped_outage})", file=sys.stderr)
    return 0


__all__ = ["Relay", "cli_main", "parse_address", "relay_from_args"]
