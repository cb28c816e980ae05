"""The custodian's vault: off-chain EHR content, encrypted per record version, and its erasure.

Rules:

* one vault is one LevelDB directory (under the node's data directory), held
  by one process; a second opener gets ``VaultLocked`` naming the directory;
* each version of a record is sealed with its own random 256-bit AES-GCM key
  and a random 96-bit nonce; the associated data is ``record id || version``
  (8 bytes, big-endian), so a ciphertext moved to another record or version
  does not decrypt;
* the sealed content, the data key and the salt of the chain's commitment sit
  under three separate keys, written in one synchronous batch;
* erasure is crypto-shredding: ``shred`` deletes ciphertext, key and salt of
  every version in one synchronous batch, leaves a tombstone (the record id
  and the erasure time, nothing else) and then compacts that record's key
  range, so the deleted values are gone from the write-ahead log and the table
  files, not only hidden.  Bytes the file system or the disk keeps after
  LevelDB unlinks a file (free blocks, snapshots, backups) are out of its reach;
* every method takes one lock: the node calls the vault from a thread pool.

Key layout (all integers big-endian)::

    b"m" b"schema"                          -> SCHEMA
    b"r" record_id(16)                      -> tombstone: erased at, ms since the epoch (8)
    b"r" record_id(16) version(8) b"c"      -> nonce(12) || AES-GCM ciphertext and tag
    b"r" record_id(16) version(8) b"k"      -> data key (32)
    b"r" record_id(16) version(8) b"s"      -> salt
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

from primitives.errors import UsageError
from storage.errors import CorruptRecord, DatabaseLocked, StorageError, StoreClosed

RECORD_ID_BYTES = 16
SALT_BYTES = 32
KEY_BYTES = 32
NONCE_BYTES = 12
MAX_VERSION = 2**64 - 1
VAULT_DIRNAME = "vault"
SCHEMA = b"medchain-vault/1"

_SCHEMA_KEY = b"mschema"
_RECORD = b"r"
_CIPHERTEXT, _DATA_KEY, _SALT = b"c", b"k", b"s"
_PARTS = (_CIPHERTEXT, _DATA_KEY, _SALT)
_VERSION_KEY_BYTES = 1 + RECORD_ID_BYTES + 8 + 1


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


class Vault:
    """Encrypted EHR content of the records this node's organisation keeps."""

    def __init__(self, path: Path, db: Any, clock: Callable[[], float]) -> None:
        self.path = path
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> Vault:
        """Open (creating if missing) the vault in directory ``path``; ``clock`` stamps tombstones."""
        directory = Path(path)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VaultError(f"cannot create vault directory {directory}: {exc.strerror or exc}") from None
        try:
            # Sealed values do not compress; without compression the table
            # files hold exactly the stored bytes, which the erasure tests check.
            db = plyvel.DB(str(directory), create_if_missing=True, compression=None)
        except plyvel.IOError as exc:
            message = _message(exc)
            if "lock" in message.lower():
                raise VaultLocked(
                    f"vault directory {directory} is locked: another medchain process seems to be using it "
                    f"(stop that process or choose another data directory) [LevelDB: {message}]"
                ) from None
            raise VaultError(f"cannot open vault directory {directory}: {message}") from None
        except plyvel.Error as exc:
            raise VaultError(f"cannot open vault directory {directory}: {_message(exc)}") from None
        try:
            _check_schema(directory, db)
        except BaseException:
            db.close()
            raise
        return cls(directory, db, clock)

    def close(self) -> None:
        with self._lock:
            if not self._db.closed:
                self._db.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ writes

    def put(self, record_id: bytes, version: int, content: bytes, salt: bytes) -> None:
        """Seal ``content`` under a fresh key and store it with ``salt``, durably, in one batch."""
        _check_id(record_id)
        _check_version(version)
        if len(salt) != SALT_BYTES:
            raise UsageError(f"a record salt is {SALT_BYTES} bytes, got {len(salt)}")
        key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + AESGCM(key).encrypt(nonce, bytes(content), _aad(record_id, version))
        with self._lock:
            db = self._live()
            if db.get(_tombstone_key(record_id)) is not None:
                raise VaultErased(f"record {record_id.hex()} was erased; it cannot take new content")
            if db.get(_part_key(record_id, version, _CIPHERTEXT)) is not None:
                raise VaultConflict(f"record {record_id.hex()} v{version} is already in the vault at {self.path}")
            self._write(
                db,
                puts=[
                    (_part_key(record_id, version, _CIPHERTEXT), sealed),
                    (_part_key(record_id, version, _DATA_KEY), key),
                    (_part_key(record_id, version, _SALT), bytes(salt)),
                ],
            )

    def shred(self, record_id: bytes) -> int:
        """Erase every version of the record for good, leaving a tombstone; return how many versions went."""
        _check_id(record_id)
        with self._lock:
            db = self._live()
            doomed = self._version_part_keys(db, record_id)
            already = db.get(_tombstone_key(record_id)) is not None
            if already and not doomed:
                return 0
            # Flush first, so the values sit in table files before their
            # deletions arrive: a memtable holding both would be flushed as one
            # table that a manual compaction may never rewrite (see _purge).
            self._purge(db, record_id)
            erased_at = int(self._clock() * 1000).to_bytes(8, "big")
            puts = [] if already else [(_tombstone_key(record_id), erased_at)]
            self._write(db, puts=puts, deletes=doomed)
            self._purge(db, record_id)
            return len({key[: _VERSION_KEY_BYTES - 1] for key in doomed})

    def discard(self, record_id: bytes, version: int) -> bool:
        """Remove one version the chain refused to reference (no tombstone); False if it was not there."""
        _check_id(record_id)
        _check_version(version)
        with self._lock:
            db = self._live()
            doomed = [k for k in (_part_key(record_id, version, part) for part in _PARTS) if db.get(k) is not None]
            if not doomed:
                return False
            # Personal data the chain never referenced: purge it as thoroughly as an erasure.
            self._purge(db, record_id)
            self._write(db, deletes=doomed)
            self._purge(db, record_id)
            return True

    # ------------------------------------------------------------ reads

    def get(self, record_id: bytes, version: int) -> tuple[bytes, bytes]:
        """Decrypt one version: return (content, salt)."""
        _check_id(record_id)
        _check_version(version)
        with self._lock:
            db = self._live()
            if db.get(_tombstone_key(record_id)) is not None:
                raise VaultErased(f"record {record_id.hex()} was erased")
            sealed, key, salt = (db.get(_part_key(record_id, version, part)) for part in _PARTS)
        where = f"record {record_id.hex()} v{version}"
        if sealed is None and key is None and salt is None:
            raise VaultMissing(f"the vault at {self.path} holds no {where}")
        if sealed is None or key is None or salt is None:
            raise VaultCorrupt(where, _part_key(record_id, version, _CIPHERTEXT), "a part of the version is missing")
        if len(key) != KEY_BYTES or len(sealed) < NONCE_BYTES:
            raise VaultCorrupt(where, _part_key(record_id, version, _DATA_KEY), "wrong sizes")
        try:
            content = AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(record_id, version))
        except InvalidTag:
            raise VaultCorrupt(
                where, _part_key(record_id, version, _CIPHERTEXT), "does not decrypt (tag mismatch)"
            ) from None
        return content, salt

    def versions(self, record_id: bytes) -> list[int]:
        """The versions of the record this vault holds, ascending (none once erased)."""
        _check_id(record_id)
        with self._lock:
            keys = self._version_part_keys(self._live(), record_id)
        found = {int.from_bytes(key[1 + RECORD_ID_BYTES : -1], "big") for key in keys if key[-1:] == _CIPHERTEXT}
        return sorted(found)

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
            raw = self._live().get(_tombstone_key(record_id))
        return None if raw is None else int.from_bytes(raw, "big")

    # ------------------------------------------------------------ internals

    def _live(self) -> Any:
        if self._db.closed:
            raise VaultClosed(f"the vault at {self.path} is closed")
        return self._db

    def _version_part_keys(self, db: Any, record_id: bytes) -> list[bytes]:
        prefix = _tombstone_key(record_id)
        with db.iterator(prefix=prefix, include_value=False) as it:
            return [key for key in it if len(key) == _VERSION_KEY_BYTES]

    def _write(
        self, db: Any, *, puts: list[tuple[bytes, bytes]] | None = None, deletes: list[bytes] | None = None
    ) -> None:
        try:
            with db.write_batch(sync=True, transaction=True) as batch:
                for key in deletes or ():
                    batch.delete(key)
                for key, value in puts or ():
                    batch.put(key, value)
        except plyvel.Error as exc:
            raise VaultError(f"write to the vault at {self.path} failed: {_message(exc)}") from None

    def _purge(self, db: Any, record_id: bytes) -> None:
        # LevelDB's CompactRange flushes the memtable (dropping the old log
        # file), then merges each level's files that overlap the range into the
        # next level, which drops values shadowed by a newer deletion.  It only
        # visits levels above the deepest one that held files in the range
        # *before* the flush, so a value and its deletion flushed together
        # into one table can survive; ``shred`` and ``discard`` therefore purge
        # once before deleting (values into tables) and once after.
        prefix = _tombstone_key(record_id)
        try:
            db.compact_range(start=prefix, stop=prefix + b"\xff" * 9)
        except plyvel.Error as exc:
            raise VaultError(f"compaction of the vault at {self.path} failed: {_message(exc)}") from None


def _check_schema(directory: Path, db: Any) -> None:
    found = db.get(_SCHEMA_KEY)
    if found is None:
        with db.iterator(include_value=False) as it:
            empty = next(it, None) is None
        if not empty:
            raise VaultError(f"{directory} is a LevelDB but not a medchain vault (no schema mark)")
        db.put(_SCHEMA_KEY, SCHEMA, sync=True)
    elif found != SCHEMA:
        raise VaultError(f"vault {directory} has schema {found!r}; this code reads {SCHEMA!r}")


def _check_id(record_id: bytes) -> None:
    if not isinstance(record_id, bytes) or len(record_id) != RECORD_ID_BYTES:
        raise UsageError(f"a record id is {RECORD_ID_BYTES} bytes")


def _check_version(version: int) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= MAX_VERSION:
        raise UsageError(f"a record version is an integer in 0..{MAX_VERSION}")


def _tombstone_key(record_id: bytes) -> bytes:
    return _RECORD + record_id


def _part_key(record_id: bytes, version: int, part: bytes) -> bytes:
    return _RECORD + record_id + version.to_bytes(8, "big") + part


def _aad(record_id: bytes, version: int) -> bytes:
    return record_id + version.to_bytes(8, "big")


def _message(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg or exc)
