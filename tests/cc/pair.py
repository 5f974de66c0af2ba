"""Two real aioquic QuicConnections exchanging datagrams in memory (no sockets).

A fake clock advances to the next timer or delivery; a fixed one-way delay and
an optional drop function stand in for the path. Only for tests.
"""

from __future__ import annotations

import datetime
import heapq
from collections.abc import Callable

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import StreamDataReceived
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CLIENT_ADDR = ("127.0.0.1", 40000)
SERVER_ADDR = ("127.0.0.1", 4433)

_CERT = None


def certificate():
    """A self-signed RSA certificate (fixed-length signatures: deterministic runs)."""
    global _CERT
    if _CERT is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(1)
                .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                               critical=False)
                .sign(key, hashes.SHA256()))
        _CERT = (cert, key)
    return _CERT


def make_pair(client_cc: str = "reno") -> tuple[QuicConnection, QuicConnection]:
    cert, key = certificate()
    ccfg = QuicConfiguration(is_client=True, alpn_protocols=["wtlab-test"],
                             congestion_control_algorithm=client_cc)
    ccfg.verify_mode = False
    ccfg.server_name = "localhost"
    scfg = QuicConfiguration(is_client=False, alpn_protocols=["wtlab-test"])
    scfg.certificate = cert
    scfg.private_key = key
    client = QuicConnection(configuration=ccfg)
    server = QuicConnection(configuration=scfg,
                            original_destination_connection_id=client.original_destination_connection_id)
    return client, server


class Pair:
    """Client sends ``total_bytes`` on one stream to the server over a fake path."""

    def __init__(self, client: QuicConnection, server: QuicConnection, *, delay_s: float = 0.02,
                 rate_bps: float | None = None, buffer_bytes: int | None = None,
                 drop: Callable[[int, bytes], bool] | None = None,
                 timer_slack_s: float = 1e-9) -> None:
        self.client, self.server = client, server
        self.delay_s = delay_s
        self.rate_bps = rate_bps
        self.buffer_bytes = buffer_bytes  # drop-tail queue before the client->server link
        self.drop = drop
        self.timer_slack_s = timer_slack_s
        self.now = 0.0
        self.link_free_at = 0.0  # client->server bottleneck (serialisation), if rate_bps
        self.in_transit: list[tuple[float, int, str, bytes]] = []
        self.seq = 0
        self.sent_count = 0
        self.received = 0

    def _emit(self, conn: QuicConnection, to: str) -> None:
        if not conn._network_paths:  # a server before its first datagram
            return
        for data, _addr in conn.datagrams_to_send(self.now):
            self.sent_count += 1
            if to == "server" and self.drop is not None and self.drop(self.sent_count, data):
                continue
            arrive = self.now + self.delay_s
            if to == "server" and self.rate_bps:
                queued_bytes = max(0.0, self.link_free_at - self.now) * self.rate_bps / 8
                if self.buffer_bytes is not None and queued_bytes + len(data) > self.buffer_bytes:
                    continue
                start = max(self.now, self.link_free_at)
                self.link_free_at = start + len(data) * 8 / self.rate_bps
                arrive = self.link_free_at + self.delay_s
            self.seq += 1
            heapq.heappush(self.in_transit, (arrive, self.seq, to, data))

    def run(self, total_bytes: int, *, max_steps: int = 200_000, until_s: float = 60.0) -> None:
        self.client.connect(SERVER_ADDR, now=self.now)
        stream_id = None
        payload = bytes(total_bytes)
        for _ in range(max_steps):
            self._emit(self.client, "server")
            self._emit(self.server, "client")
            if stream_id is None and self.client._handshake_complete:
                stream_id = self.client.get_next_available_stream_id()
                self.client.send_stream_data(stream_id, payload, end_stream=True)
                continue
            while (ev := self.server.next_event()) is not None:
                if isinstance(ev, StreamDataReceived):
                    self.received += len(ev.data)
            if self.received >= total_bytes:
                return
            times = [t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None]
            if self.in_transit:
                times.append(self.in_transit[0][0])
            nxt = min(times)
            if nxt > until_s:
                raise AssertionError(f"transfer stalled at {self.received}/{total_bytes} bytes")
            # 1 ns past the deadline: aioquic's loss timer can re-arm at exactly the
            # same float (sent + delay - delay < sent) and spin if the clock lands on it.
            self.now = max(self.now, nxt + self.timer_slack_s)
            while self.in_transit and self.in_transit[0][0] <= self.now:
                _, _, to, data = heapq.heappop(self.in_transit)
                conn = self.server if to == "server" else self.client
                addr = CLIENT_ADDR if to == "server" else SERVER_ADDR
                conn.receive_datagram(data, addr, now=self.now)
            for conn in (self.client, self.server):
                t = conn.get_timer()
                if t is not None and t <= self.now:
                    conn.handle_timer(self.now)
        raise AssertionError("max_steps reached")
