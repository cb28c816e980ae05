"""TLS material bound to the node's Ed25519 key.

Each node's certificate is self-signed *with its node key*: the certificate's
public key is the Ed25519 key listed in the genesis file.  Every node trusts
exactly the certificates listed in genesis (as its CA set), so a peer whose
certificate is not in genesis fails the TLS handshake; after the handshake the
transport also checks that the certificate's key is the key the peer claims.
"""

from __future__ import annotations

import datetime
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from primitives.errors import PeerError
from primitives.signing import SigningKey


def make_certificate(key: SigningKey) -> tuple[str, str]:
    """(certificate PEM, private key PEM) for ``key``, valid for 20 years.

    The subject names the key: every trusted certificate needs a distinct
    subject, or OpenSSL may check a peer against the wrong one.
    """
    private = Ed25519PrivateKey.from_private_bytes(key.seed)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"medchain-node-{key.verify_key.hex()[:32]}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(int.from_bytes(key.verify_key.raw[:16], "big") >> 1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * 20))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, None)
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert_pem, key_pem


def write_node_tls(folder: Path, key: SigningKey) -> str:
    """Write tls/cert.pem and tls/key.pem (0600); return the certificate PEM."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = make_certificate(key)
    (folder / "cert.pem").write_text(cert_pem)
    fd = os.open(folder / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key_pem)
    return cert_pem


def certificate_key(der: bytes) -> bytes:
    """The raw Ed25519 public key inside a DER certificate (PeerError if it is not Ed25519)."""
    try:
        public = x509.load_der_x509_certificate(der).public_key()
    except ValueError as exc:
        raise PeerError(f"unreadable peer certificate: {exc}") from None
    if not isinstance(public, Ed25519PublicKey):
        raise PeerError("peer certificate key is not Ed25519")
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def certificate_key_of_pem(pem: str) -> bytes:
    """The raw Ed25519 public key inside a PEM certificate (ValueError says what is wrong)."""
    try:
        public = x509.load_pem_x509_certificate(pem.encode()).public_key()
    except ValueError as exc:
        raise ValueError(f"not a PEM certificate ({exc})") from None
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError("the certificate's key is not Ed25519")
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _context(purpose: ssl.Purpose, cert_file: Path, key_file: Path, trusted_pems: list[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # identity is the key, checked against genesis
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata="\n".join(p for p in trusted_pems if p))
    return ctx


def server_context(tls_dir: Path, trusted_pems: list[str]) -> ssl.SSLContext:
    return _context(ssl.Purpose.CLIENT_AUTH, tls_dir / "cert.pem", tls_dir / "key.pem", trusted_pems)


def client_context(tls_dir: Path, trusted_pems: list[str]) -> ssl.SSLContext:
    return _context(ssl.Purpose.SERVER_AUTH, tls_dir / "cert.pem", tls_dir / "key.pem", trusted_pems)
