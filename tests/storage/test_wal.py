"""The consensus WAL: durable appends, ordered reads, pruning by height, restore."""

from __future__ import annotations

import logging
from pathlib import Path

import plyvel
import pytest

from consensus.events import WAL_CODEC, Propose, WalPrepared, WalRecord, WalSigned
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
from storage.errors import CorruptRecord
from storage.integrity import check_data_dir
from storage.keys import META_WAL_NEXT, WAL, WAL_BY_HEIGHT, u64
from storage.wal import frame, record_height, signed_height
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


def test_records_of_committed_heights_are_pruned_around_a_block_commit(store: ChainStore) -> None:
    step = build_chain(1)[0]
    store.append_wal([_signed(1), _signed(2)])
    store.commit_block(step.block, step.certificate, step.writes, step.app_hash)
    store.prune_wal(2)
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


# ---------------------------------------------------------------- the log file


def _log_file(data_dir: Path) -> Path:
    (path,) = sorted((data_dir / "wal").glob("wal-*.log"))
    return path


def test_records_go_to_the_wal_file_not_to_leveldb(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        store.append_wal(_all_kinds(4))
        size = _log_file(data_dir).stat().st_size
    assert size > sum(len(WAL_CODEC.encode(r)) for r in _all_kinds(4))
    db = plyvel.DB(str(data_dir))
    try:
        assert list(db.iterator(prefix=WAL)) == [] and list(db.iterator(prefix=WAL_BY_HEIGHT)) == []
    finally:
        db.close()


def test_a_torn_last_append_is_dropped_and_the_log_goes_on(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with open_store(data_dir) as store:
        store.append_wal([_signed(1), _signed(2)])
        store.append_wal([_signed(3), _signed(3, 2)])
    path = _log_file(data_dir)
    whole = path.read_bytes()
    for cut in (1, 9, 30, 60):  # inside the last frame's header, and inside its payload
        path.write_bytes(whole[:-cut])
        with caplog.at_level(logging.WARNING, logger="storage.wal"), open_store(data_dir) as store:
            assert [record_height(r) for r in store.wal_records()] == [1, 2, 3]
        assert "torn last append" in caplog.text
        caplog.clear()
    with open_store(data_dir) as store:
        store.append_wal([_signed(4)])
        entries = store.wal_entries()
    assert [e.height for e in entries] == [1, 2, 3, 4]
    assert [e.seq for e in entries] == [0, 1, 2, 3]


def test_a_damaged_record_inside_the_log_stops_the_open_naming_file_and_offset(data_dir: Path) -> None:
    """Dropping it would let the replica forget a vote it sent, and sign another for the same height."""
    with open_store(data_dir) as store:
        store.append_wal([_signed(1), _signed(2), _signed(3)])
    path = _log_file(data_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40  # inside the second frame: the third is intact
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecord, match=r"checksum mismatch, with intact frames after it") as info:
        open_store(data_dir)
    assert str(path) in str(info.value) and "offset" in str(info.value)
    problems = check_data_dir(data_dir)
    assert any(str(path) in p and "checksum mismatch" in p for p in problems), problems


def test_a_record_filed_under_the_wrong_height_is_named_by_the_store_check(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        store.append_wal([_signed(1)])
    path = _log_file(data_dir)
    data = path.read_bytes()
    header = 24  # magic, generation, first sequence number
    payload = WAL_CODEC.encode(_signed(9))
    path.write_bytes(data[:header] + frame(0, 2, payload))
    assert check_data_dir(data_dir) == [
        f"WAL record 0 in {path} at offset {header}: stored with height 2, but the record is of height 9"
    ]


def test_a_prune_interrupted_at_any_step_leaves_one_whole_generation(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        store.append_wal([_signed(1), _signed(2), _signed(3)])
    folder = data_dir / "wal"
    old = _log_file(data_dir)
    saved = old.read_bytes()
    # Crashed before the rename: a half-written next generation lies beside the old one.
    (folder / "wal-0000000000000002.tmp").write_bytes(saved[:40])
    with open_store(data_dir) as store:
        assert [record_height(r) for r in store.wal_records()] == [1, 2, 3]
        assert store.prune_wal(3) == 2
    assert [p.name for p in folder.iterdir()] == ["wal-0000000000000002.log"]
    # Crashed after the rename, before removing the old generation: the newer one is kept.
    old.write_bytes(saved)
    with open_store(data_dir) as store:
        assert [record_height(r) for r in store.wal_records()] == [3]
        store.append_wal([_signed(4)])
        assert [e.seq for e in store.wal_entries()] == [2, 3]
    assert sorted(p.name for p in folder.iterdir()) == ["wal-0000000000000002.log"]


def test_a_wal_kept_in_leveldb_by_an_earlier_version_moves_into_the_file(data_dir: Path) -> None:
    records = [_signed(5), _signed(6), _signed(5, 2)]
    with open_store(data_dir):
        pass
    db = plyvel.DB(str(data_dir))
    for seq, record in enumerate(records, start=10):  # the earlier layout: seq -> height + record, and an index
        height = record_height(record)
        db.put(WAL + u64(seq), u64(height) + WAL_CODEC.encode(record))
        db.put(WAL_BY_HEIGHT + u64(height) + u64(seq), b"")
    db.put(META_WAL_NEXT, u64(20))
    db.close()
    for _ in range(2):  # a second open finds nothing left to move
        with open_store(data_dir) as store:
            entries = store.wal_entries()
            assert [e.record for e in entries] == records and [e.seq for e in entries] == [10, 11, 12]
    db = plyvel.DB(str(data_dir))
    try:
        assert list(db.iterator(prefix=WAL)) == [] and db.get(META_WAL_NEXT) is None
    finally:
        db.close()
    with open_store(data_dir) as store:
        assert store.prune_wal(6) == 2
        store.append_wal([_signed(7)])
        assert [e.seq for e in store.wal_entries()] == [11, 20]
