"""The driver's liveness invariant, checked on random sequences (hypothesis).

``wtlab/transport/driver.py`` promises that whatever a connection holds to send
leaves through a scheduled transmit or through its armed timer. Here random
interleavings of application writes (several streams, mixed sizes), datagrams,
pauses and loop yields run against the echo server in virtual time, with
Reno, CUBIC or BBR pacing on paths from a LAN to a long, slow WAN, with
connection timers firing late and transmit ticks finding other callbacks ready
(as on a busy live loop); a check looks at both endpoints and asserts:

* I1: if aioquic was handed something since the last ``datagrams_to_send``
  (``tx_wanted``), a transmit is scheduled;
* I2: if the connection holds stream data or datagrams it may send now (peer
  credit and congestion window permitting) and no transmit is scheduled, its
  timer is armed before the idle deadline (pacing, ACK or loss timer);

(checked after every entry into either driver: a datagram, a transmit tick, a
timer, a scheduled transmit; and every 0.5 ms of virtual time), and, at the end, every byte and datagram is echoed within a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wtlab
from wtlab.net.network import VirtualNetwork
from wtlab.net.path import Path
from wtlab.transport.driver import Endpoint

pytestmark = pytest.mark.timeout(300)

ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(0, 3), st.sampled_from([1, 10, 500, 1024, 1300,
                                                                     4000, 30_000])),
    st.tuples(st.just("datagram"), st.integers(1, 1000)),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.0003, 0.001, 0.004, 0.03])),
    st.tuples(st.just("yield"), st.integers(1, 4)),
    st.tuples(st.just("read"), st.integers(0, 3)),
    st.tuples(st.just("request"), st.integers(0, 3), st.sampled_from([1, 100, 1024, 3000])),
), min_size=1, max_size=40)

PATHS = st.sampled_from([
    dict(rate_bps="100mbit", rtt_s="1ms"),
    dict(rate_bps="10mbit", rtt_s="40ms"),
    dict(rate_bps="2mbit", rtt_s="200ms"),
])


def sendable(quic) -> bool:
    """Stream data, a FIN or a datagram the connection may send now (credit permitting)."""
    if quic._datagrams_pending:
        return True
    conn_room = quic._remote_max_data - quic._remote_max_data_used
    for stream in quic._streams.values():
        s = stream.sender
        if s.reset_pending:
            return True
        if len(s._pending):
            start = s._pending[0].start
            new_data = start >= s.highest_offset
            if start < stream.max_stream_data_remote and (conn_room > 0 or not new_data):
                return True
        elif s._pending_eof:
            return True
    return False


def violations(ep) -> list[str]:
    quic = ep.quic
    if ep.terminated or not quic._handshake_confirmed:
        return []
    out = []
    if quic.tx_wanted and ep._tx_handle is None:
        out.append("I1: tx_wanted but no transmit scheduled")
    loss = quic._loss
    room = loss.bytes_in_flight + quic._max_datagram_size <= loss.congestion_window
    if room and ep._tx_handle is None and sendable(quic):
        if ep._timer is None or ep._timer_at is None or ep._timer_at >= quic._close_at:
            out.append("I2: sendable data, window room, no transmit and no timer before idle")
    return out


def run(actions, path_kw, cc, lateness=(0.0,), noise=(False,)):
    """Run ``actions`` on a client against the echo server; returns the violations seen.

    ``lateness``: how late successive connection timers fire (cycled), as on a busy live
    loop, where a late timer runs in the same iteration as datagrams that arrived
    meanwhile. ``noise``: whether successive transmit ticks find other callbacks ready
    (cycled), which makes the driver defer them.
    """
    net = VirtualNetwork(Path.symmetric(**path_kw, buffer_bdp=None, seed=5))
    late = itertools.cycle(lateness)
    noisy = itertools.cycle(noise)
    real_call_at = type(net.loop).call_at

    def call_at(loop, when, callback, *args, **kw):
        if getattr(callback, "__func__", None) is Endpoint._on_timer:
            when += next(late)
        return real_call_at(loop, when, callback, *args, **kw)

    def tx_tick(ep, _real=Endpoint._tx_tick):
        if next(noisy):
            ep.loop.call_soon(lambda: None)
        _real(ep)
    ready: dict = {}
    seen: list[str] = []
    checks: list = []  # run after every entry into a driver (datagram, transmit tick, timer)

    def checked(method):
        def wrapper(self, *args):
            result = method(self, *args)
            for check in checks:
                check()
            return result
        return wrapper

    async def server_main():
        async with wtlab.serve(port=4433, cert_kind="rsa") as srv:
            ready["srv"] = srv
            await asyncio.Event().wait()

    async def client_main():
        while "srv" not in ready:
            await asyncio.sleep(0.001)
        srv = ready["srv"]
        async with wtlab.connect("https://127.0.0.1:4433/echo", cert_hashes=[srv.cert_sha256],
                                 cert_hash_policy="relaxed",  # RSA: deterministic
                                 timeout=5.0, congestion_control=cc) as session:
            client_ep = session._ep

            def check() -> None:
                for ep in (client_ep, *srv._endpoints):
                    seen.extend(violations(ep))

            loop = asyncio.get_running_loop()
            checks.append(check)
            stop = asyncio.Event()

            async def every_half_ms():  # catches states no driver entry follows (a stall)
                while not stop.is_set():
                    check()
                    await asyncio.sleep(0.0005)

            ticker = asyncio.create_task(every_half_ms())
            streams = [await session.open_bidi() for _ in range(4)]
            written = [0] * 4
            echoed = [0] * 4
            dgrams = 0
            for act in actions:
                kind = act[0]
                if kind == "write":
                    _, k, n = act
                    streams[k].write(b"w" * n)
                    written[k] += n
                elif kind == "datagram":
                    session.send_datagram(b"d" * min(act[1], session.max_datagram_size))
                    dgrams += 1
                elif kind == "sleep":
                    await asyncio.sleep(act[1])
                elif kind == "yield":
                    for _ in range(act[1]):
                        await asyncio.sleep(0)
                elif kind == "request":  # write, then wait for the whole echo
                    _, k, n = act
                    streams[k].write(b"r" * n)
                    written[k] += n
                    want = written[k] - echoed[k]
                    try:
                        await asyncio.wait_for(streams[k].readexactly(want), 30)
                    except TimeoutError:
                        seen.append(f"stall: request on stream {k}")
                        break
                    echoed[k] += want
                elif kind == "read":
                    k = act[1]
                    if written[k] > echoed[k]:
                        echoed[k] += len(await streams[k].read(written[k] - echoed[k]))
            for k in range(4):  # every byte comes back, within a bounded (virtual) time
                if written[k] > echoed[k]:
                    try:
                        await asyncio.wait_for(
                            streams[k].readexactly(written[k] - echoed[k]), 30)
                    except TimeoutError:
                        seen.append(f"stall: stream {k} echoed {echoed[k]} of {written[k]}")
            t_end = loop.time() + 30
            while session.stats()["datagrams_queued"] and loop.time() < t_end:
                await asyncio.sleep(0.001)
            if session.stats()["datagrams_queued"]:
                seen.append("stall: the datagram queue did not drain")
            stop.set()
            await ticker
            check()
            return dgrams

    net.spawn(server_main())
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(type(net.loop), "call_at", call_at))
        stack.enter_context(mock.patch.object(Endpoint, "_tx_tick", tx_tick))
        for name in ("datagram_received", "_tx_tick", "_on_timer", "schedule_transmit"):
            stack.enter_context(mock.patch.object(
                Endpoint, name, checked(getattr(Endpoint, name))))
        try:
            net.run_coroutine(client_main(), host=net.add_client(), until=300.0)
        finally:
            net.close()
    return seen


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS, path_kw=PATHS, cc=st.sampled_from(["reno", "cubic", "bbr"]),
       lateness=st.lists(st.sampled_from([0.0, 0.0, 0.0002, 0.001, 0.003]), min_size=1,
                         max_size=30),
       noise=st.lists(st.booleans(), min_size=1, max_size=30))
def test_the_driver_keeps_its_liveness_invariant(actions, path_kw, cc, lateness, noise):
    seen = run(actions, path_kw, cc, lateness, noise)
    assert not seen, f"{len(seen)} violations, first: {seen[0]}"


def test_the_checker_sees_a_stranded_write(monkeypatch):
    # The check itself: data handed to aioquic behind the driver's back (no tx_wanted,
    # no transmit) is reported as I2, and as a stall of its stream.
    from wtlab.transport.session import Stream

    def stranding_write(self, data):
        self._ep.quic._streams[self.stream_id].sender.write(bytes(data))
        return self._awaitable

    monkeypatch.setattr(Stream, "write", stranding_write)
    seen = run([("sleep", 0.01), ("write", 0, 100), ("sleep", 0.001)],
               dict(rate_bps="100mbit", rtt_s="1ms"),
               "cubic")
    assert any(v.startswith("I2") for v in seen)
    assert "stall: stream 0 echoed 0 of 100" in seen
