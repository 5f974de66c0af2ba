"""Self-signed certificates for the embedded server.

Browsers accept a self-signed certificate through ``serverCertificateHashes``
only if it is ECDSA (P-256) and valid for at most 14 days; that is the default.
``kind="rsa"`` gives fixed-length signatures, so emulated runs replay
byte-identical handshakes (ECDSA signatures vary in length by a byte or two,
which shifts every later packet).

Key generation is slow-ish, so the default certificate of each kind is made
once per process and cached (:func:`default_certificate`).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from wtlab.errors import CertificateError, ConfigError

KINDS = ("ecdsa", "rsa")


@dataclass(frozen=True)
class CertificatePair:
    """A certificate and its private key (``cryptography`` objects), plus the hash."""

    certificate: x509.Certificate
    private_key: object

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the DER certificate (what ``serverCertificateHashes`` wants)."""
        return certificate_sha256(self.certificate)

    def cert_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key in PEM (PKCS#8, unencrypted)."""
        return self.private_key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())

    def write(self, cert_path: str, key_path: str) -> None:
        """Write PEM files atomically (key file readable by the owner only)."""
        _atomic_write(cert_path, self.cert_pem(), 0o644)
        _atomic_write(key_path, self.key_pem(), 0o600)


def certificate_sha256(cert: x509.Certificate | bytes) -> str:
    """The SHA-256 of a certificate's DER bytes, in hex: the value browsers take in
    ``serverCertificateHashes``.
    """
    der = cert if isinstance(cert, bytes) else cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def generate_certificate(*, kind: str = "ecdsa", hostnames: tuple[str, ...] = (
        "localhost", "127.0.0.1", "::1"), days: float = 13.0) -> CertificatePair:
    """A new self-signed certificate for ``hostnames`` valid ``days`` (default 13)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown certificate kind {kind!r}; use 'ecdsa' (browsers) or 'rsa'")
    if kind == "ecdsa" and days > 14:
        raise ConfigError("browsers accept certificate hashes only for certificates valid "
                          "14 days or less; use days <= 14")
    if kind == "ecdsa":
        key: object = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "wtlab")])
    sans: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    # Wall-clock validity is part of the certificate, not of the protocol path.
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        # Top bit set: the serial always encodes in 20 bytes, so the certificate (and the
        # handshake's packet sizes) has the same length in every process.
        .serial_number(x509.random_serial_number() | (1 << 158))
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    cert = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return CertificatePair(cert, key)


_CACHE: dict[str, CertificatePair] = {}


def default_certificate(kind: str = "ecdsa") -> CertificatePair:
    """The process-wide default self-signed certificate of ``kind`` (made once)."""
    pair = _CACHE.get(kind)
    if pair is None:
        pair = _CACHE[kind] = generate_certificate(kind=kind)
    return pair


def load_certificate(cert_path: str, key_path: str) -> CertificatePair:
    """Load PEM files given with ``--cert/--key``."""
    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except FileNotFoundError as exc:
        raise ConfigError(f"certificate file not found: {exc.filename}; check --cert/--key") from None
    except ValueError as exc:
        raise CertificateError(f"could not read the certificate or key ({exc}); "
                               "give PEM files without a password") from None
    return CertificatePair(cert, key)


def _atomic_write(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
