"""Binary Merkle tree over SHA-256 with inclusion proofs.

Leaves and inner nodes are hashed under different one-byte prefixes
(``0x00`` and ``0x01``, as RFC 6962 does), so a leaf can never pass as an inner
node.  Definitions for the edge cases:

* the root of an empty tree is ``sha256(b"")``;
* the root of one leaf is that leaf's hash;
* a level with an odd number of nodes promotes its last node unchanged to the
  next level (it is not paired with a copy of itself, which would let two
  different lists of leaves share a root).

A proof is the list of sibling hashes from the leaf up, each with the side it
sits on; promoted nodes add no step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from primitives.codec import Bool, Bytes, Kind, ListOf, Nested, UInt
from primitives.hashing import HASH_SIZE, sha256

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"")
MAX_PROOF_STEPS = 64


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    sha = hashlib.sha256
    level = [sha(LEAF_PREFIX + x).digest() for x in leaves]
    levels = [level]
    while len(level) > 1:
        nxt = [sha(NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over the raw leaf data (each leaf is hashed with the leaf prefix)."""
    if not leaves:
        return EMPTY_ROOT
    return _levels(leaves)[-1][0]


@dataclass(frozen=True, slots=True)
class ProofStep:
    sibling: bytes
    sibling_on_left: bool

    SCHEMA: ClassVar[tuple[Kind, ...]] = (Bytes(HASH_SIZE, exact=True), Bool())


@dataclass(frozen=True, slots=True)
class MerkleProof:
    index: int
    leaf_count: int
    steps: tuple[ProofStep, ...]

    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), UInt(), ListOf(Nested(ProofStep), MAX_PROOF_STEPS))


def merkle_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first: keep it to cut many proofs from one block."""
    return _levels(leaves)


def merkle_proof(leaves: Sequence[bytes], index: int, levels: list[list[bytes]] | None = None) -> MerkleProof:
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)} leaves")
    steps: list[ProofStep] = []
    pos = index
    for level in (levels if levels is not None else _levels(leaves))[:-1]:
        sibling = pos ^ 1
        if sibling < len(level):
            steps.append(ProofStep(level[sibling], sibling_on_left=sibling < pos))
        pos //= 2
    return MerkleProof(index, len(leaves), tuple(steps))


def verify_proof(leaf: bytes, proof: MerkleProof, root: bytes) -> bool:
    """True when ``leaf`` sits at ``proof.index`` of the tree whose root is ``root``.

    The index and leaf count fix the shape of the path, so a proof cannot be
    replayed for another position.
    """
    if not 0 <= proof.index < proof.leaf_count:
        return False
    expected: list[bool] = []
    pos, width = proof.index, proof.leaf_count
    while width > 1:
        sibling = pos ^ 1
        if sibling < width:
            expected.append(sibling < pos)
        pos, width = pos // 2, (width + 1) // 2
    if len(expected) != len(proof.steps):
        return False
    acc = leaf_hash(leaf)
    for step, on_left in zip(proof.steps, expected, strict=True):
        if step.sibling_on_left != on_left:
            return False
        acc = node_hash(step.sibling, acc) if on_left else node_hash(acc, step.sibling)
    return acc == root
