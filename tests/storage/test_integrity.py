"""The offline store check: an intact chain passes, and each kind of damage is named by height or key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import plyvel
import pytest

from consensus.events import WAL_CODEC, WalSigned
from consensus.messages import CONSENSUS_CODEC, Block
from primitives.codec import encode
from primitives.hashing import sha256
from storage.errors import DatabaseLocked
from storage.integrity import MAX_PROBLEMS, check_data_dir, read_summary
from storage.keys import META_HEAD, block_key, certificate_key, pack_tx_location, tx_key, u64, wal_height_key, wal_key
from storage.records import HeadRecord
from tests.helpers import block, prepare
from tests.storage.builders import CHAIN, GENESIS, Step, build_chain, commit, next_step, open_store, txs_for


def _write_chain(data_dir: Path, blocks: int = 5) -> list[Step]:
    steps = build_chain(blocks)
    with open_store(data_dir) as store:
        for step in steps:
            commit(store, step)
        store.append_wal([WalSigned(CONSENSUS_CODEC.encode(prepare(block(blocks + 1), 1)))])
    return steps


def _doctor(data_dir: Path, puts: dict[bytes, bytes] | None = None, deletes: tuple[bytes, ...] = ()) -> None:
    db = plyvel.DB(str(data_dir))
    for key, value in (puts or {}).items():
        db.put(key, value)
    for key in deletes:
        db.delete(key)
    db.close()


def _problems(data_dir: Path) -> list[str]:
    return check_data_dir(data_dir, CHAIN, GENESIS.block_hash)


def test_an_intact_chain_with_its_wal_passes(data_dir: Path) -> None:
    _write_chain(data_dir)
    assert _problems(data_dir) == []
    assert read_summary(data_dir).height == 5


def test_an_empty_new_store_passes_and_a_missing_one_does_not(data_dir: Path, tmp_path: Path) -> None:
    open_store(data_dir).close()
    assert _problems(data_dir) == []
    assert _problems(tmp_path / "nowhere") == [f"no data directory at {tmp_path / 'nowhere'}"]


def test_a_block_replaced_by_another_of_the_same_height_is_named(data_dir: Path) -> None:
    steps = _write_chain(data_dir)
    other = next_step(GENESIS, txs_for(99, 3)).block  # a block of another branch, re-labelled as height 3
    forged = Block(replace(other.header, height=3), other.txs)
    _doctor(data_dir, {block_key(3): encode(forged)})
    problems = _problems(data_dir)
    assert any(p.startswith("height 3: the certificate is for block") for p in problems), problems
    assert any(p.startswith("height 3: prev_hash") for p in problems), problems
    assert any(p.startswith("height 4: prev_hash") for p in problems), problems
    assert any(steps[2].block.hash.hex()[:16] in p and p.startswith("hash index") for p in problems), problems


def test_a_tx_index_entry_pointing_elsewhere_is_named(data_dir: Path) -> None:
    steps = _write_chain(data_dir)
    tx = steps[1].block.txs[0]
    _doctor(data_dir, {tx_key(sha256(tx)): pack_tx_location(4, 2)})
    problems = _problems(data_dir)
    assert problems == [
        f"tx index: {sha256(tx).hex()[:16]} points to height 4 position 2, but the transaction is at height 2 "
        "position 0"
    ]


def test_a_missing_or_stray_tx_index_entry_is_named(data_dir: Path) -> None:
    steps = _write_chain(data_dir)
    gone = sha256(steps[0].block.txs[1])
    stray = sha256(b"never committed")
    _doctor(data_dir, {tx_key(stray): pack_tx_location(1, 0)}, deletes=(tx_key(gone),))
    problems = _problems(data_dir)
    assert f"tx index: transaction {gone.hex()[:16]} at height 1 position 1 has no entry" in problems
    stray_line = f"tx index: {stray.hex()[:16]} points to height 1 position 0, but no block"
    assert any(p.startswith(stray_line) for p in problems), problems


def test_a_garbage_wal_record_is_named(data_dir: Path) -> None:
    _write_chain(data_dir)
    seq = 7
    _doctor(data_dir, {wal_key(seq): u64(6) + b"\xc1 not a record", wal_height_key(6, seq): b""})
    problems = _problems(data_dir)
    assert len(problems) >= 1 and all(wal_key(seq).hex() in p for p in problems), problems
    assert "does not decode" in problems[0]


def test_a_wal_record_stored_under_the_wrong_height_is_named(data_dir: Path) -> None:
    _write_chain(data_dir)
    record = WAL_CODEC.encode(WalSigned(CONSENSUS_CODEC.encode(prepare(block(9), 1))))
    _doctor(data_dir, {wal_key(3): u64(2) + record, wal_height_key(2, 3): b""})
    assert _problems(data_dir) == [f"WAL record (key {wal_key(3).hex()}): stored with height 2, but the record is "
                                   "of height 9"]


def test_a_missing_certificate_is_named(data_dir: Path) -> None:
    _write_chain(data_dir)
    _doctor(data_dir, deletes=(certificate_key(2),))
    assert _problems(data_dir) == [f"height 2: commit certificate missing (key {certificate_key(2).hex()})"]


def test_a_missing_block_below_the_head_is_named(data_dir: Path) -> None:
    _write_chain(data_dir)
    _doctor(data_dir, deletes=(block_key(4),))
    problems = _problems(data_dir)
    assert f"height 4: block missing (key {block_key(4).hex()})" in problems


def test_a_head_behind_the_top_block_is_named(data_dir: Path) -> None:
    steps = _write_chain(data_dir, 3)
    head2 = HeadRecord(2, steps[1].block.hash, steps[1].app_hash, steps[1].block.header.timestamp_ms, 0)
    _doctor(data_dir, {META_HEAD: encode(head2)})
    problems = _problems(data_dir)
    assert "height 3: a block is stored above the head (height 2)" in problems
    assert "height 3: a certificate is stored above the head (height 2)" in problems


def test_another_chains_store_is_named(data_dir: Path) -> None:
    _write_chain(data_dir, 1)
    problems = check_data_dir(data_dir, "another-chain", GENESIS.block_hash)
    assert problems == [f"the store belongs to chain {CHAIN!r}, not 'another-chain'"]


def test_many_problems_are_counted_after_the_first_hundred(data_dir: Path) -> None:
    steps = _write_chain(data_dir, 40)
    _doctor(data_dir, deletes=tuple(tx_key(sha256(tx)) for s in steps for tx in s.block.txs))
    problems = _problems(data_dir)
    assert len(problems) == MAX_PROBLEMS + 1 and problems[-1] == f"... and {40 * 3 - MAX_PROBLEMS} more problem(s)"


def test_a_store_held_by_a_process_is_refused_by_its_lock(data_dir: Path) -> None:
    _write_chain(data_dir, 1)
    with open_store(data_dir), pytest.raises(DatabaseLocked, match="locked"):
        check_data_dir(data_dir)


def test_a_flipped_byte_in_a_table_file_is_caught_by_leveldbs_checksums(data_dir: Path) -> None:
    _write_chain(data_dir, 20)
    db = plyvel.DB(str(data_dir))
    db.compact_range()  # move everything from the log into table files
    db.close()
    table = max(data_dir.glob("*.ldb"), key=lambda p: p.stat().st_size)
    raw = bytearray(table.read_bytes())
    raw[len(raw) // 3] ^= 0x40
    table.write_bytes(bytes(raw))
    problems = _problems(data_dir)
    assert any("LevelDB reports damage" in p and "checksum" in p.lower() for p in problems), problems
