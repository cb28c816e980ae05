"""The deterministic application every validator runs on committed blocks.

``execute_block`` takes a block and a read view of the state after the
previous block, and returns per-transaction results, the state writes and the
new ``app_hash``.  It never reads the clock or anything but its inputs, so a
fresh node replaying the chain reaches the same ``app_hash`` at every height.

A transaction that breaks a rule is still part of the block (it was ordered)
but is *rejected* with a machine-readable reason and changes nothing.

``app_hash`` chains: sha256(previous app_hash, height, digest of the sorted
state writes, digest of the results).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from consensus.messages import Block
from node.transaction import Anchor, Transaction, parse_transaction, tx_id
from primitives.codec import pack
from primitives.errors import DecodeError
from primitives.hashing import sha256

ANCHOR_PREFIX = b"anchor/"


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class TxResult:
    tx_id: bytes
    ok: bool
    code: str = "ok"
    message: str = ""


@dataclass(slots=True)
class BlockResult:
    height: int
    results: list[TxResult]
    writes: dict[bytes, bytes | None]
    app_hash: bytes


@dataclass(slots=True)
class _Overlay:
    base: StateReader
    writes: dict[bytes, bytes | None] = field(default_factory=dict)

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value


class Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_transaction(
    data: bytes, chain_id: str, signature_ok: Callable[[Transaction], bool] | None = None
) -> Transaction:
    """Stateless checks (decode, chain, signature); raises ``Rejected`` with a reason."""
    try:
        tx = parse_transaction(data)
    except DecodeError as exc:
        raise Rejected("malformed", str(exc)) from None
    if tx.chain_id != chain_id:
        raise Rejected("wrong-chain", f"transaction for chain {tx.chain_id!r}, this is {chain_id!r}")
    if not (signature_ok or Transaction.check_signature)(tx):
        raise Rejected("bad-signature", "the signature does not verify for the signer key")
    return tx


def _trusted(tx: Transaction) -> bool:
    return True


class Application:
    """Document anchoring; the healthcare ledger extends this dispatch."""

    def __init__(self, chain_id: str, clients: set[bytes]) -> None:
        self.chain_id = chain_id
        self.clients = clients

    def execute_block(
        self,
        block: Block,
        state: StateReader,
        prev_app_hash: bytes,
        already_verified: Callable[[bytes], bool] | None = None,
    ) -> BlockResult:
        """``already_verified(tx_id)`` says this node checked that signature before (skip it)."""
        overlay = _Overlay(state)
        results = []
        for data in block.txs:
            tid = tx_id(data)
            skip = already_verified is not None and already_verified(tid)
            try:
                tx = check_transaction(data, self.chain_id, _trusted if skip else None)
                self._apply(tx, tid, block.height, overlay)
            except Rejected as exc:
                results.append(TxResult(tid, False, exc.code, exc.message))
                continue
            results.append(TxResult(tid, True))
        writes_digest = sha256(pack(sorted([k, v] for k, v in overlay.writes.items())))
        results_digest = sha256(pack([[r.tx_id, r.ok, r.code] for r in results]))
        app_hash = sha256(pack([prev_app_hash, block.height, writes_digest, results_digest]))
        return BlockResult(block.height, results, overlay.writes, app_hash)

    def _apply(self, tx: Transaction, tid: bytes, height: int, state: _Overlay) -> None:
        body = tx.decoded_body()
        match body:
            case Anchor():
                self._anchor(tx, body, tid, height, state)
            case _:
                raise Rejected("unknown-action", f"no rule for {type(body).__name__}")

    def _anchor(self, tx: Transaction, body: Anchor, tid: bytes, height: int, state: _Overlay) -> None:
        if tx.signer not in self.clients:
            raise Rejected("not-enrolled", "the signer is not a client enrolled in genesis")
        key = ANCHOR_PREFIX + body.doc_hash
        if state.get(key) is not None:
            raise Rejected("already-anchored", f"document {body.doc_hash.hex()} is already anchored")
        state.put(key, pack([height, tid, body.label, tx.signer]))
