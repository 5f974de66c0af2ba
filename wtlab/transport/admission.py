"""Which new QUIC connections a server takes on: caps, address validation (Retry), counts.

:class:`Admission` answers, for each INITIAL packet that would start a connection,
one of: take it (possibly as a connection whose address a Retry token proved),
answer with a QUIC Retry (stateless: the server keeps nothing), refuse it politely
(the client gets CONNECTION_REFUSED at once) or drop it. It also keeps the counts
the decision needs: connections, handshakes in progress, connections per client IP.

Retry policy (``retry``): ``"never"``; ``"always"`` (every new connection first
proves its address); ``"auto"`` (the default: only once ``retry_when_handshakes``
handshakes are in progress, i.e. under a flood). Tokens are aioquic's
:class:`~aioquic.quic.retry.QuicRetryTokenHandler` (AES-GCM, bound to the client's
IP and port, valid 30 s).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any

from aioquic.quic.packet import encode_quic_retry
from aioquic.quic.retry import QuicRetryTokenHandler

from wtlab.errors import ConfigError
from wtlab.transport.limits import Limits

RETRY_POLICIES = ("auto", "always", "never")
QUIC_CONNECTION_REFUSED = 0x2


def client_ip(addr: Any) -> str:
    """The IP address of a peer (an IPv4-mapped IPv6 address as plain IPv4)."""
    host = str(addr[0])
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


@dataclass(frozen=True, slots=True)
class Take:
    """Create the connection (``retry_source_cid`` set when a Retry token validated it)."""

    original_destination_cid: bytes
    retry_source_cid: bytes | None


@dataclass(frozen=True, slots=True)
class Answer:
    """Send ``packet`` back (a Retry) and keep nothing."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class Refuse:
    """Take the INITIAL only to answer CONNECTION_REFUSED with ``reason``, then forget it."""

    original_destination_cid: bytes
    reason: str


DROP = None


class Admission:
    """Connection admission for one server socket (see the module docstring)."""

    def __init__(self, limits: Limits, retry: str = "auto") -> None:
        if retry not in RETRY_POLICIES:
            raise ConfigError(f"retry={retry!r}: use one of {RETRY_POLICIES}")
        self.limits = limits
        self.retry = retry
        self._tokens = QuicRetryTokenHandler() if retry != "never" else None
        self.connections = 0
        self.handshakes = 0
        self.per_address: dict[str, int] = {}
        #: what was decided, by kind (for ``Server.stats()``)
        self.counts = {"retries_sent": 0, "tokens_invalid": 0, "initials_dropped": 0,
                       "refused_per_address": 0, "refused_connections": 0}

    def retry_required(self) -> bool:
        """Whether a new client must first prove its address with a Retry token."""
        return self.retry == "always" or (
            self.retry == "auto" and self.handshakes >= self.limits.retry_when_handshakes)

    def decide(self, header: Any, addr: Any, now: float) -> Take | Answer | Refuse | None:
        """What to do with an INITIAL ``header`` from ``addr`` that matches no connection."""
        lim = self.limits
        counts = self.counts
        if self.handshakes >= lim.max_handshakes:
            counts["initials_dropped"] += 1
            return DROP  # the client retransmits; by then a slot may be free
        retry_cid: bytes | None = None
        odcid = header.destination_cid
        if header.token and self._tokens is not None:
            try:
                odcid = self._tokens.validate_token(address=addr, destination_cid=odcid,
                                                    token=header.token, now=now)
                retry_cid = header.destination_cid
            except ValueError:
                counts["tokens_invalid"] += 1
                if self.retry_required():
                    return DROP  # a forged or stale token: no state, no answer
                odcid = header.destination_cid  # e.g. a token from another server
        if retry_cid is None and self.retry_required():
            source_cid = os.urandom(8)
            token = self._tokens.create_token(  # type: ignore[union-attr]
                address=addr, original_destination_connection_id=header.destination_cid,
                retry_source_connection_id=source_cid, now=now)
            counts["retries_sent"] += 1
            return Answer(encode_quic_retry(
                version=header.version, source_cid=source_cid, destination_cid=header.source_cid,
                original_destination_cid=header.destination_cid, retry_token=token))
        if self.connections >= lim.max_connections:
            counts["refused_connections"] += 1
            return Refuse(odcid, f"server at its limit of {lim.max_connections} connections")
        ip = client_ip(addr)
        if self.per_address.get(ip, 0) >= lim.max_connections_per_address:
            counts["refused_per_address"] += 1
            return Refuse(odcid, f"{ip} has {lim.max_connections_per_address} connections open "
                                 "(max_connections_per_address); close some")
        return Take(odcid, retry_cid)

    # ------------------------------------------------------------------ counts
    def opened(self, ip: str) -> None:
        """A connection was taken (and is handshaking)."""
        self.connections += 1
        self.handshakes += 1
        self.per_address[ip] = self.per_address.get(ip, 0) + 1

    def handshake_done(self) -> None:
        """A connection finished its handshake: it no longer counts as handshaking."""
        self.handshakes -= 1

    def closed(self, ip: str, handshaking: bool) -> None:
        """A connection from ``ip`` ended (``handshaking``: before its handshake did)."""
        self.connections -= 1
        if handshaking:
            self.handshakes -= 1
        left = self.per_address.get(ip, 0) - 1
        if left > 0:
            self.per_address[ip] = left
        else:
            self.per_address.pop(ip, None)


__all__ = ["Admission", "Answer", "QUIC_CONNECTION_REFUSED", "RETRY_POLICIES", "Refuse", "Take",
           "client_ip"]
