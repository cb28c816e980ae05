"""Damaged bytes on disk are reported by key and height and stay local to that key."""

from __future__ import annotations

from pathlib import Path

import plyvel
import pytest

from primitives.hashing import sha256
from storage.errors import CorruptRecord
from storage.keys import block_key, certificate_key, tx_key, wal_key
from tests.storage.builders import Step, build_chain, commit, head_or_genesis, open_store


def _chain_with_damage(data_dir: Path, key: bytes, value: bytes) -> list[Step]:
    steps = build_chain(3)
    with open_store(data_dir) as store:
        for step in steps:
            commit(store, step)
    db = plyvel.DB(str(data_dir))
    db.put(key, value)
    db.close()
    return steps


def test_garbage_in_a_block_key_names_the_height_and_leaves_other_reads_working(data_dir: Path) -> None:
    steps = _chain_with_damage(data_dir, block_key(2), b"\xde\xad\xbe\xef garbage")
    with open_store(data_dir) as store:
        with pytest.raises(CorruptRecord, match="block at height 2") as info:
            store.block(2)
        assert block_key(2).hex() in str(info.value)
        with pytest.raises(CorruptRecord, match="height 2"):
            store.tx(sha256(steps[1].block.txs[0]))
        with pytest.raises(CorruptRecord, match="height 2"):
            store.certified_range(1, 10)
        with pytest.raises(CorruptRecord, match="height 2"):
            store.block_by_hash(steps[1].block.hash)
        # everything else still reads
        assert store.block(1) == steps[0].block and store.block(3) == steps[2].block
        assert store.certified_range(3, 10) == [(steps[2].block, steps[2].certificate)]
        assert store.tx(sha256(steps[0].block.txs[0])) == steps[0].block.txs[0]
        assert store.tx_location(sha256(steps[1].block.txs[0])) == (2, 0)
        assert store.certificate(2) == steps[1].certificate
        assert head_or_genesis(store).height == 3


def test_a_block_stored_under_the_wrong_height_is_caught(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        for step in build_chain(2):
            commit(store, step)
    db = plyvel.DB(str(data_dir))
    db.put(block_key(1), db.get(block_key(2)))
    db.put(certificate_key(1), b"")
    db.close()
    with open_store(data_dir) as store:
        with pytest.raises(CorruptRecord, match="holds the block of height 2"):
            store.block(1)
        with pytest.raises(CorruptRecord, match="commit certificate at height 1"):
            store.certificate(1)


def test_a_damaged_tx_index_entry_or_wal_record_is_named(data_dir: Path) -> None:
    steps = build_chain(1)
    tid = sha256(steps[0].block.txs[0])
    _chain_with_damage(data_dir, tx_key(tid), b"short")
    db = plyvel.DB(str(data_dir))
    db.put(wal_key(0), bytes(8) + b"\x91\x07")
    db.close()
    # A WAL record left in LevelDB by an earlier version is moved into the WAL file at open: garbage stops the open.
    with pytest.raises(CorruptRecord, match="WAL record 0"):
        open_store(data_dir)
    db = plyvel.DB(str(data_dir))
    db.delete(wal_key(0))
    db.close()
    with open_store(data_dir) as store, pytest.raises(CorruptRecord, match="tx index entry"):
        store.tx_location(tid)
