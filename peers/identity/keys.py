"""This appliance's identity: an Ed25519 key pair and certificate kept in REALIZE_HOME.

The certificate is self-signed, its issuer named after the key ("O=Realize key, CN=<peer id>").
A peer id alone then yields a trust anchor (`trust_anchor`), so TLS accepts exactly the
certificates signed by household keys.
"""

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings

from peers.identity.peer_id import encode
from realize_site.lib import write_private_file

KEY_FILE = "peer.key"
CERT_FILE = "peer.crt"
_EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_FOREVER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Identity:
    private_key: Ed25519PrivateKey
    certificate: x509.Certificate
    key_path: Path
    cert_path: Path

    @property
    def public_key(self) -> bytes:
        return raw_public_key(self.private_key.public_key())

    @property
    def peer_id(self) -> str:
        return encode(self.public_key)


class IdentityMissing(RuntimeError):
    pass


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_name(public_key: bytes) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Realize key"),
            x509.NameAttribute(NameOID.COMMON_NAME, encode(public_key)),
        ]
    )


def _peer_name(public_key: bytes) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Realize peer"),
            x509.NameAttribute(NameOID.COMMON_NAME, encode(public_key)),
        ]
    )


def _certificate(private_key: Ed25519PrivateKey) -> x509.Certificate:
    public = raw_public_key(private_key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(_peer_name(public))
        .issuer_name(_key_name(public))
        .public_key(private_key.public_key())
        .serial_number(int.from_bytes(public[:16], "big") >> 1)
        .not_valid_before(_EPOCH)
        .not_valid_after(_FOREVER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(private_key, None)
    )


def trust_anchor(public_key: bytes, signer: Ed25519PrivateKey) -> x509.Certificate:
    """A CA certificate carrying a household peer's key under its key name.

    OpenSSL does not check an anchor's own signature, so ours signs it: only its key matters.
    """
    return (
        x509.CertificateBuilder()
        .subject_name(_key_name(public_key))
        .issuer_name(_key_name(public_key))
        .public_key(Ed25519PublicKey.from_public_bytes(public_key))
        .serial_number(int.from_bytes(public_key[:16], "big") >> 1)
        .not_valid_before(_EPOCH)
        .not_valid_after(_FOREVER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(signer, None)
    )


def create_identity(home: Path | None = None) -> tuple[Identity, bool]:
    """Load this appliance's identity, creating the key and certificate the first time.

    Returns the identity and whether it was created now. An existing key is never replaced.
    """
    home = home or settings.REALIZE_HOME
    key_path, cert_path = home / KEY_FILE, home / CERT_FILE
    created = False
    if not key_path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        created = write_private_file(key_path, pem)
    private_key = _load_key(key_path)
    if not cert_path.exists() or _load_cert(cert_path).public_key() != private_key.public_key():
        cert_path.unlink(missing_ok=True)
        pem = _certificate(private_key).public_bytes(serialization.Encoding.PEM)
        write_private_file(cert_path, pem)
    return load_identity(home), created


def load_identity(home: Path | None = None) -> Identity:
    home = home or settings.REALIZE_HOME
    key_path, cert_path = home / KEY_FILE, home / CERT_FILE
    if not key_path.exists() or not cert_path.exists():
        raise IdentityMissing(f"no identity in {home}: run 'realize init --name NAME' first")
    return Identity(_load_key(key_path), _load_cert(cert_path), key_path, cert_path)


def _load_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityMissing(f"{path} does not hold an Ed25519 key")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())
