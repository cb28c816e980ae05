"""A staged block (``ChainStore.stage``): every read sees it before its batch is written, and LevelDB after."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from primitives.errors import UsageError
from primitives.hashing import sha256
from storage.chainstore import ChainStore
from storage.state import MAX_STATE_ITEMS
from tests.storage.builders import build_chain, head_or_genesis, open_store


def _reads(store: ChainStore, keys: list[bytes]) -> dict[str, object]:
    read, written = store.state_reader(), store.written_state_keys()
    return {
        "get": {k: store.get(k) for k in keys},
        "reader": {k: read(k) if k in written else None for k in keys},  # as BlockReader reads
        "items": store.state_items(b"doc/", limit=3),
        "all items": store.state_items(b"doc/"),
        "after": store.state_items(b"doc/", after=b"doc/b", limit=2),
    }


def test_a_staged_block_reads_as_written_before_and_after_its_write(tmp_path: Path) -> None:
    first, second = build_chain(2, txs_per_block=3)
    keys = [b"doc/a", b"doc/b", b"doc/c", b"doc/d", b"doc/e", b"doc/never"]
    later = {**second.writes, b"doc/a": None, b"doc/b": b"B2", b"doc/d": b"4", b"doc/e": None}
    with open_store(tmp_path / "reference") as reference:  # the same two blocks, written one after the other
        reference.commit_block(first.block, first.certificate,
                               {**first.writes, b"doc/a": b"1", b"doc/b": b"2", b"doc/c": b"3", b"doc/e": b"5"},
                               first.app_hash)
        reference.commit_block(second.block, second.certificate, later, second.app_hash)
        expected = _reads(reference, keys)
    assert expected["items"] == [(b"doc/b", b"B2"), (b"doc/c", b"3"), (b"doc/d", b"4")]  # deletes hide a and e

    with open_store(tmp_path / "data") as store:
        store.commit_block(first.block, first.certificate,
                           {**first.writes, b"doc/a": b"1", b"doc/b": b"2", b"doc/c": b"3", b"doc/e": b"5"},
                           first.app_hash)
        store.stage(second.block, later)
        assert _reads(store, keys) == expected  # before LevelDB holds the block
        assert all(store.has_tx(sha256(tx)) for tx in second.block.txs)
        assert head_or_genesis(store).height == 1  # the head moves with the write, not with the stage
        assert store.get(b"doc/a") is None and store.block(2) is None
        with pytest.raises(UsageError, match="block 2 is staged"):
            store.stage(second.block, later)
        store.commit_block(second.block, second.certificate, later, second.app_hash)
        assert store._staged == {} and not store._staged_ids  # cleared: LevelDB answers
        assert _reads(store, keys) == expected
        assert head_or_genesis(store).height == 2 and all(store.has_tx(sha256(tx)) for tx in second.block.txs)


def test_the_write_runs_on_another_thread_while_reads_go_on(tmp_path: Path) -> None:
    """What catch-up does: stage, write on a thread, read meanwhile; every read gives the staged answer."""
    steps = build_chain(40, txs_per_block=50)
    with open_store(tmp_path / "data") as store:
        wrong: list[tuple[int, bytes]] = []
        for step in steps:
            store.stage(step.block, step.writes)
            writer = threading.Thread(target=store.commit_block,
                                      args=(step.block, step.certificate, step.writes, step.app_hash))
            writer.start()
            while writer.is_alive():
                for key, value in step.writes.items():
                    if store.get(key) != value:
                        wrong.append((step.block.height, key))
                if not all(store.has_tx(sha256(tx)) for tx in step.block.txs[:5]):
                    wrong.append((step.block.height, b"tx"))
            writer.join()
        assert wrong == []
        assert head_or_genesis(store).height == 40


def test_a_scan_over_a_staged_block_pages_past_the_item_limit(tmp_path: Path) -> None:
    first, second = build_chain(2, txs_per_block=1)
    stored = {b"p/%06d" % i: b"v" for i in range(MAX_STATE_ITEMS + 10)}
    with open_store(tmp_path / "data") as store:
        store.commit_block(first.block, first.certificate, {**first.writes, **stored}, first.app_hash)
        deleted = {b"p/%06d" % i: None for i in range(20)}
        store.stage(second.block, {**second.writes, **deleted})
        items = store.state_items(b"p/", limit=MAX_STATE_ITEMS)
        assert len(items) == MAX_STATE_ITEMS - 10 and items[0][0] == b"p/000020"
        with pytest.raises(UsageError, match="limit must be"):
            store.state_items(b"p/", limit=0)
