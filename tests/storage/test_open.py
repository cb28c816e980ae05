"""Opening a data directory: creation, reopening, and the clear refusals."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import plyvel
import pytest

from primitives.codec import pack
from primitives.errors import UsageError
from storage.chainstore import ChainStore
from storage.errors import ChainMismatch, CorruptRecord, DatabaseLocked, SchemaMismatch, StorageError, StoreClosed
from storage.keys import META_HEAD, META_VERSION
from storage.metadata import SCHEMA_VERSION
from tests.storage.builders import CHAIN, REPO_ROOT, build_chain, commit, open_store

OPEN_IN_CHILD = textwrap.dedent(
    """
    import sys
    from tests.storage.builders import open_store
    from storage.errors import StorageError
    try:
        store = open_store(sys.argv[1])
    except StorageError as exc:
        print(type(exc).__name__, exc)
        sys.exit(3)
    print("ready", flush=True)
    sys.stdin.read()
    store.close()
    """
)


def _child(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", OPEN_IN_CHILD, str(data_dir)],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _poke(data_dir: Path, key: bytes, value: bytes) -> None:
    db = plyvel.DB(str(data_dir))
    db.put(key, value)
    db.close()


def test_a_new_directory_starts_at_genesis(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        assert store.head() is None
        assert store.block(0) is None and store.block(1) is None
        assert store.wal_records() == [] and store.evidence() == []
    with open_store(data_dir) as store:
        assert store.head() is None


def test_parent_directories_are_created(tmp_path: Path) -> None:
    with open_store(tmp_path / "a" / "b" / "c") as store:
        assert store.path == tmp_path / "a" / "b" / "c"


def test_the_head_survives_reopening_with_its_view_and_app_hash(data_dir: Path) -> None:
    steps = build_chain(3)
    with open_store(data_dir) as store:
        for step in steps:
            tip = commit(store, step)
    with open_store(data_dir) as store:
        assert store.head() == tip
        assert tip.app_hash == steps[-1].app_hash and tip.view == steps[-1].certificate.view


def test_a_second_process_is_refused_with_a_message_naming_the_directory(store: ChainStore) -> None:
    child = _child(store.path)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 3, err
    assert out.startswith("DatabaseLocked")
    assert str(store.path) in out and "another medchain process" in out


def test_opening_a_directory_a_live_process_holds_fails_until_it_exits(data_dir: Path) -> None:
    child = _child(data_dir)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseLocked, match="another medchain process seems to be using it") as info:
            open_store(data_dir)
        assert str(data_dir) in str(info.value)
    finally:
        child.communicate(input="", timeout=30)
    assert child.returncode == 0
    with open_store(data_dir) as store:  # the lock went with the process
        assert store.head() is None


def test_a_directory_of_another_schema_version_is_refused_naming_both_versions(data_dir: Path) -> None:
    open_store(data_dir).close()
    _poke(data_dir, META_VERSION, pack(SCHEMA_VERSION + 41))
    with pytest.raises(SchemaMismatch) as info:
        open_store(data_dir)
    message = str(info.value)
    assert str(data_dir) in message
    assert f"version {SCHEMA_VERSION + 41}" in message and f"version {SCHEMA_VERSION}" in message


def test_a_directory_of_another_chain_is_refused(data_dir: Path) -> None:
    open_store(data_dir).close()
    with pytest.raises(ChainMismatch, match="other-chain") as info:
        open_store(data_dir, chain_id="other-chain")
    assert str(data_dir) in str(info.value)
    with pytest.raises(ChainMismatch, match="genesis"):
        open_store(data_dir, chain_id=CHAIN, genesis_hash=bytes(32))
    with open_store(data_dir) as store:  # refusals change nothing
        assert store.head() is None and store.chain_id == CHAIN


def test_a_leveldb_that_is_not_a_medchain_store_is_refused(data_dir: Path) -> None:
    db = plyvel.DB(str(data_dir), create_if_missing=True)
    db.put(b"someone", b"else")
    db.close()
    with pytest.raises(StorageError, match="not a medchain store"):
        open_store(data_dir)


def test_a_damaged_head_record_is_reported_by_name(data_dir: Path) -> None:
    open_store(data_dir).close()
    _poke(data_dir, META_HEAD, b"\x93garbage")
    with pytest.raises(CorruptRecord, match="corrupt head") as info:
        open_store(data_dir)
    assert META_HEAD.hex() in str(info.value)


def test_a_failed_open_releases_the_lock(data_dir: Path) -> None:
    open_store(data_dir).close()
    with pytest.raises(ChainMismatch):
        open_store(data_dir, chain_id="other-chain")
    open_store(data_dir).close()


def test_the_genesis_hash_must_be_a_hash(data_dir: Path) -> None:
    with pytest.raises(UsageError):
        ChainStore.open(data_dir, CHAIN, b"short")


def test_a_closed_store_says_so(data_dir: Path) -> None:
    store = open_store(data_dir)
    store.close()
    with pytest.raises(StoreClosed, match=str(data_dir)):
        store.block(1)
