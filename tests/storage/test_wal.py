"""The consensus WAL: durable appends, ordered reads, pruning by height, restore."""

from __future__ import annotations

from pathlib import Path

from consensus.events import Propose, WalPrepared, WalRecord, WalSigned
from consensus.messages import (
    CONSENSUS_CODEC,
    Checkpoint,
    NewView,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    Vote,
)
from consensus.replica import Replica
from storage.chainstore import ChainStore
from storage.wal import record_height, signed_height
from tests.helpers import (
    CHAIN,
    T0,
    block,
    commit,
    config,
    genesis_tip,
    keys,
    pre_prepare,
    prepare,
    sent_of,
    sign,
)
from tests.storage.builders import build_chain, head_or_genesis, open_store


def _signed(height: int, sender: int = 1) -> WalSigned:
    return WalSigned(CONSENSUS_CODEC.encode(prepare(block(height), sender)))


def _all_kinds(height: int) -> list[WalRecord]:
    b = block(height)
    k = keys(4)
    votes = tuple(Vote(i, prepare(b, i).signature) for i in range(3))
    prepared = PreparedCertificate(0, b, votes)
    vc = sign(ViewChange(1, height, None, 1, b""), k[1])
    messages = [
        pre_prepare(b),
        prepare(b, 2),
        commit(b, 3),
        sign(Checkpoint(height, b.hash, b.hash, 1, b""), k[1]),
        vc,
        sign(NewView(1, height, (vc,), b, 1, b""), k[1]),
    ]
    return [WalSigned(CONSENSUS_CODEC.encode(m)) for m in messages] + [WalPrepared(prepared)]


def test_the_height_of_every_kind_of_record_is_read_without_decoding() -> None:
    for record in _all_kinds(7):
        assert record_height(record) == 7
        if isinstance(record, WalSigned):
            assert signed_height(record.message) == CONSENSUS_CODEC.decode(record.message).height


def test_records_come_back_in_append_order_across_reopening(data_dir: Path) -> None:
    first = _all_kinds(1)
    second = [_signed(2), _signed(1, 2)]
    with open_store(data_dir) as store:
        store.append_wal(first)
        store.append_wal([])
        store.append_wal(second)
        assert store.wal_records() == first + second
    with open_store(data_dir) as store:
        entries = store.wal_entries()
        assert [e.record for e in entries] == first + second
        assert [e.seq for e in entries] == list(range(len(first) + 2))
        assert [e.height for e in entries] == [1] * len(first) + [2, 1]


def test_prune_drops_only_records_below_the_height(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        store.append_wal([_signed(3), _signed(1), _signed(2), _signed(5), _signed(2, 2)])
        assert store.prune_wal(1) == 0
        assert store.prune_wal(3) == 3
        assert [record_height(r) for r in store.wal_records()] == [3, 5]
        assert store.prune_wal(3) == 0
    with open_store(data_dir) as store:
        assert [record_height(r) for r in store.wal_records()] == [3, 5]


def test_sequence_numbers_never_repeat_even_after_everything_was_pruned(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        store.append_wal([_signed(1), _signed(2)])
        assert store.prune_wal(10) == 2
    with open_store(data_dir) as store:
        store.append_wal([_signed(11)])
        assert [e.seq for e in store.wal_entries()] == [2]


def test_a_block_commit_can_prune_the_wal_in_the_same_batch(store: ChainStore) -> None:
    step = build_chain(1)[0]
    store.append_wal([_signed(1), _signed(2)])
    store.commit_block(step.block, step.certificate, step.writes, step.app_hash, prune_wal_below=2)
    assert [record_height(r) for r in store.wal_records()] == [2]
    assert head_or_genesis(store).height == 1


def test_a_restored_primary_does_not_propose_twice_after_reopening(data_dir: Path) -> None:
    """The point of the WAL (DESIGN.md section 4): the engine rebuilds itself from it."""
    replica = Replica(config(4, 0), genesis_tip())
    out = replica.handle(Propose((b"first",)), T0)
    first = sent_of(out, PrePrepare)[0]
    with open_store(data_dir, chain_id=CHAIN, genesis_hash=genesis_tip().block_hash) as store:
        store.append_wal(out.persist)
    with open_store(data_dir, chain_id=CHAIN, genesis_hash=genesis_tip().block_hash) as store:
        restored = Replica.restore(config(4, 0), store.head() or genesis_tip(), store.wal_records())
    assert sent_of(restored.handle(Propose((b"second",)), T0 + 1), PrePrepare) == []
    assert [m.block.hash for m in sent_of(restored.start(T0 + 2), PrePrepare)] == [first.block.hash]
