"""The virtual-time loop: clock semantics, stalls, no OS access, running inside a notebook loop."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import time

import pytest

from wtlab.errors import ConfigError
from wtlab.net.vtime import TICK_S, SimulationStalled, VirtualTimeLoop, current_host


def run(loop: VirtualTimeLoop, coro):
    task = loop.create_task(coro)
    loop.run_in_place(task.done)
    return task.result()


def test_sleep_advances_virtual_clock_exactly():
    loop = VirtualTimeLoop()
    seen = []

    async def main():
        for delay in (0.5, 0.25, 1e-6, 3600.0):
            await asyncio.sleep(delay)
            seen.append(loop.time())
        return loop.time()

    wall0 = time.perf_counter()
    end = run(loop, main())
    wall = time.perf_counter() - wall0
    # Each sleep lands on its deadline plus one tick (the selector jumps to the head timer).
    expected = [0.5, 0.75, 0.75 + 1e-6, 0.75 + 1e-6 + 3600.0]
    for got, want, n in zip(seen, expected, range(1, 5), strict=True):
        assert want + (n - 0.5) * TICK_S < got < want + (n + 0.5) * TICK_S
    assert end == seen[-1]
    # An hour of virtual time must not be slept through; 30 s is a generous bound.
    assert wall < 30.0
    loop.close()


def test_timers_fire_in_deadline_order_and_start_time():
    loop = VirtualTimeLoop(start_s=10.0)
    order = []
    for when in (13.0, 11.0, 12.0, 11.0):
        loop.call_at(when, lambda w=when: order.append((w, loop.time())))
    loop.run_in_place(lambda: len(order) == 4)
    assert [w for w, _ in order] == [11.0, 11.0, 12.0, 13.0]
    assert [t for _, t in order] == pytest.approx([11.0, 11.0, 12.0, 13.0], abs=3 * TICK_S)
    loop.close()


def test_wait_for_timeout_in_virtual_time():
    loop = VirtualTimeLoop()

    async def main():
        fut = loop.create_future()
        loop.call_later(5.0, fut.set_result, "late")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), timeout=2.0)
        t_timeout = loop.time()
        return t_timeout, await fut, loop.time()

    t_timeout, value, t_end = run(loop, main())
    assert value == "late"
    assert (t_timeout, t_end) == pytest.approx((2.0, 5.0), abs=3 * TICK_S)
    loop.close()


def test_stall_raises_instead_of_hanging():
    loop = VirtualTimeLoop()

    async def main():
        await loop.create_future()  # nobody will ever resolve it

    task = loop.create_task(main())
    with pytest.raises(SimulationStalled, match="stalled at t=0.000000"):
        loop.run_in_place(task.done)
    task.cancel()
    loop.run_in_place(task.done)
    loop.close()


def test_no_operating_system_access():
    loop = VirtualTimeLoop()

    async def main():
        errors = []
        for make in (
            lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", 80),
            lambda: loop.create_server(asyncio.Protocol, "127.0.0.1", 0),
            lambda: loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                  local_addr=("127.0.0.1", 0)),
            lambda: loop.getaddrinfo("localhost", 443, type=socket.SOCK_DGRAM),
        ):
            with pytest.raises(ConfigError) as info:
                await make()
            errors.append(str(info.value))
        with pytest.raises(ConfigError):
            loop.run_in_executor(None, print)
        with pytest.raises(ConfigError):
            loop.add_reader(0, print)
        return errors

    errors = run(loop, main())
    assert all("virtual" in e for e in errors)
    loop.close()


async def test_runs_inside_another_running_loop():
    # A notebook cell runs inside the kernel's loop; the virtual loop must still run.
    outer = asyncio.get_running_loop()
    loop = VirtualTimeLoop()

    async def main():
        assert asyncio.get_running_loop() is loop
        await asyncio.sleep(7.0)
        return loop.time()

    assert run(loop, main()) == pytest.approx(7.0, abs=TICK_S * 2)
    assert asyncio.get_running_loop() is outer
    loop.close()


def test_timer_granularity_rounds_up_like_epoll_but_io_wakes_early():
    loop = VirtualTimeLoop(timer_granularity_s=0.001)
    woke = []

    async def main():
        await asyncio.sleep(0.0003)  # epoll would sleep a whole millisecond
        woke.append(loop.time())
        # a datagram reaches this host 0.2 ms later (as the network delivers one)
        loop.call_exact_at(loop.time() + 0.0002, loop.wake_host, None)
        await asyncio.sleep(0.0005)  # the timer runs late, counted from the early wake-up
        woke.append(loop.time())
        loop.call_exact_at(loop.time() + 0.0007, loop.wake_host, None)
        await asyncio.sleep(0.0004)  # due before that datagram: runs with it
        woke.append(loop.time())

    run(loop, main())
    assert woke[0] == pytest.approx(0.001, abs=3 * TICK_S)
    # woken by the I/O at +0.2 ms: the 0.5 ms timer is not due yet, so one more rounded wait
    assert woke[1] == pytest.approx(0.001 + 0.0002 + 0.001, abs=5 * TICK_S)
    assert woke[2] == pytest.approx(woke[1] + 0.0007, abs=5 * TICK_S)
    with pytest.raises(ConfigError):
        VirtualTimeLoop(timer_granularity_s=-1)
    loop.close()


def test_each_host_sleeps_on_its_own():
    # Two machines: a datagram for one does not wake the other's timers.
    loop = VirtualTimeLoop(timer_granularity_s=0.001)
    fired = {}

    def on_host(host, fn, *args):
        ctx = contextvars.copy_context()
        ctx.run(current_host.set, host)
        return ctx.run(fn, *args)

    on_host("a", loop.call_at, 0.0003, lambda: fired.setdefault("a", loop.time()))
    on_host("b", loop.call_at, 0.0003, lambda: fired.setdefault("b", loop.time()))
    # host b receives a datagram at 0.4 ms; host a receives nothing
    loop.call_exact_at(0.0004, lambda: on_host("b", loop.wake_host, "b"))
    loop.run_in_place(lambda: len(fired) == 2)
    assert fired["b"] == pytest.approx(0.0004, abs=3 * TICK_S)  # woken by its datagram
    assert fired["a"] == pytest.approx(0.001, abs=3 * TICK_S)  # slept its whole millisecond
    loop.close()
