"""Filters of stored keys: a key added is never reported absent, they stay selective, the store answers as LevelDB."""

from __future__ import annotations

import hashlib
from pathlib import Path

from primitives.hashing import sha256
from storage.keyfilter import FALSE_POSITIVE_RATE, KeyFilter
from tests.storage.builders import build_chain, commit, open_store


def _ids(label: str, n: int) -> list[bytes]:
    return [hashlib.sha256(f"{label}/{i}".encode()).digest() for i in range(n)]


def test_every_added_id_is_found_as_the_filter_grows_and_new_ids_mostly_are_not() -> None:
    filt = KeyFilter(first_capacity=1_000)
    added = _ids("committed", 10_000)
    for start in range(0, len(added), 700):  # blocks of 700, across the growth points
        filt.add_many(added[start : start + 700])
    assert len(filt) == 10_000
    assert filt.filters == 4  # capacities 1,000, then twice the total so far: 2,000, 6,000, 18,000
    assert all(tid in filt for tid in added)
    fresh = _ids("never", 20_000)
    false_positives = sum(tid in filt for tid in fresh)
    assert false_positives < 3 * FALSE_POSITIVE_RATE * len(fresh) * filt.filters  # each filter adds its rate, at most


def test_a_filter_sized_for_what_it_holds_keeps_one_filter() -> None:
    filt = KeyFilter(expected=600, first_capacity=1_000)
    filt.add_many(iter(_ids("x", 1_200)))  # any iterable
    assert filt.filters == 1 and len(filt) == 1_200


def test_the_store_answers_from_the_index_as_before_and_rebuilds_the_filter_at_open(tmp_path: Path) -> None:
    steps = build_chain(3, txs_per_block=6)
    with open_store(tmp_path / "data") as store:
        for step in steps[:2]:
            commit(store, step)
        assert all(store.has_tx(sha256(tx)) for step in steps[:2] for tx in step.block.txs)
        assert not any(store.has_tx(sha256(tx)) for tx in steps[2].block.txs)
    with open_store(tmp_path / "data") as store:  # the filter is memory: built again from the index
        assert all(store.has_tx(sha256(tx)) for step in steps[:2] for tx in step.block.txs)
        commit(store, steps[2])
        assert all(store.has_tx(sha256(tx)) for tx in steps[2].block.txs)
        # The filter only ever rules out: an id it holds that the index does not is still not committed.
        store._committed.add_many([sha256(b"in the filter only")])
        assert not store.has_tx(sha256(b"in the filter only"))
        assert not store.has_tx(sha256(b"never"))


def test_state_reads_agree_with_leveldb_for_written_deleted_and_never_written_keys(tmp_path: Path) -> None:
    first, second = build_chain(2, txs_per_block=2)
    with open_store(tmp_path / "data") as store:
        store.commit_block(first.block, first.certificate, {**first.writes, b"doc/a": b"1", b"doc/b": b"2"},
                           first.app_hash)
        store.commit_block(second.block, second.certificate, {**second.writes, b"doc/b": None, b"doc/c": b"3"},
                           second.app_hash)
        expected = {b"doc/a": b"1", b"doc/b": None, b"doc/c": b"3", b"doc/never": None}
        read, written = store.state_reader(), store.written_state_keys()
        assert {k: store.get(k) for k in expected} == expected == {k: read(k) for k in expected}
        assert {k: read(k) if k in written else None for k in expected} == expected  # as BlockReader reads
    with open_store(tmp_path / "data") as store:  # rebuilt at open from the state keys
        read, written = store.state_reader(), store.written_state_keys()
        assert {k: store.get(k) for k in expected} == expected == {k: read(k) if k in written else None
                                                                   for k in expected}
        assert b"doc/a" in written and b"doc/c" in written  # built from the keys LevelDB holds: not b"doc/b"
        with store.snapshot() as snap:  # a snapshot reads LevelDB as it always did
            assert {k: snap.get(k) for k in expected} == expected
