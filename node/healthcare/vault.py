"""The custodian's vault: off-chain EHR content, encrypted per record version, and its erasure.

Rules:

* envelope encryption: each version of a record is sealed (its salt, then its
  canonical content) with its own random 256-bit AES-GCM data key and a random
  96-bit nonce, associated data ``record id || version`` (8 bytes, big-endian),
  so a ciphertext moved to another record or version does not decrypt; the
  data key is itself sealed ("wrapped") with AES-GCM under the node's
  key-encryption key (KEK, ``node.healthcare.kek``), associated data a domain
  tag, the record id and the version;
* the vault directory holds two LevelDBs: ``content`` (ciphertexts only) and
  ``keys`` (wrapped data keys, tombstones and a KEK check value).  A copy of
  ``content`` alone decrypts nothing; a copy of ``keys`` needs the KEK;
* a version exists once its wrapped key is stored: ``put`` writes the
  ciphertext, then the key; a crash between leaves a ciphertext no key opens,
  which the next ``put`` of that version overwrites;
* erasure is crypto-shredding: ``shred`` deletes the record's wrapped keys,
  writes a tombstone (the record id and the erasure time, nothing else) and a
  pending mark in one synchronous batch, and only then deletes its
  ciphertexts and the mark; ``open`` finishes what a crash left marked.  Each
  store's key range is compacted before and after, so the deleted values are
  gone from LevelDB's write-ahead log and table files.  Once the data keys
  are gone, no copy of the content store, backups included, opens the record;
* ``rotate_kek`` rewraps every data key under a new KEK in one batch of the key
  store and never opens the content store;
* each store is held by one process; a second opener gets ``VaultLocked``
  naming the directory; every method takes one lock: the node calls the vault
  from a thread pool.

Key layout (all integers big-endian)::

    content:  b"m" b"schema"                      -> CONTENT_SCHEMA
              b"r" record_id(16) version(8) b"c"  -> nonce(12) || AES-GCM(data key, salt || content)
    keys:     b"m" b"schema"                      -> KEYS_SCHEMA
              b"m" b"kek"                         -> nonce(12) || AES-GCM(KEK, b"", KEK_CHECK_AAD)
              b"r" record_id(16)                  -> tombstone: erased at, ms since the epoch (8)
              b"p" record_id(16)                  -> b"": the record's keyless ciphertexts are yet to go
              b"r" record_id(16) version(8) b"k"  -> nonce(12) || AES-GCM(KEK, data key)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import plyvel
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from node.healthcare.kek import KEK_BYTES
from primitives.errors import UsageError
from storage.database import open_leveldb
from storage.errors import CorruptRecord, DatabaseLocked, StorageError, StoreClosed

RECORD_ID_BYTES = 16
SALT_BYTES = 32
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_VERSION = 2**64 - 1
VAULT_DIRNAME = "vault"
CONTENT_DIRNAME = "content"
KEYS_DIRNAME = "keys"
CONTENT_SCHEMA = b"medchain-vault-content/2"
KEYS_SCHEMA = b"medchain-vault-keys/2"
OLD_SCHEMA = b"medchain-vault/1"
WRAP_AAD = b"medchain/v2/vault-data-key"
KEK_CHECK_AAD = b"medchain/v2/vault-kek-check"

_SCHEMA_KEY = b"mschema"
_KEK_CHECK_KEY = b"mkek"
_RECORD = b"r"
_PENDING = b"p"
_CIPHERTEXT, _DATA_KEY = b"c", b"k"
_VERSION_KEY_BYTES = 1 + RECORD_ID_BYTES + 8 + 1
_WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + TAG_BYTES


class VaultError(StorageError):
    """The vault cannot do what was asked (base of every vault error)."""


class VaultLocked(VaultError, DatabaseLocked):
    """Another process (or another handle in this one) has the vault directory open."""


class VaultClosed(VaultError, StoreClosed):
    """The vault was closed."""


class VaultMissing(VaultError):
    """This vault never held that record version (or it was discarded)."""


class VaultErased(VaultError):
    """The record was shredded on the patient's erasure request; its content is gone for good."""


class VaultConflict(VaultError, UsageError):
    """That record version is already stored; a version is written once."""


class VaultCorrupt(VaultError, CorruptRecord):
    """Stored bytes do not decrypt, or a version lacks one of its parts."""


class WrongKek(VaultError):
    """The KEK given does not unwrap this vault's data keys."""


class Vault:
    """Encrypted EHR content of the records this node's organisation keeps."""

    def __init__(self, path: Path, content: Any, keys: Any, kek: bytes, clock: Callable[[], float]) -> None:
        self.path = path
        self._content = content
        self._keys = keys
        self._kek = AESGCM(kek)
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str], kek: bytes, *, clock: Callable[[], float] = time.time) -> Vault:
        """Open (creating if missing) the vault in directory ``path`` under ``kek``; ``clock`` stamps tombstones."""
        directory = Path(path)
        _check_kek_size(kek)
        keys = open_key_store(directory, kek)
        try:
            content = _open_store(directory / CONTENT_DIRNAME, CONTENT_SCHEMA, directory)
        except BaseException:
            keys.close()
            raise
        vault = cls(directory, content, keys, kek, clock)
        try:
            vault._finish_pending()
        except BaseException:
            vault.close()
            raise
        return vault

    def close(self) -> None:
        with self._lock:
            for db in (self._keys, self._content):
                if not db.closed:
                    db.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ writes

    def put(self, record_id: bytes, version: int, content: bytes, salt: bytes) -> None:
        """Seal ``salt`` and ``content`` under a fresh data key, wrap the key, store both durably."""
        _check_id(record_id)
        _check_version(version)
        if len(salt) != SALT_BYTES:
            raise UsageError(f"a record salt is {SALT_BYTES} bytes, got {len(salt)}")
        key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + AESGCM(key).encrypt(nonce, bytes(salt) + bytes(content), _aad(record_id, version))
        wrapped = wrap_key(self._kek, record_id, version, key)
        with self._lock:
            keys, content_db = self._live()
            if keys.get(_tombstone_key(record_id)) is not None:
                raise VaultErased(f"record {record_id.hex()} was erased; it cannot take new content")
            if keys.get(_part_key(record_id, version, _DATA_KEY)) is not None:
                raise VaultConflict(f"record {record_id.hex()} v{version} is already in the vault at {self.path}")
            self._write(content_db, puts=[(_part_key(record_id, version, _CIPHERTEXT), sealed)])
            self._write(keys, puts=[(_part_key(record_id, version, _DATA_KEY), wrapped)])

    def shred(self, record_id: bytes) -> int:
        """Erase every version of the record for good, leaving a tombstone; return how many versions went."""
        _check_id(record_id)
        with self._lock:
            keys, content_db = self._live()
            doomed_keys = _version_keys(keys, record_id)
            doomed_content = _version_keys(content_db, record_id)
            already = keys.get(_tombstone_key(record_id)) is not None
            if already and not doomed_keys and not doomed_content:
                return 0
            erased_at = int(self._clock() * 1000).to_bytes(8, "big")
            tombstone = [] if already else [(_tombstone_key(record_id), erased_at)]
            # The keys first: once they are gone, no copy of the content opens.
            self._delete(keys, record_id, doomed_keys, [*tombstone, (_pending_key(record_id), b"")])
            self._remove_keyless_content(record_id)
            return len({key[: _VERSION_KEY_BYTES - 1] for key in doomed_keys})

    def discard(self, record_id: bytes, version: int) -> bool:
        """Remove one version the chain refused to reference (no tombstone); False if it was not there."""
        _check_id(record_id)
        _check_version(version)
        with self._lock:
            keys, content_db = self._live()
            key_key = _part_key(record_id, version, _DATA_KEY)
            content_key = _part_key(record_id, version, _CIPHERTEXT)
            found = keys.get(key_key) is not None
            if not found and content_db.get(content_key) is None:
                return False
            # Personal data the chain never referenced: purge it as thoroughly as an erasure.
            self._delete(keys, record_id, [key_key], [(_pending_key(record_id), b"")])
            self._remove_keyless_content(record_id)
            return found

    # ------------------------------------------------------------ reads

    def get(self, record_id: bytes, version: int) -> tuple[bytes, bytes]:
        """Decrypt one version: return (content, salt)."""
        _check_id(record_id)
        _check_version(version)
        with self._lock:
            keys, content_db = self._live()
            if keys.get(_tombstone_key(record_id)) is not None:
                raise VaultErased(f"record {record_id.hex()} was erased")
            wrapped = keys.get(_part_key(record_id, version, _DATA_KEY))
            sealed = content_db.get(_part_key(record_id, version, _CIPHERTEXT))
        where = f"record {record_id.hex()} v{version}"
        if wrapped is None:
            raise VaultMissing(f"the vault at {self.path} holds no {where}")
        if sealed is None:
            raise VaultCorrupt(where, _part_key(record_id, version, _CIPHERTEXT), "its ciphertext is missing")
        key = unwrap_key(self._kek, record_id, version, wrapped)
        if len(sealed) < NONCE_BYTES + TAG_BYTES + SALT_BYTES:
            raise VaultCorrupt(where, _part_key(record_id, version, _CIPHERTEXT), "too short")
        try:
            opened = AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(record_id, version))
        except InvalidTag:
            raise VaultCorrupt(
                where, _part_key(record_id, version, _CIPHERTEXT), "does not decrypt (tag mismatch)"
            ) from None
        return opened[SALT_BYTES:], opened[:SALT_BYTES]

    def versions(self, record_id: bytes) -> list[int]:
        """The versions of the record this vault holds, ascending (none once erased)."""
        _check_id(record_id)
        with self._lock:
            found = _version_keys(self._live()[0], record_id)
        return sorted(int.from_bytes(key[1 + RECORD_ID_BYTES : -1], "big") for key in found)

    def holds(self, record_id: bytes) -> bool:
        """True if the vault holds content for at least one version of the record."""
        return bool(self.versions(record_id))

    def erased(self, record_id: bytes) -> bool:
        """True if the record was shredded here."""
        return self.erased_at(record_id) is not None

    def erased_at(self, record_id: bytes) -> int | None:
        """When the record was shredded here (ms since the epoch), or None."""
        _check_id(record_id)
        with self._lock:
            raw = self._live()[0].get(_tombstone_key(record_id))
        return None if raw is None else int.from_bytes(raw, "big")

    # ------------------------------------------------------------ internals

    def _remove_keyless_content(self, record_id: bytes) -> None:
        """Delete the record's ciphertexts whose key is gone, then its pending mark (lock held)."""
        keys, content_db = self._live()
        doomed = [
            key for key in _version_keys(content_db, record_id) if keys.get(key[:-1] + _DATA_KEY) is None
        ]
        if doomed:
            self._delete(content_db, record_id, doomed, [])
        self._write(keys, deletes=[_pending_key(record_id)])

    def _finish_pending(self) -> None:
        """Finish deletions a crash cut short between the key store and the content store."""
        with self._lock:
            with self._live()[0].iterator(prefix=_PENDING, include_value=False) as it:
                pending = [key[1:] for key in it]
            for record_id in pending:
                self._remove_keyless_content(record_id)

    def _live(self) -> tuple[Any, Any]:
        if self._keys.closed or self._content.closed:
            raise VaultClosed(f"the vault at {self.path} is closed")
        return self._keys, self._content

    def _delete(self, db: Any, record_id: bytes, doomed: list[bytes], puts: list[tuple[bytes, bytes]]) -> None:
        # Flush first, so the values sit in table files before their
        # deletions arrive: a memtable holding both would be flushed as one
        # table that a manual compaction may never rewrite (see _purge).
        _purge(db, record_id, self.path)
        self._write(db, puts=puts, deletes=doomed)
        _purge(db, record_id, self.path)

    def _write(
        self, db: Any, *, puts: list[tuple[bytes, bytes]] | None = None, deletes: list[bytes] | None = None
    ) -> None:
        write_batch(db, self.path, puts=puts or [], deletes=deletes or [])


# ---------------------------------------------------------------- the key store and the KEK


def open_key_store(directory: Path, kek: bytes) -> Any:
    """Open the key store of the vault in ``directory``, checking that ``kek`` is this vault's KEK."""
    keys = _open_store(directory / KEYS_DIRNAME, KEYS_SCHEMA, directory)
    try:
        check = keys.get(_KEK_CHECK_KEY)
        if check is None:
            write_batch(keys, directory, puts=[(_KEK_CHECK_KEY, kek_check(AESGCM(kek)))], deletes=[])
        elif not kek_matches(kek, check):
            raise WrongKek(
                f"the KEK does not unwrap the data keys of the vault at {directory}: it is not this vault's KEK "
                f"(if 'medchain node rotate-kek' was interrupted, run it again)"
            )
    except BaseException:
        keys.close()
        raise
    return keys


def rotate_kek(directory: Path, old_kek: bytes, new_kek: bytes) -> int:
    """Rewrap every data key of the vault in ``directory`` from ``old_kek`` to ``new_kek``; return how many.

    Only the key store is opened: the content store's files are not touched.
    The rewrapped keys and the new check value go in one synchronous batch, so
    the store is wholly under one KEK or the other; the old wrapped values are
    then compacted out of the store's files.
    """
    _check_kek_size(new_kek)
    if not (directory / KEYS_DIRNAME).exists():
        return 0  # a vault not created yet has no key to rewrap
    keys = open_key_store(directory, old_kek)
    try:
        old, new = AESGCM(old_kek), AESGCM(new_kek)
        puts = [(_KEK_CHECK_KEY, kek_check(new))]
        with keys.iterator(prefix=_RECORD) as it:
            for key, wrapped in it:
                if len(key) == _VERSION_KEY_BYTES:
                    record_id = key[1 : 1 + RECORD_ID_BYTES]
                    version = int.from_bytes(key[1 + RECORD_ID_BYTES : -1], "big")
                    data_key = unwrap_key(old, record_id, version, wrapped)
                    puts.append((key, wrap_key(new, record_id, version, data_key)))
        # As in _purge: old values into tables first, then the rewrite, then a
        # compaction that drops the old values they shadow.
        _compact_all(keys, directory)
        write_batch(keys, directory, puts=puts, deletes=[])
        _compact_all(keys, directory)
        return len(puts) - 1
    finally:
        keys.close()


def kek_opens_store(directory: Path, kek: bytes) -> bool:
    """Whether ``kek`` is the KEK of the vault in ``directory`` (False if it has no key store yet)."""
    if not (directory / KEYS_DIRNAME).exists():
        return False
    keys = _open_store(directory / KEYS_DIRNAME, KEYS_SCHEMA, directory)
    try:
        check = keys.get(_KEK_CHECK_KEY)
    finally:
        keys.close()
    return check is not None and kek_matches(kek, check)


def kek_matches(kek: bytes, check: bytes) -> bool:
    try:
        AESGCM(kek).decrypt(check[:NONCE_BYTES], check[NONCE_BYTES:], KEK_CHECK_AAD)
    except (InvalidTag, ValueError):
        return False
    return True


def kek_check(kek: AESGCM) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + kek.encrypt(nonce, b"", KEK_CHECK_AAD)


def wrap_key(kek: AESGCM, record_id: bytes, version: int, data_key: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + kek.encrypt(nonce, data_key, WRAP_AAD + _aad(record_id, version))


def unwrap_key(kek: AESGCM, record_id: bytes, version: int, wrapped: bytes) -> bytes:
    where = f"record {record_id.hex()} v{version}"
    if len(wrapped) != _WRAPPED_BYTES:
        raise VaultCorrupt(where, _part_key(record_id, version, _DATA_KEY), "a wrapped key of the wrong size")
    try:
        return kek.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], WRAP_AAD + _aad(record_id, version))
    except InvalidTag:
        raise VaultCorrupt(where, _part_key(record_id, version, _DATA_KEY), "its data key does not unwrap") from None


# ---------------------------------------------------------------- LevelDB


def _open_store(directory: Path, schema: bytes, vault: Path) -> Any:
    if (vault / "CURRENT").exists():
        raise VaultError(
            f"the vault at {vault} has the old single-store layout, with its data keys unwrapped beside the "
            f"content; this release does not read it: move it out of the node's folder, keep it as safe as the "
            f"key itself, and file its records again"
        )
    try:
        # Sealed values do not compress; without compression the table
        # files hold exactly the stored bytes, which the erasure tests check.
        db = open_leveldb(directory, "vault directory", compression=None)
    except DatabaseLocked as exc:
        raise VaultLocked(str(exc)) from None
    except StorageError as exc:
        raise VaultError(str(exc)) from None
    try:
        _check_schema(directory, db, schema)
    except BaseException:
        db.close()
        raise
    return db


def write_batch(db: Any, where: Path, *, puts: list[tuple[bytes, bytes]], deletes: list[bytes]) -> None:
    try:
        with db.write_batch(sync=True, transaction=True) as batch:
            for key in deletes:
                batch.delete(key)
            for key, value in puts:
                batch.put(key, value)
    except plyvel.Error as exc:
        raise VaultError(f"write to the vault at {where} failed: {_message(exc)}") from None


def _purge(db: Any, record_id: bytes, where: Path) -> None:
    # LevelDB's CompactRange flushes the memtable (dropping the old log
    # file), then merges each level's files that overlap the range into the
    # next level, which drops values shadowed by a newer deletion.  It only
    # visits levels above the deepest one that held files in the range
    # *before* the flush, so a value and its deletion flushed together
    # into one table can survive; deletions therefore purge once before
    # (values into tables) and once after.
    prefix = _tombstone_key(record_id)
    try:
        db.compact_range(start=prefix, stop=prefix + b"\xff" * 9)
    except plyvel.Error as exc:
        raise VaultError(f"compaction of the vault at {where} failed: {_message(exc)}") from None


def _compact_all(db: Any, where: Path) -> None:
    # plyvel turns a missing bound into an empty key, which would make the range empty.
    try:
        db.compact_range(start=b"\x00", stop=b"\xff" * (_VERSION_KEY_BYTES + 1))
    except plyvel.Error as exc:
        raise VaultError(f"compaction of the vault at {where} failed: {_message(exc)}") from None


def _version_keys(db: Any, record_id: bytes) -> list[bytes]:
    with db.iterator(prefix=_tombstone_key(record_id), include_value=False) as it:
        return [key for key in it if len(key) == _VERSION_KEY_BYTES]


def _check_schema(directory: Path, db: Any, schema: bytes) -> None:
    found = db.get(_SCHEMA_KEY)
    if found is None:
        with db.iterator(include_value=False) as it:
            empty = next(it, None) is None
        if not empty:
            raise VaultError(f"{directory} is a LevelDB but not a medchain vault store (no schema mark)")
        db.put(_SCHEMA_KEY, schema, sync=True)
    elif found != schema:
        raise VaultError(f"vault store {directory} has schema {found!r}; this code reads {schema!r} there")


def _check_kek_size(kek: bytes) -> None:
    if not isinstance(kek, bytes) or len(kek) != KEK_BYTES:
        raise UsageError(f"a KEK is {KEK_BYTES} bytes")


def _check_id(record_id: bytes) -> None:
    if not isinstance(record_id, bytes) or len(record_id) != RECORD_ID_BYTES:
        raise UsageError(f"a record id is {RECORD_ID_BYTES} bytes")


def _check_version(version: int) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= MAX_VERSION:
        raise UsageError(f"a record version is an integer in 0..{MAX_VERSION}")


def _tombstone_key(record_id: bytes) -> bytes:
    return _RECORD + record_id


def _pending_key(record_id: bytes) -> bytes:
    return _PENDING + record_id


def _part_key(record_id: bytes, version: int, part: bytes) -> bytes:
    return _RECORD + record_id + version.to_bytes(8, "big") + part


def _aad(record_id: bytes, version: int) -> bytes:
    return record_id + version.to_bytes(8, "big")


def _message(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg or exc)
