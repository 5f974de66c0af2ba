"""Client errors up front and typed: bad files before any packet, ICMP fails fast, browser
checks on hashed certificates, nothing left to asyncio's exception handler."""

from __future__ import annotations

import asyncio
import datetime
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import wtlab
from tests.transport.conftest import running_server
from wtlab.errors import CertificateError, ConfigError, ConnectTimeout
from wtlab.transport.certs import CertificatePair, hash_pinning_problem, load_certificate

pytestmark = pytest.mark.timeout(60)


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0

    def datagram_received(self, data: bytes, addr) -> None:
        self.count += 1


@pytest.fixture
async def no_asyncio_errors():
    """Everything asyncio's exception handler would print, collected (must stay empty)."""
    loop = asyncio.get_running_loop()
    seen: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    yield seen
    loop.set_exception_handler(previous)


@pytest.mark.parametrize("content", [None, "not a certificate", "dir"])
async def test_bad_ca_file_is_a_config_error_before_any_packet(tmp_path, content,
                                                               no_asyncio_errors):
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(_Counter,
                                                              local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    path = tmp_path / "ca.pem"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    try:
        with pytest.raises(ConfigError, match="ca_file"):
            async with wtlab.connect(f"https://127.0.0.1:{port}/echo", ca_file=str(path),
                                     timeout=5):
                pass
        await asyncio.sleep(0.05)
        assert listener.count == 0  # refused before anything was sent
    finally:
        transport.close()
    assert no_asyncio_errors == []


async def test_unreachable_port_fails_fast(no_asyncio_errors):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed below: nothing listens there
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(ConnectTimeout, match="UDP port unreachable"):
        async with wtlab.connect(f"https://127.0.0.1:{port}/echo", timeout=10, verify=False):
            pass
    assert loop.time() - t0 < 2  # the OS reported it; the 10 s timeout did not run out
    assert no_asyncio_errors == []


def _cert(tmp_path, *, days: float, start_days_ago: float = 0.0, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=start_days_ago)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    pair = CertificatePair(cert, key)
    cert_path, key_path = tmp_path / f"c{days}-{start_days_ago}.pem", tmp_path / f"k{days}.pem"
    pair.write(str(cert_path), str(key_path))
    return pair, str(cert_path), str(key_path)


@pytest.mark.parametrize(("days", "ago", "why"), [
    (30, 0, "valid for 30 days"),        # browsers accept at most 14
    (5, 10, "expired"),                  # valid 5 days, started 10 days ago
])
async def test_hashed_certificate_is_checked_like_a_browser(tmp_path, days, ago, why):
    pair, cert_path, key_path = _cert(tmp_path, days=days, start_days_ago=ago)
    assert why.split()[0] in hash_pinning_problem(pair.certificate)
    async with running_server(cert=cert_path, key=key_path) as srv:
        with pytest.raises(CertificateError, match=why):
            async with srv.connect("/echo"):
                pass
        async with srv.connect("/echo", cert_hash_policy="relaxed") as session:
            assert not session.closed  # the hash alone, for research


async def test_cert_hash_policy_is_checked_up_front():
    with pytest.raises(ConfigError, match="cert_hash_policy"):
        async with wtlab.connect("https://127.0.0.1:1/echo", cert_hashes=["00" * 32],
                                 cert_hash_policy="lenient"):
            pass


def test_certificate_and_key_paths(tmp_path):
    pair, cert_path, key_path = _cert(tmp_path, days=10)
    assert load_certificate(cert_path, key_path).sha256 == pair.sha256
    _, other_cert, _ = _cert(tmp_path, days=11)
    with pytest.raises(ConfigError, match="does not belong"):
        load_certificate(other_cert, key_path)
    with pytest.raises(ConfigError, match="directory"):
        load_certificate(str(tmp_path), key_path)
    with pytest.raises(ConfigError, match="not found"):
        wtlab.serve(port=0, cert=str(tmp_path / "nope.pem"), key=key_path)


async def test_awaited_datagrams_wait_for_room_and_are_not_dropped(server):
    async with server.connect("/sink") as session:
        session.datagram_high_water = 8
        for _ in range(300):  # awaited: back-pressure, the queue never overflows
            await session.send_datagram(b"d" * 1000)
            assert len(session.quic._datagrams_pending) <= 9
        assert session.stats()["datagrams_send_dropped"] == 0
        assert session.stats()["datagrams_sent"] == 300


async def test_awaited_datagram_send_ends_when_the_session_closes():
    async def closer(session):
        await session.receive_datagram()
        await session.close(7, "enough")

    async with running_server(routes={"/closer": closer}) as srv:
        async with srv.connect("/closer") as session:
            session.datagram_high_water = 0
            session.send_datagram(b"x")
            with pytest.raises(wtlab.SessionClosed):
                for _ in range(100_000):  # bounded: the close arrives within a few RTTs
                    await asyncio.wait_for(session.send_datagram(b"y" * 1000), 5)
