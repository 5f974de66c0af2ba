"""Liveness scenarios: many small exchanges in a row, each step with a deadline.

Every scenario takes an established session to ``/echo`` (or to a channel echo
route) and raises :class:`Stalled` naming the step that got no answer within
``STEP_S`` seconds (virtual seconds in virtual time). They run live on loopback
and over the virtual network (``tests/transport/test_liveness.py``), so a driver
rule that strands data shows up as a named stall, not as a slow test.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

STEP_S = 3.0


class Stalled(AssertionError):
    """A step of a liveness scenario got no answer within its deadline."""


async def step(aw: Any, what: str) -> Any:
    try:
        return await asyncio.wait_for(aw, STEP_S)
    except TimeoutError:
        raise Stalled(f"{what}: no answer within {STEP_S} s") from None


async def pingpong(session: Any, rounds: int = 3000, size: int = 1024) -> int:
    """``rounds`` request/response exchanges of ``size`` bytes on one bidirectional stream."""
    st = await step(session.open_bidi(), "open_bidi")
    msg = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    for i in range(rounds):
        st.write(msg)
        got = await step(st.readexactly(size), f"ping-pong round {i} of {rounds}")
        if got != msg:
            raise AssertionError(f"round {i}: the echo differs from what was sent")
    st.write_eof()
    return rounds


async def many_streams(session: Any, streams: int = 40, rounds: int = 25) -> int:
    """Concurrent ping-pongs on ``streams`` streams, then one stream per short exchange."""

    async def one(k: int) -> None:
        st = await step(session.open_bidi(), f"open stream {k}")
        for i in range(rounds):
            msg = b"%d:%d;" % (k, i) * (1 + (k + i) % 20)
            st.write(msg)
            got = await step(st.readexactly(len(msg)), f"stream {k} round {i}")
            if got != msg:
                raise AssertionError(f"stream {k} round {i}: wrong echo")
        st.write_eof()
        if await step(st.read(), f"stream {k} FIN") != b"":
            raise AssertionError(f"stream {k}: data after the echoed FIN")

    await asyncio.gather(*(one(k) for k in range(streams)))
    for k in range(3 * streams):  # open, echo to FIN, close: one stream per exchange
        st = await step(session.open_bidi(), f"open short stream {k}")
        st.write(b"q%d" % k)
        st.write_eof()
        got = await step(st.read(), f"short stream {k}")
        if got != b"q%d" % k:
            raise AssertionError(f"short stream {k}: got {got!r}")
    return streams * rounds + 3 * streams


async def mixed_bursts(session: Any, bursts: int = 60, seed: int = 7) -> int:
    """Bursts of messages of mixed sizes (1 B to 70 KB) on one stream, echoed whole."""
    rng = random.Random(seed)
    st = await step(session.open_bidi(), "open_bidi")
    total = 0
    for b in range(bursts):
        sizes = [rng.choice((1, 17, 100, 1000, 1200, 1400, 5000, 70_000))
                 for _ in range(rng.randint(1, 12))]
        burst = b"".join(bytes([(b + i) % 256]) * n for i, n in enumerate(sizes))
        for i, n in enumerate(sizes):
            st.write(bytes([(b + i) % 256]) * n)
        got = await step(st.readexactly(len(burst)), f"burst {b} ({len(sizes)} messages, "
                                                      f"{len(burst)} bytes)")
        if got != burst:
            raise AssertionError(f"burst {b}: the echo differs")
        total += len(sizes)
    st.write_eof()
    return total


async def datagram_echo(session: Any, rounds: int = 1000, size: int = 200) -> int:
    """One datagram out, its echo back, ``rounds`` times (lossless paths only)."""
    for i in range(rounds):
        msg = i.to_bytes(4, "big") * (size // 4)
        session.send_datagram(msg)
        got = await step(session.receive_datagram(), f"datagram echo round {i}")
        if got != msg:
            raise AssertionError(f"datagram round {i}: wrong echo")
    return rounds


async def datagram_queue_drains(session: Any, bursts: int = 20, per_burst: int = 300) -> int:
    """Bursts of datagrams: the send queue drains to zero after each, and the echoes arrive."""
    size = min(1000, session.max_datagram_size)
    got = 0
    for b in range(bursts):
        for i in range(per_burst):
            session.send_datagram(b"%06d" % (b * per_burst + i) + b"d" * (size - 6))
        deadline = asyncio.get_running_loop().time() + STEP_S
        while session.stats()["datagrams_queued"]:
            if asyncio.get_running_loop().time() > deadline:
                raise Stalled(f"datagram burst {b}: {session.stats()['datagrams_queued']} "
                              f"datagrams still queued after {STEP_S} s")
            await asyncio.sleep(0.001)
        # Echoes are unreliable: wait for at least one, then take what has come.
        await step(session.receive_datagram(), f"first echo of datagram burst {b}")
        got += 1
    return got


async def channel_pingpong(session: Any, rounds: int = 1000, **channel_kw: Any) -> int:
    """Message ping-pong over a reliability channel (the server route echoes messages)."""
    ch = session.channel(**channel_kw)
    for i in range(rounds):
        msg = b"c%06d" % i + b"." * (i % 900)
        await step(ch.send(msg), f"channel send {i}")
        got = await step(ch.receive(), f"channel ping-pong round {i}")
        if got != msg:
            raise AssertionError(f"channel round {i}: wrong echo")
    await step(ch.close(), "channel close")
    return rounds
