"""A block's reads of the chain store: each key read once, and a key never written answered without LevelDB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from node.healthcare.ledger.state import BlockReader, DictState
from tests.storage.builders import build_chain, open_store


def test_a_block_reads_what_the_store_holds_and_nothing_for_keys_never_written(tmp_path: Path) -> None:
    first, second = build_chain(2, txs_per_block=1)
    with open_store(tmp_path / "data") as store:
        store.commit_block(first.block, first.certificate, {b"k/a": b"1", b"k/b": b"2"}, first.app_hash)
        store.commit_block(second.block, second.certificate, {b"k/b": None}, second.app_hash)
        levelled: list[bytes] = []
        raw = store.state_reader

        def counting() -> Callable[[bytes], bytes | None]:
            read = raw()

            def each(key: bytes) -> bytes | None:
                levelled.append(key)
                return read(key)

            return each

        store.state_reader = counting  # type: ignore[method-assign]
        reader = BlockReader(store)
        keys = [b"k/a", b"k/b", b"k/never", b"k/a", b"k/never"]
        assert [reader.get(k) for k in keys] == [b"1", None, None, b"1", None]
        # written keys (a deleted one too) were read from LevelDB once each; the never-written one not at all
        assert levelled == [b"k/a", b"k/b"]


def test_a_base_without_a_filter_is_read_for_every_key() -> None:
    state = DictState()
    state.apply({b"k/a": b"1"})
    reader = BlockReader(state)
    assert [reader.get(k) for k in (b"k/a", b"k/never")] == [b"1", None]
