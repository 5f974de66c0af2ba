"""What a :class:`~wtlab.transport.server.Server` grants its peers: :class:`Limits`.

Every limit is enforced, in bytes or in counts, whatever a peer sends:

* **Connections.** ``max_connections`` at once, ``max_connections_per_address``
  from one client IP address (the port does not count: on loopback every
  local client is 127.0.0.1), ``max_handshakes`` being handshaked at once
  (INITIAL packets beyond are dropped). A connection whose handshake is not
  done within ``handshake_timeout_s`` is closed, so state for an unvalidated
  address is small and short-lived. With ``retry="auto"`` (the server's
  default) a new connection must first prove it owns its address (QUIC Retry,
  a token bound to its IP and port) once ``retry_when_handshakes`` handshakes
  are in progress.
* **Sessions.** ``max_sessions`` in the whole server, ``max_sessions_per_connection``
  (advertised in SETTINGS), ``max_sessions_per_address``; beyond any of them a
  request is answered 429.
* **Streams.** ``max_streams_per_session`` peer streams open at once. The server
  grants QUIC stream credit of ``max_streams_per_session +
  max_sessions_per_connection`` per connection (CONNECT streams count too), so
  one session per connection can reach its limit; sessions sharing a
  connection share that credit.
* **Bytes.** Data received and not yet read by the application (stream data,
  datagrams) plus what the WebTransport layer holds itself (partial frames and
  capsules, header blocks, streams waiting for their session) is counted per
  session (``max_buffered_bytes_per_session``: the session is closed with
  ``CLOSE_BUFFER_LIMIT``), per connection and in the whole server
  (``max_buffered_bytes_per_connection`` / ``max_buffered_bytes``: the
  connection is closed with H3_EXCESSIVE_LOAD). Header blocks larger than
  ``max_header_bytes`` are answered 431 before they are buffered; data on
  streams that arrive before their session (at most
  ``max_early_bytes_per_connection``) is refused beyond that with
  WT_BUFFERED_STREAM_REJECTED. QUIC reassembly (data that arrived out of
  order) is bounded by sliding flow-control windows: ``stream_window_bytes``
  per stream and ``connection_window_bytes`` per connection ahead of what was
  delivered in order.

So the memory peers can make the server hold is at most ``max_buffered_bytes``
plus ``connection_window_bytes`` per connection, plus a fixed amount of state
per connection, session and stream, all capped by the counts above.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from wtlab.errors import ConfigError

KIB = 1024
MIB = 1024 * 1024

#: field -> one line of help, in the order ``wtlab serve --help`` lists them
DESCRIPTIONS = {
    "max_connections": "QUIC connections at once",
    "max_connections_per_address": "connections from one client IP address",
    "max_handshakes": "connections being handshaked at once (more INITIALs are dropped)",
    "retry_when_handshakes": "with --retry auto: handshakes in progress from which new "
                             "clients must answer a QUIC Retry",
    "handshake_timeout_s": "seconds a connection may take to finish its handshake",
    "max_sessions": "WebTransport sessions in the whole server (429 beyond)",
    "max_sessions_per_connection": "sessions on one connection (429 beyond)",
    "max_sessions_per_address": "sessions from one client IP address (429 beyond)",
    "max_streams_per_session": "peer streams open at once in a session",
    "max_buffered_bytes_per_session": "bytes received and not yet read, per session",
    "max_buffered_bytes_per_connection": "bytes received and not yet read, per connection "
                                         "(WebTransport layer included)",
    "max_buffered_bytes": "bytes received and not yet read, whole server",
    "max_header_bytes": "largest request header block (431 beyond)",
    "max_early_bytes_per_connection": "bytes on streams that arrive before their session",
    "stream_window_bytes": "QUIC flow-control window per stream",
    "connection_window_bytes": "QUIC flow-control window per connection",
    "session_window_bytes": "WebTransport data window per session (latest dialect)",
}


@dataclass
class Limits:
    """Per-server limits (see the module docstring for what each bounds and how)."""

    max_connections: int = 1024
    max_connections_per_address: int = 128
    max_handshakes: int = 128
    retry_when_handshakes: int = 32
    handshake_timeout_s: float = 10.0
    max_sessions: int = 1000
    max_sessions_per_connection: int = 16
    max_sessions_per_address: int = 128
    max_streams_per_session: int = 256
    max_buffered_bytes_per_session: int = 64 * MIB
    max_buffered_bytes_per_connection: int = 64 * MIB
    max_buffered_bytes: int = 512 * MIB
    max_header_bytes: int = 16 * KIB
    max_early_bytes_per_connection: int = 1 * MIB
    stream_window_bytes: int = 8 * MIB
    connection_window_bytes: int = 16 * MIB
    #: ``latest`` dialect only: the session data window granted to the peer
    #: (WT_INITIAL_MAX_DATA, re-granted with WT_MAX_DATA as data arrives).
    session_window_bytes: int = 16 * MIB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "handshake_timeout_s":
                if isinstance(value, bool) or not isinstance(value, int | float) or not (
                        0 < value <= 3600):
                    raise ConfigError(f"Limits.handshake_timeout_s={value!r} must be a number "
                                      "of seconds in (0, 3600]")
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Limits.{f.name}={value!r} must be a positive integer")
        if self.max_streams_per_session > 1 << 20:
            raise ConfigError(f"Limits.max_streams_per_session={self.max_streams_per_session} "
                              "is above 2**20; give a smaller number")
        if self.max_header_bytes < 256:
            raise ConfigError(f"Limits.max_header_bytes={self.max_header_bytes} cannot hold a "
                              "CONNECT request; give at least 256")
        if self.stream_window_bytes < 64 * KIB or self.connection_window_bytes < 64 * KIB:
            raise ConfigError("Limits.stream_window_bytes and connection_window_bytes must be "
                              "at least 65536 (64 KiB)")

    @staticmethod
    def option(name: str) -> str:
        """The ``wtlab serve`` option for field ``name``."""
        return "--" + name.replace("_", "-")


__all__ = ["DESCRIPTIONS", "Limits"]
