"""A committed transaction's result: from its tx index entry, or from state in a store of an earlier version."""

from __future__ import annotations

from pathlib import Path

from node.runtime import RESULT_PREFIX, committed_result
from primitives.codec import pack
from primitives.hashing import sha256
from tests.storage.builders import GENESIS, next_step, open_store, tip_after


def test_the_result_comes_from_the_index_entry_and_else_from_an_earlier_versions_state(tmp_path: Path) -> None:
    with open_store(tmp_path / "data") as store:
        # Height 1 as an earlier version stored it: results as state, 12-byte index entries.
        old = next_step(GENESIS, (b"old-ok", b"old-refused", b"oldest"))
        writes = {**old.writes,
                  RESULT_PREFIX + sha256(b"old-ok"): pack([True, "ok", ""]),
                  RESULT_PREFIX + sha256(b"old-refused"): pack([False, "already-anchored", "document 00 is"])}
        store.commit_block(old.block, old.certificate, writes, old.app_hash)
        # Height 2 as this version stores it: the outcome in the entry, nothing in state.
        new = next_step(tip_after(old), (b"new-ok", b"new-refused"))
        store.commit_block(new.block, new.certificate, new.writes, new.app_hash,
                           [pack([True, "ok", ""]), pack([False, "not-enrolled", "the signer is not"])])

        assert committed_result(store, sha256(b"old-ok")) == ((1, 0), True, "ok", "")
        assert committed_result(store, sha256(b"old-refused")) == ((1, 1), False, "already-anchored", "document 00 is")
        assert committed_result(store, sha256(b"oldest")) == ((1, 2), True, "ok", "")  # before results were kept
        assert committed_result(store, sha256(b"new-ok")) == ((2, 0), True, "ok", "")
        assert committed_result(store, sha256(b"new-refused")) == ((2, 1), False, "not-enrolled", "the signer is not")
        assert store.get(RESULT_PREFIX + sha256(b"new-refused")) is None
        assert committed_result(store, sha256(b"never")) is None
