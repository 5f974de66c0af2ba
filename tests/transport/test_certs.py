"""Certificates: given PEM files (--cert/--key), a private CA (ca_file), RSA for emulation."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import wtlab
from tests.transport.conftest import running_server
from wtlab.errors import CertificateError, ConfigError
from wtlab.transport.certs import CertificatePair, load_certificate


def _ca_and_leaf(tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wtlab test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=5))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=5))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    CertificatePair(leaf, key).write(str(cert_path), str(key_path))
    return str(ca_path), str(cert_path), str(key_path)


async def test_ca_file_verification(tmp_path):
    ca_path, cert_path, key_path = _ca_and_leaf(tmp_path)
    async with running_server(cert=cert_path, key=key_path) as srv:
        url = f"https://localhost:{srv.port}/echo"
        async with wtlab.connect(url, ca_file=ca_path, timeout=5) as session:
            stream = await session.open_bidi()
            stream.write(b"verified")
            stream.write_eof()
            assert await stream.read() == b"verified"
        with pytest.raises(CertificateError):  # same server, no trust anchor given
            async with wtlab.connect(url, timeout=5):
                pass


def test_load_certificate_errors(tmp_path):
    with pytest.raises(ConfigError):
        load_certificate(str(tmp_path / "missing.pem"), str(tmp_path / "missing.key"))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(CertificateError):
        load_certificate(str(bad), str(bad))
    with pytest.raises(ConfigError):
        wtlab.serve(port=0, cert=str(bad))  # a cert without its key


async def test_rsa_certificate_server():
    async with running_server(cert_kind="rsa") as srv:
        # browsers refuse an RSA certificate behind hashes; so does the default policy
        with pytest.raises(CertificateError, match="ECDSA P-256"):
            async with srv.connect("/echo"):
                pass
        async with srv.connect("/echo", cert_hash_policy="relaxed") as session:
            stream = await session.open_bidi()
            stream.write(b"rsa")
            stream.write_eof()
            assert await stream.read() == b"rsa"


@pytest.mark.parametrize("umask, cert_mode", [(0o022, 0o644), (0o077, 0o600)])
def test_written_certificates_follow_the_umask_and_the_key_stays_private(tmp_path, umask,
                                                                          cert_mode):
    import os

    from wtlab.transport.certs import generate_certificate

    pair = generate_certificate()
    old = os.umask(umask)
    try:
        pair.write(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    finally:
        os.umask(old)
    assert (tmp_path / "cert.pem").stat().st_mode & 0o777 == cert_mode
    assert (tmp_path / "key.pem").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "key.pem"]  # no temp
    again = load_certificate(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    assert again.cert_pem() == pair.cert_pem()
