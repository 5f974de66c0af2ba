"""Self-signed certificates for the embedded server.

Browsers accept a self-signed certificate through ``serverCertificateHashes``
only if it is ECDSA (P-256) and valid for at most 14 days; that is the default.
``kind="rsa"`` gives fixed-length signatures, so emulated runs replay
byte-identical handshakes (ECDSA signatures vary in length by a byte or two,
which shifts every later packet).

Key generation is slow-ish, so the default certificate of each kind is made
once per process and cached (:func:`default_certificate`).

:func:`hash_pinning_problem` says why a browser would refuse a certificate
behind ``serverCertificateHashes`` (the W3C WebTransport custom-certificate
requirements: X.509 v3, an ECDSA P-256 key, the current time within its
validity, a validity of at most 14 days); ``wtlab.connect(cert_hashes=...)``
applies it unless ``cert_hash_policy="relaxed"``.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from wtlab.errors import CertificateError, ConfigError
from wtlab.trace.files import write_bytes

KINDS = ("ecdsa", "rsa")
MAX_HASHED_VALIDITY = datetime.timedelta(days=14)
CERT_HASH_POLICIES = ("browser", "relaxed")


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
        """Write PEM files atomically: the certificate with the umask's mode (as any new
        file), the key readable by the owner only."""
        write_bytes(cert_path, self.cert_pem())
        write_bytes(key_path, self.key_pem(), mode=0o600)


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
    """Load PEM files given with ``--cert/--key``.

    Raises ConfigError for a path that cannot be read (missing, a directory, no
    permission) or a key that does not belong to the certificate, CertificateError
    for content that is not a PEM certificate or an unencrypted PEM key.
    """
    cert_data = _read_file(cert_path, "certificate (--cert)")
    key_data = _read_file(key_path, "private key (--key)")
    try:
        cert = x509.load_pem_x509_certificate(cert_data)
    except ValueError as exc:
        raise CertificateError(f"{cert_path} is not a PEM certificate ({exc}); give the "
                               "certificate file (-----BEGIN CERTIFICATE-----)") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"{key_path} is not an unencrypted PEM private key ({exc}); "
                               "give the key file without a password") from None
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise ConfigError(f"the key in {key_path} does not belong to the certificate in "
                          f"{cert_path}; give the key the certificate was made for")
    return CertificatePair(cert, key)


def load_ca_file(path: str) -> bytes:
    """The PEM certificates of a ``ca_file``, checked (ConfigError if it cannot be used)."""
    data = _read_file(path, "ca_file")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"ca_file {path!r} holds no usable PEM certificate ({exc}); give a "
                          "file of -----BEGIN CERTIFICATE----- blocks") from None
    unique = {c.public_bytes(serialization.Encoding.DER): c for c in certs}
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in unique.values())


def _read_file(path: str, what: str) -> bytes:
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ConfigError(f"{what}: {path!r} is not a file path")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory; give a PEM file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path} ({exc.strerror or exc})") from None


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def hash_pinning_problem(cert: x509.Certificate,
                         now: datetime.datetime | None = None) -> str | None:
    """Why a browser would refuse ``cert`` behind ``serverCertificateHashes``, or None.

    The W3C WebTransport requirements: an X.509 v3 certificate with an ECDSA key on
    P-256 (secp256r1), the current time within its validity, and a validity period of
    at most 14 days.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    if cert.version != x509.Version.v3:
        return "it is not an X.509 v3 certificate"
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve,
                                                                          ec.SECP256R1):
        kind = (f"ECDSA on {key.curve.name}" if isinstance(key, ec.EllipticCurvePublicKey)
                else type(key).__name__.removeprefix("_").replace("PublicKey", ""))
        return f"its key is {kind}, browsers accept only ECDSA P-256 here"
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        return f"it is not valid before {start:%Y-%m-%d %H:%M} UTC"
    if now > end:
        return f"it expired on {end:%Y-%m-%d %H:%M} UTC"
    if end - start > MAX_HASHED_VALIDITY:
        return (f"it is valid for {(end - start).days} days, browsers accept at most 14 for "
                "certificate hashes")
    return None

