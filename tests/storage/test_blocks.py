"""Committing blocks: round trips, the refusals, the indexes, ranges and snapshots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from consensus.messages import Block
from primitives.codec import encode
from primitives.errors import UsageError
from primitives.hashing import sha256
from storage.chainstore import ChainStore
from storage.errors import CommitRefused, StoreClosed
from storage.keys import u64
from tests.storage.builders import (
    GENESIS,
    build_chain,
    certificate_for,
    check_consistent,
    commit,
    next_step,
    open_store,
    tip_after,
    txs_for,
)


def test_a_committed_block_reads_back_by_height_and_hash_with_its_certificate(store: ChainStore) -> None:
    steps = build_chain(3, txs_per_block=5)
    for step in steps:
        commit(store, step)
    for step in steps:
        b, h = step.block, step.block.height
        assert store.block(h) == b and store.block(h).hash == b.hash  # type: ignore[union-attr]
        assert store.block_by_hash(b.hash) == b
        assert store.height_of(b.hash) == h
        assert store.certificate(h) == step.certificate
        assert store.certified_block(h) == (b, step.certificate)
    assert store.block_by_hash(bytes(32)) is None and store.height_of(bytes(32)) is None
    assert store.certified_block(4) is None
    check_consistent(store)


def test_commit_returns_the_new_head_as_a_chain_tip(store: ChainStore) -> None:
    step = next_step(GENESIS, txs_for(1, 2), view=3)
    tip = commit(store, step)
    assert tip == store.head() == tip_after(step)
    assert (tip.height, tip.block_hash, tip.app_hash, tip.view) == (1, step.block.hash, step.app_hash, 3)
    assert tip.timestamp_ms == step.block.header.timestamp_ms


def test_every_transaction_is_indexed_by_its_id(store: ChainStore) -> None:
    steps = build_chain(4, txs_per_block=7)
    for step in steps:
        commit(store, step)
    for step in steps:
        for index, tx in enumerate(step.block.txs):
            tid = sha256(tx)
            assert store.has_tx(tid)
            assert store.tx_location(tid) == (step.block.height, index)
            assert store.tx_location(tid).position == index  # type: ignore[union-attr]
            assert store.tx(tid) == tx
    assert not store.has_tx(sha256(b"never"))
    assert store.tx_location(sha256(b"never")) is None and store.tx(sha256(b"never")) is None


def test_an_empty_block_commits(store: ChainStore) -> None:
    commit(store, next_step(GENESIS, ()))
    assert store.block(1).txs == ()  # type: ignore[union-attr]


def _refused(store: ChainStore, block: Block, *, writes: dict[bytes, bytes | None] | None = None,
             app_hash: bytes | None = None, cert_block: Block | None = None) -> None:
    def seen() -> tuple[object, ...]:
        return (store.head(), store.block(block.height), store.height_of(block.hash),
                [store.tx_location(sha256(tx)) for tx in block.txs], store.get(b"leak"))

    before = seen()
    with pytest.raises(CommitRefused if writes is None else UsageError):
        store.commit_block(
            block, certificate_for(cert_block or block), writes or {b"leak": b"x"}, app_hash or sha256(b"a"),
        )
    assert seen() == before
    assert store.get(b"leak") is None


def test_commit_refuses_a_block_that_does_not_extend_the_head_and_writes_nothing(store: ChainStore) -> None:
    first, second = build_chain(2)
    _refused(store, second.block)  # at genesis: height 2
    _refused(store, next_step(replace(GENESIS, block_hash=sha256(b"other genesis")), txs_for(1, 2)).block)
    commit(store, first)
    head = tip_after(first)
    _refused(store, first.block)  # same height again
    _refused(store, next_step(tip_after(second), txs_for(3, 2)).block)  # skips a height
    _refused(store, next_step(replace(head, block_hash=sha256(b"fork")), txs_for(2, 2)).block)  # wrong parent
    _refused(store, next_step(head, txs_for(2, 2), chain_id="other-chain").block)  # another chain
    _refused(store, next_step(replace(head, app_hash=sha256(b"other state")), txs_for(2, 2)).block)
    _refused(store, second.block, cert_block=first.block)  # certificate of another block
    _refused(store, second.block, app_hash=b"short")
    _refused(store, second.block, writes={b"k": "not bytes"})  # type: ignore[dict-item]
    commit(store, second)  # and the right block still goes in
    check_consistent(store)


def test_state_writes_land_with_the_block(store: ChainStore) -> None:
    steps = build_chain(4)
    for step in steps:
        commit(store, step)
    assert store.get(b"count") == u64(4)
    assert store.get(b"h/" + u64(4)) == steps[3].block.hash
    assert store.get(b"h/" + u64(3)) == steps[2].block.hash
    assert store.get(b"h/" + u64(2)) is None  # deleted by block 4
    assert store.get(b"h/" + u64(1)) is None


def test_certified_range_serves_consecutive_blocks_within_limits(store: ChainStore) -> None:
    steps = build_chain(6)
    for step in steps:
        commit(store, step)
    assert [b.height for b, _ in store.certified_range(1, 100)] == [1, 2, 3, 4, 5, 6]
    assert [b.height for b, _ in store.certified_range(0, 2)] == [1, 2]
    got = store.certified_range(3, 2)
    assert [(b, c) for b, c in got] == [(s.block, s.certificate) for s in steps[2:4]]
    assert [b.height for b, _ in store.certified_range(5, 100)] == [5, 6]
    assert store.certified_range(7, 10) == [] and store.certified_range(1, 0) == []
    assert [b.height for b, _ in store.certified_range(2, 10, max_bytes=1)] == [2]  # always one
    three = sum(len(encode(s.block)) + len(encode(s.certificate)) for s in steps[1:4])
    assert [b.height for b, _ in store.certified_range(2, 10, max_bytes=three)] == [2, 3, 4]
    assert [b.height for b, _ in store.certified_range(2, 10, max_bytes=three - 1)] == [2, 3]


def test_a_snapshot_keeps_reading_the_moment_it_was_taken(store: ChainStore) -> None:
    first, second = build_chain(2)
    commit(store, first)
    with store.snapshot() as snap:
        commit(store, second)
        assert snap.head() == tip_after(first) and snap.block(2) is None
        assert snap.get(b"count") == u64(1)
        assert store.head() == tip_after(second) and store.block(2) == second.block
    with pytest.raises(StoreClosed):
        snap.block(1)


def test_reads_see_commits_of_another_thread(data_dir: Path) -> None:
    import threading

    steps = build_chain(20)
    with open_store(data_dir) as store:
        worker = threading.Thread(target=lambda: [commit(store, s) for s in steps])
        worker.start()
        worker.join(timeout=30)
        assert store.head() == tip_after(steps[-1])
        check_consistent(store)


def test_each_transaction_keeps_its_outcome_in_its_index_entry(store: ChainStore) -> None:
    first, second = build_chain(2, txs_per_block=4)
    commit(store, first)  # without outcomes, as earlier versions stored every block
    outcomes = [f"outcome {i}".encode() for i in range(4)]
    store.commit_block(second.block, second.certificate, second.writes, second.app_hash, outcomes)
    for index, tx in enumerate(first.block.txs):
        assert store.tx_entry(sha256(tx)) == ((1, index), b"")
    for index, tx in enumerate(second.block.txs):
        assert store.tx_entry(sha256(tx)) == ((2, index), outcomes[index])
        assert store.tx_location(sha256(tx)) == (2, index) and store.tx(sha256(tx)) == tx
    assert store.tx_entry(sha256(b"never")) is None
    check_consistent(store)


def test_a_repeated_transaction_keeps_the_outcome_of_its_first_place(store: ChainStore) -> None:
    step = next_step(GENESIS, (b"same", b"other", b"same"))
    store.commit_block(step.block, step.certificate, step.writes, step.app_hash, [b"first", b"x", b"again"])
    assert store.tx_entry(sha256(b"same")) == ((1, 0), b"first")


def test_outcomes_that_do_not_match_the_transactions_write_nothing(store: ChainStore) -> None:
    step = next_step(GENESIS, txs_for(1, 3))
    with pytest.raises(ValueError, match="2 outcomes for a block of 3 transactions"):
        store.commit_block(step.block, step.certificate, step.writes, step.app_hash, [b"a", b"b"])
    assert store.head() is None and store.block(1) is None
    assert all(store.tx_entry(sha256(tx)) is None for tx in step.block.txs)
