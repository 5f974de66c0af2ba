"""Message delivery modes over WebTransport: reliable, unordered, partial, unreliable.

* :func:`open_channel` / ``session.channel(...)``: message channels over a live or emulated
  session (:mod:`wtlab.reliability.channel`); :func:`channel_handler` makes a server route
  that opens one on every session;
* :class:`Engine`: the sans-IO retransmission engine behind the datagram modes, steppable
  by hand (:mod:`wtlab.reliability.engine`);
* :class:`EnginePair`, :class:`LossyLink`: two engines over simulated links, in virtual
  time (:mod:`wtlab.reliability.sim`).

Example (stepping the engine, no network)::

    >>> from wtlab.reliability import Engine
    >>> a, b = Engine("reliable"), Engine("reliable")
    >>> a.send(b"hello", now=0.0)
    0
    >>> for d in a.datagrams_to_send(0.0):
    ...     b.receive_datagram(d, now=0.02)
    >>> b.next_event().data
    b'hello'
"""

from __future__ import annotations

from wtlab.reliability.engine import (
    MODES,
    Engine,
    MessageAcked,
    MessageDelivered,
    MessageDropped,
    MessageExpired,
)
from wtlab.reliability.sim import EnginePair, LossyLink, PatternLink


def channel_handler(fn=None, **channel_kw):
    """A server route handler with a channel per session; see
    :func:`wtlab.reliability.channel.channel_handler`."""
    from wtlab.reliability.channel import channel_handler as _handler

    return _handler(fn, **channel_kw)


def open_channel(session, **kw):
    """A message channel over ``session``; see :func:`wtlab.reliability.channel.open_channel`."""
    from wtlab.reliability.channel import open_channel as _open

    return _open(session, **kw)


__all__ = [
    "MODES",
    "Engine",
    "EnginePair",
    "LossyLink",
    "MessageAcked",
    "MessageDelivered",
    "MessageDropped",
    "MessageExpired",
    "PatternLink",
    "channel_handler",
    "open_channel",
]
