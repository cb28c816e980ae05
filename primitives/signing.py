"""Ed25519 keys and domain-separated signatures.

Every signed payload is ``msgpack([domain, chain_id, payload])``: the domain
tag names the role of the signature (``medchain/v1/prepare`` and
``medchain/v1/commit`` differ), and the chain id binds it to one network, so no
signature can be replayed in another role or on another chain.

The backend is PyNaCl (libsodium): it verifies faster than ``cryptography``
(OpenSSL) on the same keys and payloads, and signature checks are the hot path
(``medchain bench signing`` compares both).  Both implement standard
RFC 8032 Ed25519, so keys and signatures are interchangeable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from primitives.codec import pack
from primitives.errors import DecodeError, UsageError

BACKEND = "pynacl"
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32


def signed_bytes(domain: bytes, chain_id: str, payload: bytes) -> bytes:
    """The exact bytes a signature covers."""
    return pack([domain, chain_id, payload])


@dataclass(frozen=True, slots=True)
class VerifyKey:
    raw: bytes

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != PUBLIC_KEY_SIZE:
            raise DecodeError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")

    def verify(self, domain: bytes, chain_id: str, payload: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's over (domain, chain_id, payload)."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            _verify_key(self.raw).verify(signed_bytes(domain, chain_id, payload), signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True

    def hex(self) -> str:
        return self.raw.hex()


class SigningKey:
    """An Ed25519 private key, kept as its 32-byte seed."""

    __slots__ = ("_key", "verify_key")

    def __init__(self, seed: bytes) -> None:
        if type(seed) is not bytes or len(seed) != SEED_SIZE:
            raise UsageError(f"an Ed25519 seed is {SEED_SIZE} bytes")
        self._key = nacl.signing.SigningKey(seed)
        self.verify_key = VerifyKey(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(SEED_SIZE))

    @classmethod
    def from_seed_text(cls, text: str) -> SigningKey:
        """Deterministic key from a label (simulator and tests only)."""
        from primitives.hashing import sha256

        return cls(sha256(b"medchain/v1/test-seed" + text.encode()))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, domain: bytes, chain_id: str, payload: bytes) -> bytes:
        return self._key.sign(signed_bytes(domain, chain_id, payload)).signature


_VERIFY_KEYS: dict[bytes, nacl.signing.VerifyKey] = {}


def _verify_key(raw: bytes) -> nacl.signing.VerifyKey:
    key = _VERIFY_KEYS.get(raw)
    if key is None:
        if len(_VERIFY_KEYS) > 4096:
            _VERIFY_KEYS.clear()
        key = _VERIFY_KEYS[raw] = nacl.signing.VerifyKey(raw)
    return key
