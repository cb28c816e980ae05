"""The application's key/value namespace: reads, bounded prefix scans, paging."""

from __future__ import annotations

import pytest

from primitives.errors import UsageError
from storage.chainstore import ChainStore
from tests.storage.builders import GENESIS, commit, head_or_genesis, next_step, txs_for


def _commit_writes(store: ChainStore, writes: dict[bytes, bytes | None]) -> None:
    tip = head_or_genesis(store)
    step = next_step(tip, txs_for(tip.height + 1, 1))
    store.commit_block(step.block, step.certificate, writes, step.app_hash)


def test_puts_and_deletes_apply_with_their_block(store: ChainStore) -> None:
    _commit_writes(store, {b"a": b"1", b"b": b"2"})
    _commit_writes(store, {b"a": None, b"b": b"3", b"c": b""})
    assert store.get(b"a") is None and store.get(b"b") == b"3" and store.get(b"c") == b""


def test_prefix_scans_are_ordered_bounded_and_paged(store: ChainStore) -> None:
    writes: dict[bytes, bytes | None] = {b"rx/%03d" % i: b"v%d" % i for i in range(25)}
    writes |= {b"rw/1": b"x", b"ry": b"y", b"r": b"z", b"rx\xff\xff": b"edge"}
    _commit_writes(store, writes)
    page = store.state_items(b"rx/", limit=10)
    assert [k for k, _ in page] == [b"rx/%03d" % i for i in range(10)]
    page2 = store.state_items(b"rx/", after=page[-1][0], limit=10)
    assert [k for k, _ in page2] == [b"rx/%03d" % i for i in range(10, 20)]
    rest = store.state_items(b"rx/", after=page2[-1][0], limit=10)
    assert len(rest) == 5 and rest[-1] == (b"rx/024", b"v24")
    assert store.state_items(b"rx/", after=rest[-1][0]) == []
    assert store.state_items(b"rx\xff") == [(b"rx\xff\xff", b"edge")]
    assert [k for k, _ in store.state_items(b"r", limit=3)] == [b"r", b"rw/1", b"rx/000"]
    assert len(store.state_items(limit=1000)) == 29  # none of the chain's own keys leak in
    with pytest.raises(UsageError):
        store.state_items(b"rx/", limit=0)
    with pytest.raises(UsageError):
        store.state_items(b"rx/", after=b"other")


def test_a_fresh_store_has_no_state(store: ChainStore) -> None:
    assert store.head() is None
    assert store.get(b"count") is None and store.state_items() == []
    commit(store, next_step(GENESIS, ()))
    assert store.state_items() != []


def test_the_fast_state_reader_reads_what_get_reads_live_and_in_a_snapshot(store: ChainStore) -> None:
    _commit_writes(store, {b"a": b"1", b"b": b""})
    read = store.state_reader()
    snapshot = store.snapshot()
    frozen = snapshot.state_reader()
    _commit_writes(store, {b"a": b"2", b"c": b"3"})
    for key in (b"a", b"b", b"c", b"missing", b""):
        assert read(key) == store.get(key)
        assert frozen(key) == snapshot.get(key)
    assert read(b"a") == b"2" and frozen(b"a") == b"1" and frozen(b"c") is None
    snapshot.close()


@pytest.mark.parametrize(
    ("writes", "named"),
    [
        ({b"ok": b"1", "a": b"1"}, "state keys are bytes, got str"),
        ({b"ok": b"1", b"a": 7}, "must be bytes or None, got int"),
    ],
)
def test_a_malformed_state_write_is_refused_and_nothing_of_the_block_lands(
    store: ChainStore, writes: dict[bytes, bytes | None], named: str
) -> None:
    _commit_writes(store, {b"before": b"x"})
    head = store.head()
    with pytest.raises(UsageError, match=named):
        _commit_writes(store, writes)
    assert store.get(b"ok") is None and store.get(b"before") == b"x"
    assert store.head() == head
