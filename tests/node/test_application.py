"""The anchoring application and the client transaction envelope (pure logic, no I/O)."""

import pytest

from consensus.messages import Block, BlockHeader
from node.app import Rejected
from node.healthcare.application import Application, check_transaction
from node.healthcare.ledger.state import DictState
from node.healthcare.transactions import BODY_CODEC, Anchor, make_transaction, parse_transaction
from node.mempool import Mempool, MempoolFull, MempoolLimits
from node.transaction import tx_id
from node.validation import TxChecker
from primitives.codec import encode
from primitives.errors import DecodeError
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey

CHAIN = "app-test"
CLIENT = SigningKey.from_seed_text("client-0")
STRANGER = SigningKey.from_seed_text("stranger")


def _block(height, txs):
    header = BlockHeader(CHAIN, height, bytes(32), 0, 0, 1, merkle_root(txs), len(txs), bytes(32))
    return Block(header, tuple(txs))


def _anchor(key=CLIENT, doc=b"doc", label="protocol v1", chain=CHAIN):
    return make_transaction(key, chain, Anchor(sha256(doc), label), 1000)


def test_a_signed_anchor_round_trips_and_verifies():
    data = _anchor()
    tx = parse_transaction(data)
    assert tx.check_signature()
    assert BODY_CODEC.decode(tx.body) == Anchor(sha256(b"doc"), "protocol v1")
    assert encode(tx) == data


def _flip(data, pos):
    out = bytearray(data)
    out[pos] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x00garbage", "malformed"),
        (_anchor(chain="other"), "wrong-chain"),
        (_flip(_anchor(), -10), "bad-signature"),
    ],
)
def test_stateless_checks_name_the_problem(data, code):
    with pytest.raises(Rejected) as err:
        check_transaction(data, CHAIN)
    assert err.value.code == code


def test_oversized_transactions_are_refused():
    with pytest.raises(DecodeError):
        parse_transaction(b"\x96" + b"\x00" * 70_000)


def test_anchoring_rules_and_deterministic_app_hash():
    app = Application(CHAIN, {CLIENT.verify_key.raw})
    txs = [_anchor(doc=b"a"), _anchor(doc=b"b"), _anchor(doc=b"a"), _anchor(STRANGER, doc=b"c")]
    state = DictState()
    result = app.execute_block(_block(1, txs), state, bytes(32))
    assert [(r.ok, r.code) for r in result.results] == [
        (True, "ok"), (True, "ok"), (False, "already-anchored"), (False, "not-enrolled"),
    ]
    assert len(result.writes) == 2
    again = app.execute_block(_block(1, txs), DictState(), bytes(32))
    assert again.app_hash == result.app_hash
    other = app.execute_block(_block(1, txs[:1]), DictState(), bytes(32))
    assert other.app_hash != result.app_hash
    # committed state is seen by the next block
    state.apply(result.writes)
    nxt = app.execute_block(_block(2, [_anchor(doc=b"b")]), state, result.app_hash)
    assert nxt.results[0].code == "already-anchored"


def test_mempool_bounds_dedups_and_evicts():
    pool = Mempool(MempoolLimits(max_txs=3, max_bytes=10_000))
    txs = [_anchor(doc=bytes([i])) for i in range(4)]
    for data in txs[:3]:
        assert pool.add(tx_id(data), data)
    assert not pool.add(tx_id(txs[0]), txs[0])
    with pytest.raises(MempoolFull):
        pool.add(tx_id(txs[3]), txs[3])
    assert [t for t, _ in pool.batch(2, 10**6)] == [tx_id(txs[0]), tx_id(txs[1])]
    assert pool.remove([tx_id(txs[0]), tx_id(txs[3])]) == 1
    assert len(pool) == 2 and pool.size_bytes == len(txs[1]) + len(txs[2])
    pool.add(tx_id(txs[3]), txs[3])
    assert len(pool) == 3
    small = Mempool(MempoolLimits(max_txs=100, max_bytes=len(txs[0]) + 1))
    small.add(tx_id(txs[0]), txs[0])
    with pytest.raises(MempoolFull):
        small.add(tx_id(txs[1]), txs[1])


def test_execution_reuses_only_what_this_node_already_checked():
    app = Application(CHAIN, {CLIENT.verify_key.raw})
    good, other = _anchor(doc=b"x"), _anchor(doc=b"z")
    forged = _flip(_anchor(doc=b"y"), -10)
    block = _block(1, [good, other, forged])
    plain = app.execute_block(block, DictState(), bytes(32))
    assert [r.code for r in plain.results] == ["ok", "ok", "bad-signature"]
    checker = TxChecker(app.precheck)
    assert checker.check(good) is None and checker.check(other) is None
    assert checker.take(tx_id(other)) is not None  # decoded form gone: only the verdict is left
    cached = app.execute_block(block, DictState(), bytes(32), checker)
    assert [r.code for r in cached.results] == ["ok", "ok", "bad-signature"]
    assert cached.app_hash == plain.app_hash
    assert checker.take(tx_id(good)) is None  # execution took it
    assert checker.check(forged) == "bad-signature: the signature does not verify for the signer key"
    assert not checker.verified_ok(tx_id(forged)) and checker.verified_ok(tx_id(other))
