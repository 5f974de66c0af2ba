"""The server's QUIC connection: bounded flow-control windows and the stream credit it grants.

aioquic doubles a receive window whenever the peer's *highest* offset passes half of
it, whether or not the bytes before it ever arrived, and keeps out-of-order data in a
buffer as large as the gap. A peer that sends one byte near the end of each window
doubles it again and again: a few packets make the receiver allocate gigabytes.
:class:`ServerConnection` slides the windows instead: a stream may run at most
``stream_window_bytes`` ahead of what was delivered in order on it, and the
connection ``connection_window_bytes`` ahead of what was delivered on all streams.
So out-of-order data held for a connection never exceeds ``connection_window_bytes``.

It also grants the peer as many concurrent streams as the server's limits need
(aioquic grants 128 of each kind), and tells whether anything from the peer could be
decrypted yet (a garbage INITIAL leaves nothing behind).

This module is the one place the server reaches into aioquic's internals; each use is
named in ``AIOQUIC_INTERNALS`` and checked by ``tests/transport/test_hardening.py``.
"""

from __future__ import annotations

from typing import Any

from aioquic.quic.connection import QuicConnectionState
from aioquic.quic.events import StreamDataReceived, StreamReset

from wtlab.transport.driver import Connection

#: what this module relies on in aioquic 1.7.2 (attribute or method, on what)
AIOQUIC_INTERNALS = (
    ("QuicConnection", "_local_max_data"),  # Limit: .value, .used, .sent
    ("QuicConnection", "_local_max_streams_bidi"),
    ("QuicConnection", "_local_max_streams_uni"),
    ("QuicConnection", "_write_connection_limits"),
    ("QuicConnection", "_write_stream_limits"),
    ("QuicConnection", "_streams"),
    ("QuicConnection", "_state"),
    ("QuicStreamReceiver", "_buffer"),
    ("QuicStreamReceiver", "_buffer_start"),  # delivered offset (starting_offset(), inlined)
)


class ServerConnection(Connection):
    """A server-side :class:`~wtlab.transport.driver.Connection` with sliding receive
    windows (sized by the configuration's ``max_stream_data`` and ``max_data``) and the
    given peer stream credit (streams open at once, of each kind)."""

    def __init__(self, *, max_streams_bidi: int, max_streams_uni: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config = kwargs["configuration"]
        #: the windows are the configuration's initial ones: ``max_stream_data``, ``max_data``
        self.stream_window_bytes = config.max_stream_data
        self.connection_window_bytes = config.max_data
        # a window slides once half of it has been delivered: few MAX_* frames
        self._stream_step = self.stream_window_bytes // 2
        self._stream_half = self.stream_window_bytes - self._stream_step
        self._connection_step = self.connection_window_bytes // 2
        #: stream bytes delivered in order (or given up by a reset), all streams
        self.rx_delivered_bytes = 0
        # granted in the transport parameters: the initial value counts as sent
        for limit, count in ((self._local_max_streams_bidi, max_streams_bidi),
                             (self._local_max_streams_uni, max_streams_uni)):
            limit.value = limit.sent = count

    # ------------------------------------------------------------------- state
    def decrypted_anything(self) -> bool:
        """Whether a packet from the peer has been decrypted (else: no valid INITIAL yet)."""
        return self._state is not QuicConnectionState.FIRSTFLIGHT

    def reassembly_bytes(self) -> int:
        """Bytes aioquic holds for streams because earlier bytes are missing (O(streams))."""
        return sum(len(stream.receiver._buffer) for stream in self._streams.values())

    def next_event(self):
        event = super().next_event()
        kind = type(event)
        if kind is StreamDataReceived:
            self.rx_delivered_bytes += len(event.data)
        elif kind is StreamReset:
            # the bytes up to the final size will never be delivered: give them back
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                receiver = stream.receiver
                self.rx_delivered_bytes += receiver.highest_offset - receiver.starting_offset()
        return event

    # -------------------------------------------------- flow control (aioquic hooks)
    def _write_connection_limits(self, builder: Any, space: Any) -> None:
        limit = self._local_max_data
        target = self.rx_delivered_bytes + self.connection_window_bytes
        if target - limit.value >= self._connection_step:
            limit.value = target
        used = limit.used
        limit.used = 0  # aioquic would double MAX_DATA here; it only writes the frame
        try:
            super()._write_connection_limits(builder, space)
        finally:
            limit.used = used

    def _write_stream_limits(self, builder: Any, space: Any, stream: Any) -> None:
        # called for every stream in every packet: the common case returns at once
        local = stream.max_stream_data_local
        if not local:
            return  # our own unidirectional stream: nothing to grant
        receiver = stream.receiver
        delivered = receiver._buffer_start
        if delivered + self._stream_half < local and local == stream.max_stream_data_local_sent:
            return  # more than half a window left, and the peer knows the limit
        target = delivered + self.stream_window_bytes
        if target - local >= self._stream_step:
            stream.max_stream_data_local = target
        if stream.max_stream_data_local != stream.max_stream_data_local_sent:
            highest = receiver.highest_offset
            receiver.highest_offset = 0  # aioquic would double the window; it only writes
            try:
                super()._write_stream_limits(builder, space, stream)
            finally:
                receiver.highest_offset = highest


__all__ = ["AIOQUIC_INTERNALS", "ServerConnection"]
