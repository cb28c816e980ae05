"""Self-contained inclusion proofs: a committed transaction that anyone can check offline.

A proof holds the transaction's bytes, its Merkle path, the block header and
the block's commit certificate, all as hex of their canonical encodings (plus
readable copies of a few fields).  ``verify_proof`` needs only the genesis file:
the certificate must carry a quorum of valid validator signatures over the
header's hash, and the Merkle path must lead from the transaction to the
header's ``tx_root``.  No node has to be trusted.
"""

from __future__ import annotations

from typing import Any

from consensus.certificates import verify_commit_certificate
from consensus.messages import Block, BlockHeader, CommitCertificate
from node.documents import ProofDocument
from node.genesis import Genesis
from node.transaction import tx_id
from primitives.codec import decode, encode
from primitives.errors import DecodeError
from primitives.hashing import sha256
from primitives.merkle import MerkleProof, merkle_proof
from primitives.merkle import verify_proof as verify_merkle

PROOF_FORMAT = "medchain-inclusion-proof/v1"


def build_proof(
    block: Block, cert: CommitCertificate, index: int, levels: list[list[bytes]] | None = None
) -> ProofDocument:
    """``levels`` (``merkle_levels(block.txs)``) saves rehashing the block for each proof cut from it."""
    tx = block.txs[index]
    return {
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


def verify_proof(doc: Any, genesis: Genesis) -> str | None:
    """None when ``doc`` proves its transaction is committed on ``genesis``'s chain, else why not.

    ``doc`` is whatever JSON someone hands in (``Any``): it becomes a proof only by passing these checks.
    """
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        return f"not a {PROOF_FORMAT} document"
    try:
        tx = bytes.fromhex(doc["tx"])
        path = decode(MerkleProof, bytes.fromhex(doc["merkle_proof"]))
        header = decode(BlockHeader, bytes.fromhex(doc["header"]))
        cert = decode(CommitCertificate, bytes.fromhex(doc["certificate"]))
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed proof: {exc}"
    except DecodeError as exc:
        return f"malformed proof: {exc}"
    if header.chain_id != genesis.chain_id:
        return f"proof is for chain {header.chain_id!r}, genesis is {genesis.chain_id!r}"
    block_hash = sha256(encode(header))
    if cert.block_hash != block_hash or cert.height != header.height:
        return "the certificate is not for this block header"
    reason = verify_commit_certificate(genesis.chain_id, [m.key for m in genesis.validators], cert)
    if reason is not None:
        return f"invalid commit certificate: {reason}"
    if path.leaf_count != header.tx_count:
        return "the Merkle path does not match the block's transaction count"
    if not verify_merkle(tx, path, header.tx_root):
        return "the Merkle path does not lead to the block's tx_root"
    if doc.get("tx_id") not in (None, tx_id(tx).hex()):
        return "tx_id does not match the transaction bytes"
    return None
