"""The emulator's keys: a private CA, its loopback server certificate, the token-signing key.

Everything is created once under a data directory and reused, so a portal configured with
`GRAPH_CA_BUNDLE` keeps trusting the emulator across restarts, and tokens it cached stay
verifiable.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class Pki:
    ca_path: Path
    cert_path: Path
    key_path: Path
    signing_key: rsa.RSAPrivateKey
    signing_cert: x509.Certificate

    @property
    def kid(self) -> str:
        # Entra uses the signing certificate's SHA-1 thumbprint as both kid and x5t.
        return thumbprint(self.signing_cert, hashes.SHA1())

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def thumbprint(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    """base64url thumbprint, as in the `x5t` / `x5t#S256` JWT headers."""
    return base64.urlsafe_b64encode(cert.fingerprint(algorithm)).rstrip(b"=").decode()


def load_or_create(data_dir: Path) -> Pki:
    data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir):
        ca_key = _key(data_dir / "ca-key.pem", lambda: ec.generate_private_key(ec.SECP256R1()))
        ca_cert = _cert(
            data_dir / "ca.pem", lambda: _ca_certificate(ca_key), replace_if_expiring=False
        )
        server_key = _key(
            data_dir / "server-key.pem", lambda: ec.generate_private_key(ec.SECP256R1())
        )
        _cert(data_dir / "server.pem", lambda: _server_certificate(server_key, ca_key, ca_cert))
        signing_key = _key(data_dir / "signing-key.pem", _rsa_key)
        signing_cert = _cert(
            data_dir / "signing.pem",
            lambda: _self_signed(signing_key, "Entra ID emulator token signing"),
        )
    assert isinstance(signing_key, rsa.RSAPrivateKey)
    return Pki(
        ca_path=data_dir / "ca.pem",
        cert_path=data_dir / "server.pem",
        key_path=data_dir / "server-key.pem",
        signing_key=signing_key,
        signing_cert=signing_cert,
    )


def client_certificate(data_dir: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and RSA key for an app registration's certificate
    credential, as one would upload to Entra. Returns (certificate path, key path)."""
    folder = data_dir / "clients"
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir):
        key = _key(folder / f"{name}-key.pem", _rsa_key)
        _cert(folder / f"{name}.pem", lambda: _self_signed(key, name))
    return folder / f"{name}.pem", folder / f"{name}-key.pem"


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    # Two processes starting at once must not each mint a CA and sign with the other's.
    with open(data_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key(
    path: Path, create: Callable[[], CertificateIssuerPrivateKeyTypes]
) -> CertificateIssuerPrivateKeyTypes:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return key
    key = create()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(path, pem, mode=0o600)
    return key


def _cert(
    path: Path, create: Callable[[], x509.Certificate], *, replace_if_expiring: bool = True
) -> x509.Certificate:
    if path.exists():
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        expiring = cert.not_valid_after_utc - _RENEW_BEFORE < _now()
        if not (replace_if_expiring and expiring):
            return cert
    cert = create()
    _write(path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert


def _write(path: Path, data: bytes, *, mode: int) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: CertificatePublicKeyTypes, days: int
) -> x509.CertificateBuilder:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _ca_certificate(key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    name = _name("Permission Portal emulator CA")
    return (
        _builder(name, name, key.public_key(), days=3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: CertificateIssuerPrivateKeyTypes,
    ca_key: CertificateIssuerPrivateKeyTypes,
    ca_cert: x509.Certificate,
) -> x509.Certificate:
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    return (
        _builder(_name("localhost"), ca_cert.subject, key.public_key(), days=397)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _self_signed(key: CertificateIssuerPrivateKeyTypes, common_name: str) -> x509.Certificate:
    name = _name(common_name)
    return (
        _builder(name, name, key.public_key(), days=730)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
