"""The vault on real LevelDBs: envelope encryption, binding, locking, KEK rotation, and erasure that reaches copies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import plyvel
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import node.healthcare.vault as vault_module
from node.healthcare.fhir import new_salt, validate_resource
from node.healthcare.vault import (
    WRAP_AAD,
    Vault,
    VaultClosed,
    VaultConflict,
    VaultCorrupt,
    VaultErased,
    VaultError,
    VaultLocked,
    VaultMissing,
    WrongKek,
    rotate_kek,
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
KEK, NEW_KEK = bytes(range(32)), bytes(range(100, 132))

OPEN_IN_CHILD = textwrap.dedent(
    """
    import sys
    from node.healthcare.vault import Vault, VaultError
    try:
        Vault.open(sys.argv[1], bytes(range(32))).close()
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


def _raw_parts(vault: Path, record_id: bytes, store: str) -> dict[bytes, bytes]:
    return {key: value for key, value in _raw_items(vault / store) if record_id in key}


def _aad(record_id: bytes, version: int) -> bytes:
    return record_id + version.to_bytes(8, "big")


def _unwrap(kek: bytes, record_id: bytes, version: int, wrapped: bytes) -> bytes:
    return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], WRAP_AAD + _aad(record_id, version))


def _open_sealed(key: bytes, record_id: bytes, version: int, sealed: bytes) -> bytes:
    """Salt (32 bytes) then content, as the vault seals them."""
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], _aad(record_id, version))


def _data_key_from_raw(vault: Path, record_id: bytes, version: int, salt: bytes) -> bytes:
    """Unwrap the record's data key from the raw key store with the KEK, and prove it is the key by decrypting."""
    (wrapped,) = _raw_parts(vault, record_id, "keys").values()
    (sealed,) = _raw_parts(vault, record_id, "content").values()
    key = _unwrap(KEK, record_id, version, wrapped)
    assert _open_sealed(key, record_id, version, sealed) == salt + PLAINTEXT
    return key


# ---------------------------------------------------------------- round trip


def test_a_stored_version_comes_back(vault_dir: Path) -> None:
    salt = new_salt()
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, salt)
        assert vault.get(A, 1) == (PLAINTEXT, salt)
        assert vault.versions(A) == [1] and vault.holds(A) and not vault.erased(A)
        assert vault.versions(B) == [] and not vault.holds(B)
    with Vault.open(vault_dir, KEK) as vault:
        assert vault.get(A, 1) == (PLAINTEXT, salt)


def test_versions_are_listed_in_order_and_each_has_its_own_key(vault_dir: Path) -> None:
    salts = {v: new_salt() for v in (3, 1, 2)}
    with Vault.open(vault_dir, KEK) as vault:
        for version, salt in salts.items():
            vault.put(A, version, PLAINTEXT + str(version).encode(), salt)
        assert vault.versions(A) == [1, 2, 3]
        assert vault.get(A, 2) == (PLAINTEXT + b"2", salts[2])
    wrapped = _raw_parts(vault_dir, A, "keys")
    keys = {_unwrap(KEK, A, int.from_bytes(k[17:25], "big"), v) for k, v in wrapped.items()}
    assert len(wrapped) == 3 and len(keys) == 3


def test_a_version_is_written_once(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        with pytest.raises(VaultConflict):
            vault.put(A, 1, b"other content", new_salt())
        assert vault.get(A, 1)[0] == PLAINTEXT


def test_a_version_never_stored_is_missing(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK) as vault:
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
    with Vault.open(vault_dir, KEK) as vault, pytest.raises(UsageError):
        vault.put(record_id, version, PLAINTEXT, salt)


def test_a_closed_vault_refuses_work(vault_dir: Path) -> None:
    vault = Vault.open(vault_dir, KEK)
    vault.close()
    vault.close()
    with pytest.raises(VaultClosed):
        vault.get(A, 1)


def test_concurrent_calls_from_a_thread_pool(vault_dir: Path) -> None:
    ids = [os.urandom(16) for _ in range(64)]
    with Vault.open(vault_dir, KEK) as vault, ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda rid: vault.put(rid, 1, rid * 4, bytes(32)), ids))
        assert list(pool.map(lambda rid: vault.get(rid, 1)[0], ids)) == [rid * 4 for rid in ids]
        assert sum(pool.map(vault.shred, ids[:32])) == 32
        assert [vault.holds(rid) for rid in ids] == [False] * 32 + [True] * 32


# ---------------------------------------------------------------- on disk


def test_the_plaintext_never_reaches_the_disk(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
    assert _found_in_files(vault_dir, {"plaintext": PLAINTEXT, "name": SECRET_NAME.encode()}) == []
    for store in ("content", "keys"):
        assert all(PLAINTEXT not in value for value in _raw_parts(vault_dir, A, store).values())


def _swap(store: Path, one: bytes, other: bytes) -> None:
    """Move every stored value of record ``one`` to record ``other`` and back, in one raw store."""
    parts_one, parts_other = _raw_parts(store.parent, one, store.name), _raw_parts(store.parent, other, store.name)
    db = plyvel.DB(str(store))
    for key, value in parts_one.items():
        db.put(key.replace(one, other), value)
    for key, value in parts_other.items():
        db.put(key.replace(other, one), value)
    db.close()


def test_ciphertext_and_key_moved_to_another_record_do_not_decrypt(vault_dir: Path) -> None:
    # Swapping only the ciphertexts would fail even without associated data (each is under its own
    # key); moving a whole version (ciphertext and wrapped key) is what the record id in both AADs stops.
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        vault.put(B, 1, b'{"resourceType":"Patient"}', new_salt())
    _swap(vault_dir / "content", A, B)
    _swap(vault_dir / "keys", A, B)
    with Vault.open(vault_dir, KEK) as vault:
        with pytest.raises(VaultCorrupt):
            vault.get(A, 1)
        with pytest.raises(VaultCorrupt):
            vault.get(B, 1)


def test_a_version_moved_to_another_version_does_not_decrypt(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
    for store in ("content", "keys"):
        db = plyvel.DB(str(vault_dir / store))
        for key, value in _raw_items_of(db, A):
            db.put(key.replace(A + (1).to_bytes(8, "big"), A + (2).to_bytes(8, "big")), value)
        db.close()
    with Vault.open(vault_dir, KEK) as vault:
        assert vault.versions(A) == [1, 2]
        with pytest.raises(VaultCorrupt):
            vault.get(A, 2)


def _raw_items_of(db: Any, record_id: bytes) -> list[tuple[bytes, bytes]]:
    return [(key, value) for key, value in db.iterator() if record_id in key]


def test_a_flipped_ciphertext_bit_is_corruption(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
    db = plyvel.DB(str(vault_dir / "content"))
    for key, value in _raw_items_of(db, A):
        db.put(key, value[:-1] + bytes([value[-1] ^ 1]))
    db.close()
    with Vault.open(vault_dir, KEK) as vault, pytest.raises(VaultCorrupt, match="decrypt"):
        vault.get(A, 1)


# ---------------------------------------------------------------- locking


def test_a_second_open_in_this_process_is_refused(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK), pytest.raises(VaultLocked) as caught:
        Vault.open(vault_dir, KEK)
    assert str(vault_dir) in str(caught.value)
    assert isinstance(caught.value, DatabaseLocked)


def test_a_second_process_is_refused_with_the_path(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK):
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
    (tmp_path / "other").mkdir()
    db = plyvel.DB(str(tmp_path / "other" / "keys"), create_if_missing=True)
    db.put(b"head", b"x")
    db.close()
    with pytest.raises(VaultError, match="not a medchain vault"):
        Vault.open(tmp_path / "other", KEK)


def test_an_old_single_store_vault_is_refused_and_left_alone(tmp_path: Path) -> None:
    old = tmp_path / "vault"
    db = plyvel.DB(str(old), create_if_missing=True)
    db.put(b"mschema", b"medchain-vault/1")
    db.close()
    before = _files(old)
    with pytest.raises(VaultError, match="old single-store layout") as caught:
        Vault.open(old, KEK)
    assert str(old) in str(caught.value) and "\n" not in str(caught.value)
    assert _files(old) == before


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
    with Vault.open(vault_dir, KEK, clock=lambda: 1_700_000_000.5) as vault:
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
    with Vault.open(vault_dir, KEK) as vault:
        assert vault.erased(A)
        with pytest.raises(VaultErased):
            vault.get(A, 1)


def test_shredding_is_idempotent(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK, clock=lambda: 1.0) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        assert vault.shred(A) == 1
    with Vault.open(vault_dir, KEK, clock=lambda: 2.0) as vault:
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
    with Vault.open(vault_dir, KEK) as vault:
        if session == "busy":
            for _ in range(2000):
                vault.put(os.urandom(16), 1, os.urandom(2000), new_salt())
        vault.put(A, 1, PLAINTEXT, salt)
        key = _KeySpy.keys[-1]
        vault.put(C, 1, PLAINTEXT, salt_c)
        if session == "busy":
            for _ in range(2000):
                vault.put(os.urandom(16), 1, os.urandom(2000), new_salt())
        stored: dict[str, bytes] = {}
        if session != "same-session":
            vault.close()
            assert _data_key_from_raw(vault_dir, A, 1, salt) == key
            (stored["wrapped key"],) = _raw_parts(vault_dir, A, "keys").values()
            (stored["ciphertext"],) = _raw_parts(vault_dir, A, "content").values()
            assert _found_in_files(vault_dir, stored) != []  # sanity: the scan finds live values
            vault = Vault.open(vault_dir, KEK)
        assert vault.shred(A) == 1
        vault.close()

    secrets = {"plaintext": PLAINTEXT, "name": SECRET_NAME.encode(), "salt": salt, "key": key, **stored}
    assert _found_in_files(vault_dir, secrets) == []
    assert [k for k, _ in _raw_items(vault_dir / "content") if A in k] == []
    left = [(k, v) for k, v in _raw_items(vault_dir / "keys") if A in k]
    assert len(left) == 1, "only the tombstone may remain"
    assert len(left[0][1]) == 8  # the erasure time, nothing else
    with Vault.open(vault_dir, KEK) as vault:
        assert vault.erased(A)
        assert vault.get(C, 1) == (PLAINTEXT, salt_c)  # other records untouched
        assert not vault.erased(C)


def test_a_discarded_version_is_gone_without_a_tombstone(vault_dir: Path) -> None:
    salt1, salt2 = new_salt(), new_salt()
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, salt1)
        vault.put(A, 2, PLAINTEXT + b" ", salt2)
        assert vault.discard(A, 2)
        assert not vault.discard(A, 2)
        assert vault.versions(A) == [1] and not vault.erased(A)
        with pytest.raises(VaultMissing):
            vault.get(A, 2)
        assert vault.get(A, 1) == (PLAINTEXT, salt1)
        vault.put(A, 2, PLAINTEXT, salt2)  # the version can be filed again
    v2 = {
        f"{store} of v2": value
        for store in ("content", "keys")
        for key, value in _raw_parts(vault_dir, A, store).items()
        if key[17:25] == (2).to_bytes(8, "big")
    }
    assert len(v2) == 2 and len(_found_in_files(vault_dir, v2)) >= 2  # sanity: the scan finds live values
    with Vault.open(vault_dir, KEK) as vault:
        vault.discard(A, 2)
        assert vault.get(A, 1) == (PLAINTEXT, salt1)
    assert _found_in_files(vault_dir, v2) == []


def test_an_erasure_cut_short_after_the_key_store_is_finished_at_the_next_open(vault_dir: Path) -> None:
    """A crash after the key store's batch, before the content store's deletion: the next open removes the rest."""
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        vault.put(C, 1, PLAINTEXT, new_salt())
    (sealed,) = _raw_parts(vault_dir, A, "content").values()
    (wrapped_key,) = _raw_parts(vault_dir, A, "keys")
    db = plyvel.DB(str(vault_dir / "keys"))  # exactly the first batch of shred(A)
    with db.write_batch(sync=True) as batch:
        batch.delete(wrapped_key)
        batch.put(b"r" + A, (1000).to_bytes(8, "big"))
        batch.put(b"p" + A, b"")
    db.close()
    assert _found_in_files(vault_dir / "content", {"ciphertext": sealed}) != []

    with Vault.open(vault_dir, KEK) as vault:
        assert vault.erased(A) and vault.get(C, 1)[0] == PLAINTEXT

    assert _found_in_files(vault_dir, {"ciphertext": sealed}) == []
    assert [k for k, _ in _raw_items(vault_dir / "keys") if A in k] == [b"r" + A]
    assert _raw_parts(vault_dir, C, "content") != {}


# ---------------------------------------------------------------- envelope encryption: what a copy yields


def _windows(directory: Path) -> set[bytes]:
    """Every 32-byte string anywhere in the files of ``directory``: each a candidate AES key."""
    return {data[i : i + 32] for data in _files(directory).values() for i in range(max(0, len(data) - 31))}


def _opens(candidates: set[bytes], record_id: bytes, version: int, sealed: bytes) -> bool:
    for key in candidates:
        try:
            _open_sealed(key, record_id, version, sealed)
        except InvalidTag:
            continue
        return True
    return False


def test_a_copy_of_the_vault_decrypts_nothing_without_the_kek(vault_dir: Path, tmp_path: Path) -> None:
    """Every 32-byte string in the vault's files (both stores) is tried as the data key: none opens a record.

    On the single-store vault the data key sat beside its ciphertext, so this search found it.
    """
    salt = new_salt()
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, salt)
        vault.put(B, 7, PLAINTEXT, new_salt())
    stolen = tmp_path / "stolen"
    shutil.copytree(vault_dir, stolen)
    assert _found_in_files(stolen, {"plaintext": PLAINTEXT, "name": SECRET_NAME.encode(), "salt": salt}) == []
    candidates = _windows(stolen)
    assert KEK not in candidates
    for record_id, version in ((A, 1), (B, 7)):
        (sealed,) = _raw_parts(stolen, record_id, "content").values()
        assert not _opens(candidates, record_id, version, sealed)
    with Vault.open(stolen, KEK) as vault:  # with the KEK, the same copy opens
        assert vault.get(A, 1) == (PLAINTEXT, salt)
    content_only = tmp_path / "content-only"
    shutil.copytree(vault_dir / "content", content_only / "content")
    # The content store alone, even with the KEK: no key to unwrap.
    with Vault.open(content_only, KEK) as vault, pytest.raises(VaultMissing):
        vault.get(A, 1)


def test_a_content_copy_from_before_an_erasure_with_todays_keys_and_kek_yields_nothing_of_the_record(
    vault_dir: Path, tmp_path: Path
) -> None:
    """The backup case: content copied (vault closed) before the erasure, key store and KEK taken after it."""
    salt_a, salt_c = new_salt(), new_salt()
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, salt_a)
        vault.put(A, 2, PLAINTEXT + b" ", new_salt())
        vault.put(C, 1, b'{"resourceType":"Patient","id":"c"}', salt_c)
    backup = tmp_path / "backup"
    shutil.copytree(vault_dir / "content", backup / "content")
    with Vault.open(vault_dir, KEK) as vault:
        assert vault.shred(A) == 2
    restored = tmp_path / "restored"
    shutil.copytree(backup / "content", restored / "content")
    shutil.copytree(vault_dir / "keys", restored / "keys")
    old_ciphertexts = _raw_parts(restored, A, "content")
    assert len(old_ciphertexts) == 2  # the backup does hold the erased record's ciphertexts

    # Every data key the current key store yields under the KEK, whatever record it claims to be for.
    data_keys = set()
    for key, value in _raw_items(restored / "keys"):
        if len(key) == 26:
            data_keys.add(_unwrap(KEK, key[1:17], int.from_bytes(key[17:25], "big"), value))
    assert len(data_keys) == 1  # C's
    for key, sealed in old_ciphertexts.items():
        version = int.from_bytes(key[17:25], "big")
        assert not _opens(data_keys | _windows(restored), A, version, sealed)

    with Vault.open(restored, KEK) as vault:
        with pytest.raises(VaultErased):
            vault.get(A, 1)
        assert vault.get(C, 1) == (b'{"resourceType":"Patient","id":"c"}', salt_c)
    db = plyvel.DB(str(restored / "keys"))
    db.delete(b"r" + A)  # even without the tombstone, nothing unwraps A
    db.close()
    with Vault.open(restored, KEK) as vault:
        for version in (1, 2):
            with pytest.raises(VaultMissing):
                vault.get(A, version)


def test_the_wrong_kek_is_refused_at_open(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
    with pytest.raises(WrongKek, match="not this vault's KEK") as caught:
        Vault.open(vault_dir, NEW_KEK)
    assert str(vault_dir) in str(caught.value)
    with pytest.raises(UsageError, match="32 bytes"):
        Vault.open(vault_dir, KEK[:16])


# ---------------------------------------------------------------- KEK rotation


def test_rotation_rewraps_every_key_and_leaves_the_content_store_byte_identical(vault_dir: Path) -> None:
    salts = {rid: new_salt() for rid in (A, B, C)}
    with Vault.open(vault_dir, KEK) as vault:
        for rid, salt in salts.items():
            vault.put(rid, 1, PLAINTEXT + rid, salt)
        vault.put(A, 2, PLAINTEXT, new_salt())
        vault.shred(B)
    content_before = _files(vault_dir / "content")
    wrapped_before = {k: v for k, v in _raw_items(vault_dir / "keys") if len(k) == 26}

    assert rotate_kek(vault_dir, KEK, NEW_KEK) == 3

    assert _files(vault_dir / "content") == content_before
    wrapped_after = {k: v for k, v in _raw_items(vault_dir / "keys") if len(k) == 26}
    assert wrapped_after.keys() == wrapped_before.keys()
    for key, value in wrapped_after.items():
        rid, version = key[1:17], int.from_bytes(key[17:25], "big")
        with pytest.raises(InvalidTag):
            _unwrap(KEK, rid, version, value)
        assert _unwrap(NEW_KEK, rid, version, value) == _unwrap(KEK, rid, version, wrapped_before[key])
    old_wraps = {f"old wrap {i}": value for i, value in enumerate(wrapped_before.values())}
    assert _found_in_files(vault_dir / "keys", old_wraps) == []
    with pytest.raises(WrongKek):
        Vault.open(vault_dir, KEK)
    with Vault.open(vault_dir, NEW_KEK) as vault:
        assert vault.get(A, 1) == (PLAINTEXT + A, salts[A]) and vault.get(C, 1) == (PLAINTEXT + C, salts[C])
        assert vault.get(A, 2)[0] == PLAINTEXT and vault.erased(B)


def test_rotation_with_the_wrong_kek_or_an_open_vault_changes_nothing(vault_dir: Path) -> None:
    with Vault.open(vault_dir, KEK) as vault:
        vault.put(A, 1, PLAINTEXT, new_salt())
        with pytest.raises(VaultLocked):
            rotate_kek(vault_dir, KEK, NEW_KEK)
    before = _raw_items(vault_dir / "keys")
    with pytest.raises(WrongKek):
        rotate_kek(vault_dir, NEW_KEK, KEK)
    assert _raw_items(vault_dir / "keys") == before
    assert rotate_kek(vault_dir.parent / "never-opened", KEK, NEW_KEK) == 0
