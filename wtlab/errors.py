"""The one exception family of wtlab.

Every error wtlab raises on purpose is a :class:`WtlabError`. Each message says
what was wrong and what to do about it. Subclasses also derive from the
matching built-in (``ValueError``, ``TimeoutError``, ...) so generic handlers
keep working.
"""

from __future__ import annotations


class WtlabError(Exception):
    """Base class of every error wtlab raises on purpose."""


class ConfigError(WtlabError, ValueError):
    """A parameter or configuration value is invalid."""


class UnknownAlgorithm(ConfigError, KeyError):
    """A congestion-control name is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidURL(ConfigError):
    """A WebTransport URL is malformed (wtlab needs https://host:port/path)."""


class ConnectTimeout(WtlabError, TimeoutError):
    """No WebTransport session could be opened within the timeout."""


class CertificateError(WtlabError):
    """The server's certificate was not accepted."""


class SessionRejected(WtlabError):
    """The server answered the extended CONNECT with a non-2xx status."""

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status = status
        super().__init__(
            message
            or f"server rejected the WebTransport session with HTTP status {status}; "
            "check the URL path and the server's routes"
        )


class ProtocolError(WtlabError):
    """The peer violated HTTP/3, QUIC or WebTransport."""


class SessionClosed(WtlabError):
    """The WebTransport session was closed (by the peer, locally or by the connection)."""

    def __init__(self, code: int = 0, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(
            f"WebTransport session closed (code {code}{', ' + repr(reason) if reason else ''}); "
            "open a new session to continue"
        )


class StreamReset(WtlabError):
    """The peer reset a stream (or asked us to stop sending on it)."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        super().__init__(
            message or f"stream reset by the peer with code {code}; data on it is lost"
        )


class LimitExceeded(WtlabError):
    """A configured limit (sessions, streams, buffered bytes) was exceeded."""


class MessageTooLarge(WtlabError, ValueError):
    """A message does not fit where it was sent (e.g. a datagram)."""


class TraceFormatError(WtlabError, ValueError):
    """A trace, qlog or link-trace file is malformed.

    ``path`` and ``line`` (1-based line or record number, if known) say where.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(where + message)


class GridError(ConfigError):
    """A sweep grid is malformed; the message names the key."""
