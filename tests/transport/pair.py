"""Two WebTransportConnections (client and server) on aioquic, pumped in memory: no sockets,
a fake clock. Used by the sans-IO tests and the protocol fuzzer."""

from __future__ import annotations

import ssl

from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from wtlab.transport import protocol as P
from wtlab.transport.certs import default_certificate

CLIENT_ADDR = ("127.0.0.1", 50000)
SERVER_ADDR = ("127.0.0.1", 4433)


class Pair:
    """A client and a server WebTransportConnection wired back to back in memory."""

    def __init__(self, client_dialect: str = "auto", server_dialect: str = "auto",
                 limits: P.FlowLimits | None = None) -> None:
        pair = default_certificate("rsa")
        self.now = 1.0
        ccfg = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                 max_datagram_frame_size=65536, verify_mode=ssl.CERT_NONE)
        scfg = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN,
                                 max_datagram_frame_size=65536)
        scfg.certificate, scfg.private_key = pair.certificate, pair.private_key
        self.cq = QuicConnection(configuration=ccfg)
        self.client = P.WebTransportConnection(self.cq, dialect=client_dialect)
        self.cq.connect(SERVER_ADDR, now=self.now)
        self.sq: QuicConnection | None = None
        self.server: P.WebTransportConnection | None = None
        self.scfg = scfg
        self.server_dialect = server_dialect
        self.limits = limits
        self.client_events: list[P.WtEvent] = []
        self.server_events: list[P.WtEvent] = []

    def pump(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            moved = False
            for data, _ in self.cq.datagrams_to_send(now=self.now):
                moved = True
                if self.sq is None:
                    self.sq = QuicConnection(configuration=self.scfg,
                                             original_destination_connection_id=data[6:14])
                    self.server = P.WebTransportConnection(self.sq, dialect=self.server_dialect,
                                                           limits=self.limits)
                self.sq.receive_datagram(data, CLIENT_ADDR, now=self.now)
            self._drain(self.sq, self.server, self.server_events)
            if self.sq is not None:
                for data, _ in self.sq.datagrams_to_send(now=self.now):
                    moved = True
                    self.cq.receive_datagram(data, SERVER_ADDR, now=self.now)
            self._drain(self.cq, self.client, self.client_events)
            self.now += 0.001
            if not moved:
                break

    @staticmethod
    def _drain(quic, wt, sink) -> None:
        if quic is None:
            return
        ev = quic.next_event()
        while ev is not None:
            sink.extend(wt.handle_event(ev))
            ev = quic.next_event()

    def of(self, events, kind):
        return [e for e in events if isinstance(e, kind)]

    def open_session(self, path: str = "/x") -> int:
        self.pump()
        assert self.client.peer_settings is not None
        sid = self.client.connect(path, "127.0.0.1:4433")
        self.pump()
        (req,) = self.of(self.server_events, P.SessionRequested)
        assert req.path == path
        self.server.accept(req.session_id)
        self.pump()
        (est,) = self.of(self.client_events, P.SessionEstablished)
        assert est.session_id == sid == req.session_id
        return sid
