"""Executing a block a commit certificate vouches for, without verifying client signatures (pure logic, no I/O).

Catch-up trusts what 2f+1 validators certified: their honest majority ran
``precheck`` on every transaction before voting, so re-execution decodes and
applies the rules but checks no signature again.  These tests pin both sides:
the trusted path really skips the checks (it accepts a forged signature a
certificate would never cover), and the live path still makes them.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from consensus.messages import Block, BlockHeader
from node.app import Rejected
from node.healthcare.application import Application, decode_trusted, precheck
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.state import DictState
from node.healthcare.transactions import Anchor, make_transaction
from node.transaction import tx_id
from node.validation import CertifiedTxs, TxChecker, transactions_problem, validate_block
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey

CHAIN = "certified-test"
CLIENT = SigningKey.from_seed_text("client-0")
READER = SigningKey.from_seed_text("reader")


def _anchor(doc: bytes, chain: str = CHAIN) -> bytes:
    return make_transaction(CLIENT, chain, Anchor(sha256(doc), "label"), 1000)


def _forged(data: bytes) -> bytes:
    """The same transaction with one bit of its envelope signature (the last field) flipped."""
    out = bytearray(data)
    out[-10] ^= 0x01
    return bytes(out)


def _block(txs: list[bytes], height: int = 1) -> Block:
    header = BlockHeader(CHAIN, height, bytes(32), 0, 0, 1, merkle_root(txs), len(txs), bytes(32))
    return Block(header, tuple(txs))


def _access_with_a_forged_request() -> bytes:
    request = b.ReadRequest.signed(READER, CHAIN, os.urandom(16), 0, "treatment", False, 1000, os.urandom(16))
    forged = replace(request, signature=bytes(64))
    return make_transaction(CLIENT, CHAIN, b.RecordAccess(forged), 1000)


def test_the_trusted_decode_accepts_a_forged_envelope_signature_that_precheck_refuses() -> None:
    forged = _forged(_anchor(b"doc"))
    with pytest.raises(Rejected) as refused:
        precheck(forged, CHAIN)
    assert refused.value.code == "bad-signature"
    tx, body = decode_trusted(forged, CHAIN)
    assert not tx.check_signature() and body == Anchor(sha256(b"doc"), "label")


def test_the_trusted_decode_skips_the_read_request_signature_too_both_refuse_a_block_before_it_is_voted() -> None:
    data = _access_with_a_forged_request()
    with pytest.raises(Rejected) as refused:
        precheck(data, CHAIN)
    assert refused.value.code == "bad-request-signature"
    _, body = decode_trusted(data, CHAIN)
    assert isinstance(body, b.RecordAccess) and not body.request.check_signature()
    # ...because validation refuses the whole block for it: no committed block can hold one
    app = Application(CHAIN, {CLIENT.verify_key.raw})
    reason = validate_block(_block([data]), TxChecker(app.precheck), lambda tid: False)
    assert reason is not None and "bad-request-signature" in reason


@pytest.mark.parametrize(("data", "code"), [(b"\x00garbage", "malformed"), (_anchor(b"x", "other"), "wrong-chain")])
def test_the_trusted_decode_still_decodes_and_checks_the_chain(data: bytes, code: str) -> None:
    with pytest.raises(Rejected) as refused:
        decode_trusted(data, CHAIN)
    assert refused.value.code == code


def test_a_certified_block_executes_what_was_certified_and_a_live_one_verifies() -> None:
    app = Application(CHAIN, {CLIENT.verify_key.raw})
    good, forged = _anchor(b"a"), _forged(_anchor(b"b"))
    block = _block([good, forged])
    live = app.execute_block(block, DictState(), bytes(32), TxChecker(app.precheck))
    assert [r.code for r in live.results] == ["ok", "bad-signature"]
    # A certificate is trusted: had 2f+1 validators signed this block, what they signed would be executed.
    trusted = app.execute_block(block, DictState(), bytes(32), CertifiedTxs(TxChecker(app.precheck)))
    assert [r.code for r in trusted.results] == ["ok", "ok"]


def test_on_a_block_that_passed_validation_the_certified_path_reaches_the_same_app_hash() -> None:
    app = Application(CHAIN, {CLIENT.verify_key.raw})
    stranger = make_transaction(READER, CHAIN, Anchor(sha256(b"s"), "label"), 1000)  # not enrolled: rejected
    again = make_transaction(CLIENT, CHAIN, Anchor(sha256(bytes([0])), "again"), 1000)  # already anchored: rejected
    block = _block([_anchor(bytes([i])) for i in range(3)] + [stranger, again])
    verifying = app.execute_block(block, DictState(), bytes(32))
    assert [r.code for r in verifying.results] == ["ok", "ok", "ok", "not-enrolled", "already-anchored"]
    checker = TxChecker(app.precheck)
    certified = app.execute_block(block, DictState(), bytes(32), CertifiedTxs(checker))
    assert certified.app_hash == verifying.app_hash and certified.results == verifying.results
    assert checker.verified == 0


def test_a_certified_block_reuses_what_this_node_decoded_already() -> None:
    app = Application(CHAIN, {CLIENT.verify_key.raw})
    data = _anchor(b"gossiped")
    checker = TxChecker(app.precheck)
    assert checker.check(data) is None
    app.execute_block(_block([data]), DictState(), bytes(32), CertifiedTxs(checker))
    assert checker.peek(tx_id(data)) is None  # taken by execution


def test_certified_validation_checks_no_signature_but_still_binds_the_transactions_to_the_header() -> None:
    app = Application(CHAIN, {CLIENT.verify_key.raw})
    good, forged = _anchor(b"a"), _forged(_anchor(b"b"))
    checker = TxChecker(app.precheck)
    assert validate_block(_block([good, forged]), checker, lambda tid: False, certified=True) is None
    assert checker.verified == 0
    uncertified = validate_block(_block([good, forged]), checker, lambda tid: False)
    assert uncertified is not None and "bad-signature" in uncertified and checker.verified == 2
    swapped = Block(_block([good, _anchor(b"b")]).header, (good, forged))
    assert validate_block(swapped, checker, lambda tid: False, certified=True) == (
        "transactions do not match the header's tx_root"
    )
    twice = _block([good, good])
    assert validate_block(twice, checker, lambda tid: False, certified=True) == "transaction 1 appears twice"
    committed = validate_block(_block([good]), checker, lambda tid: tid == tx_id(good), certified=True)
    assert committed is not None and "already committed" in committed


def test_the_transactions_must_be_the_ones_the_header_names() -> None:
    txs = [_anchor(b"a"), _anchor(b"b")]
    block = _block(txs)
    assert transactions_problem(block) is None
    assert transactions_problem(Block(block.header, (txs[0],))) is not None
    assert transactions_problem(Block(block.header, (txs[1], txs[0]))) is not None
    assert transactions_problem(Block(replace(block.header, tx_count=3), block.txs)) is not None
