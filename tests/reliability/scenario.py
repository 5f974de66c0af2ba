"""One channel transfer, client -> server, usable live (loopback, relay) and in virtual time.

The server route opens the same channel and collects what arrives; the client sends,
waits until every message is resolved, closes the channel, and returns both ends'
reports. Nothing here sleeps to make timing work: every wait is on an event or bounded
by a timeout that fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

import wtlab


def payload(i: int, size: int) -> bytes:
    head = b"m%07d:" % i
    body = bytes((i * 7 + k) % 251 for k in range(max(0, size - len(head))))
    return (head + body)[:max(size, len(head))]


@dataclass
class ServerSide:
    channel_kw: dict[str, Any]
    channels: list[Any] = field(default_factory=list)
    sessions: list[Any] = field(default_factory=list)
    received: list[tuple[float, bytes]] = field(default_factory=list)
    error: BaseException | None = None
    done: asyncio.Event | None = None
    tweak: Any = None  # called with the server session (e.g. to shorten its idle timeout)
    on_message: Any = None  # called with (channel, count) after each message (fault injection)

    async def handler(self, session) -> None:
        if self.done is None:
            self.done = asyncio.Event()
        if self.tweak is not None:
            self.tweak(session)
        ch = session.channel(**self.channel_kw)
        self.channels.append(ch)
        self.sessions.append(session)
        loop = asyncio.get_running_loop()
        try:
            async for msg in ch:
                self.received.append((loop.time(), msg))
                if self.on_message is not None:
                    self.on_message(ch, len(self.received))
            # Our END follows every acknowledgement on the control stream: once the client
            # sees it, its report holds every verdict we sent.
            await ch.close()
        except wtlab.SessionClosed as exc:
            self.error = exc
        finally:
            self.done.set()
        with contextlib.suppress(wtlab.WtlabError):
            await session.wait_closed()


@dataclass
class Result:
    client: pd.DataFrame  # client's report (its "sent" rows are what it sent)
    server: pd.DataFrame  # server's report ("received" rows)
    received: list[tuple[float, bytes]]
    sent_at: list[float]
    error: BaseException | None = None
    server_error: BaseException | None = None
    resolved: bool = True


async def client_transfer(session, server: ServerSide, *, n: int, size, gap_s: float = 0.0,
                          resolve_timeout_s: float = 30.0, outage_hook=None,
                          **channel_kw) -> Result:
    """Send ``n`` messages (``size(i)`` bytes) on a channel; collect both reports."""
    loop = asyncio.get_running_loop()
    ch = session.channel(**channel_kw)
    sent_at: list[float] = []
    error = None
    resolved = False
    try:
        for i in range(n):
            sent_at.append(loop.time())
            await ch.send(payload(i, size(i)))
            if gap_s:
                await asyncio.sleep(gap_s)  # the workload's pacing, not a timing fudge
            if outage_hook is not None:
                outage_hook(i)
        resolved = await ch.wait_resolved(resolve_timeout_s)
        await ch.close(timeout=resolve_timeout_s)

        async def until_peer_end() -> None:
            async for _ in ch:
                pass

        await asyncio.wait_for(until_peer_end(), resolve_timeout_s)
    except wtlab.SessionClosed as exc:
        error = exc
        if server.done is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.done.wait(), resolve_timeout_s)
    srv_ch = server.channels[0] if server.channels else None
    return Result(client=ch.report(), server=srv_ch.report() if srv_ch else pd.DataFrame(),
                  received=list(server.received), sent_at=sent_at, error=error,
                  server_error=server.error, resolved=resolved)


def sent_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["direction"] == "sent"].set_index("message_id")


def received_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["direction"] == "received"].set_index("message_id")


def message_ids(received: list[tuple[float, bytes]]) -> list[int]:
    return [int(m[1:8]) for _, m in received]
