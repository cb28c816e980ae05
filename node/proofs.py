"""Self-contained inclusion proofs: a committed transaction that anyone can check offline.

A proof holds the transaction's bytes, its Merkle path, the block header and
the block's commit certificate, all as hex of their canonical encodings, plus
readable copies of a few fields.  ``check_proof`` needs only the genesis file:
the certificate must carry a quorum of valid validator signatures over the
header's hash, the Merkle path must lead from the transaction to the header's
``tx_root``, and the transaction must be signed for this chain.

After a validator-set change, the proof also carries the change: proofs of the
governance transactions that made it (``validator_changes``).  The checker
follows them from genesis -- each certified by the set in force at its height,
each replayed through the same rules the ledger ran (``node.governance``) --
to learn the set that must have certified the block.  A proof omitting a change
would name the wrong set and fail its quorum, unless a quorum of a set that was
once in force signs a false chain: as with every light client, trust in a
proof across changes rests on the validators of past sets keeping their keys.

Rules: what a verified proof says (``ProvenTransaction``) is read from those
verified bytes only; every readable copy in the document must equal the value
derived from them, and a document with any other member is refused, so nothing
a proof shows can differ from what it proves.  A proof shows that the
transaction was ordered into a committed block; whether the application's
rules accepted it is not part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.certificates import verify_commit_certificate
from consensus.messages import Block, BlockHeader, CommitCertificate
from node.app import Rejected
from node.documents import ProofDocument
from node.genesis import Genesis
from node.governance import (
    ApproveValidators,
    Governance,
    ProposeValidators,
    ScheduledSet,
    Validator,
    decode_governance,
)
from node.transaction import decode_transaction, tx_id
from primitives.codec import decode, encode
from primitives.errors import DecodeError
from primitives.hashing import sha256
from primitives.merkle import MerkleProof, merkle_proof
from primitives.merkle import verify_proof as verify_merkle
from primitives.signing import VerifyKey

PROOF_FORMAT = "medchain-inclusion-proof/v1"
ENCODED_FIELDS = ("tx", "merkle_proof", "header", "certificate")
READABLE_FIELDS = ("chain_id", "height", "block_hash", "tx_id", "tx_index")
PROOF_FIELDS = frozenset(("format", *ENCODED_FIELDS, *READABLE_FIELDS))
CHANGES_FIELD = "validator_changes"
MAX_CHANGES = 1_000


class InvalidProof(Exception):
    """The document does not prove what it claims; the message says why."""


@dataclass(frozen=True, slots=True)
class ProvenTransaction:
    """What a verified proof establishes, every field read from the verified bytes."""

    chain_id: str
    height: int
    block_hash: bytes
    block_time_ms: int  # the committed header's timestamp
    proposer: str  # the validator that proposed the block (its name)
    tx_id: bytes
    tx_index: int
    tx: bytes
    signer: bytes  # the key that signed the transaction
    signed_time_ms: int  # the signer's own timestamp in the transaction
    body: bytes  # the application's encoded action (decoded by the application)


def build_proof(
    block: Block,
    cert: CommitCertificate,
    index: int,
    levels: list[list[bytes]] | None = None,
    changes: list[list[ProofDocument]] | None = None,
) -> ProofDocument:
    """``levels`` (``merkle_levels(block.txs)``) saves rehashing the block for each proof cut from it;
    ``changes``: the proofs of each validator-set change in force at the block's height."""
    tx = block.txs[index]
    doc: ProofDocument = {
        "format": PROOF_FORMAT,
        "chain_id": block.header.chain_id,
        "height": block.height,
        "block_hash": block.hash.hex(),
        "tx_id": tx_id(tx).hex(),
        "tx_index": index,
        "tx": tx.hex(),
        "merkle_proof": encode(merkle_proof(block.txs, index, levels)).hex(),
        "header": encode(block.header).hex(),
        "certificate": encode(cert).hex(),
    }
    if changes:
        doc["validator_changes"] = changes
    return doc


def check_proof(doc: Any, genesis: Genesis) -> ProvenTransaction:
    """What ``doc`` proves on ``genesis``'s chain; ``InvalidProof`` says why it proves nothing.

    ``doc`` is whatever JSON someone hands in (``Any``): it becomes a proof only by passing these checks.
    """
    tx, path, header, cert = _check_document(doc, allow_changes=True)
    if CHANGES_FIELD in doc:  # the governance rules only for a proof across changes
        governance = Governance(genesis)
        changes = _follow_changes(doc[CHANGES_FIELD], genesis, governance)
        signers = _signers(governance.set_at(changes, header.height))
    else:
        signers = [(m.name, m.key) for m in genesis.validators]
    proven = _verify_parts(tx, path, header, cert, genesis, signers)
    _check_readable(doc, proven)
    return proven


def _check_document(doc: Any, allow_changes: bool) -> tuple[bytes, MerkleProof, BlockHeader, CommitCertificate]:
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise InvalidProof(f"not a {PROOF_FORMAT} document")
    missing = sorted(PROOF_FIELDS - doc.keys())
    if missing:
        raise InvalidProof(f"malformed proof: missing {', '.join(missing)}")
    extra = sorted(doc.keys() - PROOF_FIELDS - ({CHANGES_FIELD} if allow_changes else set()))
    if extra:
        raise InvalidProof(f"malformed proof: unknown member {', '.join(map(repr, extra))} (a proof shows only "
                           "what it proves)")
    return _decode_parts(doc)


def _follow_changes(steps: Any, genesis: Genesis, governance: Governance) -> list[ScheduledSet]:
    """Replay the proof's governance transactions from genesis; the changes they scheduled, in order."""
    if not isinstance(steps, list) or len(steps) > MAX_CHANGES:
        raise InvalidProof(f"malformed proof: {CHANGES_FIELD} must be a list of at most {MAX_CHANGES} changes")
    store = _ReplayState()
    changes: list[ScheduledSet] = []
    last = (0, -1)
    for n, step in enumerate(steps, 1):
        if not isinstance(step, list) or not step:
            raise InvalidProof(f"validator change {n}: not a list of transaction proofs")
        decided: ScheduledSet | None = None
        for part in step:
            where = f"validator change {n}"
            tx, path, header, cert = _check_document(part, allow_changes=False)
            signers = _signers(governance.set_at(changes, header.height))
            proven = _verify_parts(tx, path, header, cert, genesis, signers, where)
            _check_readable(part, proven)
            if (proven.height, proven.tx_index) <= last:
                raise InvalidProof(f"{where}: its transactions are not in ledger order")
            last = (proven.height, proven.tx_index)
            if decided is not None:
                raise InvalidProof(f"{where}: a transaction after the one that decided it")
            body = decode_governance(proven.body)
            try:
                if isinstance(body, ProposeValidators):
                    decided = governance.propose(proven.signer, proven.tx_id, proven.height, body, store)
                elif isinstance(body, ApproveValidators):
                    decided = governance.approve(proven.signer, proven.tx_id, proven.height, body, store)
                else:
                    raise InvalidProof(f"{where}: transaction {proven.tx_id.hex()} is not a validator-set change")
            except Rejected as exc:
                raise InvalidProof(f"{where}: the ledger's rules refuse transaction {proven.tx_id.hex()}: "
                                   f"{exc.message}") from None
        if decided is None:
            raise InvalidProof(f"validator change {n}: its approvals do not reach the quorum")
        changes.append(decided)  # the rules refused a height too soon for the block that decided it
    return changes


class _ReplayState(dict[bytes, bytes | None]):
    """The governance rules' state during a replay: only what the proof's transactions wrote."""

    def put(self, key: bytes, value: bytes | None) -> None:
        self[key] = value


def verify_proof(doc: Any, genesis: Genesis) -> str | None:
    """None when ``doc`` proves its transaction is committed on ``genesis``'s chain, else why not."""
    try:
        check_proof(doc, genesis)
    except InvalidProof as exc:
        return str(exc)
    return None


def _decode_parts(doc: dict[str, Any]) -> tuple[bytes, MerkleProof, BlockHeader, CommitCertificate]:
    try:
        raw = {name: bytes.fromhex(doc[name]) for name in ENCODED_FIELDS}
    except (TypeError, ValueError) as exc:
        raise InvalidProof(f"malformed proof: {exc}") from None
    try:
        return (raw["tx"], decode(MerkleProof, raw["merkle_proof"]), decode(BlockHeader, raw["header"]),
                decode(CommitCertificate, raw["certificate"]))
    except DecodeError as exc:
        raise InvalidProof(f"malformed proof: {exc}") from None


def _signers(validators: tuple[Validator, ...]) -> list[tuple[str, VerifyKey]]:
    return [(v.name, VerifyKey(v.key)) for v in validators]


def _verify_parts(
    tx: bytes, path: MerkleProof, header: BlockHeader, cert: CommitCertificate, genesis: Genesis,
    signers: list[tuple[str, VerifyKey]], where: str = "",
) -> ProvenTransaction:
    """``signers``: (name, key) of the validators in force at the block's height, by position."""
    prefix = f"{where}: " if where else ""
    if header.chain_id != genesis.chain_id:
        raise InvalidProof(f"{prefix}proof is for chain {header.chain_id!r}, genesis is {genesis.chain_id!r}")
    block_hash = sha256(encode(header))
    if cert.block_hash != block_hash or cert.height != header.height:
        raise InvalidProof(f"{prefix}the certificate is not for this block header")
    reason = verify_commit_certificate(genesis.chain_id, [key for _, key in signers], cert)
    if reason is not None:
        raise InvalidProof(f"{prefix}invalid commit certificate at height {header.height}: {reason}")
    if path.leaf_count != header.tx_count:
        raise InvalidProof("the Merkle path does not match the block's transaction count")
    if not verify_merkle(tx, path, header.tx_root):
        raise InvalidProof("the Merkle path does not lead to the block's tx_root")
    try:
        envelope = decode_transaction(tx)
    except DecodeError as exc:
        raise InvalidProof(f"the proven bytes are not a transaction: {exc}") from None
    if envelope.chain_id != genesis.chain_id or not envelope.check_signature():
        raise InvalidProof("the transaction's signature does not verify on this chain")
    proposer = signers[header.proposer][0] if header.proposer < len(signers) else "?"
    return ProvenTransaction(
        chain_id=header.chain_id, height=header.height, block_hash=block_hash, block_time_ms=header.timestamp_ms,
        proposer=proposer, tx_id=tx_id(tx), tx_index=path.index, tx=tx, signer=envelope.signer,
        signed_time_ms=envelope.timestamp_ms, body=envelope.body,
    )


def _check_readable(doc: dict[str, Any], proven: ProvenTransaction) -> None:
    """Each readable copy must be exactly the value the verified bytes give (same JSON type too)."""
    derived: dict[str, object] = {
        "chain_id": proven.chain_id,
        "height": proven.height,
        "block_hash": proven.block_hash.hex(),
        "tx_id": proven.tx_id.hex(),
        "tx_index": proven.tx_index,
    }
    for name, value in derived.items():
        shown = doc[name]
        if type(shown) is not type(value) or shown != value:
            raise InvalidProof(f"{name} says {shown!r} but the verified bytes give {value!r}")
