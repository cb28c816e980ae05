"""Client transactions: a signed envelope around one application action.

``Transaction`` is what clients submit (canonical bytes, hex in JSON).  The
id of a transaction is the SHA-256 of its canonical bytes, so the same signed
transaction can be committed at most once (the tx index refuses replays).
The signature covers every field but itself, under the ``medchain/v1/tx``
domain and the chain id.

The body is a tagged record of the application (``BODY_CODEC``): document
anchoring and the healthcare ledger's actions (``node.ledger.bodies``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from primitives.codec import Bytes, Kind, MessageCodec, Text, UInt, decode, encode, pack
from primitives.errors import DecodeError
from primitives.hashing import HASH_SIZE, sha256
from primitives.signing import SIGNATURE_SIZE, SigningKey, VerifyKey

DOMAIN_TX = b"medchain/v1/tx"
MAX_TX_BYTES = 64 * 1024
MAX_BODY_BYTES = 60 * 1024
HASH = Bytes(HASH_SIZE, exact=True)


@dataclass(frozen=True, slots=True)
class Anchor:
    """Anchor a document's SHA-256 (clinical trials, DESIGN.md section 7)."""

    TAG: ClassVar[int] = 1
    doc_hash: bytes
    label: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (HASH, Text(256))


def _body_codec() -> MessageCodec:
    from node.ledger.bodies import HEALTH_BODIES

    return MessageCodec([Anchor, *HEALTH_BODIES])


BODY_CODEC = _body_codec()


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

    def decoded_body(self) -> Any:
        return BODY_CODEC.decode(self.body)

    def check_signature(self) -> bool:
        try:
            key = VerifyKey(self.signer)
        except DecodeError:
            return False
        return key.verify(DOMAIN_TX, self.chain_id, self.signing_payload(), self.signature)


def tx_id(data: bytes) -> bytes:
    return sha256(data)


def make_transaction(key: SigningKey, chain_id: str, body: Any, timestamp_ms: int) -> bytes:
    """Sign ``body`` (an application record) and return the canonical tx bytes."""
    unsigned = Transaction(chain_id, key.verify_key.raw, os.urandom(16), timestamp_ms, BODY_CODEC.encode(body), b"")
    signed = replace(unsigned, signature=key.sign(DOMAIN_TX, chain_id, unsigned.signing_payload()))
    return encode(signed)


def parse_transaction(data: bytes) -> Transaction:
    """Strictly decode tx bytes (``DecodeError`` names what is wrong)."""
    return parse_with_body(data)[0]


def parse_with_body(data: bytes) -> tuple[Transaction, Any]:
    """The transaction and its decoded body, each decoded once."""
    if len(data) > MAX_TX_BYTES:
        raise DecodeError(f"transaction of {len(data)} bytes is over the limit of {MAX_TX_BYTES}")
    tx = decode(Transaction, data)
    return tx, tx.decoded_body()
