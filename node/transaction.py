"""Client transactions: the signed envelope around one application action.

``Transaction`` is what clients submit (canonical bytes, hex in JSON).  The
id of a transaction is the SHA-256 of its canonical bytes, so the same signed
transaction can be committed at most once (the tx index refuses replays).
The signature covers every field but itself, under the ``medchain/v1/tx``
domain and the chain id.

The body is opaque here: the application decodes it (``node.healthcare.transactions``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import ClassVar

from primitives.codec import Bytes, Kind, Text, UInt, decode, encode, pack
from primitives.errors import DecodeError
from primitives.hashing import HASH_SIZE, sha256
from primitives.signing import SIGNATURE_SIZE, SigningKey, VerifyKey

DOMAIN_TX = b"medchain/v1/tx"
MAX_TX_BYTES = 64 * 1024
MAX_BODY_BYTES = 60 * 1024
HASH = Bytes(HASH_SIZE, exact=True)


@dataclass(frozen=True, slots=True)
class Transaction:
    chain_id: str
    signer: bytes
    nonce: bytes
    timestamp_ms: int
    body: bytes
    signature: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        Text(64), Bytes(32, exact=True), Bytes(16, exact=True), UInt(), Bytes(MAX_BODY_BYTES),
        Bytes(SIGNATURE_SIZE, exact=True),
    )

    def signing_payload(self) -> bytes:
        return pack([self.signer, self.nonce, self.timestamp_ms, self.body])

    def check_signature(self) -> bool:
        try:
            key = VerifyKey(self.signer)
        except DecodeError:
            return False
        return key.verify(DOMAIN_TX, self.chain_id, self.signing_payload(), self.signature)


def tx_id(data: bytes) -> bytes:
    return sha256(data)


def sign_transaction(key: SigningKey, chain_id: str, body: bytes, timestamp_ms: int) -> bytes:
    """Sign an encoded application body; the canonical transaction bytes."""
    unsigned = Transaction(chain_id, key.verify_key.raw, os.urandom(16), timestamp_ms, body, b"")
    signed = replace(unsigned, signature=key.sign(DOMAIN_TX, chain_id, unsigned.signing_payload()))
    return encode(signed)


def decode_transaction(data: bytes) -> Transaction:
    """Strictly decode the envelope (``DecodeError`` names what is wrong); the body stays encoded."""
    if len(data) > MAX_TX_BYTES:
        raise DecodeError(f"transaction of {len(data)} bytes is over the limit of {MAX_TX_BYTES}")
    return decode(Transaction, data)
