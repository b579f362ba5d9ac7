"""TLS 1.3 contexts that trust exactly the household's keys (see keys.trust_anchor)."""

import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from peers.identity.keys import Identity, raw_public_key, trust_anchor


def _context(purpose: int, identity: Identity, keys: list[bytes]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    anchors = b"".join(
        trust_anchor(key, identity.private_key).public_bytes(serialization.Encoding.PEM)
        for key in keys
    )
    if anchors:
        ctx.load_verify_locations(cadata=anchors.decode())
    return ctx


def server_context(identity: Identity, keys: list[bytes]) -> ssl.SSLContext:
    return _context(ssl.PROTOCOL_TLS_SERVER, identity, keys)


def client_context(identity: Identity, keys: list[bytes]) -> ssl.SSLContext:
    return _context(ssl.PROTOCOL_TLS_CLIENT, identity, keys)


def proof_context(identity: Identity, key: bytes) -> ssl.SSLContext:
    """Trusts only `key`: a stranger that completes a handshake has shown it holds that key."""
    return server_context(identity, [key])


def probe_context(identity: Identity) -> ssl.SSLContext:
    """Accepts any certificate: used only to learn which key a refused server has."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def peer_key(ssl_object) -> bytes | None:
    """The public key of the certificate the other side presented."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    if not der:
        return None
    try:
        return raw_public_key(x509.load_der_x509_certificate(der).public_key())
    except (ValueError, TypeError):
        return None
