"""What the explorer (``/ui/``) asks the ledger beyond the plain API: a transaction decoded, and search.

``describe`` turns a transaction's bytes into JSON a person can read: its
kind, who signed it (organisation and role, from the ledger or the genesis
file) and every field of its body, bytes as hex.  ``search`` says what a
query names: a block (height or hash), a transaction (id), an anchored
document (SHA-256), a patient or a record (their 16-byte ids), or a pack (a
GS1 code in any written form).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypedDict

from node.errors import ApiError
from node.governance import org_of_admin
from node.healthcare.application import ANCHOR_PREFIX
from node.healthcare.gs1 import Gs1Error, parse_code
from node.healthcare.transactions import parse_with_body
from primitives.errors import DecodeError

if TYPE_CHECKING:
    from node.documents import TxStatus
    from node.genesis import Genesis
    from node.healthcare.views import LedgerViews
    from node.runtime import Node

MAX_QUERY = 512


class Signer(TypedDict):
    key: str
    org: str | None
    role: str | None  # a member's role, "admin" for an organisation's admin key, "client" for a genesis client
    active: bool | None  # for an enrolled member


class TxDescription(TypedDict):
    tx_id: str
    status: TxStatus
    size: int
    kind: str | None  # the body's type, e.g. Commission; None when the bytes do not decode
    chain_id: str | None
    signer: Signer | None
    timestamp_ms: int | None
    nonce: str | None
    body: dict[str, Any] | None
    error: str | None  # why the bytes do not decode


def to_json(value: Any) -> Any:
    """A body field as JSON: bytes as hex, records as objects, sequences as lists."""
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def signer_of(key: bytes, views: LedgerViews, genesis: Genesis) -> Signer:
    member = views.member(key)
    if member is not None:
        return {"key": key.hex(), "org": member["org"], "role": member["role"], "active": member["active"]}
    for org in genesis.organisations:
        if org.admin_key.raw == key:
            return {"key": key.hex(), "org": org.id, "role": "admin", "active": None}
    joined = org_of_admin(views.state, key)  # an organisation a validator-set change brought in
    if joined is not None:
        return {"key": key.hex(), "org": joined.id, "role": "admin", "active": None}
    if any(c.key.raw == key for c in genesis.clients):
        return {"key": key.hex(), "org": None, "role": "client", "active": None}
    return {"key": key.hex(), "org": None, "role": None, "active": None}


def describe(data: bytes, status: TxStatus, views: LedgerViews, genesis: Genesis) -> TxDescription:
    doc: TxDescription = {
        "tx_id": status["tx_id"], "status": status, "size": len(data), "kind": None, "chain_id": None,
        "signer": None, "timestamp_ms": None, "nonce": None, "body": None, "error": None,
    }
    try:
        tx, body = parse_with_body(data)
    except DecodeError as exc:
        doc["error"] = str(exc)
        return doc
    doc.update({
        "kind": type(body).__name__, "chain_id": tx.chain_id, "signer": signer_of(tx.signer, views, genesis),
        "timestamp_ms": tx.timestamp_ms, "nonce": tx.nonce.hex(), "body": to_json(body),
    })
    return doc


def search(node: Node, views: LedgerViews, query: str) -> dict[str, Any]:
    """What ``query`` names on this node's chain, as ``{"query", "kind", ...}``; ``ApiError`` 404 if nothing."""
    q = query.strip()
    if not q:
        raise ApiError(400, "empty-query", "q is empty: give a height, a hash, a tx id, a GS1 code or a SHA-256")
    if len(q) > MAX_QUERY:
        raise ApiError(400, "bad-query", f"q is over {MAX_QUERY} characters")
    found: dict[str, Any] | None = None
    if q.isascii() and q.isdigit() and len(q) <= 19 and int(q) <= node.written_tip.height:
        found = {"kind": "block", "height": int(q)}
    elif len(q) == 64 and _is_hex(q):
        found = _by_hash(node, bytes.fromhex(q.lower()))
    elif len(q) == 32 and _is_hex(q):
        ident = bytes.fromhex(q.lower())
        if views.patient(ident) is not None:
            found = {"kind": "patient", "patient": ident.hex()}
        elif views.record_head(ident) is not None:
            found = {"kind": "record", "record_id": ident.hex()}
    if found is None:
        found = _by_code(views, q)
    if found is None:
        raise ApiError(404, "not-found", f"nothing on this chain matches {q[:80]!r}")
    return {"query": q, **found}


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _by_hash(node: Node, digest: bytes) -> dict[str, Any] | None:
    height = node.height_of(digest)
    if height is not None:
        return {"kind": "block", "height": height}
    if node.tx_bytes(digest) is not None:
        return {"kind": "tx", "tx_id": digest.hex()}
    if node.store.get(ANCHOR_PREFIX + digest) is not None:
        return {"kind": "anchor", "sha256": digest.hex()}
    return None


def _by_code(views: LedgerViews, q: str) -> dict[str, Any] | None:
    try:
        code = parse_code(q)
    except Gs1Error:
        return None
    if views.pack(code.gtin, code.serial) is None:
        raise ApiError(404, "not-found", f"{code.element_string()} is a valid GS1 code, but no such pack was "
                                         "commissioned on this chain")
    return {"kind": "pack", "gtin": code.gtin, "serial": code.serial, "code": code.element_string()}
