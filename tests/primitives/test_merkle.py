"""Merkle tree and inclusion proofs.

The tree is checked against an independent reference: RFC 6962 section 2.1's
recursive definition (split at the largest power of two below n), which gives
the same tree as pairing bottom-up and promoting an odd last node.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.codec import decode, encode, pack, record_to_wire
from primitives.errors import DecodeError
from primitives.hashing import sha256
from primitives.merkle import (
    EMPTY_ROOT,
    MAX_PROOF_STEPS,
    MerkleProof,
    ProofStep,
    leaf_hash,
    merkle_proof,
    merkle_root,
    node_hash,
    verify_proof,
)

SIZES = range(1, 34)


def leaves_of(n: int) -> list[bytes]:
    return [f"leaf-{i}".encode() for i in range(n)]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]), RFC 6962 section 2.1."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return sha256(b"\x00" + leaves[0])
    k = _split(len(leaves))
    return sha256(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:]))


def rfc6962_path(m: int, leaves: list[bytes]) -> list[tuple[bytes, bool]]:
    """PATH(m, D[n]), RFC 6962 section 2.1.1, with the side each sibling sits on."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*rfc6962_path(m, leaves[:k]), (rfc6962_root(leaves[k:]), False)]
    return [*rfc6962_path(m - k, leaves[k:]), (rfc6962_root(leaves[:k]), True)]


# --------------------------------------------------------------------------
# Roots.


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == sha256(b"")


def test_one_leaf_root_is_its_leaf_hash() -> None:
    assert merkle_root([b"only"]) == leaf_hash(b"only") == sha256(b"\x00only")


def test_two_leaf_root_is_the_node_hash_of_the_leaf_hashes() -> None:
    assert merkle_root([b"a", b"b"]) == node_hash(leaf_hash(b"a"), leaf_hash(b"b")) == sha256(
        b"\x01" + leaf_hash(b"a") + leaf_hash(b"b")
    )


def test_odd_last_node_is_promoted_unchanged() -> None:
    la, lb, lc = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert merkle_root([b"a", b"b", b"c"]) == node_hash(node_hash(la, lb), lc)


def test_odd_promotion_does_not_duplicate_the_last_leaf() -> None:
    assert merkle_root([b"a", b"b", b"c"]) != merkle_root([b"a", b"b", b"c", b"c"])
    assert merkle_root([b"a"]) != merkle_root([b"a", b"a"])


@pytest.mark.parametrize("n", range(0, 34))
def test_root_matches_rfc6962(n: int) -> None:
    assert merkle_root(leaves_of(n)) == rfc6962_root(leaves_of(n))


def test_root_depends_on_order_and_content() -> None:
    base = leaves_of(5)
    assert merkle_root(base) != merkle_root([base[1], base[0], *base[2:]])
    assert merkle_root(base) != merkle_root([*base[:4], b"other"])
    assert merkle_root(base) != merkle_root(base[:4])


# --------------------------------------------------------------------------
# Leaf / inner domain separation (second-preimage resistance).


def test_inner_node_cannot_pass_as_a_leaf() -> None:
    la, lb = leaf_hash(b"a"), leaf_hash(b"b")
    forged_leaf = la + lb  # the 64 bytes an inner node hashes
    assert merkle_root([forged_leaf]) != merkle_root([b"a", b"b"])


def test_inner_nodes_cannot_pass_as_leaves_one_level_higher() -> None:
    real = [b"a", b"b", b"c", b"d"]
    la, lb, lc, ld = (leaf_hash(x) for x in real)
    forged = [la + lb, lc + ld]
    assert merkle_root(forged) != merkle_root(real)
    # Nor can a proof for the forged "leaf" lead to the real root.
    step = ProofStep(node_hash(lc, ld), sibling_on_left=False)
    assert verify_proof(la + lb, MerkleProof(0, 2, (step,)), merkle_root(real)) is False


def test_leaf_and_node_hash_differ_on_the_same_bytes() -> None:
    x, y = sha256(b"x"), sha256(b"y")
    assert leaf_hash(x + y) != node_hash(x, y)


# --------------------------------------------------------------------------
# Proofs: every index of every size from 1 to 33.

CASES = [(n, i) for n in SIZES for i in range(n)]


@pytest.fixture(scope="module")
def trees() -> dict[int, tuple[list[bytes], bytes, list[MerkleProof]]]:
    out = {}
    for n in SIZES:
        leaves = leaves_of(n)
        out[n] = (leaves, merkle_root(leaves), [merkle_proof(leaves, i) for i in range(n)])
    return out


Trees = dict[int, tuple[list[bytes], bytes, list[MerkleProof]]]


def test_every_proof_verifies_and_matches_rfc6962_path(trees: Trees) -> None:
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        proof = proofs[i]
        assert (proof.index, proof.leaf_count) == (i, n)
        assert verify_proof(leaves[i], proof, root), (n, i)
        assert [(s.sibling, s.sibling_on_left) for s in proof.steps] == rfc6962_path(i, leaves), (n, i)


def test_tampered_leaf_fails(trees: Trees) -> None:
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        assert not verify_proof(leaves[i] + b"!", proofs[i], root)
        assert not verify_proof(leaves[(i + 1) % n], proofs[i], root) or n == 1


def test_tampered_sibling_fails(trees: Trees) -> None:
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        proof = proofs[i]
        for k, step in enumerate(proof.steps):
            bad = ProofStep(bytes([step.sibling[0] ^ 1]) + step.sibling[1:], step.sibling_on_left)
            steps = (*proof.steps[:k], bad, *proof.steps[k + 1 :])
            assert not verify_proof(leaves[i], replace(proof, steps=steps), root), (n, i, k)


def test_flipped_side_flag_fails(trees: Trees) -> None:
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        proof = proofs[i]
        for k, step in enumerate(proof.steps):
            flipped = ProofStep(step.sibling, not step.sibling_on_left)
            steps = (*proof.steps[:k], flipped, *proof.steps[k + 1 :])
            assert not verify_proof(leaves[i], replace(proof, steps=steps), root), (n, i, k)


def test_wrong_index_fails(trees: Trees) -> None:
    # Every leaf has its own path from the root, so no other index fits the same steps.
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        for j in range(n + 2):
            if j != i:
                assert not verify_proof(leaves[i], replace(proofs[i], index=j), root), (n, i, j)


def test_index_outside_the_tree_fails(trees: Trees) -> None:
    leaves, root, proofs = trees[4]
    assert not verify_proof(leaves[0], replace(proofs[0], index=4), root)
    assert not verify_proof(leaves[0], replace(proofs[0], leaf_count=0), root)
    single = merkle_proof([b"x"], 0)
    assert not verify_proof(b"x", replace(single, index=1), merkle_root([b"x"]))


def rfc6962_shape(m: int, n: int) -> list[bool]:
    """The sides of PATH(m, D[n]) without the hashes."""
    if n == 1:
        return []
    k = _split(n)
    return [*rfc6962_shape(m, k), False] if m < k else [*rfc6962_shape(m - k, n - k), True]


def test_wrong_leaf_count_fails_when_it_changes_the_path(trees: Trees) -> None:
    rejected = 0
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        real_shape = rfc6962_shape(i, n)
        for m in range(1, 40):
            if m == n:
                continue
            ok = verify_proof(leaves[i], replace(proofs[i], leaf_count=m), root)
            # Accepted only when a tree of m leaves has the very same path for index i
            # (see test_leaf_count_is_not_committed_by_the_root).
            assert ok == (i < m and rfc6962_shape(i, m) == real_shape), (n, i, m)
            rejected += not ok
    assert rejected > 0.7 * len(CASES) * 38


@pytest.mark.parametrize(("n", "i", "m"), [(4, 0, 5), (4, 3, 3), (5, 4, 4), (33, 32, 32), (8, 7, 9)])
def test_wrong_leaf_count_examples(n: int, i: int, m: int) -> None:
    leaves = leaves_of(n)
    assert not verify_proof(leaves[i], replace(merkle_proof(leaves, i), leaf_count=m), merkle_root(leaves))


def test_leaf_count_is_not_committed_by_the_root() -> None:
    # Known limit (as in RFC 6962, where the tree size comes from the signed tree head):
    # the root alone does not fix the leaf count, so leaf c of [a, b, c] also "verifies"
    # as index 1 of a 2-leaf tree.  A verifier must take the count from the trusted
    # header (node/proofs.py checks leaf_count == header.tx_count) before trusting the index.
    leaves = [b"a", b"b", b"c"]
    proof = merkle_proof(leaves, 2)
    assert verify_proof(b"c", MerkleProof(1, 2, proof.steps), merkle_root(leaves)) is True


def test_extra_or_missing_step_fails(trees: Trees) -> None:
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        proof = proofs[i]
        for extra in (ProofStep(root, True), ProofStep(root, False), ProofStep(leaf_hash(b"x"), False)):
            assert not verify_proof(leaves[i], replace(proof, steps=(*proof.steps, extra)), root)
            assert not verify_proof(leaves[i], replace(proof, steps=(extra, *proof.steps)), root)
        if proof.steps:
            assert not verify_proof(leaves[i], replace(proof, steps=proof.steps[:-1]), root)
            assert not verify_proof(leaves[i], replace(proof, steps=proof.steps[1:]), root)


def test_wrong_root_fails(trees: Trees) -> None:
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        assert not verify_proof(leaves[i], proofs[i], bytes([root[0] ^ 1]) + root[1:])
        assert not verify_proof(leaves[i], proofs[i], trees[n % 33 + 1][1])
        assert not verify_proof(leaves[i], proofs[i], EMPTY_ROOT)


@pytest.mark.parametrize("index", [-1, 3, 10])
def test_proof_for_missing_index_is_refused(index: int) -> None:
    with pytest.raises(IndexError):
        merkle_proof([b"a", b"b", b"c"], index)
    with pytest.raises(IndexError):
        merkle_proof([], 0)


# --------------------------------------------------------------------------
# Proofs on the wire.


def test_proof_round_trips_through_the_codec(trees: Trees) -> None:
    for n, i in CASES:
        leaves, root, proofs = trees[n]
        data = encode(proofs[i])
        back = decode(MerkleProof, data)
        assert back == proofs[i]
        assert encode(back) == data
        assert verify_proof(leaves[i], back, root)


def test_decoding_a_proof_with_a_short_sibling_names_the_field() -> None:
    wire = record_to_wire(merkle_proof(leaves_of(4), 1))
    wire[2][1][0] = wire[2][1][0][:31]
    with pytest.raises(DecodeError, match=r"MerkleProof\.steps\[1\]\.sibling: expected exactly 32 bytes, got 31"):
        decode(MerkleProof, pack(wire))


def test_decoding_a_proof_with_a_non_bool_side_names_the_field() -> None:
    wire = record_to_wire(merkle_proof(leaves_of(4), 1))
    wire[2][0][1] = 1
    with pytest.raises(DecodeError, match=r"MerkleProof\.steps\[0\]\.sibling_on_left: expected a bool, got int"):
        decode(MerkleProof, pack(wire))


def test_decoding_a_proof_with_too_many_steps_is_rejected() -> None:
    wire = [0, 1, [[bytes(32), False]] * (MAX_PROOF_STEPS + 1)]
    with pytest.raises(DecodeError, match=rf"MerkleProof\.steps: {MAX_PROOF_STEPS + 1} items is over the limit"):
        decode(MerkleProof, pack(wire))


# --------------------------------------------------------------------------
# Properties.

leaf_lists = st.lists(st.binary(max_size=48), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_property_proofs_verify_and_match_the_reference(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    assert root == rfc6962_root(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = decode(MerkleProof, encode(merkle_proof(leaves, i)))
    assert verify_proof(leaves[i], proof, root)
    assert [(s.sibling, s.sibling_on_left) for s in proof.steps] == rfc6962_path(i, leaves)
    j = data.draw(st.integers(0, len(leaves) - 1))
    if leaves[j] != leaves[i]:
        assert not verify_proof(leaves[j], proof, root)
    if j != i:
        assert not verify_proof(leaves[i], replace(proof, index=j), root)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, leaf_lists)
def test_property_different_leaf_lists_have_different_roots(a: list[bytes], b: list[bytes]) -> None:
    if a != b:
        assert merkle_root(a) != merkle_root(b)
