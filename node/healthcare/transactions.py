"""The application's transaction bodies on the wire: document anchors and the healthcare ledger's actions.

A body is a tagged record (``BODY_CODEC``) inside the signed envelope of
``node.transaction``: ``Anchor`` is tag 1, the ledger's bodies
(``node.healthcare.ledger.bodies``) take 2-31, and the network's validator-set
governance (``node.governance``) 40-41.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from node.governance import GOVERNANCE_BODIES
from node.healthcare.ledger.bodies import HEALTHCARE_BODIES
from node.transaction import Transaction, decode_transaction, sign_transaction
from primitives.codec import Bytes, Kind, MessageCodec, Text
from primitives.hashing import HASH_SIZE
from primitives.signing import SigningKey

HASH = Bytes(HASH_SIZE, exact=True)


@dataclass(frozen=True, slots=True)
class Anchor:
    """Anchor a document's SHA-256 (clinical trials, DESIGN.md section 7)."""

    TAG: ClassVar[int] = 1
    doc_hash: bytes
    label: str
    SCHEMA: ClassVar[tuple[Kind, ...]] = (HASH, Text(256))


BODY_CODEC = MessageCodec([Anchor, *HEALTHCARE_BODIES, *GOVERNANCE_BODIES])


def make_transaction(key: SigningKey, chain_id: str, body: Any, timestamp_ms: int) -> bytes:
    """Sign ``body`` (an application record) and return the canonical tx bytes."""
    return sign_transaction(key, chain_id, BODY_CODEC.encode(body), timestamp_ms)


def parse_with_body(data: bytes) -> tuple[Transaction, Any]:
    """The transaction and its decoded body, each decoded once (``DecodeError`` names what is wrong)."""
    tx = decode_transaction(data)
    return tx, BODY_CODEC.decode(tx.body)


def parse_transaction(data: bytes) -> Transaction:
    """Strictly decode tx bytes, body included."""
    return parse_with_body(data)[0]
