"""The vault on a real LevelDB: sealing, binding, locking, and erasure that leaves nothing on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import plyvel
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import node.healthcare.vault as vault_module
from node.healthcare.fhir import new_salt, validate_resource
from node.healthcare.vault import (
    Vault,
    VaultClosed,
    VaultConflict,
    VaultCorrupt,
    VaultErased,
    VaultError,
    VaultLocked,
    VaultMissing,
)
from primitives.errors import UsageError
from storage.errors import DatabaseLocked

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = "Zebediah Quartermaine-Oyelaran"
_, PLAINTEXT = validate_resource(
    {
        "resourceType": "Patient",
        "name": [{"family": "Quartermaine-Oyelaran", "given": ["Zebediah"], "text": SECRET_NAME}],
        "birthDate": "1961-07-04",
    }
)
A, B, C = (bytes([i]) * 16 for i in (0xA1, 0xB2, 0xC3))

OPEN_IN_CHILD = textwrap.dedent(
    """
    import sys
    from node.healthcare.vault import Vault, VaultError
    try:
        Vault.open(sys.argv[1]).close()
    except VaultError as exc:
        print(type(exc).__name__, exc)
        sys.exit(3)
    """
)


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "vault"


def _files(directory: Path) -> dict[str, bytes]:
    return {str(f.relative_to(directory)): f.read_bytes() for f in directory.rglob("*") if f.is_file()}


def _found_in_files(directory: Path, needles: dict[str, bytes]) -> list[tuple[str, str]]:
    return [
        (name, what) for name, data in _files(directory).items() for what, needle in needles.items() if needle in data
    ]


def _raw_items(directory: Path) -> list[tuple[bytes, bytes]]:
    db = plyvel.DB(str(directory))
    try:
        return list(db.iterator())
    finally:
        db.close()


def _raw_parts(directory: Path, record_id: bytes) -> dict[bytes, bytes]:
    return {key: value for key, value in _raw_items(directory) if record_id in key}


def _aad(record_id: bytes, version: int) -> bytes:
    return record_id + version.to_bytes(8, "big")


def _data_key_from_raw(directory: Path, record_id: bytes, version: int, salt: bytes) -> bytes:
    """Find the AES key among the record's raw values, and prove it is the key by decrypting with it."""
    values = list(_raw_parts(directory, record_id).values())
    candidates = [v for v in values if len(v) == 32 and v != salt]
    sealed = [v for v in values if len(v) == 12 + len(PLAINTEXT) + 16]
    assert len(candidates) == 1 and len(sealed) == 1
    key = candidates[0]
    assert AESGCM(key).decrypt(sealed[0][:12], sealed[0][12:], _aad(record_id, version)) == PLAINTEXT
    return key


# ---------------------------------------------------------------- round trip


def test_a_stored_version_comes_back(vault_dir: Path) -> None:
    salt = new_salt()
    with Vault.open(vault_dir) as vault:
        vault.put(A, 1, PLAINTEXT, salt)
        assert vault.get(A, 1) == (PLAINTEXT, salt)
        assert vault.versions(A) == [1] and vault.holds(A) and not vault.erased(A)
        assert vault.versions(B) == [] and not vault.holds(B)
    with Vault.open(vault_dir) as vault:
        assert vault.get(A, 1) == (PLAINTEXT, salt)


def test_versions_are_listed_in_order_and_each_has_its_own_key(vault_dir: Path) -> None:
    salts = {v: new_salt() for v in (3, 1, 2)}
    with Vault.open(vault_dir) as vault:
        for version, salt in salts.items():
            vault.put(A, version, PLAINTEXT + str(version).encode(), salt)
        assert vault.versions(A) == [1, 2, 3]
        assert vault.get(A, 2) == (PLAINTEXT + b"2", salts[2])
    keys = {value for value in _raw_parts(vault_dir, A).values() if len(value) == 32} - set(salts.values())
    assert len(keys) == 3


def test_a_version_is_written_once(vault_dir: Path) -> None:
    with Vault.open(vault_dir) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        with pytest.raises(VaultConflict):
            vault.put(A, 1, b"other content", new_salt())
        assert vault.get(A, 1)[0] == PLAINTEXT


def test_a_version_never_stored_is_missing(vault_dir: Path) -> None:
    with Vault.open(vault_dir) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        with pytest.raises(VaultMissing):
            vault.get(A, 2)
        with pytest.raises(VaultMissing):
            vault.get(B, 1)


@pytest.mark.parametrize(
    ("record_id", "version", "salt"),
    [(b"short", 1, bytes(32)), (A, -1, bytes(32)), (A, 2**64, bytes(32)), (A, True, bytes(32)), (A, 1, b"salt")],
)
def test_bad_arguments_are_our_callers_fault(vault_dir: Path, record_id: bytes, version: int, salt: bytes) -> None:
    with Vault.open(vault_dir) as vault, pytest.raises(UsageError):
        vault.put(record_id, version, PLAINTEXT, salt)


def test_a_closed_vault_refuses_work(vault_dir: Path) -> None:
    vault = Vault.open(vault_dir)
    vault.close()
    vault.close()
    with pytest.raises(VaultClosed):
        vault.get(A, 1)


def test_concurrent_calls_from_a_thread_pool(vault_dir: Path) -> None:
    ids = [os.urandom(16) for _ in range(64)]
    with Vault.open(vault_dir) as vault, ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda rid: vault.put(rid, 1, rid * 4, bytes(32)), ids))
        assert list(pool.map(lambda rid: vault.get(rid, 1)[0], ids)) == [rid * 4 for rid in ids]
        assert sum(pool.map(vault.shred, ids[:32])) == 32
        assert [vault.holds(rid) for rid in ids] == [False] * 32 + [True] * 32


# ---------------------------------------------------------------- on disk


def test_the_plaintext_never_reaches_the_disk(vault_dir: Path) -> None:
    with Vault.open(vault_dir) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
    assert _found_in_files(vault_dir, {"plaintext": PLAINTEXT, "name": SECRET_NAME.encode()}) == []
    assert all(PLAINTEXT not in value for value in _raw_parts(vault_dir, A).values())


def test_ciphertext_and_key_moved_to_another_record_do_not_decrypt(vault_dir: Path) -> None:
    # Swapping only the ciphertexts would fail even without associated data (each is under its own
    # key); moving a whole version (ciphertext, key and salt) is what the record id in the AAD stops.
    with Vault.open(vault_dir) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        vault.put(B, 1, b'{"resourceType":"Patient"}', new_salt())
    parts_a, parts_b = _raw_parts(vault_dir, A), _raw_parts(vault_dir, B)
    db = plyvel.DB(str(vault_dir))
    for key, value in parts_a.items():
        db.put(key.replace(A, B), value)
    for key, value in parts_b.items():
        db.put(key.replace(B, A), value)
    db.close()
    with Vault.open(vault_dir) as vault:
        with pytest.raises(VaultCorrupt):
            vault.get(A, 1)
        with pytest.raises(VaultCorrupt):
            vault.get(B, 1)


def test_a_version_moved_to_another_version_does_not_decrypt(vault_dir: Path) -> None:
    with Vault.open(vault_dir) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
    db = plyvel.DB(str(vault_dir))
    for key, value in _raw_items_of(db, A):
        db.put(key.replace(A + (1).to_bytes(8, "big"), A + (2).to_bytes(8, "big")), value)
    db.close()
    with Vault.open(vault_dir) as vault:
        assert vault.versions(A) == [1, 2]
        with pytest.raises(VaultCorrupt):
            vault.get(A, 2)


def _raw_items_of(db: Any, record_id: bytes) -> list[tuple[bytes, bytes]]:
    return [(key, value) for key, value in db.iterator() if record_id in key]


def test_a_flipped_ciphertext_bit_is_corruption(vault_dir: Path) -> None:
    with Vault.open(vault_dir) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
    db = plyvel.DB(str(vault_dir))
    for key, value in _raw_items_of(db, A):
        if len(value) > 32:
            db.put(key, value[:-1] + bytes([value[-1] ^ 1]))
    db.close()
    with Vault.open(vault_dir) as vault, pytest.raises(VaultCorrupt, match="decrypt"):
        vault.get(A, 1)


# ---------------------------------------------------------------- locking


def test_a_second_open_in_this_process_is_refused(vault_dir: Path) -> None:
    with Vault.open(vault_dir), pytest.raises(VaultLocked) as caught:
        Vault.open(vault_dir)
    assert str(vault_dir) in str(caught.value)
    assert isinstance(caught.value, DatabaseLocked)


def test_a_second_process_is_refused_with_the_path(vault_dir: Path) -> None:
    with Vault.open(vault_dir):
        child = subprocess.run(
            [sys.executable, "-c", OPEN_IN_CHILD, str(vault_dir)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert child.returncode == 3, child.stderr
    assert child.stdout.startswith("VaultLocked") and str(vault_dir) in child.stdout


def test_a_leveldb_that_is_not_a_vault_is_refused(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "other"), create_if_missing=True)
    db.put(b"head", b"x")
    db.close()
    with pytest.raises(VaultError, match="not a medchain vault"):
        Vault.open(tmp_path / "other")


# ---------------------------------------------------------------- erasure


class _KeySpy:
    """Stands in for AESGCM in node.healthcare.vault and remembers every data key it makes."""

    keys: list[bytes] = []

    @classmethod
    def generate_key(cls, bit_length: int) -> bytes:
        key = AESGCM.generate_key(bit_length)
        cls.keys.append(key)
        return key

    def __new__(cls, key: bytes) -> Any:
        return AESGCM(key)


def test_after_shredding_get_says_erased(vault_dir: Path) -> None:
    with Vault.open(vault_dir, clock=lambda: 1_700_000_000.5) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        vault.put(A, 2, PLAINTEXT, new_salt())
        assert vault.shred(A) == 2
        for version in (1, 2, 3):
            with pytest.raises(VaultErased):
                vault.get(A, version)
        assert vault.erased(A) and not vault.holds(A) and vault.versions(A) == []
        assert vault.erased_at(A) == 1_700_000_000_500
        with pytest.raises(VaultErased):
            vault.put(A, 3, PLAINTEXT, new_salt())
    with Vault.open(vault_dir) as vault:
        assert vault.erased(A)
        with pytest.raises(VaultErased):
            vault.get(A, 1)


def test_shredding_is_idempotent(vault_dir: Path) -> None:
    with Vault.open(vault_dir, clock=lambda: 1.0) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        assert vault.shred(A) == 1
    with Vault.open(vault_dir, clock=lambda: 2.0) as vault:
        assert vault.shred(A) == 0
        assert vault.erased_at(A) == 1000


@pytest.mark.parametrize("session", ["reopened", "same-session", "busy"])
def test_after_shredding_nothing_of_the_record_is_left_on_disk(
    vault_dir: Path, monkeypatch: pytest.MonkeyPatch, session: str
) -> None:
    """Shred, close, then search every file of the directory byte by byte for plaintext, salt and key.

    ``same-session`` is the hard case: put and shred land in one LevelDB memtable, which one manual
    compaction after the deletion does not purge.  ``busy`` pushes the record's table files down a few
    levels with other records first.
    """
    salt, salt_c = new_salt(), new_salt()
    _KeySpy.keys = []
    monkeypatch.setattr(vault_module, "AESGCM", _KeySpy)
    with Vault.open(vault_dir) as vault:
        if session == "busy":
            for _ in range(2000):
                vault.put(os.urandom(16), 1, os.urandom(2000), new_salt())
        vault.put(A, 1, PLAINTEXT, salt)
        key = _KeySpy.keys[-1]
        vault.put(C, 1, PLAINTEXT, salt_c)
        if session == "busy":
            for _ in range(2000):
                vault.put(os.urandom(16), 1, os.urandom(2000), new_salt())
        if session != "same-session":
            vault.close()
            assert _data_key_from_raw(vault_dir, A, 1, salt) == key
            vault = Vault.open(vault_dir)
        assert vault.shred(A) == 1
        vault.close()

    secrets = {"plaintext": PLAINTEXT, "name": SECRET_NAME.encode(), "salt": salt, "key": key}
    assert _found_in_files(vault_dir, secrets) == []
    items = _raw_items(vault_dir)
    left = [(k, v) for k, v in items if A in k]
    assert len(left) == 1, "only the tombstone may remain"
    assert len(left[0][1]) == 8  # the erasure time, nothing else
    assert all(secret not in v for _, v in items for secret in (PLAINTEXT, salt, key))
    with Vault.open(vault_dir) as vault:
        assert vault.erased(A)
        assert vault.get(C, 1) == (PLAINTEXT, salt_c)  # other records untouched
        assert not vault.erased(C)


def test_a_discarded_version_is_gone_without_a_tombstone(vault_dir: Path) -> None:
    salt1, salt2 = new_salt(), new_salt()
    with Vault.open(vault_dir) as vault:
        vault.put(A, 1, PLAINTEXT, salt1)
        vault.put(A, 2, PLAINTEXT + b" ", salt2)
        assert vault.discard(A, 2)
        assert not vault.discard(A, 2)
        assert vault.versions(A) == [1] and not vault.erased(A)
        with pytest.raises(VaultMissing):
            vault.get(A, 2)
        assert vault.get(A, 1) == (PLAINTEXT, salt1)
        vault.put(A, 2, PLAINTEXT, salt2)  # the version can be filed again
    assert _found_in_files(vault_dir, {"first salt of v2": salt2}) != []  # sanity: the scan finds live salts
    with Vault.open(vault_dir) as vault:
        vault.discard(A, 2)
    assert _found_in_files(vault_dir, {"salt of v2": salt2}) == []
